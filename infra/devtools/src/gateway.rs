//! The dev gateway: what API Gateway does in front of the Lambdas, on loopback.
//! It matches each request against the routes of `template.yaml`, verifies the
//! bearer token on non-public routes (HS256 dev tokens), builds the payload-2.0
//! event and hands the resulting lambda_http request to the function's handler.

use crate::event::{self, HttpCall, RouteMatch};
use crate::jwt;
use crate::routes::TemplateRoute;
use axum::body::Bytes;
use axum::extract::State;
use futures::future::BoxFuture;
use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use std::collections::HashMap;
use std::sync::Arc;

pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// API Gateway's own payload limit for HTTP APIs.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// A matched route: its template entry, its handler and the path parameters.
type Matched<'a> = (&'a TemplateRoute, &'a Handler, Vec<(String, String)>);

pub struct Gateway {
    routes: Vec<(TemplateRoute, Handler)>,
    secret: String,
}

impl Gateway {
    /// Fails if the template names a function no handler was given for.
    pub fn new(
        mut routes: Vec<TemplateRoute>,
        handlers: &HashMap<String, Handler>,
        secret: String,
    ) -> Result<Self, String> {
        // API Gateway prefers the most specific route: static segments beat `{param}`.
        routes.sort_by_key(|r| r.path.matches('{').count());
        let routes = routes
            .into_iter()
            .map(|r| {
                let handler =
                    handlers.get(&r.function).cloned().ok_or_else(|| format!("no handler for {}", r.function))?;
                Ok((r, handler))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { routes, secret })
    }

    fn find(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let path = path.trim_end_matches('/');
        self.routes.iter().find_map(|(route, handler)| {
            if route.method != method {
                return None;
            }
            let mut params = Vec::new();
            let mut pattern = route.path.split('/');
            let mut actual = path.split('/');
            loop {
                match (pattern.next(), actual.next()) {
                    (None, None) => return Some((route, handler, params)),
                    (Some(p), Some(a)) if p.starts_with('{') && p.ends_with('}') && !a.is_empty() => {
                        let value = percent_decode(a);
                        params.push((p[1..p.len() - 1].to_string(), value));
                    }
                    (Some(p), Some(a)) if p == a => {}
                    _ => return None,
                }
            }
        })
    }

    /// One request, start to finish, the way API Gateway would answer it.
    pub async fn call(&self, call: HttpCall) -> Response<Body> {
        let Some((route, handler, path_params)) = self.find(&call.method, &call.path) else {
            return gateway_message(StatusCode::NOT_FOUND, "Not Found");
        };
        let claims = if route.public {
            None
        } else {
            let token = call
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string());
            let now = chrono::Utc::now().timestamp();
            match token.map(|t| jwt::verify(&t, &self.secret, now)) {
                Some(Ok(claims)) => Some(claims),
                _ => return gateway_message(StatusCode::UNAUTHORIZED, "Unauthorized"),
            }
        };
        let route_match = RouteMatch { route_key: format!("{} {}", route.method, route.path), path_params, claims };
        let request_id = ulid::Ulid::new().to_string();
        let event = event::build(&call, &route_match, &request_id, chrono::Utc::now());
        match event::to_request(&event) {
            // The function's logical id labels the AWS calls it makes (`tierdesk::calls`).
            Ok(req) => tierdesk::calls::as_function(route.function.as_str(), handler(req)).await,
            Err(_) => gateway_message(StatusCode::BAD_REQUEST, "Bad Request"),
        }
    }

    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new().fallback(proxy).with_state(self)
    }
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// API Gateway's own answers (no route, bad token) have this shape, not ours.
fn gateway_message(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(Body::Text(serde_json::json!({ "message": message }).to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// One HTTP request through the gateway (the router's fallback, and the web
/// module's for `/api`).
pub async fn proxy(State(gateway): State<Arc<Gateway>>, req: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_PAYLOAD).await {
        Ok(b) => b,
        Err(_) => return to_axum(gateway_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")),
    };
    let call = HttpCall {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
            .collect(),
        body: (!body.is_empty()).then(|| body.to_vec()),
    };
    to_axum(gateway.call(call).await)
}

fn to_axum(response: Response<Body>) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The outside services the billing functions talk to, built once.
#[derive(Clone)]
pub struct Services {
    pub stripe: tierdesk::stripe_adapter::StripeGateway,
    pub mail: tierdesk::mail::MailConfig,
    /// The billing functions' clock (tests let it follow their Stripe emulator).
    pub clock: Arc<dyn tierdesk::Clock>,
}

impl Services {
    /// From the environment (`STRIPE_API_BASE`, `SES_ENDPOINT`, …), falling back to
    /// the local defaults when a variable is invalid, so the gateway still serves
    /// every other route.
    pub async fn from_env() -> Self {
        let stripe = match tierdesk::stripe_adapter::StripeConfig::from_env().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "stripe configuration invalid; using the local defaults");
                tierdesk::stripe_adapter::StripeConfig::local("http://127.0.0.1:12111")
            }
        };
        let mail = tierdesk::mail::MailConfig::from_env().unwrap_or_else(|e| {
            tracing::error!(error = %e, "mail configuration invalid; using the local defaults");
            tierdesk::mail::MailConfig::local("http://127.0.0.1:8005")
        });
        Self::new(stripe, mail)
    }

    pub fn new(stripe: tierdesk::stripe_adapter::StripeConfig, mail: tierdesk::mail::MailConfig) -> Self {
        // Building the client only fails on a malformed base URL, which `StripeConfig`
        // never holds; fall back to the local emulator address regardless.
        let gateway = tierdesk::stripe_adapter::StripeGateway::new(stripe).or_else(|_| {
            tierdesk::stripe_adapter::StripeGateway::new(tierdesk::stripe_adapter::StripeConfig::local(
                "http://127.0.0.1:12111",
            ))
        });
        match gateway {
            Ok(stripe) => Self { stripe, mail, clock: Arc::new(tierdesk::SystemClock) },
            Err(e) => panic!("the Stripe client cannot be built: {e}"),
        }
    }
}

/// Every function this gateway can host, keyed by its logical id in `template.yaml`.
pub async fn handlers(config: &tierdesk::Config) -> HashMap<String, Handler> {
    handlers_on(tierdesk::store::Store::connect(config).await, config).await
}

/// As `handlers`, over a store the caller built (tests inject faults this way).
pub async fn handlers_on(store: tierdesk::store::Store, config: &tierdesk::Config) -> HashMap<String, Handler> {
    handlers_with(store, config, &Services::from_env().await).await
}

/// As `handlers_on`, with the outside services given (tests point them at their
/// own Stripe emulator).
pub async fn handlers_with(
    store: tierdesk::store::Store,
    config: &tierdesk::Config,
    services: &Services,
) -> HashMap<String, Handler> {
    let app = tierdesk::app::App::new(store, config.clone());
    let mailer = app.mailer(&services.mail).await;
    // Usage, analytics and billing follow the services' clock, so a test can move it
    // across a month's end; Stripe signs with the real time, so the webhook keeps it.
    let on_services_clock = app.clone().with_clock(services.clock.clone());
    let quote_settings = quotes::settings_from_env().unwrap_or_else(|e| {
        tracing::error!(error = %e, "quote settings invalid; using the defaults");
        quotes::Settings::default()
    });
    macro_rules! handler {
        ($function:ident, $state:expr) => {{
            let state = Arc::new($state);
            let handler: Handler = Arc::new(move |req| {
                let state = state.clone();
                Box::pin(async move { $function::handle(&state, req).await })
            });
            handler
        }};
    }
    HashMap::from([
        ("TiersFunction".to_string(), handler!(tiers, tiers::Tiers::new(app.clone()))),
        (
            "PartnersFunction".to_string(),
            handler!(partners, partners::Partners::new(app.clone()).with_mailer(mailer.clone())),
        ),
        (
            "PromotionsFunction".to_string(),
            handler!(
                promotions,
                promotions::Promotions::new(app.clone(), promotions::Settings::default(), mailer.clone())
            ),
        ),
        (
            "QuotesFunction".to_string(),
            handler!(
                quotes,
                quotes::Quotes::new(app.clone(), quote_settings, mailer.clone()).with_stripe(services.stripe.clone())
            ),
        ),
        ("ExperimentsFunction".to_string(), handler!(experiments, experiments::Experiments::new(app.clone()))),
        (
            "BillingFunction".to_string(),
            handler!(
                billing,
                billing::Billing::new(on_services_clock.clone(), services.stripe.clone(), mailer.clone())
            ),
        ),
        (
            "StripeWebhookFunction".to_string(),
            handler!(stripe_webhook, stripe_webhook::StripeWebhook::new(app, services.stripe.clone(), mailer)),
        ),
        ("UsageFunction".to_string(), handler!(usage, usage::Usage::new(on_services_clock.clone()))),
        ("AnalyticsFunction".to_string(), handler!(analytics, analytics::Analytics::new(on_services_clock))),
    ])
}
