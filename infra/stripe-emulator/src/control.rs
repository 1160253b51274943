//! Emulator control endpoints (`/_emulator/…`, not Stripe's) and the pages Stripe would host:
//! the checkout page, the hosted invoice and its PDF.
//!
//! A control action returns only after the events it caused have been delivered (or have
//! failed every retry), so a test can assert on its webhook receiver right after the call.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use crate::app::App;
use crate::error::ApiError;
use crate::objects;
use crate::state::{SessionStatus, Store};

fn respond(status: u16, body: &Value) -> Response {
    let mut response = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn result(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(value) => respond(200, &value),
        Err(error) => respond(error.status, &error.body()),
    }
}

/// Runs `action` under the store lock, then waits for the events it caused to be delivered.
async fn act<T>(app: &App, action: impl FnOnce(&mut Store) -> T) -> T {
    let (outcome, count) = {
        let mut store = app.lock();
        let outcome = action(&mut store);
        (outcome, store.events.len())
    };
    app.delivered(count).await;
    outcome
}

/// A control request's JSON body; an empty body is `{}`.
fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("Body is not JSON: {e}"), None))
}

pub(crate) async fn health(State(app): State<Arc<App>>) -> Response {
    respond(200, &json!({ "ok": true, "base_url": app.base_url }))
}

/// Completes a session as its customer would. For `mode=setup` the body may name the card
/// saved: `{"card": {"brand": "mastercard", "last4": "4444", "fails": false}}` (default: a
/// Visa ending 4242 that pays).
pub(crate) async fn complete_checkout(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Response {
    let card = match json_body(&body).and_then(|v| crate::billing::CardInput::parse(&v["card"])) {
        Ok(card) => card,
        Err(e) => return result(Err(e)),
    };
    result(
        act(&app, |store| {
            if store.sessions.get(&id).is_some_and(|s| s.mode == "setup") {
                store.complete_setup(&id, &card)?;
            } else {
                store.complete_checkout(&id)?;
            }
            Ok(store.sessions.get(&id).map(|s| objects::checkout_session(store, s)).unwrap_or_default())
        })
        .await,
    )
}

pub(crate) async fn advance_subscription(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    result(
        act(&app, |store| {
            store.advance_subscription(&id)?;
            Ok(store.subscriptions.get(&id).map(|s| objects::subscription(store, s)).unwrap_or_default())
        })
        .await,
    )
}

pub(crate) async fn retry_invoice(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    result(
        act(&app, |store| {
            store.retry_invoice(&id)?;
            Ok(store.invoices.get(&id).map(|i| objects::invoice(store, i)).unwrap_or_default())
        })
        .await,
    )
}

/// `{"fails": true}` makes every later charge on the customer's card decline;
/// `brand` and `last4` replace the card's (its `payment_method`).
pub(crate) async fn set_card(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(e) => return result(Err(e)),
    };
    let fails = body.get("fails").and_then(Value::as_bool).unwrap_or(false);
    let mut store = app.lock();
    let outcome = match store.customers.get_mut(&id) {
        Some(c) => {
            c.card_fails = fails;
            if let Some(brand) = body.get("brand").and_then(Value::as_str) {
                c.card_brand = brand.to_string();
            }
            if let Some(last4) = body.get("last4").and_then(Value::as_str) {
                c.card_last4 = last4.to_string();
            }
            Ok(json!({ "customer": id, "card_fails": fails, "brand": c.card_brand, "last4": c.card_last4 }))
        }
        None => Err(ApiError::no_such("customer", &id)),
    };
    result(outcome)
}

/// Forgets every saved `Idempotency-Key` (Stripe keeps them about 24 hours).
pub(crate) async fn forget_idempotency_keys(State(app): State<Arc<App>>) -> Response {
    let forgotten = {
        let mut store = app.lock();
        let n = store.idempotency.len();
        store.idempotency.clear();
        n
    };
    respond(200, &json!({ "forgotten": forgotten }))
}

pub(crate) async fn get_clock(State(app): State<Arc<App>>) -> Response {
    respond(200, &json!({ "now": app.clock.now() }))
}

pub(crate) async fn set_clock(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let now = match json_body(&body).map(|v| v.get("now").and_then(Value::as_i64)) {
        Ok(Some(now)) => now,
        Ok(None) => return result(Err(ApiError::missing_param("now"))),
        Err(e) => return result(Err(e)),
    };
    app.clock.set(now);
    respond(200, &json!({ "now": now }))
}

/// Every event created so far, oldest first, with its delivery attempts.
pub(crate) async fn events(State(app): State<Arc<App>>) -> Response {
    let store = app.lock();
    let data: Vec<Value> = store
        .events
        .iter()
        .map(|e| {
            let attempts: Vec<Value> =
                e.attempts.iter().map(|a| json!({ "at": a.at, "status": a.status, "error": a.error })).collect();
            json!({
                "id": e.id,
                "type": e.type_,
                "created": e.created,
                "delivery": e.state.as_str(),
                "attempts": attempts,
                "event": serde_json::from_str::<Value>(&e.payload).unwrap_or_default(),
            })
        })
        .collect();
    respond(200, &json!({ "object": "list", "data": data }))
}

pub(crate) async fn flush(State(app): State<Arc<App>>) -> Response {
    app.flush().await;
    let count = app.lock().events.len();
    respond(200, &json!({ "events": count }))
}

/// `{"url": "http://127.0.0.1:…/hook" | null, "secret": "whsec_…"}`; the secret is optional.
pub(crate) async fn set_webhook(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let value = match json_body(&body) {
        Ok(v) => v,
        Err(e) => return result(Err(e)),
    };
    let url = value.get("url").and_then(Value::as_str).map(str::to_owned);
    let secret = value.get("secret").and_then(Value::as_str).map(str::to_owned);
    app.set_target(url.clone(), secret);
    respond(200, &json!({ "url": url }))
}

pub(crate) async fn not_found(method: Method, uri: Uri) -> Response {
    let error = ApiError::unrecognized_url(method.as_str(), uri.path());
    respond(error.status, &error.body())
}

// ---- pages Stripe would host --------------------------------------------------------------

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>{t}</h1>{body}\
         <p><small>Tierdesk Stripe emulator (test mode)</small></p></body></html>",
        t = escape(title)
    );
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

fn amount(cents: i64, currency: &str) -> String {
    format!("{}.{:02} {}", cents / 100, (cents % 100).abs(), currency.to_uppercase())
}

pub(crate) async fn checkout_page(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let store = app.lock();
    let Some(session) = store.sessions.get(&id) else {
        return page(StatusCode::NOT_FOUND, "Checkout session not found", "");
    };
    let rows: String = objects::checkout_line_items(&store, session)
        .iter()
        .map(|item| {
            format!(
                "<li>{} × {} — {}</li>",
                item["quantity"],
                escape(item["description"].as_str().unwrap_or("item")),
                amount(item["amount_total"].as_i64().unwrap_or(0), item["currency"].as_str().unwrap_or("usd"))
            )
        })
        .collect();
    let action = if session.status == SessionStatus::Open {
        let label = if session.mode == "setup" { "Save card" } else { "Subscribe" };
        format!(
            "<form method=\"post\" action=\"/checkout/{}/pay\"><button type=\"submit\">{label}</button></form>",
            escape(&id)
        )
    } else {
        format!("<p>This session is {}.</p>", session.status.as_str())
    };
    page(StatusCode::OK, "Checkout", &format!("<ul>{rows}</ul>{action}"))
}

/// The checkout page's "Subscribe" button: completes the session, then goes to `success_url`
/// (with Stripe's `{CHECKOUT_SESSION_ID}` placeholder filled in).
pub(crate) async fn checkout_pay(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let outcome: Result<(bool, Option<String>), ApiError> = act(&app, |store| {
        store.complete_checkout(&id)?;
        let session = store.sessions.get(&id).ok_or_else(|| ApiError::no_such("checkout.session", &id))?;
        Ok((session.status == SessionStatus::Complete, session.success_url.clone()))
    })
    .await;
    match outcome {
        Ok((true, Some(url))) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(location) = HeaderValue::from_str(&url.replace("{CHECKOUT_SESSION_ID}", &id)) {
                response.headers_mut().insert("location", location);
            }
            response
        }
        Ok((true, None)) => page(StatusCode::OK, "Payment complete", "<p>Thank you.</p>"),
        Ok((false, _)) => page(StatusCode::PAYMENT_REQUIRED, "Card declined", "<p>Your card was declined.</p>"),
        Err(error) => page(StatusCode::BAD_REQUEST, "Checkout failed", &format!("<p>{}</p>", escape(&error.message))),
    }
}

pub(crate) async fn hosted_invoice(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let store = app.lock();
    let Some(inv) = store.invoices.get(&id) else {
        return page(StatusCode::NOT_FOUND, "Invoice not found", "");
    };
    let lines: String = inv
        .lines
        .iter()
        .map(|l| {
            format!("<li>{} — {}</li>", escape(l.description.as_deref().unwrap_or("")), amount(l.amount, &l.currency))
        })
        .collect();
    let title = format!("Invoice {}", inv.number.as_deref().unwrap_or(&inv.id));
    let discount = match inv.discount_amount() {
        0 => String::new(),
        off => format!("<p>Discount: -{}</p>", amount(off, &inv.currency)),
    };
    let body = format!(
        "<p>Status: {}</p><ul>{lines}</ul>{discount}<p>Amount due: {}</p><p>Amount paid: {}</p>",
        inv.status.as_str(),
        amount(inv.amount_due(), &inv.currency),
        amount(inv.amount_paid, &inv.currency)
    );
    page(StatusCode::OK, &title, &body)
}

pub(crate) async fn invoice_pdf(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let store = app.lock();
    let Some(inv) = store.invoices.get(&id) else {
        return page(StatusCode::NOT_FOUND, "Invoice not found", "");
    };
    let mut lines = vec![
        format!("Invoice {}", inv.number.as_deref().unwrap_or(&inv.id)),
        format!("Status: {}", inv.status.as_str()),
    ];
    lines.extend(
        inv.lines
            .iter()
            .map(|l| format!("{}  {}", l.description.as_deref().unwrap_or(""), amount(l.amount, &l.currency))),
    );
    if inv.discount_amount() != 0 {
        lines.push(format!("Discount: -{}", amount(inv.discount_amount(), &inv.currency)));
    }
    lines.push(format!("Amount due: {}", amount(inv.amount_due(), &inv.currency)));
    let mut response = Response::new(Body::from(pdf(&lines)));
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/pdf"));
    response
}

/// A one-page PDF listing `lines` in Helvetica; enough for a download link to open.
fn pdf(lines: &[String]) -> Vec<u8> {
    let text: String = lines
        .iter()
        .map(|line| {
            let ascii: String = line.chars().map(|c| if c.is_ascii() { c } else { '?' }).collect();
            let escaped = ascii.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)");
            format!("({escaped}) Tj T* ")
        })
        .collect();
    let stream = format!("BT /F1 12 Tf 14 TL 72 720 Td {text}ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1));
    out.into_bytes()
}

/// `{"amount"?: cents, "reason"?: "fraudulent"}`: the card network disputes a paid
/// invoice's payment (by default all of it): `charge.dispute.created` and
/// `charge.dispute.funds_withdrawn`.
pub(crate) async fn dispute_invoice(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(e) => return result(Err(e)),
    };
    let amount = body.get("amount").and_then(Value::as_i64);
    let reason = body.get("reason").and_then(Value::as_str).map(str::to_owned);
    result(
        act(&app, |store| {
            let dispute = store.open_dispute(&id, amount, reason)?;
            Ok(store.disputes.get(&dispute).map(objects::dispute).unwrap_or_default())
        })
        .await,
    )
}

/// `{"status": "won" | "lost"}`: closes a dispute (`charge.dispute.closed`, and
/// `charge.dispute.funds_reinstated` when won).
pub(crate) async fn close_dispute(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(e) => return result(Err(e)),
    };
    let status = body.get("status").and_then(Value::as_str).unwrap_or_default().to_owned();
    result(
        act(&app, |store| {
            store.close_dispute(&id, &status)?;
            Ok(store.disputes.get(&id).map(objects::dispute).unwrap_or_default())
        })
        .await,
    )
}
