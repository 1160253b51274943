//! Revenue analytics against the local stack. 2,000 partners live through 13 months
//! (signups, trials, conversions, upgrades, downgrades, renewals with billing-period
//! switches, 100%-discounted terms, cancellations now and at term end, expiries,
//! reactivations) through the real transition mechanism on an injected clock. Every
//! figure each endpoint returns is then recomputed by brute force from the raw
//! history kept by the test (partner states and the MRR ledger), to the cent; the
//! CSV answers parse back to the JSON; the role matrix and bad input are checked.

use chrono::{DateTime, Days, NaiveDate, Utc};
use devtools::gateway::{self, Gateway, Handler};
use devtools::{routes, seed};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tierdesk::clock::FixedClock;
use tierdesk::domain::analytics::{centi, div_round, month_minus, month_of, months_between, rate_bp, LTV_CAP_MONTHS};
use tierdesk::domain::audit::AuditEntry;
use tierdesk::domain::money::{BillingPeriod, Percent};
use tierdesk::domain::partner::{NewPartner, Partner, SubscriptionStatus};
use tierdesk::domain::revenue::MovementKind;
use tierdesk::domain::subscription::{
    plan_cancel, plan_expiration, plan_signup, plan_tier_change, Cancellation, Catalog, TierChange, Transition,
    TransitionContext, TransitionEvent, Trigger, TriggerType,
};
use tierdesk::domain::tier::{Tier, TierType};
use tierdesk::store::{PartnerStore, TierStore};
use tierdesk_tests::{read_repo_file, TestApp};

const PARTNERS: u64 = 2_000;
const NOW: &str = "2026-11-20T12:00:00Z";
const START: &str = "2025-11-01";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn plus(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).unwrap()
}

/// xorshift64*: a partner's script depends on its number only.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

/// One applied transition, as the test saw it.
#[derive(Clone)]
struct Rec {
    day: NaiveDate,
    before: Option<Partner>,
    after: Partner,
    event: TransitionEvent,
    movement: Option<(MovementKind, i64)>,
}

impl Rec {
    fn month(&self) -> String {
        month_of(self.day)
    }
}

fn ctx(d: NaiveDate) -> TransitionContext {
    let id = || ulid::Ulid::new().to_string().to_lowercase();
    TransitionContext {
        today: d,
        at: format!("{}T10:00:00.000Z", d.format("%Y-%m-%d")),
        actor: "simulation".into(),
        request_id: None,
        transition_id: id(),
        movement_id: id(),
        trigger: Trigger { trigger_type: TriggerType::Automated, sales_rep: None, promotion_id: None, reason: None },
    }
}

async fn apply(app: &TestApp, t: &Transition, c: &TransitionContext) {
    let audit = AuditEntry {
        audit_id: c.transition_id.clone(),
        entity_type: "partner",
        entity_id: t.after.partner_id.clone(),
        action: "partner.simulate",
        actor: c.actor.clone(),
        at: c.at.clone(),
        request_id: "simulation".into(),
        before: None,
        after: None,
    };
    app.store.apply_transition(t, &audit).await.expect("transition applied");
}

fn paid_change(tier: &str, period: BillingPeriod, end: NaiveDate, discount: Option<f64>) -> TierChange {
    TierChange {
        tier: tier.into(),
        billing_period: Some(period),
        subscription_end_date: Some(end),
        discount_percent: discount.map(|d| Percent::parse(&json!(d)).unwrap()),
        ..TierChange::default()
    }
}

/// One partner's 13 months, applied in date order; returns what was applied.
async fn live(app: &TestApp, tiers: &[Tier], i: u64, now: NaiveDate) -> Vec<Rec> {
    let catalog = Catalog::new(tiers);
    let mut rng = Rng(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut recs: Vec<Rec> = Vec::new();
    let mut t = plus(day(START), rng.below(380));
    let new =
        NewPartner::parse(&json!({"companyName": format!("Partner {i}"), "primaryEmail": format!("p{i}@example.com")}))
            .unwrap();
    let c = ctx(t);
    let signup = plan_signup(&format!("prt_{i:05}"), new, catalog, &c).unwrap();
    apply(app, &signup, &c).await;
    recs.push(Rec { day: t, before: None, after: signup.after.clone(), event: signup.record.event, movement: None });
    let mut p = signup.after;
    loop {
        t = plus(t, 7 + rng.below(50));
        if t >= now {
            return recs;
        }
        let r = rng.below(100);
        let paid_tier = if rng.below(3) == 0 { "platinum" } else { "gold" };
        let period = if rng.below(4) == 0 { BillingPeriod::Yearly } else { BillingPeriod::Monthly };
        let end = plus(t, 30 + rng.below(170));
        let c = ctx(t);
        let plan = match p.subscription_status {
            SubscriptionStatus::Trialing => match r {
                0..=64 => plan_tier_change(
                    &p,
                    &TierChange { tier: p.engagement_tier.clone(), ..TierChange::default() },
                    catalog,
                    &c,
                ),
                65..=79 => {
                    let other = if p.engagement_tier == "gold" { "platinum" } else { "gold" };
                    plan_tier_change(&p, &paid_change(other, period, end, None), catalog, &c)
                }
                _ => plan_cancel(
                    &p,
                    &Cancellation { reason: "trial not for us".into(), immediate: true, version: None },
                    catalog,
                    &c,
                ),
            },
            SubscriptionStatus::Cancelled if p.on_paid_term() => match (p.subscription_end_date, r) {
                (Some(e), _) if e < t => plan_expiration(&p, catalog, &c, 0)
                    .and_then(|o| o.ok_or(tierdesk::domain::subscription::SubscriptionError::NoChange)),
                (_, 0..=29) => {
                    plan_tier_change(&p, &paid_change(&p.engagement_tier.clone(), period, end, None), catalog, &c)
                }
                _ => continue,
            },
            _ if p.engagement_tier == "free" => match r {
                0..=29 => {
                    let mut change = paid_change(paid_tier, period, end, None);
                    change.trial_days = Some(14);
                    plan_tier_change(&p, &change, catalog, &c)
                }
                30..=59 => {
                    let discount = match rng.below(20) {
                        0 => Some(100.0),
                        1 | 2 => Some(20.0),
                        _ => None,
                    };
                    plan_tier_change(&p, &paid_change(paid_tier, period, end, discount), catalog, &c)
                }
                _ => continue,
            },
            _ => match r {
                0..=19 => {
                    let other = if p.engagement_tier == "gold" { "platinum" } else { "gold" };
                    plan_tier_change(&p, &paid_change(other, period, end, None), catalog, &c)
                }
                20..=34 => {
                    plan_tier_change(&p, &paid_change(&p.engagement_tier.clone(), period, end, None), catalog, &c)
                }
                35..=49 => plan_cancel(
                    &p,
                    &Cancellation { reason: "too expensive".into(), immediate: true, version: None },
                    catalog,
                    &c,
                ),
                50..=64 => plan_cancel(
                    &p,
                    &Cancellation { reason: "end of term".into(), immediate: false, version: None },
                    catalog,
                    &c,
                ),
                _ => continue,
            },
        };
        let Ok(tr) = plan else { continue };
        apply(app, &tr, &c).await;
        recs.push(Rec {
            day: t,
            before: tr.before.clone(),
            after: tr.after.clone(),
            event: tr.record.event,
            movement: tr.movement.as_ref().map(|m| (m.kind, m.amount)),
        });
        p = tr.after;
    }
}

// ---- The brute-force model -------------------------------------------------------

fn in_force(p: &Partner) -> bool {
    matches!(
        p.subscription_status,
        SubscriptionStatus::Active | SubscriptionStatus::Trialing | SubscriptionStatus::PastDue
    ) || p.subscription_status == SubscriptionStatus::Cancelled && p.subscription_end_date.is_some()
}

#[derive(Default, Clone, Copy, Debug)]
struct Lvl {
    sub: i64,
    paying: i64,
    mrr: i64,
}

#[derive(Default, Clone, Copy, Debug)]
struct Fl {
    entered: i64,
    exited: i64,
    upgrades_in: i64,
    downgrades_out: i64,
    conversions: i64,
    paying_in: i64,
    churned: i64,
}

struct Model {
    partners: Vec<Vec<Rec>>,
    now: String,
}

impl Model {
    /// The partner's state at the end of `month` (None before its signup).
    fn state<'a>(recs: &'a [Rec], month: &str) -> Option<&'a Partner> {
        recs.iter().take_while(|r| r.month().as_str() <= month).last().map(|r| &r.after)
    }

    fn level(&self, tier: Option<&str>, month: &str) -> Lvl {
        let mut l = Lvl::default();
        for recs in &self.partners {
            if let Some(p) = Self::state(recs, month).filter(|p| tier.is_none_or(|t| p.engagement_tier == t)) {
                l.sub += i64::from(in_force(p));
                l.paying += i64::from(p.mrr > 0);
                l.mrr += p.mrr;
            }
        }
        l
    }

    fn recs_in<'a>(&'a self, month: &'a str) -> impl Iterator<Item = (usize, &'a Rec)> + 'a {
        self.partners.iter().flat_map(|recs| recs.iter().enumerate()).filter(move |(_, r)| r.month() == month)
    }

    fn flows(&self, tier: &str, month: &str) -> Fl {
        let mut f = Fl::default();
        for recs in &self.partners {
            for (k, r) in recs.iter().enumerate().filter(|(_, r)| r.month() == month) {
                let was = r.before.as_ref().is_some_and(|b| b.engagement_tier == tier && in_force(b));
                let is = r.after.engagement_tier == tier && in_force(&r.after);
                f.entered += i64::from(is && !was);
                let paid_here_before = r.before.as_ref().is_some_and(|b| b.mrr > 0 && b.engagement_tier == tier);
                f.paying_in += i64::from(r.after.engagement_tier == tier && r.after.mrr > 0 && !paid_here_before);
                f.exited += i64::from(was && !is);
                let from = r.before.as_ref().map(|b| b.engagement_tier.as_str());
                let moved = from.is_some_and(|f| f != r.after.engagement_tier);
                if moved && r.event == TransitionEvent::Upgrade && r.after.engagement_tier == tier {
                    f.upgrades_in += 1;
                }
                if moved && r.event.is_downgrade() && from == Some(tier) {
                    f.downgrades_out += 1;
                }
                match r.movement {
                    Some((MovementKind::New, _)) if r.after.engagement_tier == tier => f.conversions += 1,
                    Some((MovementKind::Churn, _)) if from == Some(tier) => {
                        // The latest start of paying before this churn, from the ledger.
                        let started = recs[..k]
                            .iter()
                            .rev()
                            .find(|x| matches!(x.movement, Some((MovementKind::New | MovementKind::Reactivation, _))));
                        if started.is_none_or(|s| s.month() != month) {
                            f.churned += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
        f
    }

    fn churned_all_tiers(&self, tiers: &[Tier], month: &str) -> i64 {
        tiers.iter().map(|t| self.flows(&t.tier_id, month).churned).sum()
    }

    /// Funnel counts of the transitions passing `keep`, by the tier they land on:
    /// signups, trial starts, first payments, trial conversions, direct payments.
    fn funnel_counts(&self, tier: Option<&str>, month: Option<&str>) -> [i64; 5] {
        let mut c = [0; 5];
        for recs in &self.partners {
            for (k, r) in recs.iter().enumerate() {
                if month.is_some_and(|m| r.month() != m) || tier.is_some_and(|t| r.after.engagement_tier != t) {
                    continue;
                }
                let trialled_before =
                    recs[..k].iter().any(|x| x.after.subscription_status == SubscriptionStatus::Trialing);
                if r.before.is_none() {
                    c[0] += 1;
                }
                if r.after.subscription_status == SubscriptionStatus::Trialing && !trialled_before {
                    c[1] += 1;
                }
                if let Some((MovementKind::New, _)) = r.movement {
                    c[2] += 1;
                    let from_trial =
                        r.before.as_ref().is_some_and(|b| b.subscription_status == SubscriptionStatus::Trialing);
                    c[3] += i64::from(from_trial);
                    c[4] += i64::from(!from_trial && !trialled_before);
                }
            }
        }
        c
    }
}

fn pct(bp: Option<i64>) -> Value {
    bp.map_or(Value::Null, |b| json!(centi(b)))
}

fn funnel_json(c: [i64; 5]) -> Value {
    json!({
        "freeUsers": c[0], "trialUsers": c[1], "paidUsers": c[2], "trialConversions": c[3], "directPaid": c[4],
        "freeToTrial": pct(rate_bp(c[1], c[0])),
        "trialToPaid": pct(rate_bp(c[3], c[1])),
        "freeToDirectPaid": pct(rate_bp(c[4], c[0])),
    })
}

fn expected_metrics(m: &Model, t: &Tier) -> (Value, Option<i64>, Option<i64>) {
    let now = m.now.as_str();
    let id = t.tier_id.as_str();
    let cur = m.level(Some(id), now);
    let this = m.flows(id, now);
    let opening = m.level(Some(id), &month_minus(now, 1));
    let net = this.entered - this.exited;
    let growth = rate_bp(net, opening.sub);
    let arpu = div_round(cur.mrr, cur.paying);
    let last_churned = m.flows(id, &month_minus(now, 1)).churned;
    let base = m.level(Some(id), &month_minus(now, 2)).paying;
    let cap = arpu * LTV_CAP_MONTHS;
    let ltv = if last_churned == 0 || base == 0 { cap } else { div_round(arpu * base, last_churned).min(cap) };
    let churn = rate_bp(last_churned, base);
    let base3 = m.level(Some(id), &month_minus(now, 4)).paying;
    let churned3: i64 = (1..=3).map(|k| m.flows(id, &month_minus(now, k)).churned).sum();
    let count = |status: SubscriptionStatus, on_term: bool| {
        m.partners
            .iter()
            .filter_map(|r| Model::state(r, now))
            .filter(|p| p.engagement_tier == id && p.subscription_status == status)
            .filter(|p| !on_term || p.subscription_end_date.is_some())
            .count() as i64
    };
    let trialing = count(SubscriptionStatus::Trialing, false);
    let past_due = count(SubscriptionStatus::PastDue, false);
    let cancelling = count(SubscriptionStatus::Cancelled, true);
    let trends: Vec<Value> = months_between(&month_minus(now, 11), now)
        .iter()
        .map(|mo| {
            let l = m.level(Some(id), mo);
            json!({"month": mo, "subscriptions": l.sub, "revenue": l.mrr, "churn": m.flows(id, mo).churned})
        })
        .collect();
    let v = json!({
        "tierId": id,
        "name": t.name,
        "type": match t.tier_type { TierType::Individual => "individual", TierType::Dealer => "dealer" },
        "isPremium": t.is_premium,
        "month": now,
        "activeSubscriptions": cur.sub,
        "payingCustomers": cur.paying,
        "trialing": trialing,
        "pastDue": past_due,
        "cancelling": cancelling,
        "newSubscriptionsThisMonth": this.entered,
        "cancellationsThisMonth": this.exited,
        "netChange": net,
        "growthRate": pct(growth),
        "mrr": cur.mrr,
        "arr": cur.mrr * 12,
        "arpu": arpu,
        "lifetimeValue": ltv,
        "customerChurnRate": pct(churn),
        "conversionRate": pct(rate_bp(this.conversions, this.paying_in)),
        "upgradeRate": pct(rate_bp(this.upgrades_in, this.entered)),
        "downgradeRate": pct(rate_bp(this.downgrades_out, opening.sub)),
        "retentionRate": pct(rate_bp((base3 - churned3).max(0), base3)),
        "avgListingsPerUser": 0.0,
        "avgImagesPerListing": 0.0,
        "limitUtilization": pct(rate_bp(0, cur.sub)),
        "featureUsage": [],
        "monthlyTrends": trends,
    });
    (v, growth, churn)
}

fn leader(entries: &[(String, Option<(i64, i64)>)]) -> Value {
    let mut best: Option<(&String, (i64, i64))> = None;
    for (id, key) in entries {
        if let Some(k) = key {
            if best.is_none_or(|(_, b)| *k > b) {
                best = Some((id, *k));
            }
        }
    }
    best.map_or(Value::Null, |(id, _)| json!(id))
}

fn expected_summary(m: &Model, tiers: &[Tier]) -> Value {
    let now = m.now.as_str();
    let mut metrics = Vec::new();
    let (mut top, mut growth, mut churn) = (Vec::new(), Vec::new(), Vec::new());
    for t in tiers {
        let (v, g, c) = expected_metrics(m, t);
        top.push((t.tier_id.clone(), Some((v["mrr"].as_i64().unwrap(), v["activeSubscriptions"].as_i64().unwrap()))));
        growth.push((t.tier_id.clone(), g.map(|g| (g, v["netChange"].as_i64().unwrap()))));
        churn.push((t.tier_id.clone(), c.filter(|c| *c > 0).map(|c| (c, 0))));
        metrics.push(v);
    }
    let cur = m.level(None, now);
    let churned = m.churned_all_tiers(tiers, &month_minus(now, 1));
    let base = m.level(None, &month_minus(now, 2)).paying;
    json!({
        "month": now,
        "totalMRR": cur.mrr,
        "totalARR": cur.mrr * 12,
        "totalActiveSubscriptions": cur.sub,
        "trialing": metrics.iter().map(|v| v["trialing"].as_i64().unwrap()).sum::<i64>(),
        "pastDue": metrics.iter().map(|v| v["pastDue"].as_i64().unwrap()).sum::<i64>(),
        "cancelling": metrics.iter().map(|v| v["cancelling"].as_i64().unwrap()).sum::<i64>(),
        "payingCustomers": cur.paying,
        "averageChurnRate": pct(rate_bp(churned, base)),
        "topPerformingTier": leader(&top),
        "fastestGrowingTier": leader(&growth),
        "highestChurnTier": leader(&churn),
        "conversionFunnel": funnel_json(m.funnel_counts(None, None)),
        "revenueBreakdown": expected_breakdown(m, tiers),
        "metrics": metrics,
    })
}

fn expected_breakdown(m: &Model, tiers: &[Tier]) -> Value {
    let now = m.now.as_str();
    let states: Vec<&Partner> = m.partners.iter().filter_map(|r| Model::state(r, now)).collect();
    let total: i64 = states.iter().map(|p| p.mrr).sum();
    let share =
        |k: &str, v: &str, revenue: i64| json!({k: v, "revenue": revenue, "percentage": pct(rate_bp(revenue, total))});
    let tier_mrr = |id: &str| states.iter().filter(|p| p.engagement_tier == id).map(|p| p.mrr).sum::<i64>();
    let mut types: BTreeMap<&str, i64> = BTreeMap::new();
    for t in tiers {
        let ty = match t.tier_type {
            TierType::Individual => "individual",
            TierType::Dealer => "dealer",
        };
        *types.entry(ty).or_default() += tier_mrr(&t.tier_id);
    }
    let by_period =
        |bp: BillingPeriod| states.iter().filter(|p| p.billing_period == Some(bp)).map(|p| p.mrr).sum::<i64>();
    json!({
        "byTier": tiers.iter().map(|t| share("tierId", &t.tier_id, tier_mrr(&t.tier_id))).collect::<Vec<_>>(),
        "byType": types.into_iter().map(|(k, v)| share("type", k, v)).collect::<Vec<_>>(),
        "byBillingPeriod": [share("period", "monthly", by_period(BillingPeriod::Monthly)), share("period", "yearly", by_period(BillingPeriod::Yearly))],
    })
}

fn expected_movements(m: &Model, tiers: &[Tier], months: &[String]) -> Vec<Value> {
    months
        .iter()
        .map(|mo| {
            let mut sum: HashMap<&'static str, (i64, i64)> = HashMap::new();
            for (_, r) in m.recs_in(mo) {
                if let Some((kind, amount)) = r.movement {
                    let e = sum.entry(kind.as_str()).or_default();
                    e.0 += amount.abs();
                    e.1 += 1;
                }
            }
            let get = |k: MovementKind| sum.get(k.as_str()).copied().unwrap_or_default();
            let (new, exp, con, churn, react) = (
                get(MovementKind::New),
                get(MovementKind::Expansion),
                get(MovementKind::Contraction),
                get(MovementKind::Churn),
                get(MovementKind::Reactivation),
            );
            let opening = m.level(None, &month_minus(mo, 1));
            let closing = m.level(None, mo);
            let lost = churn.0 + con.0;
            let churned = m.churned_all_tiers(tiers, mo);
            // The ledger adds up: opening + net new = closing, to the cent.
            assert_eq!(opening.mrr + new.0 + exp.0 + react.0 - lost, closing.mrr, "ledger of {mo}");
            json!({
                "month": mo, "openingMrr": opening.mrr,
                "new": new.0, "expansion": exp.0, "contraction": con.0, "churn": churn.0, "reactivation": react.0,
                "netNewMrr": new.0 + exp.0 + react.0 - lost, "closingMrr": closing.mrr,
                "newCount": new.1, "expansionCount": exp.1, "contractionCount": con.1, "churnCount": churn.1,
                "reactivationCount": react.1,
                "openingCustomers": opening.paying, "churnedCustomers": churned,
                "customerChurnRate": pct(rate_bp(churned, opening.paying)),
                "grossMrrChurnRate": pct(rate_bp(lost, opening.mrr)),
                "netMrrChurnRate": pct(rate_bp(lost - exp.0 - react.0, opening.mrr)),
            })
        })
        .collect()
}

fn expected_cohorts(m: &Model, cohorts: &[String]) -> Vec<Value> {
    let now = m.now.as_str();
    cohorts
        .iter()
        .map(|c| {
            let members: Vec<&Vec<Rec>> =
                m.partners.iter().filter(|r| month_of(r[0].after.signup_date) == *c).collect();
            let signups = members.len() as i64;
            let mut base = None;
            let months: Vec<Value> = months_between(c, now)
                .iter()
                .enumerate()
                .map(|(k, mo)| {
                    let states: Vec<&Partner> = members.iter().filter_map(|r| Model::state(r, mo)).collect();
                    let s = states.iter().filter(|p| in_force(p)).count() as i64;
                    let p = states.iter().filter(|p| p.mrr > 0).count() as i64;
                    let mrr: i64 = states.iter().map(|p| p.mrr).sum();
                    let (bp, bm) = *base.get_or_insert((p, mrr));
                    json!({
                        "month": mo, "offset": k, "activePartners": s, "payingCustomers": p, "mrr": mrr,
                        "partnerRetention": pct(rate_bp(s, signups)),
                        "customerRetention": pct(rate_bp(p, bp)),
                        "netMrrRetention": pct(rate_bp(mrr, bm)),
                    })
                })
                .collect();
            json!({"cohort": c, "signups": signups, "months": months})
        })
        .collect()
}

// ---- Harness ---------------------------------------------------------------------

async fn gateway_at(app: &TestApp, clock: Arc<FixedClock>) -> Arc<Gateway> {
    let mut handlers = gateway::handlers_on(app.store.clone(), &app.config).await;
    let a = Arc::new(analytics::Analytics::new(app.function_app().with_clock(clock)));
    let handler: Handler = Arc::new(move |req| {
        let a = a.clone();
        Box::pin(async move { analytics::handle(&a, req).await })
    });
    handlers.insert("AnalyticsFunction".into(), handler);
    let routes = routes::from_template(&read_repo_file("template.yaml")).unwrap();
    Arc::new(Gateway::new(routes, &handlers, app.secret().to_string()).unwrap())
}

async fn get(gw: &Gateway, app: &TestApp, path: &str) -> Value {
    let (status, body) = seed::call_json(gw, "GET", path, Some(&app.token("admin")), None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn get_csv(gw: &Gateway, app: &TestApp, path: &str) -> Vec<Vec<String>> {
    let (path, query) = path.split_once('?').unwrap();
    let call = devtools::event::HttpCall {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        headers: vec![("authorization".into(), format!("Bearer {}", app.token("admin")))],
        body: None,
    };
    let response = gw.call(call).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let text = match response.body() {
        lambda_http::Body::Text(s) => s.clone(),
        _ => panic!("csv is text"),
    };
    tierdesk::http::csv::parse(&text).unwrap()
}

fn same_figure(csv: &str, json: &Value, what: &str) {
    match json {
        Value::Null => assert_eq!(csv, "", "{what}"),
        Value::String(s) => assert_eq!(csv, s, "{what}"),
        Value::Bool(b) => assert_eq!(csv, b.to_string(), "{what}"),
        Value::Number(n) => assert_eq!(csv.parse::<f64>().ok(), n.as_f64(), "{what}: {csv} vs {n}"),
        other => panic!("{what}: not a figure: {other}"),
    }
}

fn leaves(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.values().map(leaves).sum(),
        Value::Array(a) => a.iter().map(leaves).sum(),
        _ => 1,
    }
}

/// `field,value` CSV: every row names a figure of the JSON answer by JSON Pointer,
/// and every figure has its row.
fn assert_flat_csv(rows: &[Vec<String>], json: &Value) {
    assert_eq!(rows[0], vec!["field", "value"]);
    assert_eq!(rows.len() - 1, leaves(json));
    for row in &rows[1..] {
        let v = json.pointer(&row[0]).unwrap_or_else(|| panic!("{} not in the JSON", row[0]));
        same_figure(&row[1], v, &row[0]);
    }
}

fn assert_table_csv(rows: &[Vec<String>], json_rows: &[Value]) {
    let header = &rows[0];
    assert_eq!(rows.len() - 1, json_rows.len());
    for (row, v) in rows[1..].iter().zip(json_rows) {
        for (col, cell) in header.iter().zip(row) {
            same_figure(cell, &v[col.as_str()], col);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analytics_equal_a_brute_force_recount_of_13_months_of_2000_partners() {
    let app = TestApp::seeded().await;
    let tiers = app.store.all_tiers().await.unwrap();
    let now_at = DateTime::parse_from_rfc3339(NOW).unwrap().with_timezone(&Utc);
    let now = now_at.date_naive();

    let started = Instant::now();
    let partners: Vec<Vec<Rec>> = futures::stream::iter(0..PARTNERS)
        .map(|i| {
            let (app, tiers, started) = (&app, &tiers, &started);
            async move {
                let recs = live(app, tiers, i, now).await;
                if (i + 1) % 250 == 0 {
                    eprintln!("{} partners simulated after {:?}", i + 1, started.elapsed());
                }
                recs
            }
        })
        .buffered(8)
        .collect()
        .await;
    let transitions: usize = partners.iter().map(Vec::len).sum();
    eprintln!("simulated {PARTNERS} partners, {transitions} transitions in {:?}", started.elapsed());
    let model = Model { partners, now: month_of(now) };
    // The simulation covers every movement kind and funnel path.
    let all: Vec<&Rec> = model.partners.iter().flatten().collect();
    for kind in [
        MovementKind::New,
        MovementKind::Expansion,
        MovementKind::Contraction,
        MovementKind::Churn,
        MovementKind::Reactivation,
    ] {
        assert!(all.iter().any(|r| r.movement.is_some_and(|(k, _)| k == kind)), "no {kind:?}");
    }
    assert!(all.iter().any(|r| r.event == TransitionEvent::TrialConversion));
    assert!(all.iter().any(|r| r.event == TransitionEvent::Expiration));
    assert!(all.iter().any(|r| r.after.billing_period == Some(BillingPeriod::Yearly) && r.after.mrr > 0));
    assert!(all.iter().any(|r| r.after.price_per_period == 0 && r.after.engagement_tier != "free"));

    let gw = gateway_at(&app, Arc::new(FixedClock::new(now_at))).await;

    // Summary, and each tier's metrics equal to its entry.
    let summary = get(&gw, &app, "/api/admin/tiers/analytics").await;
    let expected = expected_summary(&model, &tiers);
    for (got, want) in summary["metrics"].as_array().unwrap().iter().zip(expected["metrics"].as_array().unwrap()) {
        assert_eq!(got, want, "metrics of {}", want["tierId"]);
    }
    assert_eq!(summary, expected);
    assert!(summary["totalMRR"].as_i64().unwrap() > 0);
    for t in &tiers {
        let path = format!("/api/admin/tiers/{}/metrics", t.tier_id);
        let one = get(&gw, &app, &path).await;
        let entry = summary["metrics"].as_array().unwrap().iter().find(|m| m["tierId"] == t.tier_id.as_str()).unwrap();
        assert_eq!(&one, entry);
        assert_flat_csv(&get_csv(&gw, &app, &format!("{path}?format=csv")).await, &one);
    }
    assert_flat_csv(&get_csv(&gw, &app, "/api/admin/tiers/analytics?format=csv").await, &summary);

    // Revenue.
    let revenue = get(&gw, &app, "/api/admin/tiers/revenue").await;
    let month = model.now.clone();
    let cur = model.level(None, &month);
    let trend_months = months_between(&month_minus(&month, 11), &month);
    let moves = expected_movements(&model, &tiers, &trend_months);
    let trends: Vec<Value> = trend_months
        .iter()
        .zip(&moves)
        .map(|(mo, mv)| {
            let by_tier: Vec<Value> =
                tiers.iter().map(|t| json!({"tierId": t.tier_id, "mrr": model.level(Some(&t.tier_id), mo).mrr})).collect();
            json!({"month": mo, "mrr": mv["closingMrr"], "arr": mv["closingMrr"].as_i64().unwrap() * 12, "netNewMrr": mv["netNewMrr"], "byTier": by_tier})
        })
        .collect();
    assert_eq!(
        revenue,
        json!({
            "month": month, "totalMRR": cur.mrr, "totalARR": cur.mrr * 12, "payingCustomers": cur.paying,
            "arpu": div_round(cur.mrr, cur.paying), "revenueBreakdown": expected_breakdown(&model, &tiers), "trends": trends,
        })
    );
    assert_flat_csv(&get_csv(&gw, &app, "/api/admin/tiers/revenue?format=csv").await, &revenue);

    // Funnel.
    let funnel = get(&gw, &app, "/api/admin/tiers/funnel").await;
    let monthly: Vec<Value> = trend_months
        .iter()
        .map(|mo| {
            let mut v = funnel_json(model.funnel_counts(None, Some(mo)));
            v["month"] = json!(mo);
            v
        })
        .collect();
    let by_tier: Vec<Value> = tiers
        .iter()
        .map(|t| {
            let c = model.funnel_counts(Some(&t.tier_id), None);
            json!({"tierId": t.tier_id, "signups": c[0], "trialStarts": c[1], "firstPayments": c[2], "trialConversions": c[3], "directPaid": c[4]})
        })
        .collect();
    assert_eq!(
        funnel,
        json!({"month": month, "conversionFunnel": funnel_json(model.funnel_counts(None, None)), "monthly": monthly, "byTier": by_tier})
    );
    assert_eq!(funnel["conversionFunnel"], summary["conversionFunnel"]);
    assert_flat_csv(&get_csv(&gw, &app, "/api/admin/tiers/funnel?format=csv").await, &funnel);

    // Movements over all 13 months.
    let all_months = months_between("2025-11", &month);
    let path = format!("/api/admin/analytics/movements?from=2025-11&to={month}");
    let movements = get(&gw, &app, &path).await;
    assert_eq!(
        movements,
        json!({"from": "2025-11", "to": month, "months": expected_movements(&model, &tiers, &all_months)})
    );
    assert_table_csv(&get_csv(&gw, &app, &format!("{path}&format=csv")).await, movements["months"].as_array().unwrap());
    // The default window is the last twelve months.
    let default = get(&gw, &app, "/api/admin/analytics/movements").await;
    assert_eq!(default["months"].as_array().unwrap()[..], movements["months"].as_array().unwrap()[1..]);

    // Cohorts of every signup month.
    let path = format!("/api/admin/analytics/cohorts?from=2025-11&to={month}");
    let cohorts = get(&gw, &app, &path).await;
    assert_eq!(cohorts, json!({"from": "2025-11", "to": month, "cohorts": expected_cohorts(&model, &all_months)}));
    let rows: Vec<Value> = cohorts["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["months"].as_array().unwrap().iter().map(move |m| {
                let mut row = m.clone();
                row["cohort"] = c["cohort"].clone();
                row["signups"] = c["signups"].clone();
                row
            })
        })
        .collect();
    assert_table_csv(&get_csv(&gw, &app, &format!("{path}&format=csv")).await, &rows);
    eprintln!("analytics checked in {:?}", started.elapsed());
}

#[tokio::test]
async fn analytics_roles_revenue_redaction_and_bad_input() {
    let app = TestApp::seeded().await;
    let id = app.create_partner("Analytics Co").await["partnerId"].as_str().unwrap().to_string();
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/admin/partners/{id}/engagement-tier"),
            Some("admin"),
            Some(json!({"tier": "gold"})),
        )
        .await;
    assert_eq!(status, 200);
    let analytics_routes = [
        "/api/admin/tiers/analytics",
        "/api/admin/tiers/gold/metrics",
        "/api/admin/tiers/funnel",
        "/api/admin/analytics/cohorts",
        "/api/admin/analytics/storefront",
    ];
    let revenue_routes = ["/api/admin/tiers/revenue", "/api/admin/analytics/movements"];
    for path in analytics_routes.iter().chain(&revenue_routes) {
        let revenue = revenue_routes.contains(path);
        app.assert_access("GET", path, None, None, false).await;
        app.assert_access("GET", path, Some("partner"), None, false).await;
        app.assert_access("GET", path, Some("service"), None, false).await;
        app.assert_access("GET", path, Some("sales_rep"), None, !revenue).await;
        app.assert_access("GET", path, Some("sales_manager"), None, true).await;
        app.assert_access("GET", path, Some("admin"), None, true).await;
    }
    // A partner's own token on the admin surface: 404, as for any admin route.
    let (status, _) = app.call_with_token("GET", "/api/admin/tiers/analytics", &app.partner_token(&id), None).await;
    assert_eq!(status, 404);

    // Managers see revenue; reps see the counts without the money.
    let (_, full) = app.call("GET", "/api/admin/tiers/analytics", Some("sales_manager"), None).await;
    assert_eq!(full["totalMRR"], 360_000);
    assert_eq!(full["totalActiveSubscriptions"], 1);
    let gold = full["metrics"].as_array().unwrap().iter().find(|m| m["tierId"] == "gold").unwrap();
    assert_eq!((gold["activeSubscriptions"].as_i64(), gold["mrr"].as_i64()), (Some(1), Some(360_000)));
    let (_, rep) = app.call("GET", "/api/admin/tiers/analytics", Some("sales_rep"), None).await;
    assert!(rep.get("totalMRR").is_none() && rep.get("revenueBreakdown").is_none(), "{rep}");
    assert_eq!(rep["totalActiveSubscriptions"], 1);
    assert!(rep["metrics"][0].get("mrr").is_none() && rep["metrics"][0]["activeSubscriptions"].is_number());
    let (_, _, csv) = app.call_text("GET", "/api/admin/tiers/analytics?format=csv", "sales_rep").await;
    assert!(!csv.contains("MRR") && !csv.contains("/mrr"), "{csv}");

    let bad = [
        ("/api/admin/analytics/movements?from=2026-13", "from"),
        ("/api/admin/analytics/movements?to=26-01", "to"),
        ("/api/admin/analytics/movements?to=2999-01", "to"),
        ("/api/admin/analytics/cohorts?from=2020-01&to=2023-01", "from"),
        ("/api/admin/analytics/movements?from=2000-01&to=2000-06", "from"),
        ("/api/admin/analytics/movements?from=%2B2026-3", "from"),
        ("/api/admin/analytics/cohorts?to=%202026-03", "to"),
        ("/api/admin/tiers/analytics?format=xml", "format"),
    ];
    for (path, field) in bad {
        let (status, body) = app.call("GET", path, Some("admin"), None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"]["details"]["fields"][field].is_string(), "{path}: {body}");
    }
    // A `to` alone names `to`, never the `from` the caller did not send.
    let (status, body) = app.call("GET", "/api/admin/analytics/movements?to=2000-06", Some("admin"), None).await;
    assert_eq!(status, 400, "{body}");
    let named: Vec<&String> = body["error"]["details"]["fields"].as_object().unwrap().keys().collect();
    assert_eq!(named, ["to"], "{body}");
    // Twelve months back from an early `to` are cut at the look-back limit.
    let early =
        tierdesk::domain::analytics::month_minus(&tierdesk::domain::analytics::month_of(Utc::now().date_naive()), 55);
    let (status, body) =
        app.call("GET", &format!("/api/admin/analytics/movements?to={early}"), Some("admin"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["months"].as_array().unwrap().len(), 6, "{body}");
    for path in ["/api/admin/tiers/nope/metrics", "/api/admin/tiers/bad%23id/metrics"] {
        let (status, body) = app.call("GET", path, Some("admin"), None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
}

/// Seed 004's error format: every error carries `timestamp` (RFC 3339, from the
/// function's injected clock, not the machine's) and `severity` beside `code`,
/// `message` and `requestId`.
#[tokio::test]
async fn errors_carry_the_clocks_timestamp_and_a_severity() {
    let app = TestApp::seeded().await;
    let clock = Arc::new(FixedClock::new(DateTime::parse_from_rfc3339(NOW).unwrap().with_timezone(&Utc)));
    let gw = gateway_at(&app, clock.clone()).await;
    let admin = app.token("admin");
    let call = |path: &'static str| {
        let gw = gw.clone();
        let admin = admin.clone();
        async move { seed::call_json(&gw, "GET", path, Some(&admin), None).await }
    };
    let (status, body) = call("/api/admin/tiers/nope/metrics").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["timestamp"], "2026-11-20T12:00:00.000Z", "{body}");
    assert_eq!(body["error"]["severity"], "low");
    assert!(body["error"]["requestId"].is_string());
    clock.set(DateTime::parse_from_rfc3339("2026-11-21T08:30:00Z").unwrap().with_timezone(&Utc));
    let (status, body) = call("/api/admin/tiers/analytics?format=xml").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["fields"]["format"], "must be json or csv");
    assert_eq!(body["error"]["timestamp"], "2026-11-21T08:30:00.000Z", "the clock moved");
    assert_eq!(body["error"]["severity"], "low");
    // A refused state change is medium (the default app, on the system clock).
    let tier = json!({"tierId": "gold", "name": "Again", "prices": {"monthly": 1, "yearly": 10}});
    let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(tier)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "already_exists");
    assert_eq!(body["error"]["severity"], "medium");
    let at = DateTime::parse_from_rfc3339(body["error"]["timestamp"].as_str().unwrap()).unwrap();
    assert!((Utc::now() - at.with_timezone(&Utc)).num_seconds().abs() < 60);
}
