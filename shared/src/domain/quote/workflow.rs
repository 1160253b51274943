//! The lifecycle: ids and numbers, creation, edits, approval, sending,
//! acceptance, rejection, expiry.

use super::*;
use crate::domain::actor::Actor;
use crate::domain::permissions::Permission;
use crate::domain::tier::Tier;
use crate::domain::validation::ValidationError;
use chrono::NaiveDate;

/// The identifiers a new quote gets from the server.
pub struct QuoteIds {
    pub quote_id: String,
    pub quote_number: String,
}

/// `Q-YYYY-NNN`: the year's running number, at least three digits.
pub fn quote_number(year: i32, n: u64) -> String {
    format!("Q-{year}-{n:03}")
}

pub fn new_quote_id(ulid: &str) -> String {
    format!("quo_{}", ulid.to_ascii_lowercase())
}

pub fn is_quote_id(s: &str) -> bool {
    s.strip_prefix("quo_")
        .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

impl NewQuote {
    /// The quote as created: `pending_approval` when the discount is above the
    /// caller's cap, `draft` otherwise.
    pub fn into_quote(
        self,
        ids: QuoteIds,
        tier: &Tier,
        actor: &Actor,
        authority: &DiscountAuthority,
        list: PriceList,
    ) -> Result<Quote, QuoteError> {
        quotable(tier)?;
        let valid_until = self.terms.valid_until.unwrap_or(actor.today + chrono::Days::new(DEFAULT_VALIDITY_DAYS));
        check_valid_until(valid_until, actor.today)?;
        let sales_rep = match self.sales_rep {
            Some(rep) if rep != actor.id && !actor.can(Permission::ApproveCustomPricing) => {
                return Err(ValidationError::single(
                    "salesRep",
                    "only a sales manager may write a quote for another rep",
                )
                .into())
            }
            Some(rep) => rep,
            None => actor.id.clone(),
        };
        let mut q = Quote {
            quote_id: ids.quote_id,
            quote_number: ids.quote_number,
            customer_id: self.customer_id,
            prospect_email: self.prospect_email,
            prospect_name: self.prospect_name,
            prospect_company: self.prospect_company,
            sales_rep_email: if sales_rep == actor.id { actor.email.clone() } else { None },
            sales_rep,
            created_by: actor.id.clone(),
            created_at: actor.at.clone(),
            base_tier: String::new(),
            base_tier_name: String::new(),
            billing_period: self.terms.billing_period,
            base_price: 0,
            price_version: 0,
            currency: String::new(),
            customizations: Customizations::default(),
            discounts: Vec::new(),
            subtotal: 0,
            total_discount: 0,
            final_price: 0,
            price_per_month: 0,
            total_discount_percent: 0.0,
            valid_until,
            commitment_months: self.terms.commitment_months,
            terms_and_conditions: self.terms.terms_and_conditions.unwrap_or_else(|| DEFAULT_TERMS.to_string()),
            notes: self.terms.notes,
            status: QuoteStatus::Draft,
            approval_required: false,
            priced_by: actor.id.clone(),
            approval_requested_at: None,
            approval: None,
            sent_at: None,
            accepted_at: None,
            rejected_at: None,
            rejection_reason: None,
            cancelled_at: None,
            cancellation_reason: None,
            expired_at: None,
            expires_at: expires_at(valid_until),
            view_count: 0,
            last_viewed_at: None,
            token_hash: None,
            conversion: None,
            version: 1,
            updated_at: actor.at.clone(),
            updated_by: actor.id.clone(),
        };
        let terms = PricedTerms { customizations: &self.terms.customizations, discounts: &self.terms.discounts, list };
        apply_pricing(&mut q, tier, &terms, actor, authority.cap_for(&actor.roles));
        if q.approval_required {
            q.status = QuoteStatus::PendingApproval;
            q.approval_requested_at = Some(actor.at.clone());
        }
        Ok(q)
    }
}

impl Quote {
    fn illegal(&self, action: &'static str) -> QuoteError {
        QuoteError::IllegalTransition { from: self.status.as_str(), action }
    }

    fn touched(mut self, actor: &Actor) -> Self {
        self.version += 1;
        self.updated_at = actor.at.clone();
        self.updated_by = actor.id.clone();
        self
    }

    fn check_version(&self, expected: u64) -> Result<(), QuoteError> {
        if expected != self.version {
            return Err(QuoteError::VersionConflict { current: Some(self.version) });
        }
        Ok(())
    }

    /// The tier the edited quote is priced on (`None`: unchanged).
    pub fn patched_tier<'a>(&'a self, patch: &'a QuotePatch) -> &'a str {
        patch.base_tier.as_deref().unwrap_or(&self.base_tier)
    }

    /// An edit: draft or pending only. Repriced against `tier` at its current
    /// version; any approval is cleared, so the quote returns to draft and needs
    /// approval again if it is still above the editor's cap.
    pub fn edit(
        &self,
        patch: &QuotePatch,
        tier: &Tier,
        actor: &Actor,
        authority: &DiscountAuthority,
        list: PriceList,
    ) -> Result<Self, QuoteError> {
        self.check_version(patch.version)?;
        if !matches!(self.status, QuoteStatus::Draft | QuoteStatus::PendingApproval) {
            return Err(self.illegal("edited"));
        }
        quotable(tier)?;
        let mut q = self.clone();
        if let Some(e) = &patch.prospect_email {
            q.prospect_email = e.clone();
        }
        if let Some(n) = &patch.prospect_name {
            q.prospect_name = n.clone();
        }
        if let Some(c) = &patch.prospect_company {
            q.prospect_company = c.clone();
        }
        if let Some(p) = patch.billing_period {
            q.billing_period = p;
        }
        if let Some(v) = patch.valid_until {
            check_valid_until(v, actor.today)?;
            q.valid_until = v;
            q.expires_at = expires_at(v);
        }
        if let Some(c) = patch.commitment_months {
            q.commitment_months = c;
        }
        if let Some(t) = &patch.terms_and_conditions {
            q.terms_and_conditions = t.clone();
        }
        if let Some(n) = &patch.notes {
            q.notes = n.clone();
        }
        let current = self.requested_customizations();
        let customizations = patch.customizations.as_ref().unwrap_or(&current);
        let discounts = match &patch.discounts {
            Some(d) => d.clone(),
            None => {
                self.discounts.iter().map(|d| DiscountRequest { terms: d.terms, reason: d.reason.clone() }).collect()
            }
        };
        let terms = PricedTerms { customizations, discounts: &discounts, list };
        apply_pricing(&mut q, tier, &terms, actor, authority.cap_for(&actor.roles));
        q.status = QuoteStatus::Draft;
        Ok(q.touched(actor))
    }

    fn requested_customizations(&self) -> CustomizationRequest {
        CustomizationRequest {
            additional_listings: self.customizations.additional_listings.map(|l| l.quantity),
            additional_images: self.customizations.additional_images.map(|l| l.quantity),
            custom_features: self.customizations.custom_features.clone(),
            custom_limits: self.customizations.custom_limits.clone(),
        }
    }

    /// draft → pending_approval, for a quote that needs it.
    pub fn request_approval(&self, actor: &Actor) -> Result<Self, QuoteError> {
        if self.status != QuoteStatus::Draft {
            return Err(self.illegal("sent for approval"));
        }
        if self.may_be_sent() {
            return Err(QuoteError::ApprovalNotRequired);
        }
        let mut q = self.clone();
        q.status = QuoteStatus::PendingApproval;
        q.approval_requested_at = Some(actor.at.clone());
        q.approval = None;
        Ok(q.touched(actor))
    }

    fn decide_checks(&self, actor: &Actor, authority: &DiscountAuthority) -> Result<(), QuoteError> {
        if self.status != QuoteStatus::PendingApproval {
            return Err(self.illegal("decided"));
        }
        if actor.id == self.created_by || actor.id == self.priced_by {
            return Err(QuoteError::SelfApproval);
        }
        let cap = authority.cap_for(&actor.roles);
        if exceeds(cap, self.total_discount, self.subtotal) {
            return Err(QuoteError::AboveApproverAuthority {
                cap: cap.map_or_else(|| "unlimited".into(), |c| format!("{}%", c.as_number())),
            });
        }
        Ok(())
    }

    /// pending_approval → draft, approved (with the approver's note, if any): it
    /// may now be sent as priced.
    pub fn approve(
        &self,
        actor: &Actor,
        authority: &DiscountAuthority,
        reason: Option<String>,
    ) -> Result<Self, QuoteError> {
        self.decide_checks(actor, authority)?;
        let mut q = self.clone();
        q.status = QuoteStatus::Draft;
        q.approval = Some(ApprovalDecision {
            outcome: ApprovalOutcome::Approved,
            by: actor.id.clone(),
            at: actor.at.clone(),
            reason,
        });
        for d in q.discounts.iter_mut().filter(|d| d.approval_required) {
            d.approved_by = Some(actor.id.clone());
            d.approved_at = Some(actor.at.clone());
        }
        Ok(q.touched(actor))
    }

    /// pending_approval → draft, refused: the rep must lower the discount (an
    /// edit) or ask again. A refusal needs no authority over the amount.
    pub fn reject_approval(&self, actor: &Actor, reason: Option<String>) -> Result<Self, QuoteError> {
        if self.status != QuoteStatus::PendingApproval {
            return Err(self.illegal("decided"));
        }
        if actor.id == self.created_by || actor.id == self.priced_by {
            return Err(QuoteError::SelfApproval);
        }
        let mut q = self.clone();
        q.status = QuoteStatus::Draft;
        q.approval = Some(ApprovalDecision {
            outcome: ApprovalOutcome::Rejected,
            by: actor.id.clone(),
            at: actor.at.clone(),
            reason,
        });
        Ok(q.touched(actor))
    }

    /// draft → sent (or sent → sent: a new link, the old one stops working).
    pub fn send(&self, actor: &Actor, token_hash: String) -> Result<Self, QuoteError> {
        if !matches!(self.status, QuoteStatus::Draft | QuoteStatus::Sent) {
            return Err(self.illegal("sent"));
        }
        if !self.may_be_sent() {
            return Err(QuoteError::ApprovalRequired);
        }
        if self.lapsed(actor.today) {
            return Err(QuoteError::Expired(self.valid_until));
        }
        let mut q = self.clone();
        q.status = QuoteStatus::Sent;
        q.sent_at = Some(actor.at.clone());
        q.token_hash = Some(token_hash);
        Ok(q.touched(actor))
    }

    /// Any open quote → cancelled.
    pub fn cancel(&self, actor: &Actor, reason: Option<String>) -> Result<Self, QuoteError> {
        if !self.status.is_open() {
            return Err(self.illegal("cancelled"));
        }
        let mut q = self.clone();
        q.status = QuoteStatus::Cancelled;
        q.cancelled_at = Some(actor.at.clone());
        q.cancellation_reason = reason;
        Ok(q.touched(actor))
    }

    /// The expiry pass: an open quote past `validUntil` → expired. `None` when not
    /// due, so the cron can call it blindly.
    pub fn expire(&self, today: NaiveDate, at: &str) -> Option<Self> {
        if !self.status.is_open() || !self.lapsed(today) {
            return None;
        }
        let mut q = self.clone();
        q.status = QuoteStatus::Expired;
        q.expired_at = Some(at.to_string());
        q.version += 1;
        q.updated_at = at.to_string();
        q.updated_by = "system:expiry-cron".into();
        Some(q)
    }

    /// Checks that the prospect may accept now.
    pub fn check_acceptable(&self, today: NaiveDate) -> Result<(), QuoteError> {
        if self.status == QuoteStatus::Sent && self.lapsed(today) {
            return Err(QuoteError::Expired(self.valid_until));
        }
        if self.status != QuoteStatus::Sent {
            return Err(self.illegal("accepted"));
        }
        Ok(())
    }

    /// sent → accepted, with what it converted into.
    pub fn accept(&self, at: &str, today: NaiveDate, conversion: Conversion) -> Result<Self, QuoteError> {
        self.check_acceptable(today)?;
        let mut q = self.clone();
        q.status = QuoteStatus::Accepted;
        q.accepted_at = Some(at.to_string());
        if q.customer_id.is_none() {
            q.customer_id = Some(conversion.partner_id.clone());
        }
        q.conversion = Some(conversion);
        q.version += 1;
        q.updated_at = at.to_string();
        q.updated_by = "prospect".into();
        Ok(q)
    }

    /// sent → rejected by the prospect.
    pub fn reject_by_prospect(&self, at: &str, today: NaiveDate, reason: String) -> Result<Self, QuoteError> {
        if self.status == QuoteStatus::Sent && self.lapsed(today) {
            return Err(QuoteError::Expired(self.valid_until));
        }
        if self.status != QuoteStatus::Sent {
            return Err(self.illegal("rejected"));
        }
        let mut q = self.clone();
        q.status = QuoteStatus::Rejected;
        q.rejected_at = Some(at.to_string());
        q.rejection_reason = Some(reason);
        q.version += 1;
        q.updated_at = at.to_string();
        q.updated_by = "prospect".into();
        Ok(q)
    }
}

impl crate::domain::audit::Audited for Quote {
    const ENTITY_TYPE: &'static str = "quote";
    fn entity_id(&self) -> &str {
        &self.quote_id
    }
}
