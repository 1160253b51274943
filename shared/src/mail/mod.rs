//! Billing email: rendering (`templates`, pure) and sending through SES v2 (`ses`),
//! behind a per-recipient daily cap kept in the table.
//!
//! ```ignore
//! let mailer = Mailer::connect(&MailConfig::from_env()?, store.clone()).await;
//! let email = Email { kind: EmailKind::RenewalReminder30, to: partner.primary_email.clone(), vars };
//! match mailer.send(&email, today).await? {
//!     SendOutcome::Sent { message_id } => { /* record it */ }
//!     SendOutcome::Capped => { /* the recipient had enough mail today */ }
//! }
//! ```
//!
//! Logs never carry an address or a name: only the kind, SES's message id and the
//! recipient hash (`recipient_hash`, the same hash the quota item is keyed by).

pub mod billing;
pub mod campaign;
pub mod pdf;
pub mod quote;
pub mod renewal;
mod ses;
pub mod staff;
pub mod statement;
pub mod templates;

pub use templates::{format_amount, format_date, RenderError};
pub use templates::{render, EmailKind, EmailVars, Locale, RenderedEmail};

use crate::config::ConfigError;
use crate::store::{MailQuotaStore, Store, StoreError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const DEFAULT_FROM: &str = "Tierdesk Billing <billing@tierdesk.local>";
pub const DEFAULT_DAILY_CAP: u32 = 20;
pub const DEFAULT_MANAGE_URL: &str = "http://127.0.0.1:3000/billing";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// `SES_ENDPOINT`, set only locally: then dummy credentials and us-east-1.
    pub ses_endpoint: Option<String>,
    /// `MAIL_FROM`, a verified SES identity, optionally with a display name.
    pub from: String,
    /// `MAIL_REPLY_TO`.
    pub reply_to: Option<String>,
    /// `SES_CONFIGURATION_SET` (bounce/complaint events, sending metrics).
    pub configuration_set: Option<String>,
    /// `MAIL_DAILY_CAP`: emails one recipient may get per day (0 stops all mail).
    pub daily_cap_per_recipient: u32,
    /// `MAIL_MANAGE_URL`: the billing page the emails link to (http or https).
    pub manage_url: String,
}

impl MailConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let daily_cap_per_recipient = match var("MAIL_DAILY_CAP") {
            Some(raw) => raw.parse().map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
                name: "MAIL_DAILY_CAP",
                reason: e.to_string(),
            })?,
            None => DEFAULT_DAILY_CAP,
        };
        let manage_url = var("MAIL_MANAGE_URL").unwrap_or_else(|| DEFAULT_MANAGE_URL.to_string());
        let lower = manage_url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(ConfigError::Invalid { name: "MAIL_MANAGE_URL", reason: "must be an http(s) URL".into() });
        }
        Ok(Self {
            ses_endpoint: var("SES_ENDPOINT"),
            from: var("MAIL_FROM").unwrap_or_else(|| DEFAULT_FROM.to_string()),
            reply_to: var("MAIL_REPLY_TO"),
            configuration_set: var("SES_CONFIGURATION_SET"),
            daily_cap_per_recipient,
            manage_url,
        })
    }

    /// The defaults, pointed at a local SES emulator.
    pub fn local(ses_endpoint: impl Into<String>) -> Self {
        Self {
            ses_endpoint: Some(ses_endpoint.into()),
            from: DEFAULT_FROM.to_string(),
            reply_to: None,
            configuration_set: None,
            daily_cap_per_recipient: DEFAULT_DAILY_CAP,
            manage_url: DEFAULT_MANAGE_URL.to_string(),
        }
    }
}

/// One email to send: which one, to whom, with which facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Email {
    pub kind: EmailKind,
    pub to: String,
    pub vars: EmailVars,
}

/// A file sent with an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAttachment {
    pub file_name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        message_id: String,
    },
    /// The recipient already got the day's cap of emails; nothing was sent.
    Capped,
}

/// An SES call that failed. Its message says only the error code: SES messages can
/// quote the address, and callers log errors.
#[derive(Debug, thiserror::Error)]
#[error("SES SendEmail failed ({code})")]
pub struct SesError {
    /// SES's error code (`MessageRejected`, `TooManyRequestsException`, …) or the
    /// transport failure (`DispatchFailure`, `Timeout`, …).
    pub code: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Ses(#[from] SesError),
    #[error("mail quota: {0}")]
    Store(#[from] StoreError),
    #[error("email rendering failed: {0}")]
    Render(#[from] RenderError),
}

/// The address's identity in logs and keys (hex SHA-256 of the lowercased address).
pub fn recipient_hash(email: &str) -> String {
    crate::store::keys::mail_recipient_hash(email)
}

/// Sends billing email. Built once at init; cheap to clone.
#[derive(Debug, Clone)]
pub struct Mailer {
    client: aws_sdk_sesv2::Client,
    config: Arc<MailConfig>,
    store: Store,
}

impl Mailer {
    pub async fn connect(config: &MailConfig, store: Store) -> Self {
        Self { client: ses::client(config).await, config: Arc::new(config.clone()), store }
    }

    pub fn config(&self) -> &MailConfig {
        &self.config
    }

    /// The email as it would be sent (previews, dry runs). No I/O.
    pub fn render(&self, email: &Email) -> Result<RenderedEmail, RenderError> {
        render(email.kind, &email.vars, &self.config.manage_url)
    }

    /// Renders, claims one unit of the recipient's quota for `today` (a conditional
    /// counter in the table), then sends through SES v2 `SendEmail`.
    ///
    /// Rendering comes first so that an email that cannot be rendered uses no quota.
    /// `Capped`: the cap was reached, nothing was sent. If SES fails after the claim,
    /// the unit is given back (best effort) and the error returned.
    pub async fn send(&self, email: &Email, today: NaiveDate) -> Result<SendOutcome, MailError> {
        let kind = email.kind.as_str();
        let recipient = recipient_hash(&email.to);
        let rendered = self.render(email).inspect_err(|e| {
            tracing::error!(kind, recipient = %recipient, error = %e, "email not rendered");
        })?;
        self.deliver(kind, &email.to, &rendered, today, true).await
    }

    /// Sends an email rendered elsewhere. `capped`: under the per-recipient daily
    /// cap, as every partner email is. Staff notices (`staff`) are not capped: an
    /// approvals mailbox may rightly get dozens a day, and staff actions cause them.
    pub async fn deliver(
        &self,
        kind: &str,
        to: &str,
        rendered: &RenderedEmail,
        today: NaiveDate,
        capped: bool,
    ) -> Result<SendOutcome, MailError> {
        self.deliver_with(kind, to, rendered, &[], today, capped).await
    }

    /// `deliver` with files attached (a quote's PDF).
    pub async fn deliver_with(
        &self,
        kind: &str,
        to: &str,
        rendered: &RenderedEmail,
        attachments: &[MailAttachment],
        today: NaiveDate,
        capped: bool,
    ) -> Result<SendOutcome, MailError> {
        let recipient = recipient_hash(to);
        if capped && !self.store.claim_mail_quota(to, today, self.config.daily_cap_per_recipient).await? {
            tracing::warn!(kind, recipient = %recipient, cap = self.config.daily_cap_per_recipient, "daily email cap reached; not sent");
            return Ok(SendOutcome::Capped);
        }

        match ses::send(&self.client, &self.config, to, rendered, attachments).await {
            Ok(message_id) => {
                tracing::info!(kind, message_id = %message_id, recipient = %recipient, "email sent");
                Ok(SendOutcome::Sent { message_id })
            }
            Err(e) => {
                tracing::error!(kind, recipient = %recipient, code = %e.code, "email not sent");
                if capped {
                    if let Err(release) = self.store.release_mail_quota(to, today).await {
                        tracing::warn!(kind, recipient = %recipient, error = %release, "could not give the quota unit back");
                    }
                }
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_config_uses_the_defaults() {
        let config = MailConfig::local("http://127.0.0.1:8005");
        assert_eq!(config.ses_endpoint.as_deref(), Some("http://127.0.0.1:8005"));
        assert_eq!(config.from, "Tierdesk Billing <billing@tierdesk.local>");
        assert_eq!(config.daily_cap_per_recipient, 20);
        assert_eq!(config.manage_url, "http://127.0.0.1:3000/billing");
        assert!(config.reply_to.is_none() && config.configuration_set.is_none());
    }

    #[test]
    fn recipient_hash_ignores_case_and_surrounding_space() {
        let a = recipient_hash("Partner@Example.com");
        assert_eq!(a, recipient_hash(" partner@example.com "));
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, recipient_hash("other@example.com"));
    }

    #[test]
    fn ses_errors_show_only_the_code() {
        let e = MailError::from(SesError { code: "MessageRejected".into(), source: "rejected a@b.example".into() });
        assert_eq!(e.to_string(), "SES SendEmail failed (MessageRejected)");
    }
}
