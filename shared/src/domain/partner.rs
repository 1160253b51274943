//! A strategic partner (seed 003 `strategic_partners`, camelCase): who they are,
//! which tier they are on, and where their subscription stands. Changes of tier
//! and status go through `subscription`; this module holds the record and the
//! edits that are not transitions.

use super::locale::Locale;
use super::money::{BillingPeriod, Percent};
use super::validation::{parse, Fields, ValidationError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    Trialing,
    PastDue,
    Cancelled,
    Expired,
}

impl SubscriptionStatus {
    pub const ALL: [Self; 5] = [Self::Active, Self::Trialing, Self::PastDue, Self::Cancelled, Self::Expired];

    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    pub fn parse(v: &Value) -> Result<Self, String> {
        crate::domain::wire::one_of(&Self::ALL, v)
    }

    /// Cancelled and expired partners have no running subscription to renew.
    pub fn is_lapsed(self) -> bool {
        matches!(self, Self::Cancelled | Self::Expired)
    }
}

/// Where a subscription stands today, derived from the stored status and term. This
/// is the one definition of "active" that every count and list uses (analytics'
/// `activeSubscriptions`, the tier statistics, the subscription dashboard's `active`
/// view): a subscription is active while it is in force, that is running (`active`,
/// `trialing`, `past_due`: dunning may still recover it) or cancelled at period end
/// with its paid term still running (`cancelling`). `cancelled` (ended at once) and
/// `expired` are not active. docs/analytics.md ("Active subscription") says the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    Active,
    Trialing,
    PastDue,
    Cancelling,
    Cancelled,
    Expired,
}

impl SubscriptionState {
    pub fn as_str(self) -> &'static str {
        crate::domain::wire::wire_name(&self)
    }

    /// In force: counted as an active subscription.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Active | Self::Trialing | Self::PastDue | Self::Cancelling)
    }

    /// Running and not given notice: active, trialing or past due.
    pub fn is_running(self) -> bool {
        matches!(self, Self::Active | Self::Trialing | Self::PastDue)
    }
}

/// Seed 003 `payment_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Current,
    PastDue,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Partner {
    pub partner_id: String,
    pub company_name: String,
    pub primary_email: String,
    pub engagement_tier: String,
    pub subscription_status: SubscriptionStatus,
    pub subscription_start_date: Option<NaiveDate>,
    pub subscription_end_date: Option<NaiveDate>,
    /// Last day of a free trial; trial days are not MRR.
    pub trial_end_date: Option<NaiveDate>,
    pub billing_period: Option<BillingPeriod>,
    pub auto_renewal: bool,
    pub cancellation_date: Option<NaiveDate>,
    pub cancellation_reason: Option<String>,
    pub subscription_notes: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub last_payment_date: Option<NaiveDate>,
    pub last_payment_amount: Option<i64>,
    pub payment_status: Option<PaymentStatus>,
    pub assigned_sales_rep: Option<String>,
    pub signup_date: NaiveDate,
    /// What the partner pays per billing period after discount, in cents, locked
    /// at the price version in force when the term started (grandfathering).
    pub price_per_period: i64,
    pub price_version: Option<u32>,
    pub discount_percent: Option<Percent>,
    /// This partner's contribution to MRR in cents (ChartMogul rules; see `revenue`).
    pub mrr: i64,
    pub currency: String,
    pub first_paid_date: Option<NaiveDate>,
    /// Start of the current paying spell (new or reactivation), cleared at churn:
    /// churn analytics leave out partners who joined and churned in one month.
    #[serde(default)]
    pub paying_since: Option<NaiveDate>,
    /// The day the partner's first trial started, for the conversion funnel (a
    /// partner counts as a trial user once).
    #[serde(default)]
    pub first_trial_date: Option<NaiveDate>,
    /// When the partner last stopped paying (churn), for win-back lists.
    pub churned_date: Option<NaiveDate>,
    /// The tier and MRR lost at the last churn, for win-back lists.
    pub churned_from_tier: Option<String>,
    pub churned_mrr: Option<i64>,
    /// Payments received over the partner's lifetime, in cents.
    pub total_paid: i64,
    /// Failed payment attempts in the current dunning run (0 once paid).
    pub payment_failures: u32,
    /// Dates of the most recent downgrades (newest last), for churn and upsell signals.
    pub recent_downgrades: Vec<NaiveDate>,
    pub last_contact_date: Option<String>,
    pub last_contact_type: Option<String>,
    /// Last transition, note or assignment: the "recent activity" churn signal.
    pub last_activity_at: String,
    /// Scores as of `scored_on`, recomputed on every write and indexed for the
    /// churn-risk and upsell lists.
    pub churn_risk: ChurnRisk,
    pub upsell: Upsell,
    pub scored_on: NaiveDate,
    /// `created` (epoch seconds) of the newest Stripe subscription event applied to
    /// this partner's subscription (invoice events, ordered by their own records, do
    /// not move it): an older subscription event never rolls the state back.
    #[serde(default)]
    pub stripe_event_at: Option<i64>,
    /// A self-service downgrade waiting for the end of the paid period.
    #[serde(default)]
    pub scheduled_change: Option<ScheduledChange>,
    /// How the partner's emails write dates (`en-US` unless set); records written
    /// before the field existed read as `en-US`.
    #[serde(default)]
    pub locale: Locale,
    /// Per-metric limits agreed in an accepted quote (camelCase metric names, as
    /// in tier `limits`); each overrides the tier's limit for that metric.
    #[serde(default, rename = "customLimits")]
    pub custom_limits: std::collections::BTreeMap<String, u64>,
    /// The PCR multiplier of the partner's current tier (seed 003: what PCR scoring
    /// multiplies by), set with the scores on every write; `None` on records not
    /// written since it was kept, or when the tier is gone from the catalog.
    #[serde(default)]
    pub pcr_multiplier: Option<f64>,
    /// Set once the partner's personal data was erased (`privacy`); the record then
    /// stays for the books only and no longer changes.
    #[serde(default)]
    pub erasure: Option<Erasure>,
    /// The default card Stripe charges: brand and last four digits only (never the
    /// number, expiry or fingerprint). Written from the Stripe webhooks that follow a
    /// payment-method update (docs/billing.md, "Payment method").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<PaymentMethodSummary>,
    /// `created` (epoch seconds) of the newest Stripe event the payment method was
    /// recorded from: an older event never puts an older card back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_event_at: Option<i64>,
    /// The add-ons on the partner's Stripe subscription (issue 21 §2), as the last
    /// subscription event showed them: each add-on's item and price per period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_ons: Vec<SubscribedAddOn>,
    pub version: u64,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// A saved card as the partner and staff see it: brand (Stripe's, e.g. `visa`) and
/// the last four digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethodSummary {
    pub brand: String,
    pub last4: String,
}

/// A tier change agreed now that takes effect when the paid period ends (the
/// default for self-service downgrades: the partner keeps what they paid for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledChange {
    pub tier_id: String,
    pub billing_period: BillingPeriod,
    pub effective_date: NaiveDate,
    pub requested_at: String,
}

impl Partner {
    /// True while a paid tier is held (including a cancelled term still running).
    pub fn on_paid_term(&self) -> bool {
        self.subscription_end_date.is_some()
    }

    /// Where the subscription stands today (`SubscriptionState`).
    pub fn subscription_state(&self) -> SubscriptionState {
        match self.subscription_status {
            SubscriptionStatus::Active => SubscriptionState::Active,
            SubscriptionStatus::Trialing => SubscriptionState::Trialing,
            SubscriptionStatus::PastDue => SubscriptionState::PastDue,
            SubscriptionStatus::Cancelled if self.on_paid_term() => SubscriptionState::Cancelling,
            SubscriptionStatus::Cancelled => SubscriptionState::Cancelled,
            SubscriptionStatus::Expired => SubscriptionState::Expired,
        }
    }

    /// The one definition of an active subscription (`SubscriptionState::is_active`).
    pub fn is_active_subscription(&self) -> bool {
        self.subscription_state().is_active()
    }

    /// The subscription-dashboard tabs this partner belongs to (seed 003 §2.3), each
    /// with the date the tab sorts by. `active` lists the active paid subscriptions
    /// (`is_active_subscription` on a paid term), so a partner cancelled at period
    /// end is both there, until the term ends, and on `cancelled`, which lists every
    /// cancellation. Free partners with no lapsed subscription are on no tab.
    pub fn dashboard_tabs(&self) -> Vec<(DashboardTab, NaiveDate)> {
        let ended = self.churned_date.or(self.cancellation_date).unwrap_or(self.signup_date);
        let mut tabs = Vec::with_capacity(2);
        if let (true, Some(end)) = (self.is_active_subscription(), self.subscription_end_date) {
            tabs.push((DashboardTab::Active, end));
        }
        match self.subscription_status {
            SubscriptionStatus::Expired => tabs.push((DashboardTab::Expired, ended)),
            SubscriptionStatus::Cancelled => {
                tabs.push((DashboardTab::Cancelled, self.subscription_end_date.unwrap_or(ended)))
            }
            _ => {}
        }
        tabs
    }
}

/// Tabs stored in the dashboard index; `expiring` and `history` are derived views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashboardTab {
    Active,
    Cancelled,
    Expired,
}

impl DashboardTab {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// `POST /api/admin/partners`. Partners start on the free tier; paid tiers come
/// through a tier change, so every paid term has a transition behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPartner {
    pub company_name: String,
    pub primary_email: String,
    pub assigned_sales_rep: Option<String>,
    pub subscription_notes: Option<String>,
    /// `en-US` when not given.
    pub locale: Option<Locale>,
}

/// `PATCH /api/admin/partners/{id}`: profile fields and the auto-renew switch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartnerPatch {
    pub version: Option<u64>,
    pub company_name: Option<String>,
    pub primary_email: Option<String>,
    pub subscription_notes: Option<Option<String>>,
    pub auto_renewal: Option<bool>,
    pub locale: Option<Locale>,
}

/// The form of a company name the partner search matches on: lower case, with
/// runs of white space as one space, so "ACME  travel" finds "Acme Travel Ltd".
/// Matching is from the start of the name (an index range, not a scan), so the
/// key is what both the stored name and the typed prefix become.
pub fn name_search_key(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

pub mod fields {
    use super::*;

    pub fn company_name(v: &Value) -> Result<String, String> {
        parse::text(v, 1, 200)
    }

    /// The `name` search: the start of a company name, as its search key.
    pub fn name_prefix(v: &Value) -> Result<String, String> {
        let typed = parse::text(v, 1, 200)?;
        Ok(name_search_key(&typed))
    }

    pub fn notes(v: &Value) -> Result<String, String> {
        parse::text(v, 1, 2000)
    }

    /// An address as a mail system would accept it; stored as given (trimmed),
    /// compared case-insensitively through the lower-cased `EMAIL#` lookup.
    pub fn email(v: &Value) -> Result<String, String> {
        let s = v.as_str().ok_or("must be a string")?.trim();
        let valid = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
                    && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            })
            && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
            && s.matches('@').count() == 1;
        if valid {
            Ok(s.to_string())
        } else {
            Err("must be an email address such as ops@example.com".into())
        }
    }

    /// A staff member's id as it appears in tokens (`sub`): printable, no `#`.
    pub fn user_id(v: &Value) -> Result<String, String> {
        let s = v.as_str().ok_or("must be a string")?;
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b':' | b'|'));
        if ok {
            Ok(s.to_string())
        } else {
            Err("must be a user id of 1-128 letters, digits or - _ . @ : |".into())
        }
    }

    pub fn date(v: &Value) -> Result<NaiveDate, String> {
        parse::date(v)
    }

    /// `en-US` or `en-GB` (case-insensitive, `_` accepted for `-`).
    pub fn locale(v: &Value) -> Result<Locale, String> {
        v.as_str().and_then(Locale::parse).ok_or_else(|| "must be en-US or en-GB".into())
    }

    pub fn version(v: &Value) -> Result<u64, String> {
        v.as_u64().filter(|n| *n >= 1).ok_or_else(|| "must be a positive integer".into())
    }
}

impl NewPartner {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f =
            Fields::new(body, &["companyName", "primaryEmail", "assignedSalesRep", "subscriptionNotes", "locale"]);
        let company_name = f.required("companyName", fields::company_name);
        let primary_email = f.required("primaryEmail", fields::email);
        let assigned_sales_rep = f.optional("assignedSalesRep", fields::user_id);
        let subscription_notes = f.optional("subscriptionNotes", fields::notes);
        let locale = f.optional("locale", fields::locale);
        f.finish()?;
        match (company_name, primary_email) {
            (Some(company_name), Some(primary_email)) => {
                Ok(Self { company_name, primary_email, assigned_sales_rep, subscription_notes, locale })
            }
            _ => Err(ValidationError::single("body", "is incomplete")),
        }
    }
}

impl PartnerPatch {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(
            body,
            &["version", "companyName", "primaryEmail", "subscriptionNotes", "autoRenewal", "locale"],
        );
        let patch = Self {
            version: f.optional("version", fields::version),
            company_name: f.optional("companyName", fields::company_name),
            primary_email: f.optional("primaryEmail", fields::email),
            subscription_notes: f.nullable("subscriptionNotes", fields::notes),
            auto_renewal: f.optional("autoRenewal", parse::boolean),
            locale: f.optional("locale", fields::locale),
        };
        f.finish()?;
        if patch == (Self { version: patch.version, ..Self::default() }) {
            return Err(ValidationError::single("body", "names no field to change"));
        }
        Ok(patch)
    }
}

/// A sales note (seed 000 `salesNotes`): who wrote it is the caller, never the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesNote {
    pub note_id: String,
    pub partner_id: String,
    pub timestamp: String,
    pub rep: String,
    pub note: String,
    pub next_action: Option<String>,
    /// `call`, `email`, `meeting` or `note`: the journey's `lastContactType`.
    pub contact_type: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewNote {
    pub note: String,
    pub next_action: Option<String>,
    pub contact_type: String,
}

impl NewNote {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["note", "nextAction", "contactType"]);
        let note = f.required("note", fields::notes);
        let next_action = f.optional("nextAction", |v| parse::text(v, 1, 500));
        let contact_type = f.optional("contactType", |v| match v.as_str() {
            Some(s @ ("call" | "email" | "meeting" | "note")) => Ok(s.to_string()),
            _ => Err("must be call, email, meeting or note".into()),
        });
        f.finish()?;
        let note = note.ok_or_else(|| ValidationError::single("note", "is required"))?;
        Ok(Self { note, next_action, contact_type: contact_type.unwrap_or_else(|| "note".into()) })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub sales_rep: String,
    pub version: Option<u64>,
}

impl Assignment {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let mut f = Fields::new(body, &["salesRep", "version"]);
        let sales_rep = f.required("salesRep", fields::user_id);
        let version = f.optional("version", fields::version);
        f.finish()?;
        let sales_rep = sales_rep.ok_or_else(|| ValidationError::single("salesRep", "is required"))?;
        Ok(Self { sales_rep, version })
    }
}

impl super::audit::Audited for Partner {
    const ENTITY_TYPE: &'static str = "partner";
    fn entity_id(&self) -> &str {
        &self.partner_id
    }
}

/// A partner's churn risk and upsell scores (computed in `scoring`), kept on the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

/// One reason behind a score, worded for a sales rep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Factor {
    pub code: String,
    pub description: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChurnRisk {
    pub level: RiskLevel,
    pub probability: u32,
    /// Seed 004's `contributingFactors`: each with its weight in the probability.
    pub factors: Vec<Factor>,
    /// Seed 004's four bands (`critical` above `high`); absent on a record scored
    /// before it existed, until its next rescoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_level: Option<SeedRiskLevel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommended_actions: Vec<RetentionAction>,
    /// Days until the paid term ends when the partner is on the way out
    /// (cancelled, or auto-renewal off); none when nothing dates the churn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_churn: Option<i64>,
    /// Percent of the score's inputs that were known (usage, payment status, term
    /// end): the rules' data completeness, not a statistical confidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u32>,
}

impl ChurnRisk {
    /// The score of a partner with nothing to lose (free tier or expired), and of a new partner.
    pub fn none() -> Self {
        Self {
            level: RiskLevel::Low,
            probability: 0,
            factors: Vec::new(),
            risk_level: Some(SeedRiskLevel::Low),
            recommended_actions: Vec::new(),
            time_to_churn: None,
            confidence: None,
        }
    }
}

/// Seed 004's `riskLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeedRiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

/// Seed 004's `RetentionAction`: what a rep should do about a factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionAction {
    pub code: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Upsell {
    pub opportunity: bool,
    pub score: u32,
    pub recommended_tier: Option<String>,
    pub reasons: Vec<Factor>,
    /// Seed 004 `ExpansionOpportunity.opportunityType`: `upgrade` with a tier to
    /// move to, `usage_increase` at the top tier near its limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opportunity_type: Option<String>,
    /// MRR gained by the upgrade at list price, cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub potential_revenue: Option<i64>,
    /// The score as a percent: a rule score, not a calibrated probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<u32>,
}

impl Upsell {
    /// The score of a partner who is not an upsell target (past due, cancelled or expired), and of a new partner.
    pub fn none() -> Self {
        Self {
            opportunity: false,
            score: 0,
            recommended_tier: None,
            reasons: Vec::new(),
            opportunity_type: None,
            potential_revenue: None,
            probability: None,
        }
    }
}

/// The erasure mark on a partner record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    pub erased_at: String,
    pub erased_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_name_and_a_typed_prefix_meet_in_one_search_key() {
        assert_eq!(name_search_key("  Acme \t Travel   Ltd "), "acme travel ltd");
        assert_eq!(name_search_key("ÉCOLE Öko"), "école öko");
        assert_eq!(fields::name_prefix(&json!("ACME  tr")), Ok("acme tr".to_string()));
        assert!(name_search_key("Acme Travel Ltd").starts_with(&fields::name_prefix(&json!(" acme TRAVEL")).unwrap()));
        assert!(fields::name_prefix(&json!("   ")).is_err());
        assert!(fields::name_prefix(&json!(7)).is_err());
    }

    #[test]
    fn emails_are_checked_at_the_edge() {
        for good in ["ops@example.com", "a.b+tag@sub.example.co", "X@Y.io"] {
            assert!(fields::email(&json!(good)).is_ok(), "{good}");
        }
        for bad in ["", "no-at", "@example.com", "a@b", "a@@b.com", "a b@c.com", "a@b..com", "a@.b.com", "a@b.com."] {
            assert!(fields::email(&json!(bad)).is_err(), "{bad}");
        }
        assert!(fields::email(&json!(format!("{}@example.com", "a".repeat(65)))).is_err());
    }

    #[test]
    fn dates_must_be_real_calendar_days() {
        assert_eq!(fields::date(&json!("2026-02-28")), Ok(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()));
        assert!(fields::date(&json!("2026-02-29")).is_err());
        assert!(fields::date(&json!("2026-2-1")).is_err());
        assert!(fields::date(&json!("1999-12-31")).is_err());
        assert!(fields::date(&json!(20260101)).is_err());
    }

    #[test]
    fn the_locale_is_optional_and_checked() {
        let base = json!({"companyName": "A", "primaryEmail": "a@b.co"});
        assert_eq!(NewPartner::parse(&base).unwrap().locale, None);
        let gb = NewPartner::parse(&json!({"companyName": "A", "primaryEmail": "a@b.co", "locale": "en-GB"})).unwrap();
        assert_eq!(gb.locale, Some(Locale::EnGb));
        let err =
            NewPartner::parse(&json!({"companyName": "A", "primaryEmail": "a@b.co", "locale": "fr-FR"})).unwrap_err();
        assert!(err.fields.contains_key("locale"), "{err:?}");
        assert_eq!(PartnerPatch::parse(&json!({"locale": "en_us"})).unwrap().locale, Some(Locale::EnUs));
        assert!(PartnerPatch::parse(&json!({"locale": 7})).unwrap_err().fields.contains_key("locale"));
    }

    #[test]
    fn new_partner_names_every_bad_field() {
        let err = NewPartner::parse(&json!({"companyName": "", "primaryEmail": "x", "status": "active"})).unwrap_err();
        assert_eq!(err.fields.len(), 3, "{err:?}");
        assert!(err.fields.contains_key("status"));
        let ok = NewPartner::parse(&json!({"companyName": " BuildPro ", "primaryEmail": "ops@buildpro.com"})).unwrap();
        assert_eq!(ok.company_name, "BuildPro");
    }

    #[test]
    fn an_empty_patch_is_refused() {
        assert!(PartnerPatch::parse(&json!({"version": 3})).is_err());
        let p = PartnerPatch::parse(&json!({"autoRenewal": false})).unwrap();
        assert_eq!(p.auto_renewal, Some(false));
        let p = PartnerPatch::parse(&json!({"subscriptionNotes": null})).unwrap();
        assert_eq!(p.subscription_notes, Some(None));
    }
}

/// An add-on on a running subscription: its Stripe item and what it costs per
/// billing period (after the bundle rule, as Stripe charges it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedAddOn {
    pub add_on_id: String,
    pub price: i64,
    pub price_id: String,
    pub item_id: String,
}
