//! The approval workflow: the verbs, the status each leads to, the approval
//! policy, and how an edit or a step changes the record.

use super::*;
use crate::domain::actor::Actor;
use crate::domain::money::Percent;
use crate::domain::pricing::Discount;
use crate::domain::validation::ValidationError;
use serde_json::Value;

/// The workflow's verbs (the `POST …/{promotionId}/{action}` routes, plus the
/// cron's `complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Submit,
    Approve,
    Reject,
    Pause,
    Resume,
    Cancel,
    Complete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submitted",
            Self::Approve => "approved",
            Self::Reject => "rejected",
            Self::Pause => "paused",
            Self::Resume => "resumed",
            Self::Cancel => "cancelled",
            Self::Complete => "completed",
        }
    }
}

/// draft → pending_approval (or straight to active when the policy needs no
/// approval) → active ⇄ paused → completed | cancelled; a rejection sends it back
/// to draft for edits. Everything else is refused.
pub fn next_status(
    from: PromotionStatus,
    action: Action,
    requires_approval: bool,
) -> Result<PromotionStatus, PromotionError> {
    use Action as A;
    use PromotionStatus as S;
    let to = match (from, action) {
        (S::Draft, A::Submit) if requires_approval => S::PendingApproval,
        (S::Draft, A::Submit) => S::Active,
        (S::PendingApproval, A::Approve) => S::Active,
        (S::PendingApproval, A::Reject) => S::Draft,
        (S::Active, A::Pause) => S::Paused,
        (S::Paused, A::Resume) => S::Active,
        (S::Draft | S::PendingApproval | S::Active | S::Paused, A::Cancel) => S::Cancelled,
        (S::Active | S::Paused, A::Complete) => S::Completed,
        _ => return Err(PromotionError::IllegalTransition { from: from.as_str(), action: action.as_str() }),
    };
    Ok(to)
}

/// The approval policy (configurable, `PROMO_APPROVAL_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// A percentage above this needs approval (default 20%).
    pub max_percent_without_approval: Percent,
    /// A fixed amount above this many cents needs approval (default $500).
    pub max_fixed_cents_without_approval: i64,
    /// A trial longer than this many days needs approval (default 30).
    pub max_trial_days_without_approval: u32,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            max_percent_without_approval: Percent::from_basis_points(2_000).unwrap_or(Percent::ZERO),
            max_fixed_cents_without_approval: 50_000,
            max_trial_days_without_approval: 30,
        }
    }
}

impl ApprovalPolicy {
    pub fn requires_approval(&self, discount: DiscountSpec) -> bool {
        match discount {
            DiscountSpec::Percentage(p) => p > self.max_percent_without_approval,
            DiscountSpec::FixedAmount(c) => c > self.max_fixed_cents_without_approval,
            DiscountSpec::FreeTrial(d) | DiscountSpec::ExtendedTrial(d) => d > self.max_trial_days_without_approval,
        }
    }
}

impl Promotion {
    pub fn pricing_discount(&self) -> Discount {
        Discount { adjustment: self.discount.adjustment(), duration: self.applies_to.duration() }
    }

    /// The editable fields as a create body, to re-parse after a patch.
    fn as_new(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "description": self.description,
            "internalNotes": self.internal_notes,
            "discountType": match self.discount {
                DiscountSpec::Percentage(_) => "percentage",
                DiscountSpec::FixedAmount(_) => "fixed_amount",
                DiscountSpec::FreeTrial(_) => "free_trial",
                DiscountSpec::ExtendedTrial(_) => "extended_trial",
            },
            "discountValue": match self.discount {
                DiscountSpec::Percentage(p) => serde_json::to_value(p).unwrap_or(Value::Null),
                DiscountSpec::FixedAmount(c) => Value::from(c),
                DiscountSpec::FreeTrial(d) | DiscountSpec::ExtendedTrial(d) => Value::from(d),
            },
            "appliesTo": self.applies_to,
            "currency": self.currency,
            "targetTiers": self.target_tiers,
            "eligibilityRules": self.eligibility_rules,
            "maxRedemptions": self.max_redemptions,
            "redemptionsPerUser": self.redemptions_per_user,
            "minimumCommitmentMonths": self.minimum_commitment_months,
            "stackable": self.stackable,
            "startDate": self.start_date,
            "endDate": self.end_date,
            "autoExpire": self.auto_expire,
            "requiresCode": self.requires_code,
            "promotionCodes": self.promotion_codes,
        })
    }

    /// Applies a `PUT`: the whole record is re-parsed with the patch laid over it, so
    /// every cross-field rule holds afterwards.
    pub fn apply(&self, patch: &PromotionPatch, actor: &Actor) -> Result<Promotion, PromotionError> {
        if patch.version != self.version {
            return Err(PromotionError::VersionConflict { current: Some(self.version) });
        }
        let Some(changes) = patch.body.as_object() else {
            return Err(ValidationError::single("body", "must be a JSON object").into());
        };
        match self.status {
            PromotionStatus::Draft => {}
            s if s.is_live() => {
                if let Some(field) = changes.keys().find(|k| !LIVE_EDITABLE.contains(&k.as_str())) {
                    return Err(PromotionError::NotEditable { status: s.as_str(), field: field.clone() });
                }
            }
            s => {
                let field = changes.keys().next().cloned().unwrap_or_default();
                return Err(PromotionError::NotEditable { status: s.as_str(), field });
            }
        }
        let mut merged = self.as_new();
        if let (Some(target), Some(changes)) = (merged.as_object_mut(), patch.body.as_object()) {
            for (k, v) in changes {
                target.insert(k.clone(), v.clone());
            }
            // Absent optional values must be absent, not null-as-invalid.
            target.retain(|_, v| !v.is_null());
        }
        let new = NewPromotion::parse(&merged)?;
        if self.status.is_live() {
            if new.end_date < actor.today {
                return Err(ValidationError::single("endDate", "must not be in the past").into());
            }
            if new.max_redemptions.is_some_and(|m| m < self.redemption_count) {
                return Err(ValidationError::single(
                    "maxRedemptions",
                    format!("must not be below the {} redemptions already made", self.redemption_count),
                )
                .into());
            }
        }
        let mut after = self.clone();
        let terms_before = self.terms();
        after.name = new.name;
        after.description = new.description;
        after.internal_notes = new.internal_notes;
        after.discount = new.discount;
        after.applies_to = new.applies_to;
        after.currency = new.currency;
        after.target_tiers = new.target_tiers;
        after.eligibility_rules = new.eligibility_rules;
        after.max_redemptions = new.max_redemptions;
        after.redemptions_per_user = new.redemptions_per_user;
        after.minimum_commitment_months = new.minimum_commitment_months;
        after.stackable = new.stackable;
        after.start_date = new.start_date;
        after.end_date = new.end_date;
        after.auto_expire = new.auto_expire;
        after.requires_code = new.requires_code;
        if after.terms() != terms_before {
            after.terms_version += 1;
        }
        after.touch(actor);
        Ok(after)
    }

    /// What a redemption prices and checks besides the live fields (status, dates,
    /// cap), which the redemption transaction reads from the item itself.
    fn terms(&self) -> Value {
        let mut v = self.as_new();
        if let Some(o) = v.as_object_mut() {
            for live in ["name", "description", "internalNotes", "endDate", "maxRedemptions", "autoExpire"] {
                o.remove(live);
            }
        }
        v
    }

    fn touch(&mut self, actor: &Actor) {
        self.updated_at = actor.at.clone();
        self.updated_by = actor.id.clone();
        self.version += 1;
    }

    /// Moves through the workflow. `Approve` needs someone other than the creator.
    pub fn transition(
        &self,
        action: Action,
        actor: &Actor,
        policy: &ApprovalPolicy,
        reason: Option<String>,
    ) -> Result<Promotion, PromotionError> {
        let requires_approval = policy.requires_approval(self.discount);
        let to = next_status(self.status, action, requires_approval)?;
        if to == PromotionStatus::Active && self.end_date < actor.today {
            return Err(PromotionError::Ended);
        }
        let mut after = self.clone();
        match action {
            Action::Submit => {
                if self.requires_code && self.promotion_codes.is_empty() {
                    return Err(PromotionError::CodesRequired);
                }
                after.requires_approval = requires_approval;
                after.submitted_by = Some(actor.id.clone());
                after.rejected_by = None;
                after.rejection_reason = None;
                if !requires_approval {
                    after.approved_by = None;
                    after.approved_at = Some(actor.at.clone());
                }
            }
            Action::Approve => {
                if actor.id == self.created_by {
                    return Err(PromotionError::SelfApproval);
                }
                after.approved_by = Some(actor.id.clone());
                after.approved_at = Some(actor.at.clone());
            }
            Action::Reject => {
                after.rejected_by = Some(actor.id.clone());
                after.rejection_reason = reason;
            }
            Action::Cancel => after.cancellation_reason = reason,
            _ => {}
        }
        after.status = to;
        after.active = to == PromotionStatus::Active;
        after.touch(actor);
        Ok(after)
    }

    /// Fills in the rates the counters imply (they are not stored: they would go
    /// stale with every validation).
    pub fn with_performance(mut self, validations: u64) -> Self {
        self.validation_count = validations.max(self.redemption_count);
        self.conversion_rate = if self.validation_count == 0 {
            0.0
        } else {
            let rate = self.redemption_count as f64 / self.validation_count as f64;
            (rate * 10_000.0).round() / 10_000.0
        };
        self.average_deal_size = if self.redemption_count == 0 {
            0
        } else {
            let n = i128::from(self.redemption_count);
            ((i128::from(self.total_revenue) * 2 + n) / (2 * n)) as i64
        };
        self.active = self.status == PromotionStatus::Active;
        self
    }

    /// The record without the creator's address, which only the notices use:
    /// what answers, audit entries and code copies hold.
    pub fn without_private(mut self) -> Self {
        self.created_by_email = None;
        self
    }

    /// What a client sees in validate answers: no tracking, no internal notes.
    pub fn summary(&self) -> PromotionSummary {
        PromotionSummary {
            promotion_id: self.promotion_id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            discount: self.discount,
            applies_to: self.applies_to,
            stackable: self.stackable,
            end_date: self.end_date,
        }
    }
}
