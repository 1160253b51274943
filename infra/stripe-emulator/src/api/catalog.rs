//! Customers, products and prices.

use super::{list_response, Result};
use crate::clock::new_id;
use crate::error::ApiError;
use crate::form::Form;
use crate::objects;
use crate::state::{Customer, Interval, Price, Product, Recurring, Store};

pub fn create_customer(store: &mut Store, form: &Form) -> Result {
    let metadata = form.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default();
    let mut customer = Customer::new(store.now(), form.string("email"), form.string("name"), metadata);
    customer.description = form.string("description");
    let value = objects::customer(store, &customer);
    store.customers.insert(customer);
    Ok(value)
}

pub fn retrieve_customer(store: &Store, id: &str) -> Result {
    let c = store.customers.get(id).ok_or_else(|| ApiError::no_such("customer", id))?;
    Ok(objects::customer(store, c))
}

pub fn list_customers(store: &Store, form: &Form) -> Result {
    let email = form.string("email");
    let rows = store.customers.iter().rev().filter(|c| email.is_none() || c.email == email).collect();
    list_response(store, form, "/v1/customers", rows, objects::customer)
}

pub fn update_customer(store: &mut Store, id: &str, form: &Form) -> Result {
    let before = retrieve_customer(store, id)?;
    let default_pm = form.child("invoice_settings").string("default_payment_method");
    if let Some(pm) = &default_pm {
        store.customer_card(id, pm, "invoice_settings[default_payment_method]")?;
    }
    let c = store.customers.get_mut(id).ok_or_else(|| ApiError::no_such("customer", id))?;
    if form.has("email") {
        c.email = form.string("email");
    }
    if form.has("name") {
        c.name = form.string("name");
    }
    if form.has("description") {
        c.description = form.string("description");
    }
    if let Some(patch) = form.metadata("metadata") {
        patch.apply(&mut c.metadata);
    }
    if let Some(pm) = &default_pm {
        c.default_payment_method = Some(pm.clone());
        store.use_card(id, pm);
    }
    let after = retrieve_customer(store, id)?;
    // Stripe sends `customer.updated` with what changed.
    if let Some(previous) = objects::previous_attributes(&before, &after) {
        store.emit("customer.updated", after.clone(), Some(previous));
    }
    Ok(after)
}

/// `GET /v1/customers/{id}/payment_methods`: the cards attached to the customer, newest first.
pub fn customer_payment_methods(store: &Store, id: &str, form: &Form) -> Result {
    store.customers.get(id).ok_or_else(|| ApiError::no_such("customer", id))?;
    let rows = store.payment_methods.iter().rev().filter(|p| p.customer.as_deref() == Some(id)).collect();
    list_response(store, form, &format!("/v1/customers/{id}/payment_methods"), rows, |_, p| objects::payment_method(p))
}

pub fn create_product(store: &mut Store, form: &Form) -> Result {
    let name = form.required("name")?.to_owned();
    let id = form.string("id").unwrap_or_else(|| new_id("prod"));
    if store.products.contains(&id) {
        return Err(ApiError {
            code: Some("resource_already_exists"),
            ..ApiError::invalid("Product already exists.", Some("id".into()))
        });
    }
    let now = store.now();
    let product = Product {
        id,
        created: now,
        updated: now,
        name,
        description: form.string("description"),
        active: form.bool("active")?.unwrap_or(true),
        metadata: form.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
    };
    let value = objects::product(&product);
    store.products.insert(product);
    Ok(value)
}

pub fn retrieve_product(store: &Store, id: &str) -> Result {
    store.products.get(id).map(objects::product).ok_or_else(|| ApiError::no_such("product", id))
}

pub fn list_products(store: &Store, form: &Form) -> Result {
    let active = form.bool("active")?;
    let ids = form.strings("ids");
    let rows = store
        .products
        .iter()
        .rev()
        .filter(|p| active.is_none_or(|a| p.active == a) && (ids.is_empty() || ids.contains(&p.id)))
        .collect();
    list_response(store, form, "/v1/products", rows, |_, p| objects::product(p))
}

pub fn update_product(store: &mut Store, id: &str, form: &Form) -> Result {
    let now = store.now();
    let p = store.products.get_mut(id).ok_or_else(|| ApiError::no_such("product", id))?;
    if let Some(name) = form.string("name") {
        p.name = name;
    }
    if form.has("description") {
        p.description = form.string("description");
    }
    if let Some(active) = form.bool("active")? {
        p.active = active;
    }
    if let Some(patch) = form.metadata("metadata") {
        patch.apply(&mut p.metadata);
    }
    p.updated = now;
    Ok(objects::product(p))
}

/// Stripe lets one price hold a lookup key; `transfer_lookup_key=true` moves it from another.
fn claim_lookup_key(store: &mut Store, key: &str, transfer: bool) -> Result<()> {
    let holder = store.prices.iter_mut().find(|p| p.lookup_key.as_deref() == Some(key));
    match holder {
        Some(_) if !transfer => Err(ApiError::invalid(
            format!(
                "A price (`lookup_key`: {key}) already uses that lookup key. Use `transfer_lookup_key` to move it."
            ),
            Some("lookup_key".into()),
        )),
        Some(holder) => {
            holder.lookup_key = None;
            Ok(())
        }
        None => Ok(()),
    }
}

pub fn create_price(store: &mut Store, form: &Form) -> Result {
    let currency = form.required("currency")?.to_lowercase();
    let product = match form.string("product") {
        Some(id) => {
            if !store.products.contains(&id) {
                return Err(ApiError::no_such_param("product", &id, "product"));
            }
            id
        }
        None => {
            let data = form.child("product_data");
            let product = create_product(store, &data)?;
            product["id"].as_str().unwrap_or_default().to_owned()
        }
    };
    let unit_amount = match form.int("unit_amount")? {
        Some(amount) => amount,
        None => form
            .string("unit_amount_decimal")
            .and_then(|d| d.parse::<f64>().ok())
            .map(|d| d.round() as i64)
            .ok_or_else(|| ApiError::missing_param("unit_amount"))?,
    };
    let recurring = if form.has("recurring") {
        let r = form.child("recurring");
        let interval = r.required("interval")?;
        let interval = Interval::parse(interval)
            .ok_or_else(|| ApiError::invalid(format!("Invalid interval: {interval}"), Some(r.name("interval"))))?;
        let count = r.int("interval_count")?.unwrap_or(1);
        let interval_count = u32::try_from(count)
            .ok()
            .filter(|c| *c >= 1)
            .ok_or_else(|| ApiError::invalid("interval_count must be at least 1", Some(r.name("interval_count"))))?;
        Some(Recurring { interval, interval_count })
    } else {
        None
    };
    let lookup_key = form.string("lookup_key");
    if let Some(key) = &lookup_key {
        claim_lookup_key(store, key, form.bool("transfer_lookup_key")?.unwrap_or(false))?;
    }
    let price = Price {
        id: new_id("price"),
        created: store.now(),
        product,
        unit_amount,
        currency,
        recurring,
        lookup_key,
        nickname: form.string("nickname"),
        metadata: form.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
        active: form.bool("active")?.unwrap_or(true),
    };
    let value = objects::price(&price);
    store.prices.insert(price);
    Ok(value)
}

pub fn retrieve_price(store: &Store, id: &str) -> Result {
    store.prices.get(id).map(objects::price).ok_or_else(|| ApiError::no_such("price", id))
}

pub fn list_prices(store: &Store, form: &Form) -> Result {
    let active = form.bool("active")?;
    let product = form.string("product");
    let currency = form.string("currency");
    let kind = form.string("type");
    let lookup_keys = form.strings("lookup_keys");
    let rows = store
        .prices
        .iter()
        .rev()
        .filter(|p| {
            active.is_none_or(|a| p.active == a)
                && product.as_ref().is_none_or(|id| &p.product == id)
                && currency.as_ref().is_none_or(|c| &p.currency == c)
                && kind.as_deref().is_none_or(|k| (k == "recurring") == p.recurring.is_some())
                && (lookup_keys.is_empty() || p.lookup_key.as_ref().is_some_and(|k| lookup_keys.contains(k)))
        })
        .collect();
    list_response(store, form, "/v1/prices", rows, |_, p| objects::price(p))
}

pub fn update_price(store: &mut Store, id: &str, form: &Form) -> Result {
    if !store.prices.contains(id) {
        return Err(ApiError::no_such("price", id));
    }
    if form.has("lookup_key") {
        let key = form.string("lookup_key");
        if let Some(key) = &key {
            if store.prices.get(id).and_then(|p| p.lookup_key.as_ref()) != Some(key) {
                claim_lookup_key(store, key, form.bool("transfer_lookup_key")?.unwrap_or(false))?;
            }
        }
        if let Some(p) = store.prices.get_mut(id) {
            p.lookup_key = key;
        }
    }
    let active = form.bool("active")?;
    let p = store.prices.get_mut(id).ok_or_else(|| ApiError::no_such("price", id))?;
    if let Some(active) = active {
        p.active = active;
    }
    if form.has("nickname") {
        p.nickname = form.string("nickname");
    }
    if let Some(patch) = form.metadata("metadata") {
        patch.apply(&mut p.metadata);
    }
    Ok(objects::price(p))
}
