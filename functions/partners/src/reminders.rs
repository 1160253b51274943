//! "Send reminder" from the subscription dashboard (seed 003 §2.3): the renewal
//! notice the daily cron would send, now, through the cron's own marker
//! (`PARTNER#{id}` / `REMINDER#{endDate}#{kind}`, docs/cron.md "Markers"). The
//! marker is claimed first (conditional: no marker, a claim whose lease ran out, or
//! a notice `sent` on an earlier day; and the partner still on that active term),
//! then the email goes out, then the marker becomes `sent` with `sentBy`. The cron,
//! finding it `sent`, sends no second one that day; two staff clicks, or a click and
//! the cron, send one.

use super::Partners;
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use tierdesk::clock::rfc3339;
use tierdesk::domain::partner::Partner;
use tierdesk::domain::renewal::{manual_reminder, NoReminder, NoticeDetails, NoticeKind, Recipient, ReminderError};
use tierdesk::domain::subscription::Catalog;
use tierdesk::domain::tier::Tier;
use tierdesk::mail::{MailError, SendOutcome};
use tierdesk::store::{Claim, Item, MarkerClaim, ReminderStore, TransactWriteItem};
use tierdesk::ApiError;

/// How long a claim is honoured before the cron may take it over (its own lease).
const LEASE_SECS: i64 = 900;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Sent {
    pub partner_id: String,
    /// The template sent: `renewal_reminder_30` or `renewal_urgent_7`.
    pub kind: NoticeKind,
    pub days_left: i64,
    pub end_date: NaiveDate,
    pub sent_at: String,
    pub sent_by: String,
}

/// What stopped a reminder: the domain's reason, or (bulk jobs) one of the `extra`
/// items of the claim's transaction failing its condition (with its old image).
pub(crate) enum NotSent {
    Refused(ReminderError),
    Extra(Option<Item>),
    Failed(ApiError),
}

impl From<NotSent> for ApiError {
    fn from(e: NotSent) -> Self {
        match e {
            NotSent::Refused(r) => r.into(),
            NotSent::Failed(e) => e,
            NotSent::Extra(_) => ApiError::new(http::StatusCode::CONFLICT, "conflict", "already done"),
        }
    }
}

/// Sends `partner` the reminder due now. `owner` names the claim (a request or a
/// job); `extra` conditional items join the claim's transaction.
pub(crate) async fn send_now(
    app: &Partners,
    partner: &Partner,
    catalog: &[Tier],
    owner: &str,
    sent_by: &str,
    extra: Vec<TransactWriteItem>,
) -> Result<Sent, NotSent> {
    let today = app.today();
    let tier = Catalog::new(catalog).any(&partner.engagement_tier);
    let (kind, days_left) = manual_reminder(partner, tier, today, &app.reminders)
        .map_err(|r| NotSent::Refused(ReminderError::NotRemindable(r)))?;
    let details =
        NoticeDetails::of(partner, tier).ok_or(NotSent::Refused(ReminderError::NotRemindable(NoReminder::NoTerm)))?;
    let mailer = app.mailer.as_ref().ok_or_else(|| {
        NotSent::Failed(ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "mail_unavailable",
            "mail is not configured",
        ))
    })?;
    let now_instant = app.clock.now();
    let now = rfc3339(now_instant);
    let lease_until = rfc3339(now_instant + Duration::seconds(LEASE_SECS));
    let day_start = format!("{}T00:00:00.000Z", today.format("%Y-%m-%d"));
    let claim = MarkerClaim {
        partner_id: &partner.partner_id,
        end_date: details.end_date,
        kind,
        owner,
        run_date: today,
        now: &now,
        lease_until: &lease_until,
        details: None,
        require_active_term: true,
    };
    match app.store.claim_manual_reminder(&claim, &day_start, extra).await {
        Err(e) => return Err(NotSent::Failed(e.into())),
        Ok(Err((_, old))) => return Err(NotSent::Extra(old)),
        Ok(Ok(Claim::Claimed)) => {}
        Ok(Ok(Claim::AlreadySent)) => return Err(NotSent::Refused(ReminderError::AlreadySentToday)),
        Ok(Ok(Claim::HeldByAnotherRun)) => return Err(NotSent::Refused(ReminderError::InProgress)),
        Ok(Ok(Claim::PartnerChanged)) => return Err(NotSent::Refused(ReminderError::PartnerChanged)),
    }
    let email = tierdesk::mail::renewal::notice_email(kind, &details, &Recipient::of(partner), Some(days_left));
    let release = || app.store.release_marker(&partner.partner_id, details.end_date, kind, owner);
    match mailer.send(&email, today).await {
        Ok(SendOutcome::Sent { message_id }) => {
            let sent_at = rfc3339(app.clock.now());
            let marked = app
                .store
                .mark_manual_sent(&partner.partner_id, details.end_date, kind, owner, &sent_at, &message_id, sent_by)
                .await;
            if !matches!(marked, Ok(true)) {
                // The email went out; only the record is missing (the claim's lease ends).
                tracing::error!(partner = partner.partner_id, kind = kind.as_str(), "reminder sent but not marked");
            }
            Ok(Sent {
                partner_id: partner.partner_id.clone(),
                kind,
                days_left,
                end_date: details.end_date,
                sent_at,
                sent_by: sent_by.to_string(),
            })
        }
        Ok(SendOutcome::Capped) => {
            let _ = release().await;
            Err(NotSent::Refused(ReminderError::Capped))
        }
        Err(e) => {
            let _ = release().await;
            let reason = match e {
                MailError::Render(_) => "not rendered".to_string(),
                _ => "provider error".to_string(),
            };
            tracing::error!(partner = partner.partner_id, kind = kind.as_str(), reason, "reminder not sent");
            Err(NotSent::Refused(ReminderError::Mail(reason)))
        }
    }
}
