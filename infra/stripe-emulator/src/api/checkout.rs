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
    if mode == "setup" {
        return create_setup(store, form);
    }
    if mode != "subscription" {
        return Err(ApiError::invalid(
            format!("The emulator supports mode=subscription and mode=setup only, not {mode}."),
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
    let subscription_data = form.child("subscription_data");
    let trial_period_days = match subscription_data.int("trial_period_days")? {
        None => None,
        Some(days) => Some(u32::try_from(days).ok().filter(|d| (1..=730).contains(d)).ok_or_else(|| {
            ApiError::invalid(
                "trial_period_days must be between 1 and 730.",
                Some(subscription_data.name("trial_period_days")),
            )
        })?),
    };
    let coupon = session_coupon(store, form, &lines)?;
    let now = store.now();
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
        trial_period_days,
        coupon,
        status: SessionStatus::Open,
        paid: false,
        subscription: None,
        invoice: None,
        pending_subscription: None,
        setup_intent: None,
        currency: None,
    };
    let value = objects::checkout_session(store, &session);
    store.sessions.insert(session);
    Ok(value)
}

/// `mode=setup`: saves a card for later payments, charges nothing. As in Stripe, line items
/// are refused, `currency` is required (no `payment_method_types` are emulated), and a
/// SetupIntent is created with the session (`setup_intent_data[metadata|description]`).
fn create_setup(store: &mut Store, form: &Form) -> Result {
    if !form.each("line_items").is_empty() {
        return Err(ApiError::invalid("You cannot pass `line_items` in `setup` mode.", Some("line_items".into())));
    }
    let currency = form.required("currency")?.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(ApiError::invalid(format!("Invalid currency: {currency}."), Some("currency".into())));
    }
    let customer = form.string("customer");
    if let Some(c) = &customer {
        store.customer_or_param(c, "customer")?;
    }
    let setup_data = form.child("setup_intent_data");
    let setup_metadata = setup_data.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default();
    let setup_intent = store.create_setup_intent(customer.clone(), setup_metadata, setup_data.string("description"));
    let now = store.now();
    let session = CheckoutSession {
        id: new_id("cs_test"),
        created: now,
        expires_at: form.int("expires_at")?.unwrap_or(now + SESSION_LIFETIME),
        mode: "setup".to_owned(),
        customer,
        customer_email: form.string("customer_email"),
        lines: Vec::new(),
        success_url: form.string("success_url"),
        cancel_url: form.string("cancel_url"),
        client_reference_id: form.string("client_reference_id"),
        metadata: form.metadata("metadata").map(|m| m.into_metadata()).unwrap_or_default(),
        subscription_metadata: Default::default(),
        trial_period_days: None,
        coupon: None,
        status: SessionStatus::Open,
        paid: false,
        subscription: None,
        invoice: None,
        pending_subscription: None,
        setup_intent: Some(setup_intent),
        currency: Some(currency),
    };
    let value = objects::checkout_session(store, &session);
    store.sessions.insert(session);
    Ok(value)
}

/// `discounts[0][coupon]`: Checkout takes one discount, a coupon that exists, is still valid
/// and, for `amount_off`, is in the prices' currency. Promotion codes are not emulated.
fn session_coupon(store: &Store, form: &Form, lines: &[SessionLine]) -> Result<Option<String>> {
    let discounts = form.each("discounts");
    if discounts.len() > 1 {
        return Err(ApiError::invalid("You may only specify one discount.", Some("discounts".into())));
    }
    let Some(discount) = discounts.first() else { return Ok(None) };
    if discount.has("promotion_code") {
        return Err(ApiError::invalid(
            "The emulator supports coupons only, not promotion codes.",
            Some(discount.name("promotion_code")),
        ));
    }
    let id = discount.required("coupon")?;
    let currency = lines.first().and_then(|l| store.prices.get(&l.price)).map(|p| p.currency.as_str());
    store.redeemable_coupon(id, &discount.name("coupon"), currency)?;
    Ok(Some(id.to_owned()))
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
