//! The daily step that bills last month's usage overage: for each partner in the
//! month's sparse overage index, the soft-limit overage of that month (metric,
//! units beyond the limit, the tier's unit price, in cents) becomes Stripe invoice
//! items on the partner's next invoice.
//!
//! Every run in a month bills the month before; a partner's month is billed once:
//! each item carries the Stripe idempotency key `overage-{partner}-{month}-{metric}`
//! and the month is marked billed afterwards, so a rerun, a concurrent run or a
//! crash between the two bills nothing twice.

use crate::{DailyStep, RunDate, StepFuture};
use chrono::{Datelike, NaiveDate};
use std::collections::HashMap;
use tierdesk::billing::{InvoiceItemSpec, StripeGateway};
use tierdesk::domain::tier::{Tier, DEFAULT_TIER_ID};
use tierdesk::domain::usage::{self, overage_lines};
use tierdesk::store::Store;

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
                let mut items = Vec::with_capacity(lines.len());
                for line in &lines {
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
                            "tierdesk_overage".to_string(),
                            format!("{partner_id}|{period}|{}|{}", line.metric, line.quantity),
                        )]),
                    };
                    let key = format!("overage-{partner_id}-{period}-{}", line.metric);
                    let id = self.stripe.create_invoice_item(&spec, &key).await.map_err(|e| e.to_string())?;
                    items.push(id);
                }
                let amount = lines.iter().map(|l| l.amount).sum();
                store
                    .mark_overage_billed(&partner_id, &period, &items, amount, &run.at)
                    .await
                    .map_err(|e| e.to_string())?;
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
