//! Bulk actions on a filtered subscriptions view (seed 003 §2.3 "Bulk renewal
//! actions"), run as a job: the job record with its progress, each partner's
//! outcome, and which partners an action applies to. Pure; the store keeps the
//! records, the partners function runs the chunks.

use super::partner::{DashboardTab, Partner, SubscriptionStatus};
use super::subscription::is_paid;
use super::tier::Tier;
use super::validation::{parse, Fields, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Partners one chunk works on (one page of the view): bounded so a request stays
/// far inside the function's timeout whatever the view holds.
pub const CHUNK: u32 = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    /// The renewal reminder the cron would send, now (the dashboard's "Send Reminder").
    SendReminders,
    /// A new term on the same tier for partners that renew by hand (auto-renewal off,
    /// not billed by Stripe), as the dashboard's "Renew".
    Renew,
}

impl JobAction {
    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }
}

/// The dashboard view a job runs over (`GET /api/admin/subscriptions`' `view`,
/// without `history`, whose rows are events, not partners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobView {
    Active,
    Expiring,
    Expired,
    Cancelled,
}

impl JobView {
    pub fn tab(self) -> DashboardTab {
        match self {
            Self::Active | Self::Expiring => DashboardTab::Active,
            Self::Expired => DashboardTab::Expired,
            Self::Cancelled => DashboardTab::Cancelled,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Completed,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Partners of the view looked at.
    pub processed: u64,
    /// Reminders sent, or terms renewed.
    pub succeeded: u64,
    /// Partners the action does not apply to (with the reasons on their items).
    pub skipped: u64,
    /// The action failed (the mail provider refused, the partner kept changing).
    pub failed: u64,
}

impl Counts {
    pub fn add(&mut self, outcome: Outcome) {
        self.processed += 1;
        match outcome {
            Outcome::Succeeded => self.succeeded += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    pub fn plus(self, other: Counts) -> Counts {
        Counts {
            processed: self.processed + other.processed,
            succeeded: self.succeeded + other.succeeded,
            skipped: self.skipped + other.skipped,
            failed: self.failed + other.failed,
        }
    }
}

/// `JOB#{jobId}` / `META`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub job_id: String,
    pub action: JobAction,
    pub view: JobView,
    pub tier: Option<String>,
    pub status: JobStatus,
    pub counts: Counts,
    /// The view's cursor where the next chunk starts (`None` before the first chunk
    /// and after the last).
    pub cursor: Option<String>,
    /// Chunks done; the next chunk is `chunks + 1`.
    pub chunks: u32,
    /// The day the job was created (its "today": the expiring window, reminders).
    pub created_on: chrono::NaiveDate,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    pub version: u64,
}

/// What happened to one partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Skipped,
    Failed,
}

/// `JOB#{jobId}` / `ITEM#{partnerId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobItem {
    pub job_id: String,
    pub partner_id: String,
    pub outcome: Outcome,
    /// Why it was skipped or failed (a code).
    pub reason: Option<String>,
    /// The chunk that wrote it: a rerun of the same chunk (after a crash) counts it,
    /// a partner met again in a later chunk (its index entry moved) does not.
    pub chunk: u32,
    pub at: String,
}

/// `POST /api/admin/subscriptions/jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    pub action: JobAction,
    pub view: JobView,
    pub tier: Option<String>,
}

impl JobRequest {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["action", "view", "tier"]);
        let action = f.required("action", |v| match v.as_str() {
            Some("send_reminders") => Ok(JobAction::SendReminders),
            Some("renew") => Ok(JobAction::Renew),
            Some("export") => {
                Err("export is GET /api/admin/subscriptions?format=csv (paged by cursor, nothing to run)".into())
            }
            _ => Err("must be send_reminders or renew".to_string()),
        });
        let view = f.optional("view", |v| match v.as_str() {
            Some("active") => Ok(JobView::Active),
            Some("expiring") => Ok(JobView::Expiring),
            Some("expired") => Ok(JobView::Expired),
            Some("cancelled") => Ok(JobView::Cancelled),
            _ => Err("must be one of active, expiring, expired, cancelled".to_string()),
        });
        let tier = f.optional("tier", parse::slug);
        f.finish()?;
        let action = action.ok_or_else(|| ValidationError::single("action", "is required"))?;
        Ok(Self { action, view: view.unwrap_or(JobView::Expiring), tier })
    }
}

/// Whether the dashboard's "Renew" applies: an active term on a paid tier that
/// renews by hand (auto-renewal off) and is not billed by Stripe (Stripe renews its
/// own subscriptions). `Err`: the reason code.
pub fn renewable(partner: &Partner, tier: Option<&Tier>) -> Result<(), &'static str> {
    if !tier.is_some_and(is_paid) {
        return Err("not_paid");
    }
    if partner.subscription_status != SubscriptionStatus::Active {
        return Err("not_active");
    }
    if partner.subscription_end_date.is_none() {
        return Err("no_term");
    }
    if partner.auto_renewal {
        return Err("auto_renewal");
    }
    if partner.stripe_subscription_id.is_some() {
        return Err("billed_by_stripe");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_name_an_action_and_a_view() {
        let r = JobRequest::parse(&json!({"action": "renew", "view": "active", "tier": "gold"})).unwrap();
        assert_eq!((r.action, r.view, r.tier.as_deref()), (JobAction::Renew, JobView::Active, Some("gold")));
        let r = JobRequest::parse(&json!({"action": "send_reminders"})).unwrap();
        assert_eq!(r.view, JobView::Expiring);
        for (bad, field) in [
            (json!({}), "action"),
            (json!({"action": "delete_all"}), "action"),
            (json!({"action": "export"}), "action"),
            (json!({"action": "renew", "view": "history"}), "view"),
            (json!({"action": "renew", "tier": "a#b"}), "tier"),
            (json!({"action": "renew", "limit": 5}), "limit"),
        ] {
            let e = JobRequest::parse(&bad).unwrap_err();
            assert!(e.fields.contains_key(field), "{bad}: {e:?}");
        }
    }

    #[test]
    fn counts_add_up_by_outcome() {
        let mut c = Counts::default();
        for o in [Outcome::Succeeded, Outcome::Skipped, Outcome::Succeeded, Outcome::Failed] {
            c.add(o);
        }
        assert_eq!(c, Counts { processed: 4, succeeded: 2, skipped: 1, failed: 1 });
        assert_eq!(c.plus(c).processed, 8);
    }
}
