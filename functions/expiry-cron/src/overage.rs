//! The daily step that bills last month's usage overage: for each partner in the
//! month's sparse overage index, the soft-limit overage of that month (metric,
//! units beyond the limit, the tier's unit price, in cents) becomes Stripe invoice
//! items on the partner's next invoice.
//!
//! Every run in a month bills the month before; a partner's month is billed once,
//! whatever happens:
//! 1. the month's marker (`PARTNER#{id}` / `OVERAGEBILLED#{month}`) is claimed
//!    PENDING, with a lease, before anything goes to Stripe; a concurrent run finds
//!    the live claim and leaves the partner alone;
//! 2. a run that takes over a PENDING claim (an earlier attempt stopped between
//!    Stripe and the marker) first lists the customer's invoice items and reuses
//!    those whose metadata `tierdesk_overage` starts with `{partner}|{month}|{metric}|`;
//!    only the missing ones are created. Stripe forgets idempotency keys after
//!    about 24 hours, so the key alone (`overage-{partner}-{month}-{metric}`, still
//!    sent) does not protect the next day's run;
//! 3. the marker becomes BILLED with the item ids, conditional on the claim.

use crate::{DailyStep, RunDate, StepFuture};
use chrono::{Datelike, NaiveDate};
use std::collections::HashMap;
use tierdesk::domain::tier::{Tier, DEFAULT_TIER_ID};
use tierdesk::domain::usage::{self, overage_lines};
use tierdesk::store::{OverageClaim, Store, TierStore, UsageStore};
use tierdesk::stripe_adapter::{InvoiceItemSpec, StripeGateway};
use tierdesk::{IdGen, UlidGen};

/// The metadata key naming what an overage invoice item bills.
pub const OVERAGE_METADATA_KEY: &str = "tierdesk_overage";
/// How long one run's PENDING claim on a partner's month is honoured (longer
/// than a cron run may last).
const CLAIM_LEASE_SECS: i64 = 3600;

pub struct BillOverage {
    pub stripe: StripeGateway,
}

/// The month before `date`'s, as `yyyy-mm`, with its last day.
pub fn previous_month(date: NaiveDate) -> (String, NaiveDate) {
    let first = date.with_day(1).unwrap_or(date);
    let last = first.pred_opt().unwrap_or(first);
    (usage::period_of(last), last)
}

impl DailyStep for BillOverage {
    fn name(&self) -> &'static str {
        "overage_invoice_items"
    }

    /// Cost follows the partners who used a priced metric last month (one key
    /// Query), never the partner count.
    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let (period, last_day) = previous_month(run.date);
            let candidates = store.overage_candidates(&period).await.map_err(|e| e.to_string())?;
            let mut billed = 0;
            // A run reads each tier once, however many of its partners it bills.
            let mut tiers: HashMap<String, Option<Tier>> = HashMap::new();
            let now = chrono::DateTime::parse_from_rfc3339(&run.at)
                .map(|at| at.timestamp())
                .unwrap_or_else(|_| run.date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp());
            for partner_id in candidates {
                if store.overage_billed(&partner_id, &period).await.map_err(|e| e.to_string())? {
                    continue;
                }
                let read = store.read_usage(&partner_id, &period).await.map_err(|e| e.to_string())?;
                let Some(partner) = read.partner else { continue };
                // Overage is billed through the partner's Stripe customer; a partner
                // without one (never paid through Stripe) is left for invoicing by hand.
                let Some(customer) = partner.stripe_customer_id.clone() else {
                    tracing::warn!(partner = partner_id, period, "overage without a Stripe customer; not billed");
                    continue;
                };
                // The limits of the last day of the month: the plan the month ended on.
                let tier_id = usage::plan_tier_id(&partner, last_day, DEFAULT_TIER_ID);
                if !tiers.contains_key(&tier_id) {
                    let tier = store.get_tier(&tier_id).await.map_err(|e| e.to_string())?;
                    tiers.insert(tier_id.clone(), tier);
                }
                let Some(Some(tier)) = tiers.get(&tier_id) else { continue };
                let plan = usage::plan(&partner, tier, last_day);
                let lines = overage_lines(&usage::report(&plan, &period, &read.counts));
                let token = UlidGen.new_id();
                let claim = store
                    .claim_overage(&partner_id, &period, &token, now, CLAIM_LEASE_SECS, &run.at)
                    .await
                    .map_err(|e| e.to_string())?;
                // What an earlier attempt already created in Stripe, when there was one.
                let existing = match claim {
                    OverageClaim::Billed | OverageClaim::Busy => continue,
                    OverageClaim::Fresh => Vec::new(),
                    OverageClaim::Resumed => self
                        .stripe
                        .invoice_items_with(&customer, OVERAGE_METADATA_KEY, &format!("{partner_id}|{period}|"))
                        .await
                        .map_err(|e| e.to_string())?,
                };
                let mut items = Vec::with_capacity(lines.len());
                for line in &lines {
                    let prefix = format!("{partner_id}|{period}|{}|", line.metric);
                    if let Some(found) = existing
                        .iter()
                        .find(|i| i.metadata.get(OVERAGE_METADATA_KEY).is_some_and(|v| v.starts_with(&prefix)))
                    {
                        tracing::info!(
                            partner = partner_id,
                            period,
                            metric = line.metric,
                            "overage item found in Stripe; not created again"
                        );
                        items.push(found.id.clone());
                        continue;
                    }
                    let spec = InvoiceItemSpec {
                        customer: customer.clone(),
                        subscription: partner.stripe_subscription_id.clone(),
                        amount: line.amount,
                        currency: line.currency.clone(),
                        description: format!(
                            "Overage {period}: {} {} beyond the limit at {} cents each",
                            line.quantity, line.metric, line.unit_amount
                        ),
                        // One key: a retry must send byte-identical parameters under
                        // its idempotency key, and a map's order is not stable.
                        metadata: HashMap::from([(
                            OVERAGE_METADATA_KEY.to_string(),
                            format!("{partner_id}|{period}|{}|{}", line.metric, line.quantity),
                        )]),
                    };
                    let key = format!("overage-{partner_id}-{period}-{}", line.metric);
                    let id = self.stripe.create_invoice_item(&spec, &key).await.map_err(|e| e.to_string())?;
                    items.push(id);
                }
                let amount = lines.iter().map(|l| l.amount).sum();
                let marked = store
                    .mark_overage_billed(&partner_id, &period, &token, &items, amount, &run.at)
                    .await
                    .map_err(|e| e.to_string())?;
                if !marked {
                    tracing::warn!(partner = partner_id, period, "overage claim taken over by another run");
                    continue;
                }
                if !items.is_empty() {
                    billed += 1;
                }
            }
            Ok(billed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_of_a_month_bills_the_month_before() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(previous_month(d("2027-03-01")), ("2027-02".to_string(), d("2027-02-28")));
        assert_eq!(previous_month(d("2027-03-31")), ("2027-02".to_string(), d("2027-02-28")));
        assert_eq!(previous_month(d("2028-01-15")), ("2027-12".to_string(), d("2027-12-31")));
        assert_eq!(previous_month(d("2028-03-10")), ("2028-02".to_string(), d("2028-02-29")));
    }
}
