//! Request bodies → terms: create, edit (`PUT`), and a validate or redeem
//! request.

use super::*;
use crate::domain::actor::Actor;
use crate::domain::money::BillingPeriod;
use crate::domain::validation::{parse, Fields, ValidationError};
use chrono::NaiveDate;
use serde_json::Value;

/// The editable terms of a promotion as a create request gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPromotion {
    pub name: String,
    pub description: String,
    pub internal_notes: Option<String>,
    pub discount: DiscountSpec,
    pub applies_to: AppliesTo,
    pub currency: String,
    pub target_tiers: Vec<String>,
    pub eligibility_rules: EligibilityRules,
    pub max_redemptions: Option<u64>,
    pub redemptions_per_user: u32,
    pub minimum_commitment_months: Option<u32>,
    pub stackable: bool,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub auto_expire: bool,
    pub requires_code: bool,
    pub promotion_codes: Vec<String>,
}

const CREATE_FIELDS: &[&str] = &[
    "name",
    "description",
    "internalNotes",
    "discountType",
    "discountValue",
    "appliesTo",
    "currency",
    "targetTiers",
    "eligibilityRules",
    "maxRedemptions",
    "redemptionsPerUser",
    "minimumCommitmentMonths",
    "stackable",
    "startDate",
    "endDate",
    "autoExpire",
    "requiresCode",
    "promotionCodes",
];

const RULE_FIELDS: &[&str] =
    &["userType", "minAccountAge", "maxAccountAge", "currentTiers", "excludeTiers", "segments"];

pub mod fields {
    use super::*;

    pub fn name(v: &Value) -> Result<String, String> {
        parse::text(v, 1, 120)
    }
    pub fn description(v: &Value) -> Result<String, String> {
        parse::text(v, 0, 2_000)
    }
    pub fn date(v: &Value) -> Result<NaiveDate, String> {
        crate::domain::partner::fields::date(v)
    }
    /// Partner ids are `prt_` + a lower-case ULID.
    pub fn partner_id(v: &Value) -> Result<String, String> {
        let s = v.as_str().ok_or("must be a string")?;
        let ok = s
            .strip_prefix("prt_")
            .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if ok {
            Ok(s.to_string())
        } else {
            Err("must be a partner id (prt_…)".into())
        }
    }
    pub fn tier_list(v: &Value) -> Result<Vec<String>, String> {
        slug_list(v, MAX_TIER_LIST)
    }
    pub fn slug_list(v: &Value, max: usize) -> Result<Vec<String>, String> {
        let items = v.as_array().ok_or("must be an array of ids")?;
        if items.len() > max {
            return Err(format!("must have at most {max} items"));
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            let id = parse::slug(item)?;
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }
    pub fn days(v: &Value) -> Result<u32, String> {
        parse::int_in(v, 0, 36_500).map(|d| d as u32)
    }
    pub fn months(v: &Value) -> Result<u32, String> {
        parse::int_in(v, 1, 120).map(|d| d as u32)
    }
    pub fn max_redemptions(v: &Value) -> Result<u64, String> {
        parse::int_in(v, 1, 1_000_000_000).map(|n| n as u64)
    }
    pub fn per_user(v: &Value) -> Result<u32, String> {
        parse::int_in(v, 1, 1_000).map(|n| n as u32)
    }
    /// Codes are case-insensitive: kept upper-case, 3–32 of A–Z, 0–9, `-`, `_`.
    pub fn code(v: &Value) -> Result<String, String> {
        let s = v.as_str().ok_or("must be a string")?.trim();
        let ok = (3..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(s.to_ascii_uppercase())
        } else {
            Err("must be 3-32 characters of A-Z, 0-9, '-' or '_'".into())
        }
    }
    pub fn code_list(v: &Value) -> Result<Vec<String>, String> {
        let items = v.as_array().ok_or("must be an array of codes")?;
        if items.len() > MAX_CODES_IN_BODY {
            return Err(format!("must have at most {MAX_CODES_IN_BODY} codes"));
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let code = code(item).map_err(|e| format!("[{i}] {e}"))?;
            if out.contains(&code) {
                return Err(format!("[{i}] repeats {code} (codes are case-insensitive)"));
            }
            out.push(code);
        }
        Ok(out)
    }
}

fn parse_rules(f: &mut Fields) -> Option<EligibilityRules> {
    f.object("eligibilityRules", RULE_FIELDS, |r| {
        let user_type = r.optional("userType", UserType::parse).unwrap_or(UserType::All);
        let min_account_age = r.optional("minAccountAge", fields::days);
        let max_account_age = r.optional("maxAccountAge", fields::days);
        let current_tiers = r.optional("currentTiers", fields::tier_list).unwrap_or_default();
        let exclude_tiers = r.optional("excludeTiers", fields::tier_list).unwrap_or_default();
        let segments = r.optional("segments", fields::tier_list).unwrap_or_default();
        if let (Some(min), Some(max)) = (min_account_age, max_account_age) {
            if min > max {
                r.fail("maxAccountAge", "must not be less than minAccountAge");
            }
        }
        if current_tiers.iter().any(|t| exclude_tiers.contains(t)) {
            r.fail("excludeTiers", "must not name a tier that currentTiers allows");
        }
        Some(EligibilityRules { user_type, min_account_age, max_account_age, current_tiers, exclude_tiers, segments })
    })
}

impl NewPromotion {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, CREATE_FIELDS);
        let name = f.required("name", fields::name);
        let description = f.optional("description", fields::description).unwrap_or_default();
        let internal_notes = f.optional("internalNotes", fields::description);
        let discount = DiscountSpec::parse(&mut f);
        let applies_to = f.required("appliesTo", AppliesTo::parse);
        let currency = f.optional("currency", parse::currency).unwrap_or_else(|| "usd".into());
        let target_tiers = f.optional("targetTiers", fields::tier_list).unwrap_or_default();
        let eligibility_rules = if f.has("eligibilityRules") { parse_rules(&mut f) } else { Some(Default::default()) };
        let max_redemptions = f.optional("maxRedemptions", fields::max_redemptions);
        let redemptions_per_user = f.optional("redemptionsPerUser", fields::per_user).unwrap_or(1);
        let minimum_commitment_months = f.optional("minimumCommitmentMonths", fields::months);
        let stackable = f.optional("stackable", parse::boolean).unwrap_or(false);
        let start_date = f.required("startDate", fields::date);
        let end_date = f.required("endDate", fields::date);
        let auto_expire = f.optional("autoExpire", parse::boolean).unwrap_or(true);
        let promotion_codes = f.optional("promotionCodes", fields::code_list).unwrap_or_default();
        let requires_code = f.optional("requiresCode", parse::boolean).unwrap_or(!promotion_codes.is_empty());
        if let (Some(start), Some(end)) = (start_date, end_date) {
            if end < start {
                f.fail("endDate", "must not be before startDate");
            }
        }
        if let (Some(DiscountSpec::FreeTrial(_) | DiscountSpec::ExtendedTrial(_)), Some(AppliesTo::FirstMonth)) =
            (discount, applies_to)
        {
            f.fail("appliesTo", "a trial has no first month to discount; use both, monthly or yearly");
        }
        f.finish()?;
        match (name, discount, applies_to, eligibility_rules, start_date, end_date) {
            (
                Some(name),
                Some(discount),
                Some(applies_to),
                Some(eligibility_rules),
                Some(start_date),
                Some(end_date),
            ) => Ok(Self {
                name,
                description,
                internal_notes,
                discount,
                applies_to,
                currency,
                target_tiers,
                eligibility_rules,
                max_redemptions,
                redemptions_per_user,
                minimum_commitment_months,
                stackable,
                start_date,
                end_date,
                auto_expire,
                requires_code,
                promotion_codes,
            }),
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }

    pub fn into_promotion(self, promotion_id: String, actor: &Actor) -> Result<Promotion, ValidationError> {
        if self.end_date < actor.today {
            return Err(ValidationError::single("endDate", "must not be in the past"));
        }
        Ok(Promotion {
            promotion_id,
            name: self.name,
            description: self.description,
            internal_notes: self.internal_notes,
            discount: self.discount,
            applies_to: self.applies_to,
            currency: self.currency,
            target_tiers: self.target_tiers,
            eligibility_rules: self.eligibility_rules,
            max_redemptions: self.max_redemptions,
            redemptions_per_user: self.redemptions_per_user,
            minimum_commitment_months: self.minimum_commitment_months,
            stackable: self.stackable,
            start_date: self.start_date,
            end_date: self.end_date,
            active: false,
            auto_expire: self.auto_expire,
            requires_code: self.requires_code,
            promotion_codes: self.promotion_codes,
            redemption_count: 0,
            unique_users: 0,
            total_revenue: 0,
            total_discount: 0,
            conversion_rate: 0.0,
            average_deal_size: 0,
            validation_count: 0,
            requires_approval: false,
            status: PromotionStatus::Draft,
            terms_version: 1,
            created_by: actor.id.clone(),
            created_at: actor.at.clone(),
            created_by_email: actor.email.clone(),
            submitted_by: None,
            approved_by: None,
            approved_at: None,
            rejected_by: None,
            rejection_reason: None,
            cancellation_reason: None,
            updated_at: actor.at.clone(),
            updated_by: actor.id.clone(),
            version: 1,
        })
    }
}

/// A `PUT` body: `version` plus the fields to change. Terms change only in draft;
/// a live promotion may be renamed, extended or given a different cap.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionPatch {
    pub version: u64,
    pub body: Value,
}

/// Fields a live (active or paused) promotion may still change: none of them
/// alters what a redemption costs or who may redeem, beyond what the redemption
/// transaction checks against the stored item itself (end date, cap).
pub(super) const LIVE_EDITABLE: &[&str] =
    &["name", "description", "internalNotes", "endDate", "maxRedemptions", "autoExpire"];

impl PromotionPatch {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut allowed: Vec<&str> = CREATE_FIELDS.iter().copied().filter(|f| *f != "promotionCodes").collect();
        allowed.push("version");
        let mut f = Fields::new(body, &allowed);
        let version = f.required("version", |v| parse::int_in(v, 1, i64::MAX).map(|n| n as u64));
        f.finish()?;
        let version = version.ok_or_else(|| ValidationError::single("version", "is required"))?;
        let mut rest = body.clone();
        if let Some(o) = rest.as_object_mut() {
            o.remove("version");
        }
        if rest.as_object().is_none_or(|o| o.is_empty()) {
            return Err(ValidationError::single("body", "must change at least one field"));
        }
        Ok(Self { version, body: rest })
    }
}
/// A validate or redeem request.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// Codes (upper-case) or promotion ids, as given.
    pub codes: Vec<String>,
    pub promotion_ids: Vec<String>,
    pub partner_id: Option<String>,
    pub tier_id: String,
    pub billing_period: BillingPeriod,
    pub commitment_months: Option<u32>,
}

impl Application {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(
            body,
            &["code", "codes", "promotionId", "partnerId", "tierId", "billingPeriod", "commitmentMonths"],
        );
        let code = f.optional("code", fields::code);
        let mut codes = f
            .optional("codes", |v| {
                let list = fields::code_list(v)?;
                if list.is_empty() || list.len() > MAX_STACKED {
                    return Err(format!("must have 1 to {MAX_STACKED} codes"));
                }
                Ok(list)
            })
            .unwrap_or_default();
        let promotion_id = f.optional("promotionId", |v| {
            let s = v.as_str().ok_or("must be a string")?;
            if is_promotion_id(s) {
                Ok(s.to_string())
            } else {
                Err("must be a promotion id".to_string())
            }
        });
        let partner_id = f.optional("partnerId", fields::partner_id);
        let tier_id = f.required("tierId", parse::slug);
        let billing_period = f.optional("billingPeriod", BillingPeriod::parse).unwrap_or(BillingPeriod::Monthly);
        let commitment_months = f.optional("commitmentMonths", fields::months);
        if let Some(c) = code {
            if codes.contains(&c) {
                f.fail("code", "is also listed in codes");
            }
            codes.insert(0, c);
        }
        let given = usize::from(!codes.is_empty()) + usize::from(promotion_id.is_some());
        if given == 0 && !f.has("code") && !f.has("codes") && !f.has("promotionId") {
            f.fail("code", "give a code, codes or a promotionId");
        }
        if given > 1 {
            f.fail("promotionId", "give either codes or a promotionId, not both");
        }
        if codes.len() > MAX_STACKED {
            f.fail("codes", format!("at most {MAX_STACKED} promotions can be combined"));
        }
        f.finish()?;
        let tier_id = tier_id.ok_or_else(|| ValidationError::single("tierId", "is required"))?;
        Ok(Self {
            codes,
            promotion_ids: promotion_id.into_iter().collect(),
            partner_id,
            tier_id,
            billing_period,
            commitment_months,
        })
    }
}
