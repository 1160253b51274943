//! The console beside the API in the dev gateway: the built web app (`web/dist`) at
//! `/` with a single-page fallback, `/config.json` saying "dev sign-in", and the dev
//! sign-in (`/dev/sign-in`) and sign-up (`/dev/sign-up`), which exist only here,
//! never in the deployed stack.
//! `/api/*` (and anything else the gateway routes) goes to the gateway unchanged.

use crate::event::HttpCall;
use crate::gateway::{self, Gateway};
use crate::jwt;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{header, HeaderValue, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Dev tokens from the sign-in page live as long as `make token`'s.
const TOKEN_TTL_SECS: i64 = 12 * 3600;

/// The headers CloudFront's `WebSecurityHeadersPolicy` (template.yaml) adds to every
/// console and API response, sent here too so the browser tests run the app under the
/// deployed policy. Two differences, both because this is loopback HTTP with dev
/// sign-in: connect-src has no Cognito endpoints (nothing signs in through them here),
/// and there is no HSTS (browsers ignore it over plain HTTP). The template test
/// `the_dev_gateway_sends_the_deployed_security_headers` holds the two together.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; \
         connect-src 'self'; frame-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; \
         frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
];

fn with_security_headers(mut response: Response) -> Response {
    for (name, value) in SECURITY_HEADERS {
        response.headers_mut().insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The roles the sign-in offers: the console's staff roles and the partner.
pub const SIGN_IN_ROLES: [&str; 4] = ["sales_rep", "sales_manager", "admin", "partner"];

#[derive(Clone)]
struct WebState {
    gateway: Arc<Gateway>,
    dir: PathBuf,
    secret: String,
    /// The signup function, fed the events Cognito's hosted sign-up would send.
    signup: Arc<signup::Signup>,
}

/// `TIERDESK_WEB_DIR`, else `web/dist` under the working directory.
pub fn dir_from_env() -> PathBuf {
    std::env::var("TIERDESK_WEB_DIR")
        .ok()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| "web/dist".into())
}

/// The whole dev gateway's HTTP surface apart from the cron route.
pub fn router(gateway: Arc<Gateway>, dir: PathBuf, secret: String, signup: Arc<signup::Signup>) -> axum::Router {
    let state = WebState { gateway, dir, secret, signup };
    axum::Router::new()
        .route("/dev/sign-in", get(sign_in))
        .route("/dev/sign-up", get(sign_up_page).post(sign_up))
        .route("/config.json", get(config))
        .fallback(everything_else)
        .with_state(state)
}

/// The console's auth mode: locally the dev token from `/dev/sign-in`.
async fn config() -> Response {
    let body = serde_json::json!({ "auth": "dev" }).to_string();
    with_security_headers(
        ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response(),
    )
}

async fn everything_else(State(state): State<WebState>, req: Request) -> Response {
    let path = req.uri().path();
    let is_api = path == "/api" || path.starts_with("/api/") || path.starts_with("/_local/");
    if is_api || req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return with_security_headers(gateway::proxy(State(state.gateway), req).await);
    }
    with_security_headers(serve_static(&state.dir, path))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A file of the built app, or `index.html` for any other path (the app routes it).
fn serve_static(dir: &Path, url_path: &str) -> Response {
    let relative = Path::new(url_path.trim_start_matches('/'));
    let safe = relative.components().all(|c| matches!(c, Component::Normal(_)));
    let candidate = dir.join(relative);
    let file = if safe && !url_path.ends_with('/') && candidate.is_file() { candidate } else { dir.join("index.html") };
    match std::fs::read(&file) {
        Ok(bytes) => {
            // Vite names assets by content hash; index.html must always be fresh.
            let cache =
                if file.starts_with(dir.join("assets")) { "public, max-age=31536000, immutable" } else { "no-cache" };
            ([(header::CONTENT_TYPE, content_type(&file)), (header::CACHE_CONTROL, cache)], bytes).into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "The console is not built ({} is missing). `make run` builds it (cd web && npm ci && npm run build).\n",
                dir.join("index.html").display()
            ),
        )
            .into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct SignInParams {
    role: Option<String>,
    partner: Option<String>,
    /// Distinguishes two people of one role (e.g. a second manager who approves).
    user: Option<String>,
    /// Where to land instead of the role's home screen (a path on this site).
    next: Option<String>,
}

/// The screen each role lands on.
pub fn home_of(role: &str) -> &'static str {
    if role == "partner" {
        "/partner-portal"
    } else {
        "/analytics"
    }
}

fn is_simple_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn sign_in(State(state): State<WebState>, Query(params): Query<SignInParams>) -> Response {
    let next = params.next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'));
    let Some(role) = params.role.filter(|r| !r.is_empty()) else {
        return sign_in_page(&state, None, next.as_deref()).await;
    };
    if !SIGN_IN_ROLES.contains(&role.as_str()) {
        return sign_in_page(&state, Some(format!("Unknown role {role:?}.")), next.as_deref()).await;
    }
    let partner = params.partner.filter(|p| !p.is_empty());
    if role == "partner" && !partner.as_deref().is_some_and(is_simple_id) {
        return sign_in_page(&state, Some("Pick the partner to sign in as.".into()), next.as_deref()).await;
    }
    let partner = if role == "partner" { partner } else { None };
    let user = params.user.filter(|u| is_simple_id(u));
    let subject = match (&partner, &user) {
        (Some(p), _) => format!("dev-{role}-{p}"),
        (None, Some(u)) => format!("dev-{role}-{u}"),
        (None, None) => format!("dev-{role}"),
    };
    let now = chrono::Utc::now().timestamp();
    let token = jwt::token_for(&role, partner.as_deref(), &subject, now, TOKEN_TTL_SECS, &state.secret);
    let next = next.unwrap_or_else(|| home_of(&role).to_string());
    // The token travels in the fragment, which never reaches a server or a log; the
    // app's auth module keeps it in the tab's session storage.
    let location = format!("/auth/dev#token={token}&next={}", url_encode(&next));
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The first partners of the seeded data, for the partner picker.
async fn some_partners(state: &WebState) -> Vec<(String, String)> {
    let now = chrono::Utc::now().timestamp();
    let token = jwt::token_for("admin", None, "dev-sign-in", now, 60, &state.secret);
    let call = HttpCall {
        method: "GET".into(),
        path: "/api/admin/partners".into(),
        query: "limit=50".into(),
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        body: None,
    };
    let response = state.gateway.call(call).await;
    let body = match response.body() {
        lambda_http::Body::Text(s) => s.clone(),
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    parsed["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| {
                    let id = p["partnerId"].as_str()?.to_string();
                    let name = p["name"].as_str().unwrap_or(&id).to_string();
                    let tier = p["tierId"].as_str().unwrap_or_default();
                    Some((id, format!("{name} ({tier})")))
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn sign_in_page(state: &WebState, problem: Option<String>, next: Option<&str>) -> Response {
    let next_input =
        next.map(|n| format!(r#"<input type="hidden" name="next" value="{}">"#, html_escape(n))).unwrap_or_default();
    let next_query = next.map(|n| format!("?next={}", html_escape(&url_encode(n)))).unwrap_or_default();
    let partners = some_partners(state).await;
    let options: String = partners
        .iter()
        .map(|(id, label)| format!(r#"<option value="{}">{}</option>"#, html_escape(id), html_escape(label)))
        .collect();
    let links: String = ["sales_rep", "sales_manager", "admin"]
        .iter()
        .map(|r| format!(r#"<li><a href="/dev/sign-in?role={r}">Sign in as {r}</a></li>"#))
        .collect();
    let problem =
        problem.map(|p| format!(r#"<p class="problem" role="alert">{}</p>"#, html_escape(&p))).unwrap_or_default();
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Dev sign-in · Tierdesk</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;background:#f4f6f9;color:#1b2330;margin:0;display:flex;justify-content:center}}
main{{background:#fff;margin:48px 16px;padding:24px 28px;border-radius:10px;box-shadow:0 1px 4px #0002;max-width:420px;width:100%}}
h1{{font-size:20px;margin:0 0 4px}}label{{display:block;font-weight:600;margin:14px 0 4px}}select,input,button{{font:inherit;width:100%;padding:8px;box-sizing:border-box}}
button{{margin-top:18px;background:#2754c5;color:#fff;border:0;border-radius:6px;cursor:pointer}}.problem{{color:#b00020}}small{{color:#5b6575}}</style></head>
<body><main><h1>Tierdesk dev sign-in</h1><small>Local development only: signs you in with a dev token. The deployed console uses Cognito.</small>
{problem}
<form method="get" action="/dev/sign-in">{next_input}
<label for="role">Role</label>
<select id="role" name="role"><option value="sales_rep">Sales rep</option><option value="sales_manager" selected>Sales manager</option><option value="admin">Admin</option><option value="partner">Partner</option></select>
<label for="partner">Partner (for the partner role)</label>
<select id="partner" name="partner"><option value="">—</option>{options}</select>
<label for="user">Name (optional, to be a second person of the same role)</label>
<input id="user" name="user" placeholder="e.g. second" pattern="[A-Za-z0-9_-]*">
<button type="submit">Sign in</button></form>
<p>New partner? <a href="/dev/sign-up{next_query}">Create a partner account</a></p>
<p>One-click:</p><ul>{links}</ul></main></body></html>"#
    );
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_paths_never_leave_the_web_dir() {
        let dir = std::env::temp_dir().join(format!("tierdesk-web-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), "INDEX").unwrap();
        std::fs::write(dir.join("assets/app.js"), "JS").unwrap();
        let body = |r: Response| {
            let ct = r.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
            (r.status(), ct)
        };
        assert_eq!(body(serve_static(&dir, "/assets/app.js")).1, "text/javascript; charset=utf-8");
        let served = with_security_headers(serve_static(&dir, "/partners/p1"));
        let csp = served.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self';") && csp.contains("style-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(served.headers()["x-frame-options"], "DENY");
        // Unknown paths and escapes get the app's index, never another file.
        assert_eq!(body(serve_static(&dir, "/partners/p1")).1, "text/html; charset=utf-8");
        assert_eq!(body(serve_static(&dir, "/../Cargo.toml")).1, "text/html; charset=utf-8");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(serve_static(&dir, "/").status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn homes_and_ids() {
        assert_eq!(home_of("sales_rep"), "/analytics");
        assert_eq!(home_of("partner"), "/partner-portal");
        assert!(is_simple_id("prt_01H-x"));
        assert!(!is_simple_id("a/b"));
        assert!(!is_simple_id(""));
    }
}

// ---- Sign-up: what Cognito's hosted sign-up does in AWS --------------------------

#[derive(Debug, Deserialize)]
struct SignUpParams {
    next: Option<String>,
}

fn safe_next(next: Option<String>) -> Option<String> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
}

async fn sign_up_page(Query(params): Query<SignUpParams>) -> Response {
    sign_up_form(None, safe_next(params.next).as_deref(), "")
}

/// The account a dev sign-up stands for: stable per address (as a Cognito user is
/// per email), so signing up twice with one address is the same account.
fn dev_account(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("dev-{hex}")
}

/// The form posts here (the address stays out of URLs and access logs). The signup
/// function gets the two events Cognito would send: the confirmation (its email
/// verified, as the hosted UI's code step does) and the token request, whose
/// claims become the dev token.
async fn sign_up(State(state): State<WebState>, body: Bytes) -> Response {
    let mut email = String::new();
    let mut next = None;
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "email" => email = v.trim().to_string(),
            "next" => next = Some(v.into_owned()),
            _ => {}
        }
    }
    let next = safe_next(next);
    let account = dev_account(&email);
    let attributes = serde_json::json!({"sub": account, "email": email, "email_verified": "true",
                                        "cognito:user_status": "CONFIRMED"});
    let confirmed = serde_json::json!({
        "version": "1", "region": "local", "userPoolId": "local_devpool", "userName": account,
        "callerContext": {"awsSdkVersion": "devgw", "clientId": "dev-console"},
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "request": {"userAttributes": attributes}, "response": {}
    });
    if signup::handle(&state.signup, confirmed, "dev-sign-up").await.is_err() {
        return sign_up_form(Some("Enter an email address such as you@company.example."), next.as_deref(), &email);
    }
    let token_request = serde_json::json!({
        "version": "1", "region": "local", "userPoolId": "local_devpool", "userName": account,
        "callerContext": {"awsSdkVersion": "devgw", "clientId": "dev-console"},
        "triggerSource": "TokenGeneration_HostedAuth",
        "request": {"userAttributes": attributes, "groupConfiguration": {"groupsToOverride": []}},
        "response": {"claimsOverrideDetails": null}
    });
    let claims = match signup::handle(&state.signup, token_request, "dev-sign-up").await {
        Ok(out) => out["response"]["claimsOverrideDetails"]["claimsToAddOrOverride"]["custom:partner_id"]
            .as_str()
            .map(str::to_string),
        Err(_) => None,
    };
    let Some(partner) = claims else {
        return sign_up_form(Some("The account could not be set up; try again."), next.as_deref(), &email);
    };
    let now = chrono::Utc::now().timestamp();
    let token = jwt::signed_up_token(&partner, &account, &email, now, TOKEN_TTL_SECS, &state.secret);
    let next = next.unwrap_or_else(|| home_of("partner").to_string());
    let location = format!("/auth/dev#token={token}&next={}", url_encode(&next));
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn sign_up_form(problem: Option<&str>, next: Option<&str>, email: &str) -> Response {
    let next_input =
        next.map(|n| format!(r#"<input type="hidden" name="next" value="{}">"#, html_escape(n))).unwrap_or_default();
    let problem =
        problem.map(|p| format!(r#"<p class="problem" role="alert">{}</p>"#, html_escape(p))).unwrap_or_default();
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Create a partner account · Tierdesk</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;background:#f4f6f9;color:#1b2330;margin:0;display:flex;justify-content:center}}
main{{background:#fff;margin:48px 16px;padding:24px 28px;border-radius:10px;box-shadow:0 1px 4px #0002;max-width:420px;width:100%}}
h1{{font-size:20px;margin:0 0 4px}}label{{display:block;font-weight:600;margin:14px 0 4px}}input,button{{font:inherit;width:100%;padding:8px;box-sizing:border-box}}
button{{margin-top:18px;background:#2754c5;color:#fff;border:0;border-radius:6px;cursor:pointer}}.problem{{color:#b00020}}small{{color:#5b6575}}</style></head>
<body><main><h1>Create a partner account</h1><small>Local development only: stands in for Cognito's hosted sign-up (the address counts as verified). The account starts on the free tier.</small>
{problem}
<form method="post" action="/dev/sign-up">{next_input}
<label for="email">Work email</label>
<input id="email" name="email" type="email" required autocomplete="email" value="{email}">
<button type="submit">Create account</button></form>
<p>Have an account? <a href="/dev/sign-in">Sign in</a></p></main></body></html>"#,
        email = html_escape(email)
    );
    let status = if problem.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    // Like the sign-in page: a dev-only page with its own inline style, outside the app's CSP.
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html)
        .into_response()
}
