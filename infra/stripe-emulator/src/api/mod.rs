//! Stripe's `/v1` API: authentication, parameter parsing, idempotency, routing, `expand[]`.
//! Each call runs under the store lock and returns at once; the events it caused are
//! delivered in the background.

mod catalog;
mod checkout;
mod coupons;
mod invoices;
mod subscriptions;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::app::App;
use crate::clock::new_id;
use crate::error::ApiError;
use crate::form::{self, Form};
use crate::objects;
use crate::state::{Keyed, RequestInfo, SavedResponse, Store, API_VERSION};

pub(crate) async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = new_id("req");
    let response = serve(&app, &method, &uri, &headers, &body, &request_id);
    app.wake.notify_one();
    response
}

fn serve(app: &App, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8], request_id: &str) -> Response {
    if let Err(error) = authorize(headers) {
        return json_response(error.status, serde_json::to_vec(&error.body()).unwrap_or_default(), request_id, false);
    }
    let path = uri.path();
    let params = form::parse(uri.query(), body);
    let form = Form::new(&params);
    let key = match *method {
        Method::GET => None,
        _ => headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned),
    };
    // Stripe compares the replayed request with the first one: same method, path and body.
    let fingerprint = format!("{method} {path}\n{}", String::from_utf8_lossy(body));

    let mut store = app.lock();
    if let Some(key) = &key {
        if let Some(saved) = store.idempotency.get(key) {
            return if saved.fingerprint == fingerprint {
                json_response(saved.status, saved.body.clone(), request_id, true)
            } else {
                let error = ApiError::idempotency_mismatch(key);
                json_response(error.status, serde_json::to_vec(&error.body()).unwrap_or_default(), request_id, false)
            };
        }
    }
    store.request = Some(RequestInfo { id: request_id.to_owned(), idempotency_key: key.clone() });
    let result = route(&mut store, method, path, &form).map(|mut value| {
        for path in form.strings("expand") {
            objects::expand(&store, &mut value, &path);
        }
        value
    });
    store.request = None;
    let (status, body) = match result {
        Ok(value) => (200, value),
        Err(error) => (error.status, error.body()),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    if let Some(key) = key {
        store.idempotency.insert(key, SavedResponse { fingerprint, status, body: body.clone() });
    }
    drop(store);
    json_response(status, body, request_id, false)
}

/// Any test-mode secret key is accepted, as `Authorization: Bearer sk_test_…` or, as with
/// `curl -u sk_test_…:`, as the Basic auth user name.
fn authorize(headers: &HeaderMap) -> Result<()> {
    use base64::Engine;
    let header = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let key = if let Some(key) = header.strip_prefix("Bearer ") {
        key.to_owned()
    } else if let Some(encoded) = header.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).unwrap_or_default();
        let user_pass = String::from_utf8_lossy(&decoded).into_owned();
        user_pass.split(':').next().unwrap_or_default().to_owned()
    } else {
        return Err(ApiError::unauthorized("no key (use Authorization: Bearer sk_test_...)"));
    };
    if key.starts_with("sk_test_") {
        Ok(())
    } else {
        let shown: String = key.chars().take(12).collect();
        Err(ApiError::unauthorized(&format!("{shown}***")))
    }
}

fn json_response(status: u16, body: Vec<u8>, request_id: &str, replayed: bool) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("stripe-version", HeaderValue::from_static(API_VERSION));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("request-id", id);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

type Result<T = Value> = std::result::Result<T, ApiError>;

fn route(store: &mut Store, method: &Method, path: &str, form: &Form) -> Result {
    let segments: Vec<&str> = path.trim_start_matches("/v1").split('/').filter(|s| !s.is_empty()).collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["customers"]) => catalog::create_customer(store, form),
        ("GET", ["customers"]) => catalog::list_customers(store, form),
        ("GET", ["customers", id]) => catalog::retrieve_customer(store, id),
        ("POST", ["customers", id]) => catalog::update_customer(store, id, form),

        ("POST", ["products"]) => catalog::create_product(store, form),
        ("GET", ["products"]) => catalog::list_products(store, form),
        ("GET", ["products", id]) => catalog::retrieve_product(store, id),
        ("POST", ["products", id]) => catalog::update_product(store, id, form),

        ("POST", ["prices"]) => catalog::create_price(store, form),
        ("GET", ["prices"]) => catalog::list_prices(store, form),
        ("GET", ["prices", id]) => catalog::retrieve_price(store, id),
        ("POST", ["prices", id]) => catalog::update_price(store, id, form),

        ("POST", ["coupons"]) => coupons::create(store, form),
        ("GET", ["coupons"]) => coupons::list(store, form),
        ("GET", ["coupons", id]) => coupons::retrieve(store, id),
        ("POST", ["coupons", id]) => coupons::update(store, id, form),

        ("POST", ["checkout", "sessions"]) => checkout::create(store, form),
        ("GET", ["checkout", "sessions"]) => checkout::list(store, form),
        ("GET", ["checkout", "sessions", id]) => checkout::retrieve(store, id, form),
        ("GET", ["checkout", "sessions", id, "line_items"]) => checkout::line_items(store, id, form),
        ("POST", ["checkout", "sessions", id, "expire"]) => checkout::expire(store, id),

        ("POST", ["subscriptions"]) => subscriptions::create(store, form),
        ("GET", ["subscriptions"]) => subscriptions::list(store, form),
        ("GET", ["subscriptions", id]) => subscriptions::retrieve(store, id),
        ("POST", ["subscriptions", id]) => subscriptions::update(store, id, form),
        ("DELETE", ["subscriptions", id]) => subscriptions::cancel(store, id),

        ("POST", ["invoices"]) => invoices::create(store, form),
        ("GET", ["invoices"]) => invoices::list(store, form),
        ("GET", ["invoices", id]) => invoices::retrieve(store, id),
        ("GET", ["invoices", id, "lines"]) => invoices::lines(store, id, form),
        ("POST", ["invoices", id, "pay"]) => invoices::pay(store, id, form),
        ("POST", ["invoices", id, "void"]) => invoices::void(store, id),
        ("POST", ["invoices", id, "finalize"]) => invoices::finalize(store, id),
        ("POST", ["invoices", id, "mark_uncollectible"]) => invoices::mark_uncollectible(store, id),
        ("POST", ["invoices", id, "send"]) => invoices::send(store, id),

        ("POST", ["credit_notes"]) => invoices::create_credit_note(store, form),
        ("GET", ["credit_notes"]) => invoices::list_credit_notes(store, form),
        ("GET", ["credit_notes", id]) => invoices::retrieve_credit_note(store, id),
        ("GET", ["refunds", id]) => invoices::retrieve_refund(store, id),
        ("GET", ["invoice_payments"]) => invoices::list_invoice_payments(store, form),
        ("GET", ["disputes", id]) => {
            store.disputes.get(id).map(objects::dispute).ok_or_else(|| ApiError::no_such("dispute", id))
        }

        ("GET", ["payment_methods", id]) => objects::by_id(store, id)
            .filter(|_| id.starts_with("pm_"))
            .ok_or_else(|| ApiError::no_such("payment_method", id)),
        ("GET", ["customers", id, "payment_methods"]) => catalog::customer_payment_methods(store, id, form),
        ("GET", ["setup_intents", id]) => objects::by_id(store, id)
            .filter(|_| id.starts_with("seti_"))
            .ok_or_else(|| ApiError::no_such("setup_intent", id)),

        ("POST", ["invoiceitems"]) => invoices::create_item(store, form),
        ("GET", ["invoiceitems"]) => invoices::list_items(store, form),
        ("GET", ["invoiceitems", id]) => invoices::retrieve_item(store, id),

        _ => Err(ApiError::unrecognized_url(method.as_str(), path)),
    }
}

/// One page of a list, newest first, with Stripe's `limit` (1–100, default 10),
/// `starting_after` and `ending_before` cursors.
fn page<'a, T: Keyed>(form: &Form, newest_first: Vec<&'a T>) -> Result<(Vec<&'a T>, bool)> {
    let limit = form.int("limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 100", Some("limit".into())));
    }
    let limit = limit as usize;
    let position = |id: &str, param: &str| {
        newest_first
            .iter()
            .position(|row| row.key() == id)
            .ok_or_else(|| ApiError::invalid(format!("No such object: '{id}'"), Some(param.to_owned())))
    };
    if let Some(after) = form.string("starting_after") {
        let start = position(&after, "starting_after")? + 1;
        let rest = &newest_first[start..];
        return Ok((rest.iter().take(limit).copied().collect(), rest.len() > limit));
    }
    if let Some(before) = form.string("ending_before") {
        let end = position(&before, "ending_before")?;
        let from = end.saturating_sub(limit);
        return Ok((newest_first[from..end].to_vec(), from > 0));
    }
    Ok((newest_first.iter().take(limit).copied().collect(), newest_first.len() > limit))
}

fn list_response<T: Keyed>(
    store: &Store,
    form: &Form,
    url: &str,
    newest_first: Vec<&T>,
    render: impl Fn(&Store, &T) -> Value,
) -> Result {
    let (rows, has_more) = page(form, newest_first)?;
    Ok(objects::list(url, rows.into_iter().map(|row| render(store, row)).collect(), has_more))
}
