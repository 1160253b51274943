//! Every key format of the single table, with the access pattern each serves.
//! Nothing outside this module builds a `PK`, `SK` or `GSIn*` string.
//!
//! Ids placed in keys are slugs or ULIDs (validated at the edge), so they never
//! contain the `#` separator.

pub const META: &str = "META";

/// Index names as declared in `template.yaml`.
pub const GSI1: &str = "GSI1";

// ---- Tier -------------------------------------------------------------------
// TIER#{id} / META                      get one tier (GetItem), batch for compare
// GSI1 TIERS / {segment}#{level}#{sort}#{id}
//                                       list the catalog ordered by segment, tier
//                                       level, sort order; begins_with(segment#)
//                                       lists one segment
// TIER#{id} / PRICE#{v:06}              price history; quotes and grandfathered
//                                       partners read the version they signed at

pub const TIER_CATALOG_PARTITION: &str = "TIERS";

pub fn tier_pk(tier_id: &str) -> String {
    format!("TIER#{tier_id}")
}

/// Zero-padded so that text order is numeric order.
pub fn tier_catalog_sk(segment: &str, tier_level: u32, sort_order: u32, tier_id: &str) -> String {
    format!("{segment}#{tier_level:03}#{sort_order:06}#{tier_id}")
}

pub fn tier_segment_prefix(segment: &str) -> String {
    format!("{segment}#")
}

pub fn tier_price_sk(price_version: u32) -> String {
    format!("PRICE#{price_version:06}")
}

// ---- Tier statistics ----------------------------------------------------------
// STATS#{tier} / CURRENT                 live member count and MRR of a tier, changed
//                                        in the same transaction as every partner
//                                        transition; archiving a tier is conditional
//                                        on its memberCount being 0 here, which makes
//                                        "no partners on it" a strongly consistent fact

pub fn tier_stats_pk(tier_id: &str) -> String {
    format!("STATS#{tier_id}")
}

pub const STATS_CURRENT: &str = "CURRENT";

// ---- Audit --------------------------------------------------------------------
// AUDIT#{type}#{id} / {ts}#{auditId}     an entity's change history, oldest first
// GSI1 AUDITLOG#{yyyy-mm-dd} / {ts}#{auditId}   everything changed on a day
// GSI2 ACTOR#{actor} / {ts}#{auditId}           everything one person changed

pub fn audit_pk(entity_type: &str, entity_id: &str) -> String {
    format!("AUDIT#{entity_type}#{entity_id}")
}

pub fn audit_sk(at: &str, audit_id: &str) -> String {
    format!("{at}#{audit_id}")
}

pub fn audit_day_pk(at: &str) -> String {
    format!("AUDITLOG#{}", at.get(..10).unwrap_or(at))
}

pub fn audit_actor_pk(actor: &str) -> String {
    format!("ACTOR#{actor}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_sort_keys_order_numerically() {
        let a = tier_catalog_sk("standard", 2, 5, "b");
        let b = tier_catalog_sk("standard", 10, 0, "a");
        assert!(a < b);
        assert_eq!(tier_price_sk(3), "PRICE#000003");
        assert_eq!(audit_day_pk("2026-11-21T10:00:00.000Z"), "AUDITLOG#2026-11-21");
    }
}
