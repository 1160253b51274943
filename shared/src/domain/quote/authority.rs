//! Discount authority by role and the price list of customizations.

use crate::domain::money::{BillingPeriod, Percent};
use crate::domain::permissions::Role;
use serde_json::Value;
use std::collections::BTreeMap;

/// Per-role discount caps (`QUOTE_DISCOUNT_AUTHORITY`). `None`: no cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountAuthority {
    caps: BTreeMap<Role, Option<Percent>>,
}

impl Default for DiscountAuthority {
    /// A rep up to 15% in total, a manager up to 30%, an admin without limit.
    fn default() -> Self {
        let pct = |bp| Percent::from_basis_points(bp);
        Self {
            caps: BTreeMap::from([(Role::SalesRep, pct(1_500)), (Role::SalesManager, pct(3_000)), (Role::Admin, None)]),
        }
    }
}

impl DiscountAuthority {
    /// `sales_rep:15,sales_manager:30,admin:none`; roles not named keep their default.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (role, cap) = part.split_once(':').ok_or_else(|| format!("`{part}` is not role:percent"))?;
            let role = Role::parse(role.trim())
                .filter(|r| *r != Role::Partner)
                .ok_or_else(|| format!("`{}` is not a staff role (sales_rep, sales_manager, admin)", role.trim()))?;
            let cap = match cap.trim() {
                "none" | "unlimited" => None,
                n => {
                    let value: Value = n.parse().map_err(|_| format!("`{n}` is not a percent"))?;
                    Some(Percent::parse(&value).map_err(|e| format!("`{n}` {e}"))?)
                }
            };
            out.caps.insert(role, cap);
        }
        Ok(out)
    }

    /// The most a caller with `roles` may discount without approval: the widest of
    /// their roles' caps (`None`: unlimited). A caller with no staff role gets 0%.
    pub fn cap_for(&self, roles: &[Role]) -> Option<Percent> {
        let mut best = Some(Percent::ZERO);
        for role in roles {
            match self.caps.get(role) {
                Some(None) => return None,
                Some(Some(cap)) if best.is_some_and(|b| *cap > b) => best = Some(*cap),
                _ => {}
            }
        }
        best
    }
}

/// True when `discount` of `subtotal` is more than `cap` (exact, no rounding).
pub fn exceeds(cap: Option<Percent>, discount: i64, subtotal: i64) -> bool {
    match cap {
        None => false,
        Some(_) if subtotal <= 0 => false,
        Some(cap) => i128::from(discount) * 10_000 > i128::from(cap.basis_points()) * i128::from(subtotal),
    }
}

/// Cents per unit per month of the add-ons (`QUOTE_LISTING_UNIT_CENTS`,
/// `QUOTE_IMAGE_UNIT_CENTS`). Server-owned: a rep cannot lower a unit price to
/// slip a discount past the approval rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceList {
    pub listing_monthly: i64,
    pub image_monthly: i64,
}

impl Default for PriceList {
    fn default() -> Self {
        Self { listing_monthly: 1_000, image_monthly: 200 }
    }
}

impl PriceList {
    pub(super) fn per_period(monthly: i64, period: BillingPeriod) -> i64 {
        match period {
            BillingPeriod::Monthly => monthly,
            BillingPeriod::Yearly => monthly * 12,
        }
    }
}
