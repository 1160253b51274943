//! Add-ons and seed 002's bundle rule (issue 21 §2): priced items a partner can
//! attach to a subscription, available per segment, and "10% off 3+ add-ons".
//!
//! **Bundle rounding.** With `BUNDLE_MIN` or more add-ons, each add-on's price is
//! cut by `BUNDLE_BASIS_POINTS`, rounded half away from zero **per line**: every
//! add-on reaches Stripe as a subscription item at its own price, so the invoice's
//! lines add up to exactly the total shown.

use super::actor::Actor;
use super::money::BillingPeriod;
use super::partner::SubscribedAddOn;
use super::validation::{parse, Fields, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Seed 002 "bundle_addons: 10% off 3+ addons".
pub const BUNDLE_MIN: usize = 3;
pub const BUNDLE_BASIS_POINTS: i64 = 1_000;
/// Add-ons the catalog holds (they share the configuration Query).
pub const MAX_ADD_ONS: usize = 50;
/// Add-ons one purchase may carry.
pub const MAX_PER_PURCHASE: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddOnPrices {
    pub monthly: i64,
    pub yearly: i64,
}

impl AddOnPrices {
    pub fn for_period(&self, period: BillingPeriod) -> i64 {
        match period {
            BillingPeriod::Monthly => self.monthly,
            BillingPeriod::Yearly => self.yearly,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddOn {
    pub add_on_id: String,
    pub name: String,
    pub description: String,
    pub prices: AddOnPrices,
    pub currency: String,
    /// The segments it is offered in; empty: every segment.
    pub segments: Vec<String>,
    pub active: bool,
    pub sort_order: u32,
    /// Bumped with every price change: each price version is its own Stripe price.
    pub price_version: u32,
    pub version: u64,
    pub updated_at: String,
    pub updated_by: String,
}

impl super::audit::Audited for AddOn {
    const ENTITY_TYPE: &'static str = "add_on";
    fn entity_id(&self) -> &str {
        &self.add_on_id
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AddOnError {
    #[error("no such add-on")]
    NotFound,
    #[error("an add-on with this id already exists")]
    AlreadyExists,
    #[error("changed since it was read")]
    VersionConflict { current: Option<u64> },
    #[error("at most {MAX_ADD_ONS} add-ons")]
    TooMany,
    /// Named add-ons that are retired, unknown, not offered in the segment or in
    /// another currency.
    #[error("add-ons not available for this tier: {0:?}")]
    Unavailable(Vec<String>),
}

impl AddOn {
    pub fn offered_in(&self, segment: &str) -> bool {
        self.active && (self.segments.is_empty() || self.segments.iter().any(|s| s == segment))
    }
}

fn prices(f: &mut Fields<'_>, required: bool) -> Option<AddOnPrices> {
    if required && !f.has("prices") {
        f.fail("prices", "is required");
    }
    f.object("prices", &["monthly", "yearly"], |p| {
        let (m, y) = (p.required("monthly", parse::cents), p.required("yearly", parse::cents));
        Some(AddOnPrices { monthly: m?, yearly: y? })
    })
}

fn segments(v: &Value) -> Result<Vec<String>, String> {
    parse::slugs(v, 20)
}

const FIELDS: &[&str] = &["addOnId", "name", "description", "prices", "currency", "segments", "sortOrder"];

/// `POST /api/admin/add-ons`.
pub fn parse_new(body: &Value, by: &Actor) -> Result<AddOn, ValidationError> {
    let mut f = Fields::new(body, FIELDS);
    let add_on_id = f.required("addOnId", parse::slug);
    let name = f.required("name", |v| parse::text(v, 1, 100));
    let description = f.optional("description", |v| parse::text(v, 0, 500)).unwrap_or_default();
    let prices = prices(&mut f, true);
    let currency = f.optional("currency", parse::currency).unwrap_or_else(|| "usd".into());
    let segments = f.optional("segments", segments).unwrap_or_default();
    let sort_order = f.optional("sortOrder", |v| parse::int_in(v, 0, 100_000).map(|n| n as u32)).unwrap_or(0);
    f.finish()?;
    match (add_on_id, name, prices) {
        (Some(add_on_id), Some(name), Some(prices)) => Ok(AddOn {
            add_on_id,
            name,
            description,
            prices,
            currency,
            segments,
            active: true,
            sort_order,
            price_version: 1,
            version: 1,
            updated_at: by.at.clone(),
            updated_by: by.id.clone(),
        }),
        _ => Err(ValidationError::single("body", "is incomplete")),
    }
}

/// `PUT /api/admin/add-ons/{addOnId}`: `version` and the fields to change;
/// `active: false` retires it (subscriptions that carry it keep it).
pub fn parse_edit(body: &Value, before: &AddOn, by: &Actor) -> Result<Result<AddOn, AddOnError>, ValidationError> {
    let allowed: Vec<&str> = FIELDS.iter().filter(|k| **k != "addOnId").copied().chain(["version", "active"]).collect();
    let mut f = Fields::new(body, &allowed);
    let version = f.required("version", |v| parse::int_in(v, 1, i64::MAX).map(|n| n as u64));
    let name = f.optional("name", |v| parse::text(v, 1, 100));
    let description = f.optional("description", |v| parse::text(v, 0, 500));
    let new_prices = prices(&mut f, false);
    let currency = f.optional("currency", parse::currency);
    let segments = f.optional("segments", segments);
    let sort_order = f.optional("sortOrder", |v| parse::int_in(v, 0, 100_000).map(|n| n as u32));
    let active = f.optional("active", parse::boolean);
    f.finish()?;
    if version != Some(before.version) {
        return Ok(Err(AddOnError::VersionConflict { current: Some(before.version) }));
    }
    let mut after = before.clone();
    after.name = name.unwrap_or(after.name);
    after.description = description.unwrap_or(after.description);
    if let Some(p) = new_prices.filter(|p| *p != before.prices) {
        after.prices = p;
        after.price_version += 1;
    }
    after.currency = currency.unwrap_or(after.currency);
    after.segments = segments.unwrap_or(after.segments);
    after.sort_order = sort_order.unwrap_or(after.sort_order);
    after.active = active.unwrap_or(after.active);
    after.version += 1;
    after.updated_at = by.at.clone();
    after.updated_by = by.id.clone();
    Ok(Ok(after))
}

/// One add-on line of a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddOnLine {
    pub add_on_id: String,
    pub name: String,
    pub price_version: u32,
    pub list_price: i64,
    /// After the bundle discount, when it applies.
    pub price: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddOnQuote {
    pub lines: Vec<AddOnLine>,
    pub list_total: i64,
    /// Seed 002's bundle rule applied (`BUNDLE_MIN`+ add-ons).
    pub bundle_applied: bool,
    pub bundle_discount: i64,
    pub total: i64,
}

/// `price × bp / 10 000`, half away from zero (prices are never negative).
fn share(price: i64, bp: i64) -> i64 {
    (price.max(0) * bp * 2 + 10_000) / 20_000
}

/// The add-ons `asked` (ids, in order, each once) for a tier of `segment` in
/// `currency`, billed `period`: every one must be live and offered there.
pub fn quote(
    asked: &[String],
    catalog: &[AddOn],
    segment: &str,
    currency: &str,
    period: BillingPeriod,
) -> Result<AddOnQuote, AddOnError> {
    let mut chosen = Vec::with_capacity(asked.len());
    let mut missing = Vec::new();
    for id in asked {
        match catalog.iter().find(|a| &a.add_on_id == id) {
            Some(a) if a.offered_in(segment) && a.currency.eq_ignore_ascii_case(currency) => chosen.push(a),
            _ => missing.push(id.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(AddOnError::Unavailable(missing));
    }
    let bundle = chosen.len() >= BUNDLE_MIN;
    let lines: Vec<AddOnLine> = chosen
        .iter()
        .map(|a| {
            let list = a.prices.for_period(period);
            AddOnLine {
                add_on_id: a.add_on_id.clone(),
                name: a.name.clone(),
                price_version: a.price_version,
                list_price: list,
                price: if bundle { list - share(list, BUNDLE_BASIS_POINTS) } else { list },
            }
        })
        .collect();
    let list_total = lines.iter().map(|l| l.list_price).sum();
    let total: i64 = lines.iter().map(|l| l.price).sum();
    Ok(AddOnQuote { lines, list_total, bundle_applied: bundle, bundle_discount: list_total - total, total })
}

/// Add-ons ids of a request: each once, at most `MAX_PER_PURCHASE`.
pub fn parse_ids(v: &Value) -> Result<Vec<String>, String> {
    let items = v.as_array().ok_or("must be an array of add-on ids")?;
    if items.len() > MAX_PER_PURCHASE {
        return Err(format!("names at most {MAX_PER_PURCHASE} add-ons"));
    }
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let id = parse::slug(item)?;
        if out.contains(&id) {
            return Err(format!("'{id}' appears more than once"));
        }
        out.push(id);
    }
    Ok(out)
}

/// The demo add-ons `make run` seeds (seed 002's album, video, engagement shoot,
/// adapted to a subscription product).
pub fn demo_add_ons(by: &Actor) -> Vec<AddOn> {
    let add_on = |id: &str, name: &str, monthly: i64, segments: &[&str], order: u32| AddOn {
        add_on_id: id.into(),
        name: name.into(),
        description: String::new(),
        prices: AddOnPrices { monthly, yearly: monthly * 12 },
        currency: "usd".into(),
        segments: segments.iter().map(|s| s.to_string()).collect(),
        active: true,
        sort_order: order,
        price_version: 1,
        version: 1,
        updated_at: by.at.clone(),
        updated_by: by.id.clone(),
    };
    vec![
        add_on("extra-listings", "Extra listings pack", 25_000, &[], 10),
        add_on("priority-support", "Priority support", 40_000, &[], 20),
        add_on("featured-placement", "Featured placement", 60_000, &["signature", "luxury"], 30),
        add_on("video-tours", "Video tours", 35_000, &[], 40),
    ]
}

/// `PUT /api/billing/add-ons`: the add-ons the partner wants from now on (the whole
/// set; empty removes every one).
pub fn parse_change(body: &Value) -> Result<Vec<String>, ValidationError> {
    let mut f = Fields::new(body, &["addOns"]);
    let ids = f.required("addOns", parse_ids);
    f.finish()?;
    Ok(ids.unwrap_or_default())
}

/// What a running subscription's add-on items must become to charge `wanted`
/// (add-on id and the Stripe price of its line): the items to remove and the prices
/// to add. An item already at its wanted price stays, so nothing is prorated for it;
/// one at another price (the bundle rule changed, or a new price version) is
/// replaced.
pub fn item_changes(current: &[SubscribedAddOn], wanted: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let mut kept: Vec<&str> = Vec::new();
    let mut remove = Vec::new();
    for item in current {
        let still = wanted.iter().any(|(id, price)| id == &item.add_on_id && price == &item.price_id);
        if still && !kept.contains(&item.add_on_id.as_str()) {
            kept.push(&item.add_on_id);
        } else {
            remove.push(item.item_id.clone());
        }
    }
    let add = wanted.iter().filter(|(id, _)| !kept.contains(&id.as_str())).map(|(_, price)| price.clone()).collect();
    (remove, add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn by() -> Actor {
        Actor::fixture("u-admin", "2026-03-10T09:00:00Z")
    }

    #[test]
    fn three_add_ons_take_ten_percent_off_each_line_rounded_half_away() {
        let mut catalog = demo_add_ons(&by());
        catalog[0].prices.monthly = 12_345;
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let two =
            quote(&ids(&["extra-listings", "priority-support"]), &catalog, "essential", "usd", BillingPeriod::Monthly)
                .unwrap();
        assert_eq!((two.bundle_applied, two.total, two.bundle_discount), (false, 52_345, 0));
        let three = quote(
            &ids(&["extra-listings", "priority-support", "video-tours"]),
            &catalog,
            "essential",
            "usd",
            BillingPeriod::Monthly,
        )
        .unwrap();
        // 12,345 − 1,234.5 → 11,110 (half away: 1,235 off); 40,000 → 36,000; 35,000 → 31,500.
        assert_eq!(three.lines.iter().map(|l| l.price).collect::<Vec<_>>(), vec![11_110, 36_000, 31_500]);
        assert_eq!((three.list_total, three.total, three.bundle_discount), (87_345, 78_610, 8_735));
        let yearly = quote(&ids(&["video-tours"]), &catalog, "luxury", "usd", BillingPeriod::Yearly).unwrap();
        assert_eq!(yearly.total, 420_000);
    }

    #[test]
    fn unavailable_add_ons_are_named() {
        let mut catalog = demo_add_ons(&by());
        catalog[1].active = false;
        let asked = vec!["featured-placement".to_string(), "priority-support".into(), "nope".into()];
        let e = quote(&asked, &catalog, "essential", "usd", BillingPeriod::Monthly).unwrap_err();
        assert_eq!(e, AddOnError::Unavailable(asked));
        assert!(quote(&["video-tours".into()], &catalog, "essential", "eur", BillingPeriod::Monthly).is_err());
        assert_eq!(parse_ids(&json!(["a", "a"])), Err("'a' appears more than once".to_string()));
    }

    #[test]
    fn edits_bump_the_price_version_only_when_prices_change() {
        let a = parse_new(&json!({"addOnId": "x", "name": "X", "prices": {"monthly": 100, "yearly": 1000}}), &by())
            .unwrap();
        let renamed = parse_edit(&json!({"version": 1, "name": "Y"}), &a, &by()).unwrap().unwrap();
        assert_eq!((renamed.price_version, renamed.version), (1, 2));
        let repriced = parse_edit(&json!({"version": 2, "prices": {"monthly": 200, "yearly": 2000}}), &renamed, &by())
            .unwrap()
            .unwrap();
        assert_eq!(repriced.price_version, 2);
        assert_eq!(
            parse_edit(&json!({"version": 1}), &repriced, &by()).unwrap(),
            Err(AddOnError::VersionConflict { current: Some(3) })
        );
        let e = parse_new(&json!({"addOnId": "X Y", "prices": {"monthly": -1}}), &by()).unwrap_err();
        for field in ["addOnId", "name", "prices.monthly", "prices.yearly"] {
            assert!(e.fields.contains_key(field), "{field}: {e:?}");
        }
    }

    #[test]
    fn a_change_keeps_items_at_their_price_and_replaces_or_adds_the_rest() {
        let item = |id: &str, price: &str, item: &str| SubscribedAddOn {
            add_on_id: id.into(),
            price: 100,
            price_id: price.into(),
            item_id: item.into(),
        };
        let current = vec![item("photos", "price_p", "si_p"), item("support", "price_s", "si_s")];
        let wanted = |w: &[(&str, &str)]| w.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        // Same set, same prices: nothing to do.
        assert_eq!(item_changes(&current, &wanted(&[("photos", "price_p"), ("support", "price_s")])), (vec![], vec![]));
        // A third add-on: the bundle rule reprices every line, so each old item goes.
        let (remove, add) = item_changes(
            &current,
            &wanted(&[("photos", "price_p90"), ("support", "price_s90"), ("video", "price_v90")]),
        );
        assert_eq!(remove, vec!["si_p".to_string(), "si_s".to_string()]);
        assert_eq!(add, vec!["price_p90".to_string(), "price_s90".to_string(), "price_v90".to_string()]);
        // One dropped, one kept.
        assert_eq!(item_changes(&current, &wanted(&[("support", "price_s")])), (vec!["si_p".to_string()], vec![]));
        // A duplicate item of one add-on (left by hand in Stripe) goes.
        let doubled = vec![item("photos", "price_p", "si_1"), item("photos", "price_p", "si_2")];
        assert_eq!(item_changes(&doubled, &wanted(&[("photos", "price_p")])), (vec!["si_2".to_string()], vec![]));
        assert_eq!(parse_change(&serde_json::json!({"addOns": ["a", "b"]})).unwrap(), vec!["a", "b"]);
        let bad = parse_change(&serde_json::json!({"addOns": ["a", "a"], "extra": 1})).unwrap_err();
        assert!(bad.fields.contains_key("addOns") && bad.fields.contains_key("extra"), "{bad:?}");
        assert!(parse_change(&serde_json::json!({})).unwrap_err().fields.contains_key("addOns"));
    }
}
