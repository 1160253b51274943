//! The SES v2 side: building the client once at init and one `SendEmail` call.

use super::{MailAttachment, MailConfig, RenderedEmail, SesError};
use aws_sdk_sesv2::config::timeout::TimeoutConfig;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{
    Attachment, AttachmentContentDisposition, Body, Content, Destination, EmailContent, Message,
};
use aws_sdk_sesv2::Client;
use std::time::Duration;

/// Bounded so that a hanging SES endpoint cannot eat a Lambda's whole timeout.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(25))
        .build()
}

/// With `ses_endpoint` set (local stack, tests) the client uses fixed dummy
/// credentials and us-east-1 and skips the AWS credential chain, as `Store::connect`.
pub(crate) async fn client(config: &MailConfig) -> Client {
    let builder = match &config.ses_endpoint {
        Some(endpoint) => aws_sdk_sesv2::Config::builder()
            .behavior_version(aws_sdk_sesv2::config::BehaviorVersion::latest())
            .region(aws_sdk_sesv2::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new("local", "local", None, None, "local"))
            .endpoint_url(endpoint),
        None => {
            let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            aws_sdk_sesv2::config::Builder::from(&shared)
        }
    };
    Client::from_conf(
        builder.timeout_config(timeouts()).interceptor(crate::meter::WaitTimer(crate::meter::Service::Ses)).build(),
    )
}

/// One `SendEmail` with simple content (and its attachments, which SES v2
/// carries in simple content). Returns SES's message id.
pub(crate) async fn send(
    client: &Client,
    config: &MailConfig,
    to: &str,
    email: &RenderedEmail,
    attachments: &[MailAttachment],
) -> Result<String, SesError> {
    let utf8 = |data: &str| {
        Content::builder()
            .data(data)
            .charset("UTF-8")
            .build()
            .map_err(|e| SesError { code: "BuildError".into(), source: Box::new(e) })
    };
    let mut message = Message::builder()
        .subject(utf8(&email.subject)?)
        .body(Body::builder().html(utf8(&email.html)?).text(utf8(&email.text)?).build());
    for a in attachments {
        let attachment = Attachment::builder()
            .file_name(&a.file_name)
            .content_type(&a.content_type)
            .content_disposition(AttachmentContentDisposition::Attachment)
            .raw_content(Blob::new(a.data.clone()))
            .build()
            .map_err(|e| SesError { code: "BuildError".into(), source: Box::new(e) })?;
        message = message.attachments(attachment);
    }
    let message = message.build();
    crate::calls::record("ses:SendEmail", "identity");
    let out = client
        .send_email()
        .from_email_address(&config.from)
        .destination(Destination::builder().to_addresses(to).build())
        .set_reply_to_addresses(config.reply_to.clone().map(|r| vec![r]))
        .set_configuration_set_name(config.configuration_set.clone())
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .map_err(|e| SesError {
            // The code only: SES messages can quote the address.
            code: e.code().map_or_else(|| dispatch_kind(&e).to_string(), str::to_string),
            source: Box::new(e),
        })?;
    Ok(out.message_id().unwrap_or_default().to_string())
}

fn dispatch_kind<E, R>(e: &aws_sdk_sesv2::error::SdkError<E, R>) -> &'static str {
    use aws_sdk_sesv2::error::SdkError;
    match e {
        SdkError::ConstructionFailure(_) => "ConstructionFailure",
        SdkError::TimeoutError(_) => "Timeout",
        SdkError::DispatchFailure(_) => "DispatchFailure",
        SdkError::ResponseError(_) => "ResponseError",
        SdkError::ServiceError(_) => "ServiceError",
        _ => "Unknown",
    }
}
