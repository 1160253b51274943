//! A partner's campaign messages and marketing preferences (docs/campaigns.md):
//! the in-app messages campaigns left, newest first; marking one read; and
//! turning marketing email off or on. Each is naturally idempotent (a repeat
//! changes nothing more), so they need no `Idempotency-Key`.

use crate::Billing;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tierdesk::domain::validation::{parse, Fields};
use tierdesk::http::request::json_body;
use tierdesk::http::{json, PathParams};
use tierdesk::store::{CampaignStore, MarketingPreferences};
use tierdesk::ApiError;

pub(crate) async fn list(app: &Billing, partner_id: &str) -> Result<Response<Body>, ApiError> {
    let messages = app.store.messages(partner_id).await?;
    let unread = messages.iter().filter(|m| m.read_at.is_none()).count();
    json(StatusCode::OK, &json!({ "messages": messages, "unread": unread }))
}

pub(crate) async fn mark_read(
    app: &Billing,
    partner_id: &str,
    params: &PathParams,
) -> Result<Response<Body>, ApiError> {
    let id = params.get("messageId");
    let well_formed = id.len() == 24 && id.starts_with("msg_") && id[4..].bytes().all(|b| b.is_ascii_hexdigit());
    let at = tierdesk::clock::rfc3339(app.clock.now());
    if !well_formed || !app.store.mark_message_read(partner_id, id, &at).await? {
        return Err(ApiError::not_found("message"));
    }
    let messages = app.store.messages(partner_id).await?;
    let message = messages.into_iter().find(|m| m.message_id == id).ok_or_else(|| ApiError::not_found("message"))?;
    json(StatusCode::OK, &message)
}

pub(crate) async fn preferences(app: &Billing, partner_id: &str) -> Result<Response<Body>, ApiError> {
    json(StatusCode::OK, &app.store.marketing_preferences(partner_id).await?)
}

pub(crate) async fn set_preferences(
    app: &Billing,
    req: &Request,
    partner_id: &str,
) -> Result<Response<Body>, ApiError> {
    let body = json_body(req, app.config.max_body_bytes)?;
    let mut f = Fields::new(&body, &["marketingEmails"]);
    let marketing_emails = f.required("marketingEmails", parse::boolean);
    f.finish()?;
    let prefs = MarketingPreferences {
        marketing_emails: marketing_emails.unwrap_or(true),
        updated_at: Some(tierdesk::clock::rfc3339(app.clock.now())),
    };
    app.store.set_marketing_preferences(partner_id, &prefs).await?;
    json(StatusCode::OK, &prefs)
}
