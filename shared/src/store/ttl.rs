//! When items the table keeps only for a while may be deleted (DynamoDB's `ttl`
//! attribute, epoch seconds). Every item with a `ttl` is also treated as absent
//! by its reader once the time has passed, since DynamoDB deletes late.

use chrono::{Days, NaiveDate, NaiveTime};

/// How long a notice marker outlives its term's end date: long enough that no
/// window (reminders look ahead, expiry looks back) can still reach it.
pub(crate) const MARKER_RETENTION_DAYS: u64 = 400;
/// How long a quota item outlives its day.
pub(crate) const QUOTA_RETENTION_DAYS: u64 = 3;
/// How long an idempotency record answers repeats of its key.
pub(crate) const IDEMPOTENCY_RECORD_SECS: i64 = 86_400;

/// Midnight UTC `days` after `day`, in epoch seconds (`day` itself if that
/// overflows the calendar).
pub(crate) fn days_after(day: NaiveDate, days: u64) -> i64 {
    day.checked_add_days(Days::new(days)).unwrap_or(day).and_time(NaiveTime::MIN).and_utc().timestamp()
}
