//! Building responses, and `serve`: the one wrapper every HTTP function runs its
//! dispatch through, so error mapping and the access log happen in one place.

use super::request::Ctx;
use crate::error::ApiError;
use crate::store::count_calls;
use http::{header, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use std::future::Future;
use std::time::Instant;

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<Body>, ApiError> {
    Ok(with_headers(status, to_json(value)?))
}

pub fn to_json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"))
}

/// A 200 with an already-serialized JSON body.
pub fn json_text(body: String) -> Response<Body> {
    with_headers(StatusCode::OK, body)
}

fn with_headers(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", header::HeaderValue::from_static("nosniff"));
    response
}

pub fn error_response(err: &ApiError, request_id: &str) -> Response<Body> {
    with_headers(err.status, err.body(request_id).to_string())
}

/// Runs `dispatch`, maps its error, and writes one access-log line with the route,
/// status, latency and the number of DynamoDB calls it made. No body, no claims.
pub async fn serve<F, Fut>(req: Request, dispatch: F) -> Response<Body>
where
    F: FnOnce(Ctx, Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let ctx = Ctx::from_request(&req);
    let request_id = ctx.request_id.clone();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // The admin surface does not exist for partners: 404, never a 403 that would
    // confirm what is behind it.
    let partner_on_admin =
        path.starts_with("/api/admin/") && ctx.identity.as_ref().is_some_and(|i| i.is_partner_only());
    let (result, ddb_calls) = if partner_on_admin {
        (Err(ApiError::not_found("resource")), 0)
    } else {
        count_calls(dispatch(ctx, req)).await
    };
    let response = match result {
        Ok(r) => r,
        Err(e) => error_response(&e, &request_id),
    };
    tracing::info!(
        request_id,
        %method,
        path,
        status = response.status().as_u16(),
        ddb_calls,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}
