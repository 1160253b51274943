//! Table bootstrap and demo data for the local stack. Seeding goes through the
//! gateway with an admin token, so it takes the same path as any client and is
//! idempotent for the same reasons (conditional creates).

use crate::event::HttpCall;
use crate::gateway::Gateway;
use crate::jwt;
use lambda_http::Body;
use serde_json::{json, Value};
use tierdesk::store::TierStore;

pub async fn call_json(
    gateway: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(t) = token {
        headers.push(("authorization".into(), format!("Bearer {t}")));
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let call = HttpCall {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers,
        body: body.map(|b| b.to_string().into_bytes()),
    };
    let response = gateway.call(call).await;
    let status = response.status().as_u16();
    let value = match response.body() {
        Body::Text(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, value)
}

/// Seed 002's "Signature" and "Luxury" segments: three-tier matrices with a popular
/// middle tier, each tier upselling to the one above. Highest level first, so every
/// `upsellTargets` id exists when the tier naming it is created.
fn demo_tiers() -> Vec<Value> {
    let tier = |segment: &str, id: &str, name: &str, level: u32, monthly: i64, guests: u64, features: Value| {
        let next = match level {
            1 => json!([format!("{segment}-select")]),
            2 => json!([format!("{segment}-complete")]),
            _ => json!([]),
        };
        json!({
            "tierId": id, "name": name, "segment": segment, "tierLevel": level, "popular": level == 2,
            "sortOrder": level * 10, "isPremium": level > 1, "type": "dealer",
            "prices": {"monthly": monthly, "yearly": monthly * 12}, "commitmentMonths": 12,
            "upgradeIncentivePercent": if level > 1 { json!(5) } else { Value::Null },
            "limits": {"maxGuests": guests, "listings": level * 5},
            "capacityLimit": "maxGuests", "upsellTargets": next,
            "features": features,
        })
    };
    let f = |id: &str, name: &str| json!({"featureId": id, "name": name});
    vec![
        tier(
            "signature",
            "signature-complete",
            "Signature Complete",
            3,
            1_000_000,
            150,
            json!([
                f("coverage_8h", "8hr coverage"),
                f("photos_unlimited", "Unlimited photos"),
                f("online_gallery", "Online gallery"),
                f("album", "Two albums"),
                f("video", "Video")
            ]),
        ),
        tier(
            "signature",
            "signature-select",
            "Signature Select",
            2,
            750_000,
            100,
            json!([
                f("coverage_6h", "6hr coverage"),
                f("photos_400", "400 photos"),
                f("online_gallery", "Online gallery"),
                f("album", "Album"),
                f("engagement_shoot", "Engagement shoot")
            ]),
        ),
        tier(
            "signature",
            "signature-essential",
            "Signature Essential",
            1,
            500_000,
            50,
            json!([
                f("coverage_4h", "4hr coverage"),
                f("photos_200", "200 photos"),
                f("online_gallery", "Online gallery")
            ]),
        ),
        tier(
            "luxury",
            "luxury-complete",
            "Luxury Complete",
            3,
            2_500_000,
            400,
            json!([
                f("coverage_full", "Full-day coverage, two shooters"),
                f("photos_unlimited", "Unlimited photos"),
                f("online_gallery", "Online gallery"),
                f("album", "Three heirloom albums"),
                f("video", "Cinematic film"),
                f("planner", "Dedicated planner")
            ]),
        ),
        tier(
            "luxury",
            "luxury-select",
            "Luxury Select",
            2,
            1_500_000,
            250,
            json!([
                f("coverage_10h", "10hr coverage"),
                f("photos_unlimited", "Unlimited photos"),
                f("online_gallery", "Online gallery"),
                f("album", "Two heirloom albums"),
                f("video", "Highlight film")
            ]),
        ),
        tier(
            "luxury",
            "luxury-essential",
            "Luxury Essential",
            1,
            1_000_000,
            150,
            json!([
                f("coverage_8h", "8hr coverage"),
                f("photos_unlimited", "Unlimited photos"),
                f("online_gallery", "Online gallery"),
                f("album", "Heirloom album")
            ]),
        ),
    ]
}

/// Seed 002's three segments, and the default tiers (free, gold, platinum) moved
/// from the legacy `standard` segment into Essential at their levels 1–3, so the
/// storefront shows three tiers in each segment. An existing segment, or a tier
/// already moved, is left as it is (the seed can run again).
async fn seed_segments(gateway: &Gateway, admin: &str) -> Result<Vec<String>, String> {
    let mut log = Vec::new();
    for new in tierdesk::domain::segment::default_segments() {
        let body = json!({
            "segmentId": new.segment_id, "name": new.name, "target": new.target, "description": new.description,
            "priceRange": {"min": new.price_range.min, "max": new.price_range.max}, "sortOrder": new.sort_order,
        });
        let (status, body) = call_json(gateway, "POST", "/api/admin/segments", Some(admin), Some(body)).await;
        match status {
            201 => log.push(format!("segment {}: created", new.segment_id)),
            409 => log.push(format!("segment {}: exists", new.segment_id)),
            _ => return Err(format!("segment {} failed: {status} {body}", new.segment_id)),
        }
    }
    for id in ["free", "gold", "platinum"] {
        let (status, tier) = call_json(gateway, "GET", &format!("/api/admin/tiers/{id}"), Some(admin), None).await;
        if status != 200 || tier["segment"] != "standard" {
            continue;
        }
        let edit = json!({"version": tier["version"], "segment": tierdesk::domain::segment::ESSENTIAL});
        let (status, body) =
            call_json(gateway, "PUT", &format!("/api/admin/tiers/{id}"), Some(admin), Some(edit)).await;
        if status != 200 {
            return Err(format!("moving tier {id} to essential failed: {status} {body}"));
        }
        log.push(format!("tier {id}: moved to segment essential"));
    }
    Ok(log)
}

/// Default tiers, the three segments and their demo tiers. Returns one line per step for the log.
pub async fn seed(gateway: &Gateway, secret: &str) -> Result<Vec<String>, String> {
    let now = chrono::Utc::now().timestamp();
    let admin = jwt::token_for("admin", None, "seed-admin", now, 300, secret);
    let mut log = Vec::new();
    let (status, body) = call_json(gateway, "POST", "/api/admin/tiers/initialize", Some(&admin), None).await;
    if status != 200 {
        return Err(format!("initialize failed: {status} {body}"));
    }
    log.push(format!("default tiers: created {} existing {}", body["created"], body["existing"]));
    log.extend(seed_segments(gateway, &admin).await?);
    for demo in demo_tiers() {
        let id = demo["tierId"].as_str().unwrap_or_default().to_string();
        let (status, body) = call_json(gateway, "POST", "/api/admin/tiers", Some(&admin), Some(demo)).await;
        match status {
            201 => log.push(format!("demo tier {id}: created")),
            409 => log.push(format!("demo tier {id}: exists")),
            _ => return Err(format!("demo tier {id} failed: {status} {body}")),
        }
    }
    log.extend(seed_pricing_rules(gateway, &admin).await?);
    log.extend(seed_upsell_rules(gateway, &admin).await?);
    log.extend(seed_commission_rates(gateway, &admin).await?);
    log.extend(seed_add_ons(gateway, &admin).await?);
    log.extend(seed_alert_rules(gateway, &admin).await?);
    log.extend(seed_partners(gateway, secret).await?);
    log.extend(seed_promotions(gateway, secret).await?);
    Ok(log)
}

/// The default staff alert rules (docs/alerts.md), to the local ops mailbox. One
/// that exists is left as it is.
async fn seed_alert_rules(gateway: &Gateway, admin: &str) -> Result<Vec<String>, String> {
    let mut log = Vec::new();
    for rule in tierdesk::domain::alerts::default_rules("ops@tierdesk.local", "seed", "") {
        let body = json!({
            "name": rule.name, "metric": rule.metric.as_str(), "threshold": rule.threshold,
            "recipients": rule.recipients,
        });
        let path = format!("/api/admin/alert-rules/{}", rule.rule_id);
        let (status, out) = call_json(gateway, "PUT", &path, Some(admin), Some(body)).await;
        match status {
            201 => log.push(format!("alert rule {}: created", rule.rule_id)),
            409 => log.push(format!("alert rule {}: exists", rule.rule_id)),
            _ => return Err(format!("alert rule {} failed: {status} {out}", rule.rule_id)),
        }
    }
    Ok(log)
}

/// The demo add-ons (docs/storefront.md "Add-ons"). One that exists is left as it is.
async fn seed_add_ons(gateway: &Gateway, admin: &str) -> Result<Vec<String>, String> {
    let seeder = tierdesk::domain::actor::Actor::system("seed", chrono::Utc::now(), "seed");
    let mut log = Vec::new();
    for add_on in tierdesk::domain::addon::demo_add_ons(&seeder) {
        let body = json!({"addOnId": add_on.add_on_id, "name": add_on.name, "description": add_on.description,
                          "prices": add_on.prices, "currency": add_on.currency, "segments": add_on.segments,
                          "sortOrder": add_on.sort_order});
        let (status, answer) = call_json(gateway, "POST", "/api/admin/add-ons", Some(admin), Some(body)).await;
        match status {
            201 => log.push(format!("add-on {}: created", add_on.add_on_id)),
            409 => log.push(format!("add-on {}: exists", add_on.add_on_id)),
            _ => return Err(format!("add-on {} failed: {status} {answer}", add_on.add_on_id)),
        }
    }
    Ok(log)
}

/// Seed 002's commission rates (Essential 8 %, Signature 10 %, Luxury 12 %),
/// effective from the start of last year so the demo's invoices earn them. A
/// segment that already has a rate from that day is left as it is.
async fn seed_commission_rates(gateway: &Gateway, admin: &str) -> Result<Vec<String>, String> {
    use chrono::Datelike;
    let seeder = tierdesk::domain::actor::Actor::system("seed", chrono::Utc::now(), "seed");
    let from = chrono::NaiveDate::from_ymd_opt(chrono::Utc::now().year() - 1, 1, 1).unwrap_or_default();
    let (status, existing) = call_json(gateway, "GET", "/api/admin/commissions/rates", Some(admin), None).await;
    if status != 200 {
        return Err(format!("reading commission rates failed: {status} {existing}"));
    }
    let mut log = Vec::new();
    for rate in tierdesk::domain::commission::default_rates(from, &seeder) {
        let day = rate.effective_from.to_string();
        let set = existing["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["segmentId"] == rate.segment_id.as_str() && r["effectiveFrom"] == day.as_str());
        if set {
            log.push(format!("commission rate {}: exists", rate.segment_id));
            continue;
        }
        let body = json!({"basisPoints": rate.basis_points, "effectiveFrom": rate.effective_from.to_string()});
        let path = format!("/api/admin/commissions/rates/{}", rate.segment_id);
        let (status, answer) = call_json(gateway, "PUT", &path, Some(admin), Some(body)).await;
        if status != 200 {
            return Err(format!("commission rate {} failed: {status} {answer}", rate.segment_id));
        }
        log.push(format!("commission rate {}: {} bp", rate.segment_id, rate.basis_points));
    }
    Ok(log)
}

/// Seed 002's three upsell rules (docs/storefront.md). A rule that exists is left
/// as it is.
async fn seed_upsell_rules(gateway: &Gateway, admin: &str) -> Result<Vec<String>, String> {
    let seeder = tierdesk::domain::actor::Actor::system("seed", chrono::Utc::now(), "seed");
    let mut log = Vec::new();
    for rule in tierdesk::domain::upsell::default_rules(&seeder) {
        let mut body = serde_json::to_value(&rule).map_err(|e| e.to_string())?;
        if let Some(o) = body.as_object_mut() {
            for owned in ["version", "updatedAt", "updatedBy"] {
                o.remove(owned);
            }
        }
        let (status, body) = call_json(gateway, "POST", "/api/admin/upsell-rules", Some(admin), Some(body)).await;
        match status {
            201 => log.push(format!("upsell rule {}: created", rule.rule_id)),
            409 => log.push(format!("upsell rule {}: exists", rule.rule_id)),
            _ => return Err(format!("upsell rule {} failed: {status} {body}", rule.rule_id)),
        }
    }
    Ok(log)
}

/// Seed 002's two seasonal rules (docs/pricing-rules.md). Peak season is on; last
/// minute is seeded switched off, because every Tierdesk subscription starts the
/// day it is bought (0 days out), so as seed 002 wrote it the rule would take 15 %
/// off every sale. A rule that exists is left as it is.
async fn seed_pricing_rules(gateway: &Gateway, admin: &str) -> Result<Vec<String>, String> {
    let mut log = Vec::new();
    for rule in tierdesk::domain::pricing_rules::seasonal_defaults(chrono::Utc::now().date_naive()) {
        let mut body = serde_json::to_value(&rule).map_err(|e| e.to_string())?;
        if let Some(o) = body.as_object_mut() {
            for owned in ["version", "updatedAt", "updatedBy"] {
                o.remove(owned);
            }
            o.insert("isActive".into(), json!(rule.rule_id != "last-minute"));
        }
        let (status, body) = call_json(gateway, "POST", "/api/admin/pricing-rules", Some(admin), Some(body)).await;
        match status {
            201 => log.push(format!("pricing rule {}: created", rule.rule_id)),
            409 => log.push(format!("pricing rule {}: exists", rule.rule_id)),
            _ => return Err(format!("pricing rule {} failed: {status} {body}", rule.rule_id)),
        }
    }
    Ok(log)
}

/// Demo promotions: two live (one below the approval policy, one on gold only) and
/// one waiting for a second person's approval. A code already taken means the
/// promotion exists, so the seed can run again.
async fn seed_promotions(gateway: &Gateway, secret: &str) -> Result<Vec<String>, String> {
    let now = chrono::Utc::now().timestamp();
    let manager = jwt::token_for("sales_manager", None, "demo-manager", now, 300, secret);
    let demos = [
        json!({"name": "Welcome 20", "description": "20% off the first month for new partners",
               "discountType": "percentage", "discountValue": 20, "appliesTo": "first_month",
               "eligibilityRules": {"userType": "new"}, "startDate": day(-30), "endDate": day(335),
               "promotionCodes": ["WELCOME20"]}),
        json!({"name": "Gold $500", "description": "$500 off every gold charge",
               "discountType": "fixed_amount", "discountValue": 50_000, "appliesTo": "both",
               "targetTiers": ["gold"], "maxRedemptions": 50, "startDate": day(-7), "endDate": day(60),
               "promotionCodes": ["GOLD500"]}),
        json!({"name": "Platinum annual 35", "description": "35% off platinum paid yearly",
               "discountType": "percentage", "discountValue": 35, "appliesTo": "yearly",
               "targetTiers": ["platinum"], "startDate": day(0), "endDate": day(90),
               "promotionCodes": ["VIP35"]}),
    ];
    let mut log = Vec::new();
    for demo in demos {
        let name = demo["name"].as_str().unwrap_or_default().to_string();
        let (status, created) = call_json(gateway, "POST", "/api/admin/promotions", Some(&manager), Some(demo)).await;
        match status {
            201 => {
                let id = created["promotionId"].as_str().unwrap_or_default();
                let path = format!("/api/admin/promotions/{id}/submit");
                let (status, submitted) = call_json(gateway, "POST", &path, Some(&manager), None).await;
                if status != 200 {
                    return Err(format!("demo promotion {name} submit failed: {status} {submitted}"));
                }
                log.push(format!("demo promotion {name}: {}", submitted["status"]));
            }
            409 => log.push(format!("demo promotion {name}: exists")),
            _ => return Err(format!("demo promotion {name} failed: {status} {created}")),
        }
    }
    Ok(log)
}

/// One admin call on a demo partner: method, action under its path, body.
type DemoStep = (&'static str, &'static str, Value);

fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset)).format("%Y-%m-%d").to_string()
}

/// Demo partners across the subscription lifecycle (seed 003's dashboard mock-up),
/// created through the API so each has a real history, stats and ledger. A partner
/// whose email already exists is left alone, so seeding twice changes nothing.
async fn seed_partners(gateway: &Gateway, secret: &str) -> Result<Vec<String>, String> {
    let now = chrono::Utc::now().timestamp();
    let manager = jwt::token_for("sales_manager", None, "demo-manager", now, 300, secret);
    let rep = jwt::token_for("sales_rep", None, "demo-rep", now, 300, secret);
    let gold_expiring = json!({"tier": "gold", "subscriptionStartDate": day(-346), "subscriptionEndDate": day(19), "autoRenewal": false});
    let demos: Vec<(&str, &str, Vec<DemoStep>)> = vec![
        ("BuildPro CRM", "contact@buildpro.example.com", vec![("PATCH", "engagement-tier", gold_expiring)]),
        (
            "ContractorPro",
            "billing@contractorpro.example.com",
            vec![(
                "PATCH",
                "engagement-tier",
                json!({"tier": "gold", "billingPeriod": "yearly", "subscriptionStartDate": day(-342), "subscriptionEndDate": day(23)}),
            )],
        ),
        (
            "TechFlow Solutions",
            "ops@techflow.example.com",
            vec![(
                "PATCH",
                "engagement-tier",
                json!({"tier": "platinum", "subscriptionStartDate": day(-358), "subscriptionEndDate": day(7), "autoRenewal": false}),
            )],
        ),
        (
            "Summit Roofing",
            "office@summitroofing.example.com",
            vec![
                ("PATCH", "engagement-tier", json!({"tier": "platinum"})),
                ("PATCH", "engagement-tier", json!({"tier": "gold", "reason": "Budget review"})),
            ],
        ),
        (
            "Apex Builders",
            "hello@apexbuilders.example.com",
            vec![
                ("PATCH", "engagement-tier", json!({"tier": "gold"})),
                ("POST", "cancel", json!({"reason": "Moving to an in-house team"})),
            ],
        ),
        (
            "Northwind Supply",
            "team@northwind.example.com",
            vec![
                ("PATCH", "engagement-tier", json!({"tier": "gold"})),
                ("POST", "cancel", json!({"reason": "Payment dispute", "immediate": true})),
            ],
        ),
        (
            "Keystone Partners",
            "info@keystone.example.com",
            vec![("PATCH", "engagement-tier", json!({"tier": "gold", "trialDays": 14}))],
        ),
        ("Harbor Homes", "sales@harborhomes.example.com", vec![]),
    ];
    let mut log = Vec::new();
    for (name, email, steps) in demos {
        let body = json!({"companyName": name, "primaryEmail": email});
        let (status, created) = call_json(gateway, "POST", "/api/admin/partners", Some(&rep), Some(body)).await;
        match status {
            201 => {}
            409 => {
                log.push(format!("demo partner {name}: exists"));
                continue;
            }
            _ => return Err(format!("demo partner {name} failed: {status} {created}")),
        }
        let id = created["partnerId"].as_str().unwrap_or_default().to_string();
        for (method, action, body) in steps {
            let path = format!("/api/admin/partners/{id}/{action}");
            let (status, out) = call_json(gateway, method, &path, Some(&manager), Some(body)).await;
            if status != 200 {
                return Err(format!("demo partner {name} {action} failed: {status} {out}"));
            }
        }
        let note = json!({"note": format!("Intro call with {name}"), "nextAction": "Send the platinum comparison", "contactType": "call"});
        let (status, out) =
            call_json(gateway, "POST", &format!("/api/admin/partners/{id}/notes"), Some(&rep), Some(note)).await;
        if status != 201 {
            return Err(format!("demo note for {name} failed: {status} {out}"));
        }
        let take = json!({"salesRep": "demo-rep"});
        let (status, out) =
            call_json(gateway, "POST", &format!("/api/admin/partners/{id}/assign"), Some(&rep), Some(take)).await;
        if status != 200 {
            return Err(format!("demo assignment for {name} failed: {status} {out}"));
        }
        log.push(format!("demo partner {name}: created {id}"));
    }
    Ok(log)
}

/// Demo partners whose terms have already ended, for the expiry cron: with the seed
/// above, a cron run today sends 30-day notices (BuildPro CRM, ContractorPro), an
/// urgent one (TechFlow Solutions) and expires Lapsed Lumber; Riverside Realty renews
/// automatically and is still inside its grace period.
///
/// The API refuses end dates in the past, so these go through a partners function whose
/// clock is set back 40 days, as if they had been entered then: each has a real history.
/// Idempotent like `seed`.
pub async fn seed_lapsed(
    config: &tierdesk::Config,
    routes: Vec<crate::routes::TemplateRoute>,
    secret: &str,
) -> Result<Vec<String>, String> {
    use std::sync::Arc;
    let real_now = chrono::Utc::now();
    let back = real_now - chrono::Duration::days(40);
    let clock = Arc::new(tierdesk::clock::FixedClock::new(back));
    let app = tierdesk::app::App::connect(config.clone()).await.with_clock(clock);
    let app = Arc::new(partners::Partners::new(app));
    let handler: crate::gateway::Handler = Arc::new(move |req| {
        let app = app.clone();
        Box::pin(async move { partners::handle(&app, req).await })
    });
    let function = "PartnersFunction".to_string();
    let routes = routes.into_iter().filter(|r| r.function == function).collect();
    let handlers = std::collections::HashMap::from([(function, handler)]);
    let gateway = Gateway::new(routes, &handlers, secret.to_string())?;

    let rep = jwt::token_for("sales_rep", None, "demo-rep", real_now.timestamp(), 300, secret);
    let manager = jwt::token_for("sales_manager", None, "demo-manager", real_now.timestamp(), 300, secret);
    let demos = [
        (
            "Lapsed Lumber",
            "accounts@lapsedlumber.example.com",
            json!({"tier": "gold", "subscriptionStartDate": day(-40), "subscriptionEndDate": day(-1), "autoRenewal": false}),
        ),
        (
            "Riverside Realty",
            "billing@riversiderealty.example.com",
            json!({"tier": "gold", "subscriptionStartDate": day(-40), "subscriptionEndDate": day(-3), "autoRenewal": true}),
        ),
    ];
    let mut log = Vec::new();
    for (name, email, term) in demos {
        let body = json!({"companyName": name, "primaryEmail": email, "assignedSalesRep": "demo-rep"});
        let (status, created) = call_json(&gateway, "POST", "/api/admin/partners", Some(&rep), Some(body)).await;
        match status {
            201 => {}
            409 => {
                log.push(format!("demo partner {name}: exists"));
                continue;
            }
            _ => return Err(format!("demo partner {name} failed: {status} {created}")),
        }
        let id = created["partnerId"].as_str().unwrap_or_default().to_string();
        let path = format!("/api/admin/partners/{id}/engagement-tier");
        let (status, out) = call_json(&gateway, "PATCH", &path, Some(&manager), Some(term)).await;
        if status != 200 {
            return Err(format!("demo partner {name} term failed: {status} {out}"));
        }
        log.push(format!("demo partner {name}: created {id}"));
    }
    Ok(log)
}

/// Creates the Stripe price of every paid tier and period (lookup key
/// `tierdesk_{tier}_v{version}_{period}`) in the Stripe the environment names, the local
/// emulator under `make run`. Idempotent: existing prices are kept.
pub async fn seed_stripe_prices(config: &tierdesk::Config) -> Vec<String> {
    let services = crate::gateway::Services::from_env().await;
    let store = tierdesk::store::Store::connect(config).await;
    seed_stripe_prices_with(&store, &services.stripe).await
}

/// As `seed_stripe_prices`, with the store and Stripe client given.
pub async fn seed_stripe_prices_with(
    store: &tierdesk::store::Store,
    stripe: &tierdesk::stripe_adapter::StripeGateway,
) -> Vec<String> {
    use tierdesk::domain::money::BillingPeriod;
    let tiers = match store.active_catalog().await {
        Ok(t) => t,
        Err(e) => return vec![format!("stripe prices: catalog unreadable: {e}")],
    };
    let mut lines = Vec::new();
    for tier in tiers.iter().filter(|t| tierdesk::domain::subscription::is_paid(t)) {
        for period in [BillingPeriod::Monthly, BillingPeriod::Yearly] {
            let amount = tier.prices.for_period(period);
            let spec = tierdesk::domain::billing::PriceSpec::current(tier, period);
            match stripe.ensure_price(&spec).await {
                Ok(p) => lines.push(format!(
                    "stripe price {} {} = {} ({})",
                    tier.tier_id,
                    period.as_str(),
                    amount,
                    p.price_id
                )),
                Err(e) => lines.push(format!("stripe price {} {}: {e}", tier.tier_id, period.as_str())),
            }
        }
    }
    lines
}

/// A finished gold price test for the elasticity estimate and its recommendation
/// (docs/intelligence.md): the current price against +10%, 2,000 visitors each
/// way, converting at 12% and 8.5%. Visitors are assigned through the public route
/// as the storefront does; the first converters of each variant are tracked.
/// Skipped when it exists (seeding twice).
pub async fn seed_experiment(gateway: &Gateway, secret: &str) -> Result<Vec<String>, String> {
    const NAME: &str = "Gold +10% (demo)";
    let now = chrono::Utc::now().timestamp();
    let manager = jwt::token_for("sales_manager", None, "demo-manager", now, 600, secret);
    let (_, done) = call_json(gateway, "GET", "/api/admin/experiments?status=completed", Some(&manager), None).await;
    if done["items"].as_array().is_some_and(|items| items.iter().any(|e| e["name"] == NAME)) {
        return Ok(vec![format!("demo experiment {NAME}: exists")]);
    }
    let body = json!({
        "name": NAME,
        "hypothesis": "Gold customers will pay 10% more without converting less",
        "targetTier": "gold",
        "minSampleSize": 100,
        "variants": [
            {"variantId": "control", "name": "Current price", "isControl": true, "allocation": 50},
            {"variantId": "higher", "name": "+10%", "allocation": 50, "pricing": {"monthly": 396_000}}
        ]
    });
    let (status, e) = call_json(gateway, "POST", "/api/admin/experiments", Some(&manager), Some(body)).await;
    if status != 201 {
        return Err(format!("demo experiment failed: {status} {e}"));
    }
    let id = e["experimentId"].as_str().unwrap_or_default().to_string();
    let (status, e) =
        call_json(gateway, "POST", &format!("/api/admin/experiments/{id}/start"), Some(&manager), None).await;
    if status != 200 {
        return Err(format!("demo experiment start failed: {status} {e}"));
    }
    use futures::StreamExt;
    let assigned: Vec<(String, String)> = futures::stream::iter(0..4_000)
        .map(|i| {
            let id = &id;
            async move {
                let user = format!("demo-visitor-{i:05}");
                let path = format!("/api/experiments/{id}/assign");
                let (_, a) = call_json(gateway, "POST", &path, None, Some(json!({"userId": user}))).await;
                (user, a["variantId"].as_str().unwrap_or_default().to_string())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (variant, rate) in [("control", 0.12), ("higher", 0.085)] {
        let users: Vec<&String> = assigned.iter().filter(|(_, v)| v == variant).map(|(u, _)| u).collect();
        let converting = (users.len() as f64 * rate).round() as usize;
        futures::stream::iter(users.into_iter().take(converting))
            .for_each_concurrent(16, |user| {
                let id = &id;
                async move {
                    let ask = json!({"userId": user, "metric": "conversion"});
                    call_json(gateway, "POST", &format!("/api/experiments/{id}/track"), None, Some(ask)).await;
                }
            })
            .await;
    }
    let (status, e) =
        call_json(gateway, "POST", &format!("/api/admin/experiments/{id}/complete"), Some(&manager), None).await;
    if status != 200 {
        return Err(format!("demo experiment complete failed: {status} {e}"));
    }
    Ok(vec![format!("demo experiment {NAME}: 4,000 visitors, completed ({id})")])
}

/// `make run`'s running campaign (docs/campaigns.md): a retention campaign for
/// partners at medium churn risk or above, two subject lines tested 50/50 as a
/// running campaign experiment, email and in-app, launched. One that exists (by
/// name) is left as it is.
pub async fn seed_campaign(gateway: &Gateway, secret: &str) -> Result<Vec<String>, String> {
    const NAME: &str = "Keep your plan (churn risk)";
    let now = chrono::Utc::now();
    let admin = jwt::token_for("admin", None, "seed-admin", now.timestamp(), 300, secret);
    let (status, list) = call_json(gateway, "GET", "/api/admin/campaigns", Some(&admin), None).await;
    if status != 200 {
        return Err(format!("listing campaigns failed: {status} {list}"));
    }
    if list["campaigns"].as_array().is_some_and(|all| all.iter().any(|c| c["name"] == NAME)) {
        return Ok(vec![format!("campaign {NAME:?}: exists")]);
    }
    let start = (now.date_naive() - chrono::Duration::days(30)).to_string();
    let body = json!({
        "name": NAME,
        "type": "retention",
        "trigger": {"type": "churn_risk", "level": "medium"},
        "content": {
            "variants": [
                {"variantId": "plain", "allocation": 50,
                 "subject": "{{companyName}}, how is {{tierName}} working for you?",
                 "body": "We noticed things have been quiet on your {{tierName}} plan.\n\nReply to this email and your account manager will call you this week."},
                {"variantId": "benefit", "allocation": 50,
                 "subject": "{{companyName}}: three {{tierName}} features you may have missed",
                 "body": "Your {{tierName}} plan includes more than most partners use.\n\nYour account manager can show you in 20 minutes."}
            ],
            "callToAction": {"label": "Open your portal", "url": "/partner-portal"}
        },
        "channels": ["email", "in_app"],
        "cooldownDays": 14,
        "maxFrequency": {"count": 2, "periodDays": 60},
        "startDate": start,
        "attributionWindowDays": 30
    });
    let (status, created) = call_json(gateway, "POST", "/api/admin/campaigns", Some(&admin), Some(body)).await;
    if status != 201 {
        return Err(format!("campaign failed: {status} {created}"));
    }
    let id = created["campaignId"].as_str().unwrap_or_default();
    let path = format!("/api/admin/campaigns/{id}/launch");
    let (status, launched) = call_json(gateway, "POST", &path, Some(&admin), None).await;
    if status != 200 {
        return Err(format!("campaign launch failed: {status} {launched}"));
    }
    // Its two subject lines as a campaign experiment, started before the day's
    // step runs, so the seed's sends are its first exposures.
    let body = json!({
        "experimentType": "campaign",
        "campaignId": id,
        "name": "Churn-risk subject line",
        "hypothesis": "Naming the features a partner has not used brings more of them back than asking how things are.",
        "minSampleSize": 50,
        "sequential": true
    });
    let (status, e) = call_json(gateway, "POST", "/api/admin/experiments", Some(&admin), Some(body)).await;
    if status != 201 {
        return Err(format!("campaign experiment failed: {status} {e}"));
    }
    let eid = e["experimentId"].as_str().unwrap_or_default();
    let path = format!("/api/admin/experiments/{eid}/start");
    let (status, started) = call_json(gateway, "POST", &path, Some(&admin), None).await;
    if status != 200 {
        return Err(format!("campaign experiment start failed: {status} {started}"));
    }
    Ok(vec![format!("campaign {NAME:?}: created and launched ({id}), its subject lines under experiment {eid}")])
}
