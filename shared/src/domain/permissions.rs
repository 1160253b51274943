//! Roles and permissions from seed 000 "Permission Updates".
//!
//! The seed gives `tier_management` to both sales reps and managers but its Phase 1
//! tests say reps *view* and managers *modify*; that split is `TierView` /
//! `TierManage` here.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SalesRep,
    SalesManager,
    Admin,
    Partner,
    /// A product backend reporting its partners' usage (`cognito:groups`
    /// `service`, a machine client of its own); it names the partner it reports for.
    Service,
}

impl Role {
    pub const ALL: [Self; 5] = [Self::SalesRep, Self::SalesManager, Self::Admin, Self::Partner, Self::Service];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sales_rep" => Some(Self::SalesRep),
            "sales_manager" => Some(Self::SalesManager),
            "admin" => Some(Self::Admin),
            "partner" => Some(Self::Partner),
            "service" => Some(Self::Service),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    /// Seed 000's assignment; what [`Grants::SEED_000`] holds.
    pub const fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Self::Admin => true,
            // Usage is the partner's and its product's business; among staff only
            // admins read it (and report it, as they may do everything).
            Self::SalesManager => !matches!(permission, SystemConfig | UsageReporting | UsageView),
            Self::SalesRep => {
                matches!(permission, TierView | TierAnalytics | QuoteGeneration | ViewCustomerInfo | ViewLeads)
            }
            // Partners act only on their own records, checked by ownership, not by permission.
            Self::Partner => false,
            Self::Service => matches!(permission, UsageReporting | UsageView),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Permission {
    /// `tier_management` as a sales rep has it: read the catalog.
    TierView,
    /// `tier_management` at manager level: edit tiers and features.
    TierManage,
    PricingManagement,
    PromotionManagement,
    QuoteGeneration,
    ExperimentManagement,
    TierAnalytics,
    ViewCustomerInfo,
    ViewLeads,
    ApproveCustomPricing,
    ViewRevenueMetrics,
    SystemConfig,
    /// Report a partner's usage (`POST /api/usage/track` naming the partner).
    UsageReporting,
    /// Read any partner's usage, limits and features.
    UsageView,
}

impl Permission {
    pub const ALL: [Self; 14] = {
        use Permission::*;
        [
            TierView,
            TierManage,
            PricingManagement,
            PromotionManagement,
            QuoteGeneration,
            ExperimentManagement,
            TierAnalytics,
            ViewCustomerInfo,
            ViewLeads,
            ApproveCustomPricing,
            ViewRevenueMetrics,
            SystemConfig,
            UsageReporting,
            UsageView,
        ]
    };

    fn bit(self) -> u16 {
        1 << self as u8
    }

    pub fn as_str(self) -> &'static str {
        use Permission::*;
        match self {
            TierView | TierManage => "tier_management",
            PricingManagement => "pricing_management",
            PromotionManagement => "promotion_management",
            QuoteGeneration => "quote_generation",
            ExperimentManagement => "experiment_management",
            TierAnalytics => "tier_analytics",
            ViewCustomerInfo => "view_customer_info",
            ViewLeads => "view_leads",
            ApproveCustomPricing => "approve_custom_pricing",
            ViewRevenueMetrics => "view_revenue_metrics",
            SystemConfig => "system_config",
            UsageReporting => "usage_reporting",
            UsageView => "usage_view",
        }
    }
}

/// The role → permission table requests are judged by. Every deployed function
/// uses [`Grants::SEED_000`] (`Config` sets it and nothing reads it from the
/// environment or a request); tests build other tables to tell apart checks that
/// seed 000 happens to grant together (tier management without pricing management).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grants([u16; Role::ALL.len()]);

impl Grants {
    pub const SEED_000: Self = {
        let mut table = [0u16; Role::ALL.len()];
        let mut r = 0;
        while r < Role::ALL.len() {
            let mut p = 0;
            while p < Permission::ALL.len() {
                if Role::ALL[r].grants(Permission::ALL[p]) {
                    table[Role::ALL[r] as usize] |= 1 << Permission::ALL[p] as u8;
                }
                p += 1;
            }
            r += 1;
        }
        Self(table)
    };

    pub fn allows(&self, role: Role, permission: Permission) -> bool {
        self.0[role as usize] & permission.bit() != 0
    }

    /// The same table with `permission` taken from `role`.
    pub fn without(mut self, role: Role, permission: Permission) -> Self {
        self.0[role as usize] &= !permission.bit();
        self
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Permission::*;
    use super::*;

    #[test]
    fn seed_000_team_assignment() {
        for p in [TierView, TierAnalytics, QuoteGeneration, ViewCustomerInfo, ViewLeads] {
            assert!(Role::SalesRep.grants(p), "{p:?}");
            assert!(Role::SalesManager.grants(p), "{p:?}");
        }
        for p in [
            TierManage,
            PricingManagement,
            PromotionManagement,
            ExperimentManagement,
            ApproveCustomPricing,
            ViewRevenueMetrics,
        ] {
            assert!(!Role::SalesRep.grants(p), "{p:?}");
            assert!(Role::SalesManager.grants(p), "{p:?}");
        }
        assert!(!Role::SalesManager.grants(SystemConfig));
        assert!(Role::Admin.grants(SystemConfig));
        assert!(!Role::Partner.grants(TierView));
    }

    #[test]
    fn the_seed_table_is_the_seed_assignment_and_without_takes_one_grant() {
        let mut pairs = 0;
        for role in Role::ALL {
            for p in Permission::ALL {
                assert_eq!(Grants::SEED_000.allows(role, p), role.grants(p), "{role:?} {p:?}");
                pairs += 1;
            }
        }
        assert_eq!(pairs, 5 * 14);
        let narrowed = Grants::SEED_000.without(Role::SalesManager, PricingManagement);
        assert!(!narrowed.allows(Role::SalesManager, PricingManagement));
        assert!(narrowed.allows(Role::SalesManager, TierManage));
        assert!(narrowed.allows(Role::Admin, PricingManagement));
        assert_ne!(narrowed, Grants::SEED_000);
    }

    #[test]
    fn usage_is_for_admins_and_product_backends() {
        for p in [UsageReporting, UsageView] {
            assert!(Role::Service.grants(p));
            assert!(Role::Admin.grants(p));
            assert!(!Role::SalesManager.grants(p));
            assert!(!Role::SalesRep.grants(p));
            assert!(!Role::Partner.grants(p));
        }
        assert!(!Role::Service.grants(TierView));
        assert_eq!(Role::parse("service"), Some(Role::Service));
    }
}
