//! Building responses, and `serve`: the one wrapper every HTTP function runs its
//! dispatch through, so error mapping and the access log happen in one place.

use super::request::Ctx;
use crate::clock::Clock;
use crate::domain::permissions::Grants;
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

/// The error envelope for `err`, stamped with the request's id and time (`ctx.at`).
pub fn error_response(err: &ApiError, ctx: &Ctx) -> Response<Body> {
    with_headers(err.status, err.body(&ctx.request_id, ctx.at).to_string())
}

/// The route a request matched, as its template (`/api/quotes/view/{token}`), from
/// the API Gateway `routeKey` (`GET /api/quotes/view/{token}`); `unmatched` when
/// there is none. Logs name this, never the raw path: a path can carry a secret
/// (a quote's view token) or personal data, and the query string too.
pub fn route_pattern(req: &Request) -> String {
    use lambda_http::RequestExt;
    let key = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.route_key.clone(),
        _ => None,
    };
    match key.as_deref().map(|k| k.split_once(' ').map_or(k, |(_, path)| path)) {
        Some(path) if path.starts_with('/') => path.to_string(),
        _ => "unmatched".to_string(),
    }
}

/// Runs `dispatch`, maps its error, and writes one access-log line with the route
/// pattern (never the raw path), status, latency and the number of DynamoDB calls
/// it made. No body, no claims. The caller's roles are judged by `grants` (the
/// function's `Config::grants`); `clock` (the function's) dates the request.
pub async fn serve<F, Fut>(req: Request, grants: Grants, clock: &dyn Clock, dispatch: F) -> Response<Body>
where
    F: FnOnce(Ctx, Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let ctx = Ctx::from_request(&req, grants, clock.now());
    let request_id = ctx.request_id.clone();
    let error_ctx = ctx.clone();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = route_pattern(&req);
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
        Err(e) => error_response(&e, &error_ctx),
    };
    tracing::info!(
        request_id,
        %method,
        route,
        status = response.status().as_u16(),
        ddb_calls,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    const TOKEN: &str = "qv_9f2c7d1e5b8a4c3f9e2d1a7b6c5e4f3a";

    fn event(route_key: Option<&str>) -> Request {
        let mut event = serde_json::json!({
            "version": "2.0",
            "routeKey": route_key.unwrap_or("$default"),
            "rawPath": format!("/api/quotes/view/{TOKEN}"),
            "rawQueryString": format!("t={TOKEN}"),
            "headers": {"host": "api.example.com"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
                "domainPrefix": "api", "requestId": "req-1", "routeKey": route_key.unwrap_or("$default"),
                "stage": "$default", "time": "04/Dec/2026:10:00:00 +0000", "timeEpoch": 1796378400000_i64,
                "http": {"method": "GET", "path": format!("/api/quotes/view/{TOKEN}"), "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "test"}
            },
            "pathParameters": {"token": TOKEN},
            "isBase64Encoded": false
        });
        if route_key.is_none() {
            event["routeKey"] = serde_json::json!("$default");
        }
        lambda_http::request::from_str(&event.to_string()).expect("event")
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_route_pattern_is_the_template_never_the_raw_path() {
        let req = event(Some("GET /api/quotes/view/{token}"));
        assert_eq!(req.uri().path(), format!("/api/quotes/view/{TOKEN}"), "the raw path carries the token");
        assert_eq!(route_pattern(&req), "/api/quotes/view/{token}");
        assert_eq!(route_pattern(&event(None)), "unmatched");
    }

    #[tokio::test]
    async fn the_access_log_of_a_quote_view_does_not_carry_its_token() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let clock = crate::clock::SystemClock;
        let response = serve(event(Some("GET /api/quotes/view/{token}")), Grants::SEED_000, &clock, |_, _| async {
            json(StatusCode::OK, &serde_json::json!({"ok": true}))
        })
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let log = String::from_utf8(captured.0.lock().unwrap_or_else(|p| p.into_inner()).clone()).expect("utf-8");
        assert!(log.contains(r#""route":"/api/quotes/view/{token}""#), "{log}");
        assert!(!log.contains(TOKEN), "the token reached the log: {log}");
    }
}
