//! Who acts, when, and in which request: the one "who and when" every change
//! records (`createdBy`/`updatedAt`, audit entries, approvals). It comes from the
//! verified identity, the injected clock and the request context at the edge
//! (`http::Ctx::actor`), or from `Actor::system` for the cron and webhooks; it is
//! server-owned and never read from a body.

use super::permissions::{Grants, Permission, Role};
use crate::clock::rfc3339;
use chrono::{DateTime, NaiveDate, Utc};

#[derive(Debug, Clone)]
pub struct Actor {
    /// The token's `sub`, or `system:<component>`: the id written to records.
    pub id: String,
    /// Where notices about the actor's own work go; never logged.
    pub email: Option<String>,
    pub roles: Vec<Role>,
    /// The table `roles` are judged by (the function's configuration).
    pub grants: Grants,
    /// RFC 3339 UTC, as records store it.
    pub at: String,
    /// The UTC date of `at`: validity windows and daily caps.
    pub today: NaiveDate,
    /// The request (or run) this change belongs to, for the audit trail.
    pub request_id: String,
}

impl Actor {
    /// A component acting by itself (the daily cron, a webhook, a backfill) at
    /// `now`: no roles, no email.
    pub fn system(id: impl Into<String>, now: DateTime<Utc>, request_id: impl Into<String>) -> Self {
        Self::from_parts(id, rfc3339(now), now.date_naive(), request_id)
    }

    /// An actor without roles from the "who and when" another record already
    /// holds (a transition's context).
    pub fn from_parts(
        id: impl Into<String>,
        at: impl Into<String>,
        today: NaiveDate,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            email: None,
            roles: Vec::new(),
            grants: Grants::SEED_000,
            at: at.into(),
            today,
            request_id: request_id.into(),
        }
    }

    /// A test's actor at an RFC 3339 instant, kept verbatim.
    #[cfg(test)]
    pub(crate) fn fixture(id: &str, at: &str) -> Self {
        let now = DateTime::parse_from_rfc3339(at).map(|t| t.with_timezone(&Utc)).unwrap_or_default();
        Self::from_parts(id, at, now.date_naive(), "test")
    }

    /// Whether one of the actor's roles grants `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.roles.iter().any(|r| self.grants.allows(*r, permission))
    }
}
