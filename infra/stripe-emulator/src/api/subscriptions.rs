//! Subscriptions: create, retrieve, list, update (with proration), cancel.

use super::{list_response, Result};
use crate::billing::{ItemUpdate, NewItem, NewSubscription, PaymentBehavior, ProrationBehavior, SubscriptionUpdate};
use crate::error::ApiError;
use crate::form::Form;
use crate::objects;
use crate::state::{Store, SubscriptionStatus};

fn quantity(item: &Form) -> Result<Option<u64>> {
    match item.int("quantity")? {
        None => Ok(None),
        Some(q) => u64::try_from(q)
            .map(Some)
            .map_err(|_| ApiError::invalid("quantity must not be negative", Some(item.name("quantity")))),
    }
}

fn new_item(item: &Form) -> Result<NewItem> {
    let price = item.str("price").or_else(|| item.str("plan")).filter(|p| !p.is_empty());
    let price = price.ok_or_else(|| ApiError::missing_param(&item.name("price")))?;
    Ok(NewItem {
        price: price.to_owned(),
        quantity: quantity(item)?.unwrap_or(1),
        metadata: item.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
        param: item.name("price"),
    })
}

pub fn create(store: &mut Store, form: &Form) -> Result {
    let customer = form.required("customer")?.to_owned();
    let items = form.each("items").iter().map(new_item).collect::<Result<Vec<_>>>()?;
    if items.is_empty() {
        return Err(ApiError::missing_param("items"));
    }
    let discounts = form.each("discounts");
    if discounts.len() > 1 {
        return Err(ApiError::invalid("The emulator applies one discount per subscription.", Some("discounts".into())));
    }
    let coupon = match discounts.first() {
        Some(d) => Some((d.required("coupon")?.to_owned(), d.name("coupon"))),
        None => None,
    };
    let trial_period_days = match form.int("trial_period_days")? {
        None => None,
        Some(days) => Some(u32::try_from(days).ok().filter(|d| *d <= 730).ok_or_else(|| {
            ApiError::invalid("trial_period_days must be between 0 and 730.", Some("trial_period_days".into()))
        })?),
    };
    let id = store.create_subscription(NewSubscription {
        customer,
        items,
        metadata: form.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
        description: form.string("description"),
        payment_behavior: PaymentBehavior::parse(form.str("payment_behavior"))?,
        coupon,
        trial_period_days,
    })?;
    retrieve(store, &id)
}

pub fn retrieve(store: &Store, id: &str) -> Result {
    let sub = store.subscriptions.get(id).ok_or_else(|| ApiError::no_such("subscription", id))?;
    Ok(objects::subscription(store, sub))
}

/// Without `status`, Stripe lists every subscription that has not ended.
pub fn list(store: &Store, form: &Form) -> Result {
    let customer = form.string("customer");
    let price = form.string("price");
    let status = form.string("status");
    let keep = |s: SubscriptionStatus| match status.as_deref() {
        None => !s.is_ended(),
        Some("all") => true,
        Some("ended") => s.is_ended(),
        Some(wanted) => s.as_str() == wanted,
    };
    let rows = store
        .subscriptions
        .iter()
        .rev()
        .filter(|s| {
            keep(s.status)
                && customer.as_ref().is_none_or(|c| &s.customer == c)
                && price.as_ref().is_none_or(|p| s.items.iter().any(|i| &i.price == p))
        })
        .collect();
    list_response(store, form, "/v1/subscriptions", rows, objects::subscription)
}

pub fn update(store: &mut Store, id: &str, form: &Form) -> Result {
    let mut items = Vec::new();
    for item in form.each("items") {
        let param = item.param();
        let update = match (item.string("id"), item.bool("deleted")?) {
            (Some(id), Some(true)) => ItemUpdate::Delete { id, param },
            (Some(id), _) => ItemUpdate::Change {
                id,
                price: item.string("price").or_else(|| item.string("plan")),
                quantity: quantity(&item)?,
                metadata: item.metadata("metadata"),
                param,
            },
            (None, _) => ItemUpdate::Add(new_item(&item)?),
        };
        items.push(update);
    }
    store.update_subscription(
        id,
        SubscriptionUpdate {
            items,
            proration_behavior: ProrationBehavior::parse(form.str("proration_behavior"))?,
            proration_date: form.int("proration_date")?,
            payment_behavior: PaymentBehavior::parse(form.str("payment_behavior"))?,
            cancel_at_period_end: form.bool("cancel_at_period_end")?,
            metadata: form.metadata("metadata"),
            description: form.string("description"),
            default_payment_method: form.string("default_payment_method"),
        },
    )?;
    retrieve(store, id)
}

pub fn cancel(store: &mut Store, id: &str) -> Result {
    store.cancel_subscription(id)?;
    retrieve(store, id)
}
