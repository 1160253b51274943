//! `template.yaml`, `infra/openapi.yaml` and the function routers list the same
//! routes, with the same public/authenticated split.

use devtools::routes::from_template;
use std::collections::BTreeSet;
use tierdesk_tests::read_repo_file;

type RouteSet = BTreeSet<(String, String, bool)>;

fn openapi_routes() -> RouteSet {
    let doc: serde_yaml::Value = serde_yaml::from_str(&read_repo_file("infra/openapi.yaml")).expect("openapi parses");
    let global_security = doc["security"].as_sequence().is_some_and(|s| !s.is_empty());
    let mut routes = RouteSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        for (method, op) in item.as_mapping().expect("path item") {
            let method = method.as_str().unwrap().to_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let public = match op["security"].as_sequence() {
                Some(s) => s.is_empty(),
                None => !global_security,
            };
            routes.insert((method, path.as_str().unwrap().to_string(), public));
        }
    }
    routes
}

fn template_routes(function: &str) -> RouteSet {
    from_template(&read_repo_file("template.yaml"))
        .expect("template parses")
        .into_iter()
        .filter(|r| r.function == function)
        .map(|r| (r.method, r.path, r.public))
        .collect()
}

fn router_routes<Op>(routes: &[tierdesk::http::Route<Op>]) -> BTreeSet<(String, String)> {
    routes.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect()
}

#[test]
fn template_openapi_and_router_agree() {
    for (function, router) in [
        ("TiersFunction", router_routes(tiers::ROUTES)),
        ("PartnersFunction", router_routes(partners::ROUTES)),
        ("BillingFunction", router_routes(billing::ROUTES)),
        ("StripeWebhookFunction", router_routes(stripe_webhook::ROUTES)),
        ("PromotionsFunction", router_routes(promotions::ROUTES)),
        ("QuotesFunction", router_routes(quotes::ROUTES)),
        ("UsageFunction", router_routes(usage::ROUTES)),
        ("ExperimentsFunction", router_routes(experiments::ROUTES)),
        ("AnalyticsFunction", router_routes(analytics::ROUTES)),
    ] {
        let template_no_auth: BTreeSet<(String, String)> =
            template_routes(function).iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
        assert_eq!(template_no_auth, router, "template.yaml vs the router of {function}");
    }

    let all_template: RouteSet = from_template(&read_repo_file("template.yaml"))
        .unwrap()
        .into_iter()
        .map(|r| (r.method, r.path, r.public))
        .collect();
    assert_eq!(openapi_routes(), all_template, "infra/openapi.yaml vs template.yaml (method, path, public)");
}

#[test]
fn only_the_catalog_reads_are_public() {
    // Every route of every function in the template, so a function added or
    // forgotten here cannot hide a public route.
    let routes = from_template(&read_repo_file("template.yaml")).expect("template parses");
    let functions: BTreeSet<&str> = routes.iter().map(|r| r.function.as_str()).collect();
    assert!(functions.contains("AnalyticsFunction") && functions.len() == 9, "{functions:?}");
    let public: BTreeSet<String> =
        routes.iter().filter(|r| r.public).map(|r| format!("{} {}", r.method, r.path)).collect();
    let expected: BTreeSet<String> = [
        "GET /api/tiers",
        "GET /api/tiers/compare",
        "POST /api/tiers/upgrade-price",
        "GET /api/segments",
        "GET /api/segments/{segmentId}",
        // The storefront's upsell offers for a visitor, and its funnel events.
        "POST /api/upsell/evaluate",
        "POST /api/storefront/events",
        "POST /api/storefront/price",
        "POST /api/promotions/validate",
        "GET /api/quotes/view/{token}",
        "GET /api/quotes/view/{token}/pdf",
        "POST /api/quotes/view/{token}/accept",
        "POST /api/quotes/view/{token}/reject",
        "POST /api/experiments/{experimentId}/assign",
        "POST /api/experiments/{experimentId}/track",
        // No token: Stripe signs the body, and the function verifies the signature.
        "POST /api/webhooks/stripe",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(public, expected);
}

/// Every function answers a body it cannot read (bad JSON, a field of the wrong
/// type) with 400 `validation_failed`, so every operation that takes a body must
/// say so; schemathesis fails CI on an undocumented status.
#[test]
fn every_operation_with_a_body_documents_400() {
    let doc: serde_yaml::Value = serde_yaml::from_str(&read_repo_file("infra/openapi.yaml")).expect("openapi parses");
    let mut undocumented = Vec::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        for (method, op) in item.as_mapping().expect("path item") {
            let takes_body = op.get("requestBody").is_some();
            if takes_body && op["responses"].get("400").is_none() {
                undocumented.push(format!("{} {}", method.as_str().unwrap_or("?"), path.as_str().unwrap_or("?")));
            }
        }
    }
    assert!(undocumented.is_empty(), "operations with a body but no 400: {undocumented:?}");
}
