//! Checkout sessions (`mode=subscription`). Paying happens on the emulator's checkout page or
//! through `POST /_emulator/checkout/sessions/{id}/complete`.

use super::{list_response, Result};
use crate::clock::new_id;
use crate::error::ApiError;
use crate::form::Form;
use crate::objects;
use crate::state::{CheckoutSession, SessionLine, SessionStatus, Store};

/// Stripe's default: a session expires 24 hours after it is created.
const SESSION_LIFETIME: i64 = 24 * 3600;

pub fn create(store: &mut Store, form: &Form) -> Result {
    let mode = form.required("mode")?;
    if mode != "subscription" {
        return Err(ApiError::invalid(
            format!("The emulator supports mode=subscription only, not {mode}."),
            Some("mode".into()),
        ));
    }
    let customer = form.string("customer");
    if let Some(c) = &customer {
        store.customer_or_param(c, "customer")?;
    }
    let mut lines = Vec::new();
    for item in form.each("line_items") {
        let price = item.required("price")?;
        match store.prices.get(price) {
            None => return Err(ApiError::no_such_param("price", price, &item.name("price"))),
            Some(p) if p.recurring.is_none() => {
                return Err(ApiError::invalid(
                    "In subscription mode, every line item needs a recurring price.",
                    Some(item.name("price")),
                ))
            }
            Some(_) => {}
        }
        let quantity = item.int("quantity")?.unwrap_or(1);
        let quantity = u64::try_from(quantity)
            .map_err(|_| ApiError::invalid("quantity must be positive", Some(item.name("quantity"))))?;
        lines.push(SessionLine { id: new_id("li"), price: price.to_owned(), quantity });
    }
    if lines.is_empty() {
        return Err(ApiError::missing_param("line_items"));
    }
    let now = store.now();
    let subscription_data = form.child("subscription_data");
    let session = CheckoutSession {
        id: new_id("cs_test"),
        created: now,
        expires_at: form.int("expires_at")?.unwrap_or(now + SESSION_LIFETIME),
        mode: mode.to_owned(),
        customer,
        customer_email: form.string("customer_email"),
        lines,
        success_url: form.string("success_url"),
        cancel_url: form.string("cancel_url"),
        client_reference_id: form.string("client_reference_id"),
        metadata: form.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
        subscription_metadata: subscription_data.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
        status: SessionStatus::Open,
        paid: false,
        subscription: None,
        invoice: None,
        pending_subscription: None,
    };
    let value = objects::checkout_session(store, &session);
    store.sessions.insert(session);
    Ok(value)
}

pub fn retrieve(store: &Store, id: &str, form: &Form) -> Result {
    let session = store.sessions.get(id).ok_or_else(|| ApiError::no_such("checkout.session", id))?;
    let mut value = objects::checkout_session(store, session);
    // `line_items` is not an id but an includable list, so it is expanded here.
    if form.strings("expand").iter().any(|e| e == "line_items") {
        let items = objects::checkout_line_items(store, session);
        value["line_items"] = objects::list(&format!("/v1/checkout/sessions/{id}/line_items"), items, false);
    }
    Ok(value)
}

pub fn list(store: &Store, form: &Form) -> Result {
    let customer = form.string("customer");
    let subscription = form.string("subscription");
    let status = form.string("status");
    let rows = store
        .sessions
        .iter()
        .rev()
        .filter(|s| {
            customer.as_ref().is_none_or(|c| s.customer.as_ref() == Some(c))
                && subscription.as_ref().is_none_or(|sub| s.subscription.as_ref() == Some(sub))
                && status.as_deref().is_none_or(|st| s.status.as_str() == st)
        })
        .collect();
    list_response(store, form, "/v1/checkout/sessions", rows, objects::checkout_session)
}

pub fn line_items(store: &Store, id: &str, _form: &Form) -> Result {
    let session = store.sessions.get(id).ok_or_else(|| ApiError::no_such("checkout.session", id))?;
    let items = objects::checkout_line_items(store, session);
    Ok(objects::list(&format!("/v1/checkout/sessions/{id}/line_items"), items, false))
}

pub fn expire(store: &mut Store, id: &str) -> Result {
    let session = store.sessions.get_mut(id).ok_or_else(|| ApiError::no_such("checkout.session", id))?;
    if session.status != SessionStatus::Open {
        return Err(ApiError::state(format!(
            "Only an open Checkout Session can be expired; {id} is {}.",
            session.status.as_str()
        )));
    }
    session.status = SessionStatus::Expired;
    let value = store.sessions.get(id).map(|s| objects::checkout_session(store, s)).unwrap_or_default();
    store.emit("checkout.session.expired", value.clone(), None);
    Ok(value)
}
