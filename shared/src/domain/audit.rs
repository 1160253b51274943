//! An audit entry: who changed what, when, and the state before and after. Written
//! in the same transaction as the change it records.

use super::actor::Actor;
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

/// A record the audit trail follows: its partition (`AUDIT#{type}#{id}`) comes from
/// the record itself, so no call site can file it under the wrong entity.
pub trait Audited: Serialize {
    const ENTITY_TYPE: &'static str;
    fn entity_id(&self) -> &str;
}

impl AuditEntry {
    /// The entry for `action` taking the record from `before` (`None`: it is new) to
    /// `after`.
    pub fn change<T: Audited>(
        audit_id: String,
        action: &'static str,
        by: &Actor,
        before: Option<&T>,
        after: &T,
    ) -> Self {
        Self {
            audit_id,
            entity_type: T::ENTITY_TYPE,
            entity_id: after.entity_id().to_string(),
            action,
            actor: by.id.clone(),
            at: by.at.clone(),
            request_id: by.request_id.clone(),
            before: before.and_then(|b| serde_json::to_value(b).ok()),
            after: serde_json::to_value(after).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct Thing {
        id: String,
        size: u32,
    }

    impl Audited for Thing {
        const ENTITY_TYPE: &'static str = "thing";
        fn entity_id(&self) -> &str {
            &self.id
        }
    }

    #[test]
    fn a_change_is_filed_under_the_record_and_keeps_both_states() {
        let by = Actor { request_id: "req-1".into(), ..Actor::fixture("user-1", "2026-11-30T10:00:00.000Z") };
        let before = Thing { id: "t1".into(), size: 1 };
        let after = Thing { id: "t1".into(), size: 2 };
        let e = AuditEntry::change("a1".into(), "thing.grow", &by, Some(&before), &after);
        assert_eq!((e.entity_type, e.entity_id.as_str(), e.action), ("thing", "t1", "thing.grow"));
        assert_eq!((e.actor.as_str(), e.request_id.as_str()), ("user-1", "req-1"));
        assert_eq!((e.before, e.after), (Some(json!({"id": "t1", "size": 1})), Some(json!({"id": "t1", "size": 2}))));
        let created = AuditEntry::change::<Thing>("a2".into(), "thing.create", &by, None, &after);
        assert_eq!(created.before, None);
    }
}
