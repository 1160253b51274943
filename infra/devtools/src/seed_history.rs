//! Months of subscription history for the revenue forecast and the elasticity
//! estimate (docs/intelligence.md), made of real transitions on past dates: each
//! partner signs up and moves onto a paid tier through `plan_signup` and
//! `plan_tier_change` with a context dated in the past, and some leave through
//! `plan_cancel`, all applied by `Store::apply_transition`, so the monthly
//! aggregates are exactly what those days' requests would have left.
//!
//! The pattern: gold gains 1–4 customers a month with a spring and summer peak
//! (a yearly season), and its oldest customer leaves every third month; platinum
//! gains one customer a month over the last `platinum_months` months. The same
//! replay seeds `make run` and the API test, which checks the forecast's history
//! against the month-end MRR returned here.

use chrono::NaiveDate;
use serde_json::json;
use tierdesk::domain::audit::AuditEntry;
use tierdesk::domain::forecast::month_plus;
use tierdesk::domain::money::BillingPeriod;
use tierdesk::domain::partner::{NewPartner, Partner};
use tierdesk::domain::subscription::{
    plan_cancel, plan_signup, plan_tier_change, Cancellation, Catalog, TierChange, Transition, TransitionContext,
    Trigger, TriggerType,
};
use tierdesk::store::{PartnerStore, Store, TierStore};

/// Gold signups by calendar month (January first).
pub const GOLD_SIGNUPS: [usize; 12] = [1, 1, 2, 3, 4, 4, 3, 2, 1, 1, 1, 1];
/// Every this many months the oldest gold customer leaves.
pub const CHURN_EVERY: usize = 3;

const NAMES: [&str; 10] =
    ["Upland", "Valley", "Vista", "Walnut", "Westfield", "Willow", "Windmill", "Yarrow", "Yellowstone", "Zenith"];
const TRADES: [&str; 8] = ["Builders", "Homes", "Roofing", "Supply", "Realty", "Contracting", "Design", "Plumbing"];

/// Month-end MRR of each tier the replay touched, by month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthEnd {
    pub month: String,
    pub gold: i64,
    pub platinum: i64,
}

fn day(month: &str, d: u32) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(&format!("{month}-{d:02}"), "%Y-%m-%d").map_err(|e| e.to_string())
}

fn context(date: NaiveDate) -> TransitionContext {
    let id = || ulid::Ulid::new().to_string().to_lowercase();
    TransitionContext {
        today: date,
        at: format!("{}T10:00:00.000Z", date.format("%Y-%m-%d")),
        actor: "seed:history".into(),
        request_id: None,
        transition_id: id(),
        movement_id: id(),
        trigger: Trigger { trigger_type: TriggerType::Automated, sales_rep: None, promotion_id: None, reason: None },
    }
}

async fn apply(store: &Store, t: &Transition, c: &TransitionContext) -> Result<(), String> {
    let audit = AuditEntry {
        audit_id: c.transition_id.clone(),
        entity_type: "partner",
        entity_id: t.after.partner_id.clone(),
        action: "partner.seed_history",
        actor: c.actor.clone(),
        at: c.at.clone(),
        request_id: "seed-history".into(),
        before: None,
        after: None,
    };
    store.apply_transition(t, &audit).await.map_err(|e| format!("history transition: {e}"))
}

/// Signs partner `n` up on `date` and moves them onto `tier`, paying monthly.
async fn subscribe(
    store: &Store,
    catalog: Catalog<'_>,
    domain: &str,
    n: usize,
    tier: &str,
    date: NaiveDate,
) -> Result<Partner, String> {
    let name = format!("{} {} {n}", NAMES[n % NAMES.len()], TRADES[(n / NAMES.len()) % TRADES.len()]);
    let new = NewPartner::parse(&json!({"companyName": name, "primaryEmail": format!("history-{n:04}@{domain}")}))
        .map_err(|e| format!("{e:?}"))?;
    let c = context(date);
    // An id of its signup day, as the API would have given it then: the partner
    // list (newest id first) shows these after today's demo partners.
    let born: std::time::SystemTime = date.and_hms_opt(10, 0, 0).unwrap_or_default().and_utc().into();
    let id = format!("prt_{}", ulid::Ulid::from_datetime(born).to_string().to_lowercase());
    let signup = plan_signup(&id, new, catalog, &c).map_err(|e| e.to_string())?;
    apply(store, &signup, &c).await?;
    let c = context(date);
    let change = TierChange {
        tier: tier.into(),
        billing_period: Some(BillingPeriod::Monthly),
        subscription_end_date: NaiveDate::from_ymd_opt(2031, 1, 1),
        ..TierChange::default()
    };
    let paid = plan_tier_change(&signup.after, &change, catalog, &c).map_err(|e| e.to_string())?;
    apply(store, &paid, &c).await?;
    Ok(paid.after)
}

/// Replays `months` months from `first` (`yyyy-mm`); partners' addresses are
/// `history-NNNN@{domain}`. The tiers' monthly prices are the catalog's.
pub async fn replay(
    store: &Store,
    first: &str,
    months: u32,
    platinum_months: u32,
    domain: &str,
) -> Result<Vec<MonthEnd>, String> {
    let tiers = store.all_tiers().await.map_err(|e| e.to_string())?;
    let catalog = Catalog::new(&tiers);
    let price = |id: &str| tiers.iter().find(|t| t.tier_id == id).map_or(0, |t| t.prices.monthly);
    let (gold_price, platinum_price) = (price("gold"), price("platinum"));
    let mut out = Vec::new();
    let (mut active, mut n, mut platinum) = (Vec::new(), 0, 0);
    for i in 0..months {
        let month = month_plus(first, i);
        let calendar: usize = month[5..].parse().map_err(|_| format!("bad month {month}"))?;
        for k in 0..GOLD_SIGNUPS[calendar - 1] {
            n += 1;
            active.push(subscribe(store, catalog, domain, n, "gold", day(&month, 3 + k as u32)?).await?);
        }
        if i as usize % CHURN_EVERY == CHURN_EVERY - 1 && !active.is_empty() {
            let leaving = active.remove(0);
            let c = context(day(&month, 20)?);
            let cancel = Cancellation { reason: "moving on".into(), immediate: true, version: None };
            let t = plan_cancel(&leaving, &cancel, catalog, &c).map_err(|e| e.to_string())?;
            apply(store, &t, &c).await?;
        }
        if i + platinum_months >= months {
            n += 1;
            platinum += 1;
            subscribe(store, catalog, domain, n, "platinum", day(&month, 10)?).await?;
        }
        out.push(MonthEnd { month, gold: active.len() as i64 * gold_price, platinum: platinum * platinum_price });
    }
    Ok(out)
}

/// `make run`'s history: the 30 complete months before this one, platinum over
/// the last 14. Skipped when its first partner exists (seeding twice).
pub async fn seed_history(store: &Store) -> Result<Vec<String>, String> {
    const DOMAIN: &str = "history.example.com";
    let first_address = format!("history-0001@{DOMAIN}");
    if store.partner_id_by_email(&first_address).await.map_err(|e| e.to_string())?.is_some() {
        return Ok(vec!["subscription history: exists".into()]);
    }
    let this_month = tierdesk::domain::analytics::month_of(chrono::Utc::now().date_naive());
    let first = tierdesk::domain::analytics::month_minus(&this_month, 30);
    let months = replay(store, &first, 30, 14, DOMAIN).await?;
    let last = months.last().map(|m| (m.gold, m.platinum)).unwrap_or_default();
    Ok(vec![format!(
        "subscription history: 30 months from {first}; gold MRR now {}, platinum {}",
        tierdesk::domain::money::format_amount(last.0, "usd"),
        tierdesk::domain::money::format_amount(last.1, "usd")
    )])
}
