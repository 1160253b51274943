//! Client retries: a changing request that carries an `Idempotency-Key` header runs
//! at most once per key, caller and route. A repeat with the same key and body gets
//! the first answer (with `idempotent-replayed: true`); with another body, a 422;
//! while the first is still running, a 409. An answer of 5xx or `409
//! concurrent_update` is forgotten, so a retry runs.
//!
//! The rules every route using it follows:
//! - the record is scoped to the verified caller (`sub`) and the route (with the
//!   resource it names), so another caller's key never reaches someone else's
//!   answer;
//! - the caller's permission and the resource's visibility are checked BEFORE
//!   [`once`] is called: a replay is never an answer to someone who may not ask;
//! - the stored answer is the response body as sent: a route must never put a
//!   secret (a link token, a key) in a response that goes through [`once`];
//! - a record past its `ttl` is treated as absent, whether or not DynamoDB has
//!   deleted it yet.

use super::store::RequestClaim;
use crate::domain::validation::ValidationError;
use crate::error::ApiError;
use crate::http::response::{error_response, json_text};
use crate::http::Ctx;
use crate::store::Store;
use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};
use std::future::Future;

/// Longest key accepted; it becomes part of other keys (Stripe's among them).
pub const MAX_KEY_LEN: usize = 128;
/// How long a request holding a key may run before a repeat may take over.
pub const LEASE_SECS: i64 = 60;

/// The request's key, if it has one; a malformed key is a 400 naming the header.
pub fn key_of(req: &Request) -> Result<Option<String>, ApiError> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic()) => {
                Ok(Some(k.to_string()))
            }
            _ => Err(ValidationError::single(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
            )
            .into()),
        },
    }
}

/// Answers a retry should not get replayed: server errors, and a conflict with
/// concurrent work (`concurrent_update`), which says "retry" itself.
fn retryable(response: &Response<Body>) -> bool {
    if response.status().is_server_error() {
        return true;
    }
    response.status() == StatusCode::CONFLICT
        && matches!(response.body(), Body::Text(t) if t.contains("\"code\":\"concurrent_update\""))
}

/// The record's scope: the route (with the resource it names) and the caller.
pub fn scope_for(route: &str, subject: &str) -> String {
    format!("{route}#{subject}")
}

/// A short tag of the caller (12 hex characters of the SHA-256 of `sub`).
pub fn caller_tag(subject: &str) -> String {
    Sha256::digest(subject.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Runs `run` once per (`route`, caller, key); without a key it simply runs. The
/// caller is the verified identity's subject (an anonymous request is refused).
/// Check permissions and visibility before calling this. `run` gets the caller's
/// key, `{caller_tag}-{key}`: what it derives from it (Stripe's idempotency keys)
/// is the caller's too, so two callers' equal keys never meet downstream either.
pub async fn once<F, Fut>(
    store: &Store,
    ctx: &Ctx,
    req: &Request,
    route: &str,
    now: i64,
    run: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(Option<String>) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let Some(key) = key_of(req)? else { return run(None).await };
    let who = ctx.identity.as_ref().ok_or(crate::http::AuthError::Unauthenticated)?;
    let scope = scope_for(route, &who.subject);
    let scope = scope.as_str();
    let callers_key = format!("{}-{key}", caller_tag(&who.subject));
    let body: &[u8] = match req.body() {
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    let hash = format!("{:x}", Sha256::new_with_prefix(body).finalize());
    match store.claim_request(scope, &key, &hash, now, LEASE_SECS).await? {
        RequestClaim::Fresh => {}
        RequestClaim::Replay { status, body } => {
            let mut response = json_text(body);
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(response);
        }
        RequestClaim::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "request_in_progress",
                "a request with this Idempotency-Key is still running; retry shortly",
            ))
        }
        RequestClaim::Mismatch => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request body",
            ))
        }
    }
    let response = match run(Some(callers_key)).await {
        Ok(r) => r,
        Err(e) => error_response(&e, ctx),
    };
    if retryable(&response) {
        store.abandon_request(scope, &key).await?;
    } else {
        let text = match response.body() {
            Body::Text(s) => s.clone(),
            _ => String::new(),
        };
        store.finish_request(scope, &key, response.status().as_u16(), &text).await?;
    }
    Ok(response)
}
