//! The renewal notices as emails: one place builds them, so the daily cron and a
//! staff member's "send reminder now" send the same template.

use super::{Email, EmailKind, EmailVars};
use crate::domain::renewal::{NoticeDetails, NoticeKind, Recipient};

/// The email of a notice about the term `d` to `to`; `days_left` for the reminders.
pub fn notice_email(kind: NoticeKind, d: &NoticeDetails, to: &Recipient, days_left: Option<i64>) -> Email {
    let email_kind = match kind {
        NoticeKind::RenewalReminder30 => EmailKind::RenewalReminder30,
        NoticeKind::RenewalUrgent7 => EmailKind::RenewalUrgent7,
        NoticeKind::SubscriptionExpired => EmailKind::SubscriptionExpired,
    };
    let vars = EmailVars {
        company_name: to.company_name.clone(),
        tier_name: d.tier_name.clone(),
        previous_tier_name: (kind == NoticeKind::SubscriptionExpired).then(|| d.tier_name.clone()),
        amount: Some(d.price_per_period),
        currency: d.currency.clone(),
        billing_period: d.billing_period,
        start_date: d.start_date,
        end_date: Some(d.end_date),
        days_left,
        locale: to.locale,
        ..EmailVars::default()
    };
    Email { kind: email_kind, to: to.primary_email.clone(), vars }
}
