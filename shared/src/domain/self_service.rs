//! A partner's self-service billing beyond subscribe/upgrade/downgrade/cancel
//! (seed 003 §3.3): the upgrade flow's preview step, and the payment method
//! (brand and last four) recorded from Stripe. Pure: the period, the clock and the
//! card come in as parameters.

use super::billing::url;
use super::billing::{account_change, BillingChange};
use super::catalog::{gains, GainedFeature, RaisedLimit};
use super::money::BillingPeriod;
use super::partner::{Partner, PaymentMethodSummary};
use super::scoring::Factor;
use super::subscription::{Catalog, TransitionContext};
use super::tier::Tier;
use super::validation::{Fields, ValidationError};
use chrono::{DateTime, Months, NaiveDate};
use serde::Serialize;
use serde_json::Value;

/// The partner's running Stripe period, as Stripe has it (epoch seconds), and what
/// its item charges per period now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentPeriod {
    pub start: i64,
    pub end: i64,
    /// Cents per period of the subscription's current price.
    pub amount: i64,
    pub interval: BillingPeriod,
}

/// The proration of a price change at `at`, as Stripe computes it (and the
/// emulator does): the unused share of the old price is credited and the remaining
/// share of the new price charged, each to the second and each rounded to the cent
/// on its own, halves away from zero. A change of billing interval restarts the
/// period at `at`: the whole new price is charged instead of a share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proration {
    /// Zero or negative cents: the unused time on the current price.
    pub credit: i64,
    /// Cents: the remaining time on the new price (the whole new price when the
    /// interval changes).
    pub charge: i64,
    /// `credit + charge`.
    pub net: i64,
    /// What the upgrade invoice asks for now: the net, never below zero.
    pub amount_due_now: i64,
    /// The instant the proration is computed for (RFC 3339).
    pub proration_date: String,
    /// `line_half_up`: each line rounded to the cent, halves away from zero.
    pub rounding: &'static str,
}

/// `amount × (end − at) / (end − start)`, `at` clamped into the period, rounded to
/// the cent with halves away from zero (i128 arithmetic: no overflow, no float).
pub fn remaining_share(amount: i64, start: i64, end: i64, at: i64) -> i64 {
    if end <= start {
        return 0;
    }
    let at = at.clamp(start, end);
    let numerator = i128::from(amount) * i128::from(end - at);
    let denominator = i128::from(end - start);
    let magnitude = (2 * numerator.abs() + denominator) / (2 * denominator);
    let signed = if numerator < 0 { -magnitude } else { magnitude };
    i64::try_from(signed).unwrap_or(if signed < 0 { i64::MIN } else { i64::MAX })
}

pub fn prorate(period: &CurrentPeriod, new_amount: i64, new_interval: BillingPeriod, at: i64) -> Proration {
    let credit = -remaining_share(period.amount, period.start, period.end, at);
    let charge = if new_interval != period.interval {
        new_amount
    } else {
        remaining_share(new_amount, period.start, period.end, at)
    };
    let net = credit + charge;
    Proration {
        credit,
        charge,
        net,
        amount_due_now: net.max(0),
        proration_date: DateTime::from_timestamp(at, 0).map(crate::clock::rfc3339).unwrap_or_default(),
        rounding: "line_half_up",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewTier {
    pub tier_id: String,
    pub name: String,
    pub billing_period: BillingPeriod,
    /// Cents per billing period: what the partner pays now (current), or the
    /// target tier's current price version (target).
    pub price: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_version: Option<u32>,
    pub pcr_multiplier: f64,
    pub commitment_months: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextInvoice {
    /// Cents: the target price for one period (before any coupon the subscription carries).
    pub amount: i64,
    pub date: NaiveDate,
}

/// The upsell the scores already recommend for this partner (`Partner::upsell`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsellOffer {
    pub recommended_tier_id: String,
    pub score: u32,
    pub reasons: Vec<Factor>,
    /// Whether this preview's target is the recommended tier.
    pub matches_target: bool,
}

/// `POST /api/billing/upgrade/preview`: everything the portal's four steps need
/// (tier cards, payment, review, confirmation) for one upgrade, with nothing changed.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePreview {
    pub partner_id: String,
    pub current: PreviewTier,
    pub target: PreviewTier,
    pub currency: String,
    /// Target price minus current price per period (of the target's period), in cents.
    pub price_difference: i64,
    pub features_gained: Vec<GainedFeature>,
    pub limits_raised: Vec<RaisedLimit>,
    pub proration: Proration,
    pub next_invoice: NextInvoice,
    /// Upgrades apply at once.
    pub effective: &'static str,
    pub effective_date: NaiveDate,
    /// The term after the upgrade: the target's commitment from today.
    pub commitment_months: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<PaymentMethodSummary>,
    pub upsell: Option<UpsellOffer>,
}

fn date_of(ts: i64) -> NaiveDate {
    DateTime::from_timestamp(ts, 0).unwrap_or_default().date_naive()
}

/// The preview of moving `partner` from `from` to `to` (checked by
/// `check_plan_change` first) on `period`, at `at` (epoch seconds), priced at
/// `target_amount` (the target's current price version, as the upgrade charges).
#[allow(clippy::too_many_arguments)]
pub fn preview_upgrade(
    partner: &Partner,
    from: &Tier,
    to: &Tier,
    period: BillingPeriod,
    target_amount: i64,
    current: &CurrentPeriod,
    at: i64,
) -> UpgradePreview {
    let proration = prorate(current, target_amount, period, at);
    let next_date = if period != current.interval {
        let months = if period == BillingPeriod::Yearly { 12 } else { 1 };
        DateTime::from_timestamp(at, 0)
            .and_then(|t| t.checked_add_months(Months::new(months)))
            .map_or_else(|| date_of(current.end), |t| t.date_naive())
    } else {
        date_of(current.end)
    };
    let (features_gained, limits_raised) =
        if to.tier_id == from.tier_id { (Vec::new(), Vec::new()) } else { gains(from, to) };
    let upsell =
        partner.upsell.recommended_tier.as_ref().filter(|_| partner.upsell.opportunity).map(|tier| UpsellOffer {
            recommended_tier_id: tier.clone(),
            score: partner.upsell.score,
            reasons: partner.upsell.reasons.clone(),
            matches_target: *tier == to.tier_id,
        });
    UpgradePreview {
        partner_id: partner.partner_id.clone(),
        current: PreviewTier {
            tier_id: from.tier_id.clone(),
            name: from.name.clone(),
            billing_period: current.interval,
            price: current.amount,
            price_version: partner.price_version,
            pcr_multiplier: from.pcr_multiplier,
            commitment_months: from.commitment_months,
        },
        target: PreviewTier {
            tier_id: to.tier_id.clone(),
            name: to.name.clone(),
            billing_period: period,
            price: target_amount,
            price_version: Some(to.price_version),
            pcr_multiplier: to.pcr_multiplier,
            commitment_months: to.commitment_months,
        },
        currency: to.currency.clone(),
        price_difference: target_amount - from.prices.for_period(period),
        features_gained,
        limits_raised,
        proration,
        next_invoice: NextInvoice { amount: target_amount, date: next_date },
        effective: "immediately",
        effective_date: date_of(at),
        commitment_months: to.commitment_months,
        payment_method: partner.payment_method.clone(),
        upsell,
    }
}

/// `POST /api/billing/payment-method`: where Stripe's hosted page sends the partner
/// back to (both optional; the configured Checkout URLs by default).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PaymentMethodRequest {
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
}

impl PaymentMethodRequest {
    /// An absent or empty body is `{}`.
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        if body.is_null() {
            return Ok(Self::default());
        }
        let mut f = Fields::new(body, &["successUrl", "cancelUrl"]);
        let success_url = f.optional("successUrl", url);
        let cancel_url = f.optional("cancelUrl", url);
        f.finish()?;
        Ok(Self { success_url, cancel_url })
    }
}

/// Records the default card Stripe reports as of an event created at `event_at`
/// (epoch seconds). An event older than the one the card was last recorded from
/// changes nothing, so a late delivery never puts an older card back; the same card
/// again changes nothing; no card (the customer has no default) keeps what is
/// recorded.
pub fn record_payment_method(
    partner: &Partner,
    card: Option<&PaymentMethodSummary>,
    event_at: i64,
    catalog: Catalog<'_>,
    ctx: &TransitionContext,
) -> BillingChange {
    let Some(card) = card else { return BillingChange::Nothing };
    if partner.payment_method_event_at.is_some_and(|last| last > event_at)
        || partner.payment_method.as_ref() == Some(card)
    {
        return BillingChange::Nothing;
    }
    let mut after = partner.clone();
    after.payment_method = Some(card.clone());
    after.payment_method_event_at = Some(event_at);
    account_change(partner, after, catalog, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;
    use crate::domain::subscription::{plan_signup, Trigger, TriggerType};
    use serde_json::json;

    const DAY: i64 = 86_400;

    fn catalog() -> Vec<Tier> {
        let change = crate::domain::actor::Actor::fixture("t", "2026-11-01T00:00:00Z");
        default_tiers().into_iter().map(|t| t.into_tier(&change)).collect()
    }

    fn tier<'a>(c: &'a [Tier], id: &str) -> &'a Tier {
        c.iter().find(|t| t.tier_id == id).unwrap()
    }

    fn ctx() -> TransitionContext {
        TransitionContext {
            today: "2026-11-10".parse().unwrap(),
            at: "2026-11-10T00:00:00.000Z".into(),
            actor: "stripe".into(),
            request_id: None,
            transition_id: "t1".into(),
            movement_id: "m1".into(),
            trigger: Trigger {
                trigger_type: TriggerType::Automated,
                sales_rep: None,
                promotion_id: None,
                reason: None,
            },
        }
    }

    fn partner(c: &[Tier]) -> Partner {
        let new = crate::domain::partner::NewPartner::parse(
            &json!({"companyName": "Acme", "primaryEmail": "billing@acme.example"}),
        )
        .unwrap();
        plan_signup("prt_1", new, Catalog::new(c), &ctx()).unwrap().after
    }

    #[test]
    fn shares_round_half_away_from_zero_per_line() {
        // 1000 × 1/3 = 333.33 → 333; 1000 × 2/3 = 666.67 → 667; 5 × 1/2 = 2.5 → 3.
        assert_eq!(remaining_share(1000, 0, 3, 2), 333);
        assert_eq!(remaining_share(1000, 0, 3, 1), 667);
        assert_eq!(remaining_share(5, 0, 2, 1), 3);
        assert_eq!(remaining_share(1, 0, 100, 51), 0);
        // Outside the period: clamped.
        assert_eq!(remaining_share(1000, 100, 200, 50), 1000);
        assert_eq!(remaining_share(1000, 100, 200, 250), 0);
        assert_eq!(remaining_share(1000, 100, 100, 100), 0);
    }

    #[test]
    fn gold_to_platinum_half_way_through_a_30_day_month() {
        let period = CurrentPeriod { start: 0, end: 30 * DAY, amount: 360_000, interval: BillingPeriod::Monthly };
        let p = prorate(&period, 600_000, BillingPeriod::Monthly, 15 * DAY);
        assert_eq!((p.credit, p.charge, p.net, p.amount_due_now), (-180_000, 300_000, 120_000, 120_000));
        assert_eq!(p.rounding, "line_half_up");
    }

    #[test]
    fn each_line_is_rounded_on_its_own() {
        // 31-day month, 1 day and 1 second left: 360000 × 86401 / 2678400 = 11613.04 → 11613
        // and 600000 × 86401 / 2678400 = 19355.06 → 19355; the net is 7742, not a rounded 7742.02.
        let end = 31 * DAY;
        let period = CurrentPeriod { start: 0, end, amount: 360_000, interval: BillingPeriod::Monthly };
        let p = prorate(&period, 600_000, BillingPeriod::Monthly, end - DAY - 1);
        assert_eq!((p.credit, p.charge, p.net), (-11_613, 19_355, 7_742));
    }

    #[test]
    fn a_longer_interval_charges_the_whole_new_price_less_the_unused_time() {
        let period = CurrentPeriod { start: 0, end: 30 * DAY, amount: 360_000, interval: BillingPeriod::Monthly };
        let p = prorate(&period, 3_888_000, BillingPeriod::Yearly, 10 * DAY);
        assert_eq!((p.credit, p.charge), (-240_000, 3_888_000));
        assert_eq!(p.amount_due_now, 3_648_000);
    }

    #[test]
    fn preview_names_prices_gains_next_invoice_and_dates() {
        let c = catalog();
        let mut p = partner(&c);
        p.engagement_tier = "gold".into();
        p.payment_method = Some(PaymentMethodSummary { brand: "visa".into(), last4: "4242".into() });
        let start = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap().timestamp();
        let end = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().timestamp();
        let period = CurrentPeriod { start, end, amount: 360_000, interval: BillingPeriod::Monthly };
        let (gold, platinum) = (tier(&c, "gold"), tier(&c, "platinum"));
        let at = start + 9 * DAY + 3_600;
        let v = preview_upgrade(&p, gold, platinum, BillingPeriod::Monthly, 600_000, &period, at);
        assert_eq!(v.target.price, 600_000);
        assert_eq!(v.price_difference, 240_000);
        assert!(!v.features_gained.is_empty() || !v.limits_raised.is_empty(), "{v:?}");
        assert_eq!(v.next_invoice, NextInvoice { amount: 600_000, date: "2026-12-01".parse().unwrap() });
        assert_eq!(v.effective_date, "2026-11-10".parse::<NaiveDate>().unwrap());
        assert_eq!(v.proration.net, v.proration.credit + v.proration.charge);
        assert_eq!(v.proration.charge, remaining_share(600_000, start, end, at));
        assert_eq!(v.payment_method.as_ref().map(|m| m.last4.as_str()), Some("4242"));
        // Monthly → yearly on the same tier: no features, a new period from now.
        let yearly = preview_upgrade(&p, gold, gold, BillingPeriod::Yearly, 3_888_000, &period, at);
        assert!(yearly.features_gained.is_empty() && yearly.limits_raised.is_empty());
        assert_eq!(yearly.next_invoice.date, "2027-11-10".parse::<NaiveDate>().unwrap());
        assert_eq!(yearly.proration.charge, 3_888_000);
    }

    #[test]
    fn payment_method_is_recorded_once_and_never_rolled_back() {
        let c = catalog();
        let p = partner(&c);
        let visa = PaymentMethodSummary { brand: "visa".into(), last4: "4242".into() };
        let mc = PaymentMethodSummary { brand: "mastercard".into(), last4: "4444".into() };
        let BillingChange::Account(first) = record_payment_method(&p, Some(&visa), 100, Catalog::new(&c), &ctx())
        else {
            panic!("recorded")
        };
        let after = first.after;
        assert_eq!(after.payment_method.as_ref(), Some(&visa));
        assert_eq!(after.payment_method_event_at, Some(100));
        assert_eq!(after.version, p.version + 1);
        // The same card again, an older event, or no card: nothing.
        assert!(matches!(
            record_payment_method(&after, Some(&visa), 200, Catalog::new(&c), &ctx()),
            BillingChange::Nothing
        ));
        assert!(matches!(
            record_payment_method(&after, Some(&mc), 99, Catalog::new(&c), &ctx()),
            BillingChange::Nothing
        ));
        assert!(matches!(record_payment_method(&after, None, 300, Catalog::new(&c), &ctx()), BillingChange::Nothing));
        // A newer card, also in the same second.
        let BillingChange::Account(second) = record_payment_method(&after, Some(&mc), 100, Catalog::new(&c), &ctx())
        else {
            panic!("recorded")
        };
        assert_eq!(second.after.payment_method.as_ref(), Some(&mc));
    }

    #[test]
    fn payment_method_request_takes_urls_only() {
        assert_eq!(PaymentMethodRequest::parse(&Value::Null).unwrap(), PaymentMethodRequest::default());
        let ok = PaymentMethodRequest::parse(&json!({"successUrl": "https://x.example/ok"})).unwrap();
        assert_eq!(ok.success_url.as_deref(), Some("https://x.example/ok"));
        for bad in [json!({"successUrl": "ftp://x"}), json!({"cancelUrl": 3}), json!({"customer": "cus_1"})] {
            let e = PaymentMethodRequest::parse(&bad).unwrap_err();
            assert!(!e.fields.is_empty(), "{bad}");
        }
    }
}
