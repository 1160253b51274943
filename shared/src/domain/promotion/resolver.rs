//! Promotion eligibility, decided once: the public validate route, checkout's
//! quote (`redemption::quote`) and the redemption (`redemption::redeem`) all ask
//! [`resolve`]. Pure: the callers read the codes, promotions, customer and counts,
//! and the clock's today, then hand them over.
//!
//! The rules every caller now shares:
//! - each asked code (or id) gets one verdict, in the order asked, naming every
//!   rule it fails;
//! - a code that names nothing the caller may use is `not_found`;
//! - a code naming a promotion an earlier code already named (two codes of one
//!   promotion) is refused once as `duplicate_code` and is not counted again: the
//!   promotion is judged once, under the first code;
//! - the combined-use count (`not_stackable`) is the number of distinct promotions
//!   found, so neither an unknown code nor a repeated one makes a promotion
//!   "combined";
//! - the purchase applies only when no verdict has a reason; then the price has
//!   every distinct promotion applied, in the order first asked.

use crate::domain::pricing::PriceBreakdown;
use crate::domain::promotion::{self, Customer, Promotion, Purchase, Reason, ReasonCode};
use crate::domain::tier::Tier;
use chrono::NaiveDate;
use serde::Serialize;

/// One code or id as the caller asked for it, with what it resolved to.
#[derive(Debug, Clone)]
pub struct Asked<'a> {
    /// The code (upper-case) or promotion id, as given.
    pub asked: &'a str,
    /// The promotion it names, if any the caller may use.
    pub promotion: Option<&'a Promotion>,
    /// The customer's redemptions of that promotion so far.
    pub redeemed: u64,
    /// The terms are a code lookup's copy, whose status, dates and redemption count
    /// may be stale: those rules are left to the conditional write that checks them
    /// against the stored promotion (redemption only).
    pub live_rules_at_write: bool,
}

impl<'a> Asked<'a> {
    pub fn new(asked: &'a str, promotion: Option<&'a Promotion>, redeemed: u64) -> Self {
        Self { asked, promotion, redeemed, live_rules_at_write: false }
    }
}

/// The purchase the promotions are asked for.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub today: NaiveDate,
    pub tier: &'a Tier,
    pub billing_period: crate::domain::money::BillingPeriod,
    /// None: the period's or tier's default commitment.
    pub commitment_months: Option<u32>,
    /// None: a prospect (no account yet).
    pub customer: Option<&'a Customer>,
}

/// What one asked code came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub asked: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_id: Option<String>,
    /// Every rule it fails; empty: it applies.
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone)]
pub struct Resolution<'a> {
    /// One per asked code, in the order asked.
    pub verdicts: Vec<Verdict>,
    /// The distinct promotions found, in the order first asked.
    pub promotions: Vec<&'a Promotion>,
    /// How many promotions the purchase combines (distinct, found).
    pub combined: usize,
    /// The first charge with every promotion applied; Some only when all apply.
    pub price: Option<PriceBreakdown>,
}

impl Resolution<'_> {
    /// Every verdict's reasons, in the order asked.
    pub fn reasons(&self) -> Vec<Reason> {
        self.verdicts.iter().flat_map(|v| v.reasons.iter().cloned()).collect()
    }

    pub fn applies(&self) -> bool {
        self.price.is_some()
    }
}

pub fn not_found(asked: &str) -> Reason {
    Reason::new(ReasonCode::NotFound, format!("no promotion has the code or id {asked}"))
}

/// May the caller use `p` by its id (no code)? A promotion that needs a code is
/// not found by its id, except for staff applying a sales-assisted deal: knowing
/// the id must not stand in for knowing a code.
pub fn usable_by_id(p: &Promotion, staff: bool) -> bool {
    !p.requires_code || staff
}

/// The one eligibility decision; see the module doc for its rules.
pub fn resolve<'a>(asked: &[Asked<'a>], ask: &Ask<'_>) -> Resolution<'a> {
    let mut promotions: Vec<&'a Promotion> = Vec::new();
    let mut first_asked: Vec<&str> = Vec::new();
    for a in asked {
        if let Some(p) = a.promotion {
            if !promotions.iter().any(|q| q.promotion_id == p.promotion_id) {
                promotions.push(p);
                first_asked.push(a.asked);
            }
        }
    }
    let combined = promotions.len();
    let buy = Purchase {
        today: ask.today,
        tier: ask.tier,
        billing_period: ask.billing_period,
        commitment_months: ask
            .commitment_months
            .unwrap_or_else(|| Purchase::default_commitment(ask.tier, ask.billing_period)),
        customer: ask.customer,
        combined,
    };
    let mut judged: Vec<&str> = Vec::new();
    let verdicts: Vec<Verdict> = asked
        .iter()
        .map(|a| {
            let Some(p) = a.promotion else {
                return Verdict { asked: a.asked.to_string(), promotion_id: None, reasons: vec![not_found(a.asked)] };
            };
            let id = p.promotion_id.as_str();
            let reasons = if judged.contains(&id) {
                let first = promotions.iter().position(|q| q.promotion_id == id).map_or("", |i| first_asked[i]);
                let mut r = Reason::new(
                    ReasonCode::DuplicateCode,
                    format!("{} names the same promotion as {first}; it counts once", a.asked),
                );
                r.promotion_id = Some(id.to_string());
                vec![r]
            } else {
                judged.push(id);
                promotion::check(p, &buy, a.redeemed)
                    .into_iter()
                    .filter(|r| {
                        !a.live_rules_at_write
                            || !matches!(
                                r.code,
                                ReasonCode::NotActive | ReasonCode::Ended | ReasonCode::MaxRedemptionsReached
                            )
                    })
                    .collect()
            };
            Verdict { asked: a.asked.to_string(), promotion_id: Some(id.to_string()), reasons }
        })
        .collect();
    let all_apply = !promotions.is_empty() && verdicts.iter().all(|v| v.reasons.is_empty());
    let price = all_apply.then(|| promotion::price_with(ask.tier, ask.billing_period, &promotions));
    Resolution { verdicts, promotions, combined, price }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::defaults::default_tiers;
    use crate::domain::money::BillingPeriod;
    use crate::domain::promotion::{new_promotion_id, Actor, NewPromotion, PromotionStatus};
    use serde_json::{json, Value};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn gold() -> Tier {
        let change = crate::domain::actor::Actor::fixture("t", "2026-01-01T00:00:00.000Z");
        default_tiers().into_iter().map(|n| n.into_tier(&change)).find(|t| t.tier_id == "gold").unwrap()
    }

    /// An active promotion; `id` is the last character of its ULID.
    fn promo(id: char, extra: Value) -> Promotion {
        let mut body = json!({
            "name": "Winter", "discountType": "percentage", "discountValue": 10,
            "appliesTo": "both", "startDate": "2026-11-01", "endDate": "2026-12-31",
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let actor = Actor::fixture("c", "2026-11-01T00:00:00.000Z");
        let mut p = NewPromotion::parse(&body)
            .unwrap()
            .into_promotion(new_promotion_id(&format!("01jc000000000000000000000{id}")), &actor)
            .unwrap();
        p.status = PromotionStatus::Active;
        p
    }

    fn codes(r: &Resolution) -> Vec<Vec<&'static str>> {
        r.verdicts.iter().map(|v| v.reasons.iter().map(|r| r.code.as_str()).collect()).collect()
    }

    /// The table: each case's asked codes (name, promotion index or none, count so
    /// far) and the verdict codes, the combined count and the final price expected.
    #[test]
    fn the_table_of_asks_and_their_verdicts() {
        let tier = gold();
        let a = promo('a', json!({"stackable": true}));
        let b = promo('b', json!({"stackable": true, "discountType": "fixed_amount", "discountValue": 500}));
        let solo = promo('c', json!({}));
        let capped = promo('d', json!({"stackable": true, "redemptionsPerUser": 1}));
        let mut ended = promo('e', json!({"stackable": true}));
        ended.end_date = d("2026-11-10");
        let ask = Ask {
            today: d("2026-11-20"),
            tier: &tier,
            billing_period: BillingPeriod::Monthly,
            commitment_months: None,
            customer: None,
        };
        let base = tier.prices.monthly;
        type Case<'p> =
            (&'static str, Vec<(&'static str, Option<&'p Promotion>, u64)>, Vec<Vec<&'static str>>, usize, Option<i64>);
        let cases: Vec<Case> = vec![
            ("one code", vec![("A1", Some(&a), 0)], vec![vec![]], 1, Some(base - base / 10)),
            (
                "two stackable",
                vec![("A1", Some(&a), 0), ("B1", Some(&b), 0)],
                vec![vec![], vec![]],
                2,
                Some(base - base / 10 - 500),
            ),
            // Two codes of one promotion: the second is a duplicate, counted once,
            // so a promotion that does not stack is not "combined" with itself.
            (
                "two codes, one promotion",
                vec![("C1", Some(&solo), 0), ("C2", Some(&solo), 0)],
                vec![vec![], vec!["duplicate_code"]],
                1,
                None,
            ),
            // An unknown code is not found and does not count as combined either.
            (
                "unknown beside a solo",
                vec![("C1", Some(&solo), 0), ("NOPE", None, 0)],
                vec![vec![], vec!["not_found"]],
                1,
                None,
            ),
            (
                "solo beside another",
                vec![("C1", Some(&solo), 0), ("A1", Some(&a), 0)],
                vec![vec!["not_stackable"], vec![]],
                2,
                None,
            ),
            (
                "used up and ended",
                vec![("D1", Some(&capped), 1), ("E1", Some(&ended), 0)],
                vec![vec!["per_user_limit_reached"], vec!["ended"]],
                2,
                None,
            ),
            ("nothing found", vec![("NOPE", None, 0)], vec![vec!["not_found"]], 0, None),
        ];
        for (name, asked, want, combined, price) in cases {
            let asked: Vec<Asked> = asked.iter().map(|(c, p, n)| Asked::new(c, *p, *n)).collect();
            let r = resolve(&asked, &ask);
            assert_eq!(codes(&r), want, "{name}");
            assert_eq!(r.combined, combined, "{name}");
            assert_eq!(r.price.map(|p| p.final_price), price, "{name}");
            assert_eq!(r.applies(), price.is_some(), "{name}");
            assert_eq!(r.reasons().len(), want.iter().map(Vec::len).sum::<usize>(), "{name}");
        }
    }

    #[test]
    fn a_duplicate_names_the_first_code_and_the_promotion() {
        let tier = gold();
        let solo = promo('c', json!({}));
        let ask = Ask {
            today: d("2026-11-20"),
            tier: &tier,
            billing_period: BillingPeriod::Monthly,
            commitment_months: None,
            customer: None,
        };
        let r = resolve(&[Asked::new("C1", Some(&solo), 0), Asked::new("C2", Some(&solo), 0)], &ask);
        let dup = &r.verdicts[1].reasons[0];
        assert!(dup.message.contains("C2") && dup.message.contains("C1"), "{}", dup.message);
        assert_eq!(dup.promotion_id.as_deref(), Some(solo.promotion_id.as_str()));
        assert_eq!(r.promotions.len(), 1);
    }

    #[test]
    fn rules_left_to_the_write_are_not_judged_on_a_copy() {
        let tier = gold();
        let mut stale = promo('a', json!({}));
        stale.status = PromotionStatus::Paused;
        stale.end_date = d("2026-11-10");
        let ask = Ask {
            today: d("2026-11-20"),
            tier: &tier,
            billing_period: BillingPeriod::Monthly,
            commitment_months: None,
            customer: None,
        };
        let judged = resolve(&[Asked::new("A1", Some(&stale), 0)], &ask);
        assert_eq!(codes(&judged), vec![vec!["not_active", "ended"]]);
        let copy = Asked { live_rules_at_write: true, ..Asked::new("A1", Some(&stale), 0) };
        let deferred = resolve(&[copy], &ask);
        assert!(deferred.applies(), "{:?}", deferred.verdicts);
    }
}
