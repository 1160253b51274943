//! An audit entry: who changed what, when, and the state before and after. Written
//! in the same transaction as the change it records.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub audit_id: String,
    /// `tier`, `partner`, … (the `AUDIT#{type}#{id}` partition).
    pub entity_type: &'static str,
    pub entity_id: String,
    /// `tier.create`, `tier.update`, `tier.price_change`, `tier.archive`, …
    pub action: &'static str,
    pub actor: String,
    pub at: String,
    pub request_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}
