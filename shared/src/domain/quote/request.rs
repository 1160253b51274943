//! Request bodies → terms: create, edit, and the prospect's answers.

use super::*;
use crate::domain::money::{BillingPeriod, Percent};
use crate::domain::partner::fields;
use crate::domain::validation::{parse, Fields, ValidationError};
use chrono::NaiveDate;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountRequest {
    pub terms: DiscountTerms,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomizationRequest {
    pub additional_listings: Option<u32>,
    pub additional_images: Option<u32>,
    pub custom_features: Vec<CustomFeature>,
    pub custom_limits: BTreeMap<String, u64>,
}

/// The priced part of a quote as a create or edit gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteTerms {
    pub base_tier: String,
    pub billing_period: BillingPeriod,
    pub customizations: CustomizationRequest,
    pub discounts: Vec<DiscountRequest>,
    pub valid_until: Option<NaiveDate>,
    pub commitment_months: Option<u32>,
    pub terms_and_conditions: Option<String>,
    pub notes: Option<String>,
}

/// `POST /api/admin/quotes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuote {
    pub prospect_email: String,
    pub prospect_name: String,
    pub prospect_company: Option<String>,
    pub customer_id: Option<String>,
    /// Someone else's book: only a caller who may approve pricing can set it.
    pub sales_rep: Option<String>,
    pub terms: QuoteTerms,
}

/// `PUT /api/admin/quotes/{id}`: any editable field, plus the version read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotePatch {
    pub prospect_email: Option<String>,
    pub prospect_name: Option<String>,
    pub prospect_company: Option<Option<String>>,
    pub base_tier: Option<String>,
    pub billing_period: Option<BillingPeriod>,
    pub customizations: Option<CustomizationRequest>,
    pub discounts: Option<Vec<DiscountRequest>>,
    pub valid_until: Option<NaiveDate>,
    pub commitment_months: Option<Option<u32>>,
    pub terms_and_conditions: Option<String>,
    pub notes: Option<Option<String>>,
    pub version: u64,
}

const TERM_FIELDS: [&str; 8] = [
    "baseTier",
    "billingPeriod",
    "customizations",
    "discounts",
    "validUntil",
    "commitmentMonths",
    "termsAndConditions",
    "notes",
];

fn name(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 200)
}

fn reason(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 500)
}

fn commitment(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 1, MAX_COMMITMENT_MONTHS).map(|n| n as u32)
}

fn terms_text(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 5_000)
}

fn notes(v: &Value) -> Result<String, String> {
    parse::text(v, 1, 2_000)
}

pub fn is_partner_id(s: &str) -> bool {
    s.strip_prefix("prt_").is_some_and(|rest| !rest.is_empty() && rest.len() <= 40 && parse::is_slug(rest))
}

fn partner_id(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a string")?;
    if is_partner_id(s) {
        Ok(s.to_string())
    } else {
        Err("must be a partner id such as prt_…".into())
    }
}

fn read_discounts(f: &mut Fields<'_>) -> Option<Vec<DiscountRequest>> {
    f.array_of_objects("discounts", MAX_DISCOUNTS, &["type", "value", "reason"], |d| {
        let kind = d.required("type", |v| match v.as_str() {
            Some("percentage") => Ok(true),
            Some("fixed_amount") => Ok(false),
            _ => Err("must be percentage or fixed_amount".into()),
        });
        let reason = d.required("reason", reason);
        let terms = match kind {
            Some(true) => d.required("value", |v| {
                let p = Percent::parse(v)?;
                if p.basis_points() == 0 {
                    return Err("must be more than 0".into());
                }
                Ok(DiscountTerms::Percentage(p))
            }),
            Some(false) => d.required("value", |v| match parse::cents(v)? {
                0 => Err("must be at least 1 cent".into()),
                c => Ok(DiscountTerms::FixedAmount(c)),
            }),
            None => None,
        };
        Some(DiscountRequest { terms: terms?, reason: reason? })
    })
}

fn quantity(max: i64) -> impl Fn(&mut Fields<'_>) -> Option<u32> {
    move |q| q.required("quantity", if max == MAX_ADDITIONAL_LISTINGS { listings } else { images })
}

fn listings(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 0, MAX_ADDITIONAL_LISTINGS).map(|n| n as u32)
}

fn images(v: &Value) -> Result<u32, String> {
    parse::int_in(v, 0, MAX_ADDITIONAL_IMAGES).map(|n| n as u32)
}

fn read_customizations(f: &mut Fields<'_>) -> Option<CustomizationRequest> {
    f.object("customizations", &["additionalListings", "additionalImages", "customFeatures", "customLimits"], |c| {
        let additional_listings = c.object("additionalListings", &["quantity"], quantity(MAX_ADDITIONAL_LISTINGS));
        let additional_images = c.object("additionalImages", &["quantity"], quantity(MAX_ADDITIONAL_IMAGES));
        let custom_features = c
            .array_of_objects("customFeatures", MAX_CUSTOM_FEATURES, &["featureId", "name", "price"], |cf| {
                let feature_id = cf.required("featureId", parse::slug);
                let name = cf.required("name", name);
                let price = cf.required("price", parse::cents);
                Some(CustomFeature { feature_id: feature_id?, name: name?, price: price? })
            })
            .unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        if custom_features.iter().any(|cf| !seen.insert(cf.feature_id.clone())) {
            c.fail("customFeatures", "each featureId may appear once");
        }
        let custom_limits =
            c.map_of("customLimits", MAX_CUSTOM_LIMITS, parse::limit_name, parse::count).unwrap_or_default();
        Some(CustomizationRequest { additional_listings, additional_images, custom_features, custom_limits })
    })
}

impl NewQuote {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut allowed = vec!["prospectEmail", "prospectName", "prospectCompany", "customerId", "salesRep"];
        allowed.extend(TERM_FIELDS);
        let mut f = Fields::new(body, &allowed);
        let prospect_email = f.required("prospectEmail", fields::email);
        let prospect_name = f.required("prospectName", name);
        let prospect_company = f.optional("prospectCompany", name);
        let customer_id = f.optional("customerId", partner_id);
        let sales_rep = f.optional("salesRep", fields::user_id);
        let base_tier = f.required("baseTier", parse::slug);
        let billing_period = f.required("billingPeriod", BillingPeriod::parse);
        let customizations = read_customizations(&mut f).unwrap_or_default();
        let discounts = read_discounts(&mut f).unwrap_or_default();
        let valid_until = f.optional("validUntil", fields::date);
        let commitment_months = f.optional("commitmentMonths", commitment);
        let terms_and_conditions = f.optional("termsAndConditions", terms_text);
        let notes = f.optional("notes", notes);
        f.finish()?;
        let missing = || ValidationError::single("body", "is incomplete");
        Ok(Self {
            prospect_email: prospect_email.ok_or_else(missing)?,
            prospect_name: prospect_name.ok_or_else(missing)?,
            prospect_company,
            customer_id,
            sales_rep,
            terms: QuoteTerms {
                base_tier: base_tier.ok_or_else(missing)?,
                billing_period: billing_period.ok_or_else(missing)?,
                customizations,
                discounts,
                valid_until,
                commitment_months,
                terms_and_conditions,
                notes,
            },
        })
    }
}

impl QuotePatch {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut allowed = vec!["prospectEmail", "prospectName", "prospectCompany", "version"];
        allowed.extend(TERM_FIELDS);
        let mut f = Fields::new(body, &allowed);
        let version = f.required("version", fields::version);
        let patch = Self {
            prospect_email: f.optional("prospectEmail", fields::email),
            prospect_name: f.optional("prospectName", name),
            prospect_company: f.nullable("prospectCompany", name),
            base_tier: f.optional("baseTier", parse::slug),
            billing_period: f.optional("billingPeriod", BillingPeriod::parse),
            customizations: read_customizations(&mut f),
            discounts: if f.has("discounts") { read_discounts(&mut f) } else { None },
            valid_until: f.optional("validUntil", fields::date),
            commitment_months: f.nullable("commitmentMonths", commitment),
            terms_and_conditions: f.optional("termsAndConditions", terms_text),
            notes: f.nullable("notes", notes),
            version: version.unwrap_or_default(),
        };
        f.finish()?;
        Ok(patch)
    }
}

/// `{acceptedBy?}` for accept; `{reason}` for the prospect's reject.
pub fn parse_acceptance(body: &Value) -> Result<Option<String>, ValidationError> {
    let mut f = Fields::new(body, &["acceptedBy"]);
    let by = f.optional("acceptedBy", name);
    f.finish()?;
    Ok(by)
}

pub fn parse_prospect_rejection(body: &Value) -> Result<String, ValidationError> {
    let mut f = Fields::new(body, &["reason"]);
    let reason = f.required("reason", |v| parse::text(v, 1, 1_000));
    f.finish()?;
    reason.ok_or_else(|| ValidationError::single("reason", "is required"))
}

/// `{reason?}` for the staff reject and cancel.
pub fn parse_optional_reason(body: &Value) -> Result<Option<String>, ValidationError> {
    let mut f = Fields::new(body, &["reason"]);
    let reason = f.optional("reason", |v| parse::text(v, 1, 1_000));
    f.finish()?;
    Ok(reason)
}
