//! Stripe JSON for the emulator's state. Each object starts from Stripe's example object for
//! its resource (`fixtures.rs`) and overlays what the emulator keeps; example values that would
//! mislead (a discount on every customer, sample shipping costs) are reset to what a fresh
//! test-mode object has.

use serde_json::{json, Map, Value};

use crate::discount;
use crate::fixtures::fixture;
use crate::state::{
    charge_of, payment_intent_of, CheckoutSession, Coupon, CouponValue, CreditNote, Customer, Discount, Dispute,
    Invoice, InvoiceItem, InvoiceLine, InvoiceStatus, LineSource, Metadata, PaymentMethod, Price, Product, Refund,
    SessionStatus, SetupIntent, Store, Subscription, SubscriptionItem,
};

fn set_all(object: &mut Map<String, Value>, values: Value) {
    if let Value::Object(values) = values {
        object.extend(values);
    }
}

pub fn metadata(m: &Metadata) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

pub fn list(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

pub fn customer(store: &Store, c: &Customer) -> Value {
    let mut o = fixture("customer");
    let delinquent =
        store.invoices.iter().any(|i| i.customer == c.id && i.status == InvoiceStatus::Open && i.attempted);
    set_all(
        &mut o,
        json!({
            "id": c.id,
            "created": c.created,
            "email": c.email,
            "name": c.name,
            "description": c.description,
            "metadata": metadata(&c.metadata),
            "invoice_prefix": c.invoice_prefix,
            "next_invoice_sequence": c.next_invoice_sequence,
            "balance": c.balance,
            "currency": c.currency,
            "delinquent": delinquent,
            "discount": null,
            "address": null,
            "shipping": null,
            "invoice_settings": {
                "custom_fields": null,
                "default_payment_method": c.default_payment_method,
                "footer": null,
                "rendering_options": null,
            },
        }),
    );
    Value::Object(o)
}

/// A saved card. Only brand, last four and expiry are kept; the rest is a fresh test card's.
pub fn payment_method(p: &PaymentMethod) -> Value {
    let mut o = fixture("payment_method");
    set_all(
        &mut o,
        json!({
            "id": p.id,
            "created": p.created,
            "customer": p.customer,
            "customer_account": null,
            "livemode": false,
            "metadata": {},
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": null, "email": null, "name": null, "phone": null, "tax_id": null,
            },
            "type": "card",
            "card": {
                "brand": p.brand,
                "checks": { "address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass" },
                "country": "US",
                "display_brand": p.brand,
                "exp_month": p.exp_month,
                "exp_year": p.exp_year,
                "fingerprint": format!("fp{}", p.last4),
                "funding": "credit",
                "generated_from": null,
                "last4": p.last4,
                "networks": { "available": [p.brand], "preferred": null },
                "three_d_secure_usage": { "supported": true },
                "wallet": null,
                "regulated_status": null,
            },
        }),
    );
    Value::Object(o)
}

pub fn setup_intent(i: &SetupIntent) -> Value {
    let mut o = fixture("setup_intent");
    set_all(
        &mut o,
        json!({
            "id": i.id,
            "created": i.created,
            "customer": i.customer,
            "description": i.description,
            "metadata": metadata(&i.metadata),
            "payment_method": i.payment_method,
            "status": if i.succeeded { "succeeded" } else { "requires_payment_method" },
            "client_secret": format!("{}_secret_emulator", i.id),
            "last_setup_error": null,
            "next_action": null,
            "latest_attempt": null,
            "livemode": false,
            "payment_method_configuration_details": null,
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "usage": "off_session",
            "automatic_payment_methods": null,
        }),
    );
    Value::Object(o)
}

pub fn product(p: &Product) -> Value {
    let mut o = fixture("product");
    set_all(
        &mut o,
        json!({
            "id": p.id,
            "created": p.created,
            "updated": p.updated,
            "name": p.name,
            "description": p.description,
            "active": p.active,
            "metadata": metadata(&p.metadata),
            "default_price": null,
            "package_dimensions": null,
            "type": "service",
        }),
    );
    Value::Object(o)
}

pub fn price(p: &Price) -> Value {
    let mut o = fixture("price");
    let recurring = p.recurring.map(|r| {
        json!({
            "interval": r.interval.as_str(),
            "interval_count": r.interval_count,
            "meter": null,
            "usage_type": "licensed",
            "trial_period_days": null,
        })
    });
    set_all(
        &mut o,
        json!({
            "id": p.id,
            "created": p.created,
            "product": p.product,
            "active": p.active,
            "currency": p.currency,
            "unit_amount": p.unit_amount,
            "unit_amount_decimal": p.unit_amount.to_string(),
            "recurring": recurring,
            "type": if p.recurring.is_some() { "recurring" } else { "one_time" },
            "lookup_key": p.lookup_key,
            "nickname": p.nickname,
            "metadata": metadata(&p.metadata),
            "custom_unit_amount": null,
            "transform_quantity": null,
        }),
    );
    Value::Object(o)
}

/// Stripe's coupon. There is no coupon in the fixtures the emulator copies, so the object is
/// built whole, with every field of the coupon object of the API version.
pub fn coupon(store: &Store, c: &Coupon) -> Value {
    let (percent_off, amount_off, currency) = match &c.value {
        CouponValue::PercentOff { hundredths } => (Some(discount::percent_value(*hundredths)), None, None),
        CouponValue::AmountOff { amount, currency } => (None, Some(*amount), Some(currency.clone())),
    };
    json!({
        "id": c.id,
        "object": "coupon",
        "amount_off": amount_off,
        "applies_to": null,
        "created": c.created,
        "currency": currency,
        "duration": c.duration.as_str(),
        "duration_in_months": c.duration_in_months,
        "livemode": false,
        "max_redemptions": c.max_redemptions,
        "metadata": metadata(&c.metadata),
        "name": c.name,
        "percent_off": percent_off,
        "redeem_by": c.redeem_by,
        "times_redeemed": c.times_redeemed,
        "valid": c.valid(store.now()),
    })
}

/// Stripe's discount, from the example discount inside the subscription fixture
/// (`pending_update.discount`). `source.coupon` is the coupon's id (expandable).
pub fn discount(_store: &Store, d: &Discount) -> Value {
    let mut o = match fixture("subscription").remove("pending_update") {
        Some(Value::Object(mut pending)) => match pending.remove("discount") {
            Some(Value::Object(discount)) => discount,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    set_all(
        &mut o,
        json!({
            "id": d.id,
            "object": "discount",
            "checkout_session": null,
            "customer": d.customer,
            "customer_account": null,
            "end": d.end,
            "invoice": null,
            "invoice_item": null,
            "promotion_code": null,
            "source": { "type": "coupon", "coupon": d.coupon },
            "start": d.start,
            "subscription": d.subscription,
            "subscription_item": null,
        }),
    );
    Value::Object(o)
}

/// The legacy `plan` Stripe still embeds in subscription items, derived from the price.
fn plan(p: &Price) -> Value {
    let mut o = match fixture("subscription_item").remove("plan") {
        Some(Value::Object(plan)) => plan,
        _ => Map::new(),
    };
    let recurring =
        p.recurring.unwrap_or(crate::state::Recurring { interval: crate::state::Interval::Month, interval_count: 1 });
    set_all(
        &mut o,
        json!({
            "id": p.id,
            "active": p.active,
            "amount": p.unit_amount,
            "amount_decimal": p.unit_amount.to_string(),
            "billing_scheme": "per_unit",
            "created": p.created,
            "currency": p.currency,
            "interval": recurring.interval.as_str(),
            "interval_count": recurring.interval_count,
            "livemode": false,
            "metadata": metadata(&p.metadata),
            "nickname": p.nickname,
            "product": p.product,
            "transform_usage": null,
        }),
    );
    Value::Object(o)
}

fn price_value(store: &Store, id: &str) -> Value {
    store.prices.get(id).map_or(Value::String(id.to_owned()), price)
}

pub fn subscription_item(store: &Store, sub: &Subscription, item: &SubscriptionItem) -> Value {
    let mut o = fixture("subscription_item");
    let plan = store.prices.get(&item.price).map_or(Value::Null, plan);
    set_all(
        &mut o,
        json!({
            "id": item.id,
            "created": item.created,
            "metadata": metadata(&item.metadata),
            "price": price_value(store, &item.price),
            "plan": plan,
            "quantity": item.quantity,
            "subscription": sub.id,
            "current_period_start": item.current_period_start,
            "current_period_end": item.current_period_end,
            "billing_thresholds": null,
        }),
    );
    Value::Object(o)
}

pub fn subscription(store: &Store, s: &Subscription) -> Value {
    let mut o = fixture("subscription");
    let items: Vec<Value> = s.items.iter().map(|i| subscription_item(store, s, i)).collect();
    let (_, period_end) = s.period();
    let cancel_at = if s.cancel_at_period_end && !s.status.is_ended() { Some(period_end) } else { None };
    set_all(
        &mut o,
        json!({
            "id": s.id,
            "created": s.created,
            "customer": s.customer,
            "currency": s.currency,
            "description": s.description,
            "status": s.status.as_str(),
            "metadata": metadata(&s.metadata),
            "items": list(&format!("/v1/subscription_items?subscription={}", s.id), items, false),
            "latest_invoice": s.latest_invoice,
            "start_date": s.start_date,
            "billing_cycle_anchor": s.billing_cycle_anchor,
            "billing_cycle_anchor_config": null,
            "cancel_at_period_end": s.cancel_at_period_end,
            "cancel_at": cancel_at,
            "canceled_at": s.canceled_at,
            "ended_at": s.ended_at,
            "cancellation_details": {
                "comment": null,
                "feedback": null,
                "reason": s.cancellation_reason,
            },
            "trial_start": s.trial_start,
            "trial_end": s.trial_end,
            "discounts": s.discounts,
            "next_pending_invoice_item_invoice": null,
            "pending_invoice_item_interval": null,
            "pending_update": null,
            "pause_collection": null,
            "transfer_data": null,
            "billing_thresholds": null,
            "billing_schedules": [],
            "managed_payments": null,
            // The subscription's own card, else the customer's default, else the card
            // Checkout collected: every emulated subscription pays by card.
            "default_payment_method": s.default_payment_method.clone().or_else(|| {
                let c = store.customers.get(&s.customer)?;
                Some(c.default_payment_method.clone().unwrap_or_else(|| c.payment_method_id()))
            }),
        }),
    );
    Value::Object(o)
}

/// A customer's own card (the one Checkout collected) as a `payment_method`
/// (Stripe's fixture with this card's brand and last four digits;
/// `expand[]=default_payment_method` returns it). Cards saved later through setup
/// sessions are `PaymentMethod`s (`payment_method`).
pub fn checkout_card(c: &Customer) -> Value {
    let mut o = fixture("payment_method");
    let mut card = o.get("card").and_then(Value::as_object).cloned().unwrap_or_default();
    card.insert("brand".into(), json!(c.card_brand));
    card.insert("display_brand".into(), json!(c.card_brand));
    card.insert("last4".into(), json!(c.card_last4));
    set_all(
        &mut o,
        json!({
            "id": c.payment_method_id(),
            "created": c.created,
            "customer": c.id,
            "metadata": {},
            "billing_details": {"address": null, "email": null, "name": null, "phone": null, "tax_id": null},
            "card": Value::Object(card),
        }),
    );
    Value::Object(o)
}

/// The first invoice a checkout session will create: per line, the amount and the discount
/// (a trial makes the first invoice 0), and the currency.
fn session_lines(store: &Store, s: &CheckoutSession) -> (Vec<(i64, i64)>, Option<String>) {
    let mut currency = None;
    let amounts: Vec<i64> = s
        .lines
        .iter()
        .map(|line| match store.prices.get(&line.price) {
            Some(p) => {
                currency.get_or_insert_with(|| p.currency.clone());
                if s.trial_period_days.is_some() {
                    0
                } else {
                    p.unit_amount * line.quantity as i64
                }
            }
            None => 0,
        })
        .collect();
    let coupon = s.coupon.as_deref().and_then(|c| store.coupons.get(c));
    let off = match coupon.map(|c| &c.value) {
        Some(CouponValue::AmountOff { currency: own, .. }) if Some(own) != currency.as_ref() => 0,
        Some(value) => discount::amount_off(value, amounts.iter().sum()),
        None => 0,
    };
    let shares = discount::allocate(off, &amounts);
    (amounts.into_iter().zip(shares).collect(), currency)
}

pub fn checkout_session(store: &Store, s: &CheckoutSession) -> Value {
    let mut o = fixture("checkout.session");
    let (lines, currency) = session_lines(store, s);
    let subtotal: i64 = lines.iter().map(|(amount, _)| amount).sum();
    let discount: i64 = lines.iter().map(|(_, off)| off).sum();
    let discounts: Vec<Value> = s.coupon.iter().map(|c| json!({ "coupon": c, "promotion_code": null })).collect();
    let open = s.status == SessionStatus::Open;
    let email = s
        .customer_email
        .clone()
        .or_else(|| s.customer.as_deref().and_then(|c| store.customers.get(c)).and_then(|c| c.email.clone()));
    let customer_details = if open {
        Value::Null
    } else {
        json!({
            "address": null,
            "email": email,
            "name": null,
            "phone": null,
            "tax_exempt": "none",
            "tax_ids": [],
            "business_name": null,
            "individual_name": null,
        })
    };
    set_all(
        &mut o,
        json!({
            "id": s.id,
            "created": s.created,
            "expires_at": s.expires_at,
            "mode": s.mode,
            "status": s.status.as_str(),
            "payment_status": match (s.mode.as_str(), s.paid) {
                ("setup", _) => "no_payment_required",
                (_, true) => "paid",
                _ => "unpaid",
            },
            "setup_intent": s.setup_intent,
            "customer": s.customer,
            "customer_email": s.customer_email,
            "customer_details": customer_details,
            "customer_creation": null,
            "client_reference_id": s.client_reference_id,
            "metadata": metadata(&s.metadata),
            "success_url": s.success_url,
            "cancel_url": s.cancel_url,
            "url": if open { Some(format!("{}/checkout/{}", store.base_url, s.id)) } else { None },
            "subscription": s.subscription,
            "invoice": s.invoice,
            "amount_subtotal": if s.mode == "setup" { None } else { Some(subtotal) },
            "amount_total": if s.mode == "setup" { None } else { Some(subtotal - discount) },
            "currency": currency.or_else(|| s.currency.clone()),
            "payment_intent": null,
            "payment_method_collection": "always",
            "total_details": { "amount_discount": discount, "amount_shipping": 0, "amount_tax": 0 },
            "shipping_cost": null,
            "shipping_address_collection": null,
            "shipping_options": [],
            "custom_text": {
                "after_submit": null,
                "shipping_address": null,
                "submit": null,
                "terms_of_service_acceptance": null,
            },
            "after_expiration": null,
            "consent": null,
            "consent_collection": null,
            "currency_conversion": null,
            "collected_information": null,
            "invoice_creation": null,
            "payment_method_configuration_details": null,
            "ui_mode": "hosted",
            "discounts": discounts,
        }),
    );
    Value::Object(o)
}

/// A checkout session's line items (`GET /v1/checkout/sessions/{id}/line_items`).
/// Amounts are those of the first invoice, as on the session.
pub fn checkout_line_items(store: &Store, s: &CheckoutSession) -> Vec<Value> {
    let (amounts, _) = session_lines(store, s);
    s.lines
        .iter()
        .zip(amounts)
        .map(|(line, (amount, off))| {
            let mut o = fixture("item");
            let p = store.prices.get(&line.price);
            let description = p.and_then(|p| store.products.get(&p.product)).map(|prod| prod.name.clone());
            set_all(
                &mut o,
                json!({
                    "id": line.id,
                    "amount_subtotal": amount,
                    "amount_total": amount - off,
                    "amount_discount": off,
                    "amount_tax": 0,
                    "currency": p.map(|p| p.currency.clone()),
                    "description": description,
                    "price": price_value(store, &line.price),
                    "quantity": line.quantity,
                    "adjustable_quantity": null,
                }),
            );
            Value::Object(o)
        })
        .collect()
}

fn proration_details() -> Value {
    json!({ "credited_items": null })
}

fn pricing(store: &Store, price_id: Option<&str>, unit_amount: i64) -> Value {
    let details = price_id.and_then(|id| store.prices.get(id)).map(|p| json!({ "price": p.id, "product": p.product }));
    json!({
        "type": "price_details",
        "price_details": details,
        "unit_amount_decimal": unit_amount.to_string(),
    })
}

pub fn invoice_line(store: &Store, inv: &Invoice, line: &InvoiceLine) -> Value {
    let mut o = fixture("line_item");
    let parent = match &line.source {
        LineSource::SubscriptionItem { subscription_item, invoice_item } => json!({
            "type": "subscription_item_details",
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": invoice_item,
                "proration": line.proration,
                "proration_details": proration_details(),
                "subscription": line.subscription,
                "subscription_item": subscription_item,
            },
        }),
        LineSource::InvoiceItem { invoice_item } => json!({
            "type": "invoice_item_details",
            "subscription_item_details": null,
            "invoice_item_details": {
                "invoice_item": invoice_item,
                "proration": line.proration,
                "proration_details": proration_details(),
                "subscription": line.subscription,
            },
        }),
    };
    let unit_amount = if line.quantity > 0 { line.amount / line.quantity as i64 } else { line.amount };
    let discount_amounts: Vec<Value> =
        inv.discount.iter().map(|d| json!({ "amount": line.discount_amount, "discount": d })).collect();
    set_all(
        &mut o,
        json!({
            "id": line.id,
            "amount": line.amount,
            "subtotal": line.amount,
            "discount_amounts": discount_amounts,
            "discountable": line.discountable(),
            "discounts": [],
            "currency": line.currency,
            "description": line.description,
            "invoice": inv.id,
            "metadata": {},
            "period": { "start": line.period.0, "end": line.period.1 },
            "quantity": line.quantity,
            "subscription": line.subscription,
            "parent": parent,
            "pricing": pricing(store, line.price.as_deref(), unit_amount),
            "taxes": [],
            "pretax_credit_amounts": [],
        }),
    );
    Value::Object(o)
}

pub fn invoice(store: &Store, inv: &Invoice) -> Value {
    let mut o = fixture("invoice");
    let customer = store.customers.get(&inv.customer);
    let lines: Vec<Value> = inv.lines.iter().map(|l| invoice_line(store, inv, l)).collect();
    let finalized = inv.finalized_at.is_some();
    let parent = inv.subscription.as_ref().map(|sub| {
        json!({
            "type": "subscription_details",
            "quote_details": null,
            "subscription_details": {
                "metadata": metadata(&inv.subscription_metadata),
                "subscription": sub,
                "subscription_proration_date": null,
            },
        })
    });
    let hosted = finalized.then(|| format!("{}/invoices/{}/hosted", store.base_url, inv.id));
    let pdf = finalized.then(|| format!("{}/invoices/{}/pdf", store.base_url, inv.id));
    let subtotal = inv.subtotal();
    let total = inv.total();
    let total_discount_amounts: Vec<Value> =
        inv.discount.iter().map(|d| json!({ "amount": inv.discount_amount(), "discount": d })).collect();
    set_all(
        &mut o,
        json!({
            "id": inv.id,
            "number": inv.number,
            "customer": inv.customer,
            "customer_email": customer.and_then(|c| c.email.clone()),
            "customer_name": customer.and_then(|c| c.name.clone()),
            "customer_address": null,
            "customer_shipping": null,
            "account_name": "Tierdesk (Stripe emulator)",
            "status": inv.status.as_str(),
            "billing_reason": inv.billing_reason.as_str(),
            "created": inv.created,
            "period_start": inv.period_start,
            "period_end": inv.period_end,
            "currency": inv.currency,
            "lines": list(&format!("/v1/invoices/{}/lines", inv.id), lines, false),
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal,
            "discounts": inv.discount.iter().collect::<Vec<_>>(),
            "total_discount_amounts": total_discount_amounts,
            "total": total,
            "total_excluding_tax": total,
            "amount_due": inv.amount_due(),
            "amount_paid": inv.amount_paid,
            "amount_remaining": inv.amount_remaining(),
            "amount_overpaid": 0,
            "amount_shipping": 0,
            "starting_balance": inv.starting_balance,
            "ending_balance": inv.ending_balance,
            "attempt_count": inv.attempt_count,
            "attempted": inv.attempted,
            "auto_advance": inv.auto_advance,
            "next_payment_attempt": inv.next_payment_attempt,
            "hosted_invoice_url": hosted,
            "invoice_pdf": pdf,
            "effective_at": inv.finalized_at,
            "due_date": null,
            "status_transitions": {
                "finalized_at": inv.finalized_at,
                "marked_uncollectible_at": inv.marked_uncollectible_at,
                "paid_at": inv.paid_at,
                "voided_at": inv.voided_at,
            },
            "parent": parent,
            "description": inv.description,
            "metadata": metadata(&inv.metadata),
            "from_invoice": null,
            "last_finalization_error": null,
            "shipping_cost": null,
            "shipping_details": null,
            "webhooks_delivered_at": inv.finalized_at,
            "total_taxes": [],
            "total_pretax_credit_amounts": [],
        }),
    );
    Value::Object(o)
}

pub fn invoice_item(store: &Store, ii: &InvoiceItem) -> Value {
    let mut o = fixture("invoiceitem");
    let parent = ii.subscription.as_ref().map(|sub| {
        json!({
            "type": "subscription_details",
            "subscription_details": { "subscription": sub, "subscription_item": ii.subscription_item },
        })
    });
    let unit_amount = if ii.quantity > 0 { ii.amount / ii.quantity as i64 } else { ii.amount };
    set_all(
        &mut o,
        json!({
            "id": ii.id,
            "amount": ii.amount,
            "net_amount": ii.amount,
            "currency": ii.currency,
            "customer": ii.customer,
            "date": ii.created,
            "description": ii.description,
            "invoice": ii.invoice,
            "metadata": metadata(&ii.metadata),
            "period": { "start": ii.period.0, "end": ii.period.1 },
            "proration": ii.proration,
            "quantity": ii.quantity,
            "quantity_decimal": ii.quantity.to_string(),
            "parent": parent,
            "pricing": pricing(store, ii.price.as_deref(), unit_amount),
        }),
    );
    Value::Object(o)
}

/// Any stored object by id, for `expand[]`.
pub fn by_id(store: &Store, id: &str) -> Option<Value> {
    let prefix = id.split('_').next().unwrap_or_default();
    match prefix {
        "cus" => store.customers.get(id).map(|c| customer(store, c)),
        "prod" => store.products.get(id).map(product),
        "price" => store.prices.get(id).map(price),
        "sub" => store.subscriptions.get(id).map(|s| subscription(store, s)),
        "in" => store.invoices.get(id).map(|i| invoice(store, i)),
        "ii" => store.invoice_items.get(id).map(|i| invoice_item(store, i)),
        "cs" => store.sessions.get(id).map(|s| checkout_session(store, s)),
        "di" => store.discounts.get(id).map(|d| discount(store, d)),
        "pm" => store
            .payment_methods
            .get(id)
            .map(payment_method)
            .or_else(|| store.customers.get(&format!("cus_{}", id.trim_start_matches("pm_"))).map(checkout_card)),
        "seti" => store.setup_intents.get(id).map(setup_intent),
        // Coupon ids are chosen freely; `expand[]` only looks one up at a coupon's place.
        _ => store.coupons.get(id).map(|c| coupon(store, c)),
    }
}

/// Replaces the id at a dotted `expand[]` path (`latest_invoice`, `data.customer`,
/// `items.data.price.product`) with the object it names. Lists are walked through `data`.
pub fn expand(store: &Store, value: &mut Value, path: &str) {
    let segments: Vec<&str> = path.split('.').collect();
    expand_at(store, value, &segments);
}

fn expand_at(store: &Store, value: &mut Value, segments: &[&str]) {
    let Some((first, rest)) = segments.split_first() else { return };
    match value {
        Value::Array(items) => items.iter_mut().for_each(|item| expand_at(store, item, segments)),
        Value::Object(map) => {
            let Some(child) = map.get_mut(*first) else { return };
            match child {
                Value::String(_) => expand_id(store, child),
                // A list of ids, such as `discounts`.
                Value::Array(items) => items.iter_mut().for_each(|item| expand_id(store, item)),
                _ => {}
            }
            expand_at(store, child, rest);
        }
        _ => {}
    }
}

fn expand_id(store: &Store, value: &mut Value) {
    if let Value::String(id) = value {
        if let Some(object) = by_id(store, id) {
            *value = object;
        }
    }
}

/// `data.previous_attributes` of a `*.updated` event: the previous value of every top-level
/// field that changed, or `None` when nothing did.
pub fn previous_attributes(before: &Value, after: &Value) -> Option<Value> {
    let (Value::Object(before), Value::Object(after)) = (before, after) else { return None };
    let changed: Map<String, Value> =
        before.iter().filter(|(k, v)| after.get(k.as_str()) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    (!changed.is_empty()).then_some(Value::Object(changed))
}

pub fn credit_note(store: &Store, c: &CreditNote) -> Value {
    let mut o = fixture("credit_note");
    let refunds: Vec<Value> = c
        .refund
        .iter()
        .map(|(id, amount)| json!({ "amount_refunded": amount, "refund": id, "payment_record_refund": null, "type": "refund" }))
        .collect();
    set_all(
        &mut o,
        json!({
            "id": c.id,
            "number": c.number,
            "invoice": c.invoice,
            "customer": c.customer,
            "customer_account": null,
            "customer_balance_transaction": null,
            "amount": c.amount,
            "amount_shipping": 0,
            "subtotal": c.amount,
            "subtotal_excluding_tax": c.amount,
            "total": c.amount,
            "total_excluding_tax": c.amount,
            "currency": c.currency,
            "created": c.created,
            "effective_at": c.created,
            "discount_amount": 0,
            "discount_amounts": [],
            "lines": list(&format!("/v1/credit_notes/{}/lines", c.id), vec![], false),
            "memo": c.memo,
            "reason": c.reason,
            "metadata": metadata(&c.metadata),
            "out_of_band_amount": c.out_of_band_amount,
            "pdf": format!("{}/credit_notes/{}/pdf", store.base_url, c.id),
            "post_payment_amount": c.amount,
            "pre_payment_amount": 0,
            "pretax_credit_amounts": [],
            "refunds": refunds,
            "shipping_cost": null,
            "status": "issued",
            "total_taxes": [],
            "type": "post_payment",
            "voided_at": null,
        }),
    );
    Value::Object(o)
}

pub fn refund(r: &Refund) -> Value {
    let mut o = fixture("refund");
    set_all(
        &mut o,
        json!({
            "id": r.id,
            "amount": r.amount,
            "currency": r.currency,
            "created": r.created,
            "charge": null,
            "payment_intent": null,
            "customer": r.customer,
            "metadata": { "invoice": r.invoice, "credit_note": r.credit_note },
            "reason": "requested_by_customer",
            "status": "succeeded",
            "balance_transaction": null,
        }),
    );
    Value::Object(o)
}

/// A dispute on an invoice's charge, from Stripe's fixture.
pub fn dispute(d: &Dispute) -> Value {
    let mut o = fixture("dispute");
    set_all(
        &mut o,
        json!({
            "id": d.id,
            "amount": d.amount,
            "currency": d.currency,
            "charge": charge_of(&d.invoice),
            "payment_intent": payment_intent_of(&d.invoice),
            "created": d.created,
            "reason": d.reason,
            "status": d.status,
            "livemode": false,
            "metadata": {},
            "balance_transactions": [],
            "is_charge_refundable": false,
        }),
    );
    Value::Object(o)
}

/// The payment of a paid invoice (`GET /v1/invoice_payments`), from Stripe's fixture.
pub fn invoice_payment(inv: &Invoice) -> Value {
    let mut o = fixture("invoice_payment");
    set_all(
        &mut o,
        json!({
            "id": format!("inpay_{}", inv.id.trim_start_matches("in_")),
            "invoice": inv.id,
            "amount_paid": inv.amount_paid,
            "amount_requested": inv.amount_paid,
            "currency": inv.currency,
            "created": inv.paid_at.unwrap_or(inv.created),
            "is_default": true,
            "livemode": false,
            "payment": {"type": "payment_intent", "payment_intent": payment_intent_of(&inv.id)},
            "status": "paid",
            "status_transitions": {"canceled_at": null, "paid_at": inv.paid_at},
        }),
    );
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_attributes_keeps_only_changed_fields() {
        let before = json!({"status": "active", "metadata": {"a": "1"}, "id": "sub_1"});
        let after = json!({"status": "past_due", "metadata": {"a": "1"}, "id": "sub_1"});
        assert_eq!(previous_attributes(&before, &after), Some(json!({"status": "active"})));
        assert_eq!(previous_attributes(&before, &before), None);
    }
}
