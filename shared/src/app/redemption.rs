//! Applying promotions to a purchase: the price with every promotion applied
//! (`quote`), and the redemption itself (`redeem`), shared by the promotions
//! routes and Stripe checkout. Pure rules come from `domain::promotion`; every
//! write is `Store::redeem`'s one transaction.

use super::Failed;
use crate::clock::rfc3339;
use crate::domain::pricing::PriceBreakdown;
use crate::domain::pricing_rules::PricingConfig;
use crate::domain::promotion::resolver::{self, Asked};
use crate::domain::promotion::{self, Application, Customer, Promotion, PromotionError, Purchase, Reason, ReasonCode};
use crate::domain::tier::{Prices, Tier, TierStatus};
use crate::domain::validation::ValidationError;
use crate::store::{PromotionStore, RedeemRefusal, Redemption, RedemptionLine, Store, StoreError, TierStore};
use crate::IdGen;
use chrono::{DateTime, NaiveDate, Utc};

/// Attempts at a redemption whose transaction met a changed promotion or counter.
const REDEEM_ATTEMPTS: usize = 4;

/// A recorded redemption: one record per promotion, and the purchase's price.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub redemptions: Vec<Redemption>,
    pub promotions: Vec<Promotion>,
    pub price: PriceBreakdown,
    pub currency: String,
}

pub fn active_tier(tier: Option<Tier>) -> Result<Tier, PromotionError> {
    tier.filter(|t| t.status == TierStatus::Active)
        .ok_or_else(|| ValidationError::single("tierId", "no active tier with this id").into())
}

/// Fills in the customer's segment from the tier they are on when one of
/// `promotions` is limited to segments and the tier being bought cannot tell
/// it: one GetItem then, none otherwise (validate, checkout and redeem alike).
pub async fn place_in_segment<'a>(
    store: &Store,
    customer: &mut Customer,
    buying: &Tier,
    promotions: impl Iterator<Item = &'a Promotion>,
) -> Result<(), StoreError> {
    if customer.needs_segment(buying, promotions) {
        if let Some(current) = customer.current_tier.clone() {
            customer.segment = store.get_tier(&current).await?.map(|t| t.segment);
        }
    }
    Ok(())
}

pub fn not_found_reason(asked: &str) -> Reason {
    resolver::not_found(asked)
}

pub fn purchase<'a>(
    today: NaiveDate,
    ask: &Application,
    tier: &'a Tier,
    customer: Option<&'a Customer>,
    combined: usize,
) -> Purchase<'a> {
    Purchase {
        today,
        tier,
        billing_period: ask.billing_period,
        commitment_months: ask
            .commitment_months
            .unwrap_or_else(|| Purchase::default_commitment(tier, ask.billing_period)),
        customer,
        combined,
    }
}

/// A limit reason becomes the error naming the limit (409); any other reason the
/// list of them all (422).
pub fn refusal(reasons: Vec<Reason>) -> PromotionError {
    let only = |code| reasons.iter().all(|r| r.code == code);
    if only(ReasonCode::MaxRedemptionsReached) {
        PromotionError::MaxRedemptionsReached
    } else if only(ReasonCode::PerUserLimitReached) {
        PromotionError::PerUserLimitReached
    } else {
        PromotionError::NotEligible(reasons)
    }
}

/// What `quote` found: the promotions, the price with them, the tier bought, and
/// the customer as the rules saw them (for the payment's `Settlement`).
#[derive(Debug, Clone)]
pub struct Quoted {
    pub promotions: Vec<Promotion>,
    pub price: PriceBreakdown,
    pub tier: Tier,
    pub customer: Customer,
}

/// The outside event a redemption settles (a Stripe Checkout Session's payment).
pub struct Settlement<'a> {
    /// A second redemption with the same key is `AlreadyRedeemed`.
    pub key: &'a str,
    /// The customer as the session's creation judged them (`Quoted::customer`).
    /// The payment has since put them on the tier bought, which would make a
    /// promotion for new customers, a segment or a current tier refuse its own
    /// checkout; the limits and the promotion's state are checked as of now.
    pub customer_as_of: Option<Customer>,
}

/// The promotions a code list names, checked for `partner_id` and priced, without
/// recording anything (two reads). Checkout uses it before sending the customer
/// to pay; the redemption is recorded when the payment is confirmed. The rules are
/// `promotion::resolver::resolve`'s, as for validate and redeem.
///
/// `pricing`: the pricing rules, applied to the tier's list price before the
/// promotions (docs/pricing-rules.md: list → rules → promotions).
pub async fn quote(
    store: &Store,
    ask: &Application,
    partner_id: &str,
    today: NaiveDate,
    pricing: &PricingConfig,
) -> Result<Quoted, Failed<PromotionError>> {
    let mut read = store.read_application(&ask.codes, &ask.promotion_ids, &ask.tier_id, Some(partner_id)).await?;
    let mut tier = active_tier(read.tier.take())?;
    let partner = read.partner.take().ok_or(PromotionError::PartnerNotFound)?;
    let mut customer = Customer::from_partner(&partner);
    let ruled = pricing.price(&tier.list_prices(), today, today, !customer.ever_paid);
    tier.prices = Prices { monthly: ruled.monthly.price, yearly: ruled.yearly.price };
    let wanted: Vec<String> =
        ask.codes.iter().filter_map(|c| read.lookups.get(c).map(|l| l.promotion_id.clone())).collect();
    if !wanted.is_empty() {
        store.read_promotions(&wanted, Some(partner_id), &mut read).await?;
    }
    place_in_segment(store, &mut customer, &tier, read.promotions.values()).await?;
    let asked: Vec<Asked> = ask
        .codes
        .iter()
        .map(|code| {
            let p = read.lookups.get(code).and_then(|l| read.promotions.get(&l.promotion_id));
            Asked::new(code, p, p.and_then(|p| read.redeemed.get(&p.promotion_id).copied()).unwrap_or(0))
        })
        .collect();
    let resolved = resolver::resolve(&asked, &resolver_ask(today, ask, &tier, Some(&customer)));
    match resolved.price {
        Some(price) => {
            Ok(Quoted { promotions: resolved.promotions.into_iter().cloned().collect(), price, tier, customer })
        }
        None => Err(refusal(resolved.reasons()).into()),
    }
}

/// The purchase `ask` describes, for the resolver.
pub fn resolver_ask<'a>(
    today: NaiveDate,
    ask: &Application,
    tier: &'a Tier,
    customer: Option<&'a Customer>,
) -> resolver::Ask<'a> {
    resolver::Ask {
        today,
        tier,
        billing_period: ask.billing_period,
        commitment_months: ask.commitment_months,
        customer,
    }
}

/// Redeems the promotions `ask` names for `partner_id`: one BatchGetItem (code
/// copies or promotions, tier, partner) and one TransactWriteItems in the normal
/// case (`Store::redeem`); a stale code copy or a changed counter costs a retry.
///
/// `sales_rep`: the staff member applying it (who may use a code-only promotion
/// by id). `settles`: the outside event this redemption belongs to (a Stripe
/// checkout session's payment), and the customer as that session judged them.
pub async fn redeem(
    store: &Store,
    ask: &Application,
    partner_id: &str,
    sales_rep: Option<String>,
    settles: Option<Settlement<'_>>,
    now: DateTime<Utc>,
    ids: &dyn IdGen,
) -> Result<Redeemed, Failed<PromotionError>> {
    let mut read = store.read_application(&ask.codes, &ask.promotion_ids, &ask.tier_id, Some(partner_id)).await?;
    let tier = active_tier(read.tier.take())?;
    let partner = read.partner.take().ok_or(PromotionError::PartnerNotFound)?;
    let once_key = settles.as_ref().map(|s| s.key);
    let mut customer = match settles.and_then(|s| s.customer_as_of) {
        Some(as_of) => Customer { partner_id: partner.partner_id.clone(), ..as_of },
        None => Customer::from_partner(&partner),
    };
    // Per promotion: its terms, the code it came by, whether the terms are a
    // lookup's copy (live fields then come from the transaction's condition).
    let mut lines: Vec<(Promotion, Option<String>, bool)> = Vec::new();
    // What each asked code or id resolved to; None: not found (for this caller).
    let mut asked_as: Vec<(String, Option<usize>)> = Vec::new();
    for code in &ask.codes {
        match read.lookups.remove(code) {
            Some(lookup) => {
                asked_as.push((code.clone(), Some(lines.len())));
                lines.push((lookup.terms, Some(code.clone()), true));
            }
            None => asked_as.push((code.clone(), None)),
        }
    }
    for id in &ask.promotion_ids {
        match read.promotions.remove(id) {
            // Staff may apply a code-only promotion by id (a sales-assisted deal);
            // a partner needs the code.
            Some(p) if resolver::usable_by_id(&p, sales_rep.is_some()) => {
                asked_as.push((id.clone(), Some(lines.len())));
                lines.push((p, None, false));
            }
            _ => asked_as.push((id.clone(), None)),
        }
    }
    let mut seen: Vec<Option<u64>> =
        lines.iter().map(|(p, _, _)| read.redeemed.get(&p.promotion_id).copied().filter(|c| *c > 0)).collect();
    let mut repair: Vec<bool> = vec![false; lines.len()];
    for _ in 0..REDEEM_ATTEMPTS {
        // Each attempt: a refreshed copy's terms may name segments the first did not
        // (a no-op once the segment is known).
        place_in_segment(store, &mut customer, &tier, lines.iter().map(|(p, _, _)| p)).await?;
        let asked: Vec<Asked> = asked_as
            .iter()
            .map(|(asked, line)| match line.and_then(|i| lines.get(i).map(|l| (i, l))) {
                Some((i, (p, _, from_lookup))) => Asked {
                    asked,
                    promotion: Some(p),
                    redeemed: seen[i].unwrap_or(0),
                    live_rules_at_write: *from_lookup,
                },
                None => Asked::new(asked, None, 0),
            })
            .collect();
        let resolved = resolver::resolve(&asked, &resolver_ask(now.date_naive(), ask, &tier, Some(&customer)));
        let reasons = resolved.reasons();
        let combined = resolved.combined;
        let settled = reasons.iter().any(|r| matches!(r.code, ReasonCode::NotFound | ReasonCode::DuplicateCode));
        if !reasons.is_empty() {
            if settled {
                return Err(refusal(reasons).into());
            }
            // A copy refusing may be a stale copy: read the promotions it came
            // from (rare) and price again if their terms moved on.
            let mut refreshed = false;
            for (i, line) in lines.iter_mut().enumerate() {
                if !line.2 {
                    continue;
                }
                if let Some(current) = store.get_promotion(&line.0.promotion_id).await? {
                    if current.terms_version != line.0.terms_version {
                        line.0 = current;
                        line.2 = false;
                        repair[i] = line.1.is_some();
                        refreshed = true;
                    }
                }
            }
            if refreshed {
                continue;
            }
            return Err(refusal(reasons).into());
        }
        let buy = purchase(now.date_naive(), ask, &tier, Some(&customer), combined);
        let promotions: Vec<&Promotion> = lines.iter().map(|(p, _, _)| p).collect();
        let price = promotion::price_with(&tier, ask.billing_period, &promotions);
        let shares = promotion::discount_shares(&tier, ask.billing_period, &promotions);
        let at = rfc3339(now);
        let new_ids: Vec<String> = lines.iter().map(|_| format!("rdm_{}", ids.new_id())).collect();
        let batch: Vec<RedemptionLine> = lines
            .iter()
            .enumerate()
            .map(|(i, (p, code, _))| RedemptionLine {
                promotion: p.clone(),
                redemption: Redemption {
                    redemption_id: new_ids[i].clone(),
                    promotion_id: p.promotion_id.clone(),
                    user_id: partner_id.to_string(),
                    redeemed_at: at.clone(),
                    code: code.clone(),
                    original_price: price.original_price,
                    discount_amount: shares[i],
                    final_price: price.final_price,
                    currency: tier.currency.clone(),
                    trial_days: price.trial_days,
                    tier_before: Some(partner.engagement_tier.clone()),
                    tier_after: tier.tier_id.clone(),
                    billing_period: ask.billing_period,
                    sales_rep: sales_rep.clone(),
                    combined_with: lines
                        .iter()
                        .filter(|(o, _, _)| o.promotion_id != p.promotion_id)
                        .map(|(o, _, _)| o.promotion_id.clone())
                        .collect(),
                },
                seen: seen[i],
                repair_code: if repair[i] { code.clone() } else { None },
                once_key: once_key.map(str::to_string),
            })
            .collect();
        match store.redeem(&batch, buy.today).await? {
            Ok(()) => {
                let redemptions: Vec<Redemption> = batch.into_iter().map(|l| l.redemption).collect();
                let promotions = lines.into_iter().map(|l| l.0).collect();
                return Ok(Redeemed { redemptions, promotions, price, currency: tier.currency.clone() });
            }
            Err(RedeemRefusal::Promotion { line, current }) => {
                let Some(current) = current else { return Err(PromotionError::NotFound.into()) };
                let Some(slot) = lines.get_mut(line) else { break };
                if current.terms_version != slot.0.terms_version {
                    // The copy was stale: price again with the promotion as it is,
                    // and rewrite the lookup in the same transaction.
                    repair[line] = slot.1.is_some();
                    slot.0 = *current;
                    slot.2 = false;
                    continue;
                }
                let mut live = *current;
                live.terms_version = slot.0.terms_version;
                let reasons = promotion::check(&live, &buy, 0)
                    .into_iter()
                    .filter(|r| {
                        matches!(
                            r.code,
                            ReasonCode::NotActive
                                | ReasonCode::NotStarted
                                | ReasonCode::Ended
                                | ReasonCode::MaxRedemptionsReached
                        )
                    })
                    .collect::<Vec<_>>();
                if reasons.is_empty() {
                    // Changed between read and write in a way that no longer
                    // refuses (a cap raised): try again with what is stored.
                    slot.0 = live;
                    slot.2 = false;
                    continue;
                }
                return Err(refusal(reasons).into());
            }
            Err(RedeemRefusal::Customer { line, count }) => {
                let limit = lines.get(line).map_or(0, |l| u64::from(l.0.redemptions_per_user));
                if count >= limit {
                    return Err(PromotionError::PerUserLimitReached.into());
                }
                if let Some(s) = seen.get_mut(line) {
                    *s = Some(count);
                }
            }
            Err(RedeemRefusal::AlreadyApplied) => return Err(PromotionError::AlreadyRedeemed.into()),
            Err(RedeemRefusal::Duplicate) => continue,
        }
    }
    Err(PromotionError::KeptChanging.into())
}
