//! Stripe prices follow the catalog: every price version of a tier has its own
//! Stripe price, new sales charge the current version, subscribers keep the
//! version they signed at until an explicit migration moves them, and an
//! accepted quote is billed in Stripe at the quoted amount.

use serde_json::{json, Value};
use tierdesk_tests::ses;
use tierdesk_tests::stripe::StripeApp;

const MIGRATE: &str = "/api/admin/tiers/gold/price-migrations";

async fn partner(s: &StripeApp, id: &str) -> Value {
    let (status, p) = s.app.call("GET", &format!("/api/admin/partners/{id}"), Some("admin"), None).await;
    assert_eq!(status, 200, "{p}");
    p
}

/// Sets a tier's prices through the admin API (a new price version).
async fn reprice(s: &StripeApp, tier: &str, monthly: i64, yearly: i64) -> Value {
    let (status, t) = s.app.call("GET", &format!("/api/admin/tiers/{tier}"), Some("admin"), None).await;
    assert_eq!(status, 200, "{t}");
    let body = json!({"version": t["version"], "prices": {"monthly": monthly, "yearly": yearly}});
    let (status, t) = s.app.call("PUT", &format!("/api/admin/tiers/{tier}"), Some("admin"), Some(body)).await;
    assert_eq!(status, 200, "{t}");
    t
}

/// The newest Stripe invoice of a subscription, as the emulator holds it.
async fn latest_invoice(s: &StripeApp, sub: &str) -> Value {
    let (status, list) = s.stripe_api("GET", &format!("invoices?subscription={sub}&limit=100"), &[], None).await;
    assert_eq!(status, 200, "{list}");
    list["data"][0].clone()
}

async fn stripe_subscription(s: &StripeApp, sub: &str) -> Value {
    let (status, body) = s.stripe_api("GET", &format!("subscriptions/{sub}"), &[], None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `mrr` of `STATS#gold` / `CURRENT`.
async fn gold_mrr(s: &StripeApp) -> i64 {
    let items = s.app.items().await;
    let current = items.iter().find(|i| i["PK"] == "STATS#gold" && i["SK"] == "CURRENT").expect("gold stats");
    current["mrr"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn a_price_change_reaches_new_checkouts_while_subscribers_keep_their_version() {
    let s = StripeApp::start().await;
    let (old_id, old_token, _) = s.partner("Signed Early").await;
    let old_sub = s.subscribe(&old_token, "gold", "monthly").await;
    let tier = reprice(&s, "gold", 400_000, 4_000_000).await;
    assert_eq!(tier["priceVersion"], 2);

    // A new sale is priced and charged at version 2.
    let (_, new_token, _) = s.partner("Signed Late").await;
    let (status, session) = s
        .as_partner(
            &new_token,
            "POST",
            "/api/billing/subscribe",
            Some(json!({"tierId": "gold", "billingPeriod": "monthly"})),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["amount"], 400_000);
    let new_sub = s.subscribe(&new_token, "gold", "monthly").await;
    assert_eq!(latest_invoice(&s, &new_sub).await["amount_due"], 400_000);
    let price = &stripe_subscription(&s, &new_sub).await["items"]["data"][0]["price"];
    assert_eq!(price["lookup_key"], "tierdesk_gold_v2_monthly", "{price}");
    let (_, view) = s.as_partner(&new_token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(view["pricePerPeriod"], 400_000, "{view}");

    // The early subscriber renews at the price they signed at.
    s.advance(&old_sub).await;
    assert_eq!(latest_invoice(&s, &old_sub).await["amount_due"], 360_000);
    let p = partner(&s, &old_id).await;
    assert_eq!((p["pricePerPeriod"].clone(), p["priceVersion"].clone()), (json!(360_000), json!(1)), "{p}");
}

#[tokio::test]
async fn a_price_migration_reports_then_moves_subscribers_and_the_next_renewal_charges_the_new_price() {
    let s = StripeApp::start().await;
    let (a, a_token, _) = s.partner("Migrating A").await;
    let (b, b_token, _) = s.partner("Migrating B").await;
    let (c, c_token, _) = s.partner("Platinum C").await;
    let a_sub = s.subscribe(&a_token, "gold", "monthly").await;
    s.subscribe(&b_token, "gold", "yearly").await;
    s.subscribe(&c_token, "platinum", "monthly").await;
    reprice(&s, "gold", 400_000, 4_800_000).await;

    // Who may migrate: pricing managers; a denied call changes nothing.
    for (role, allowed) in [
        (None, false),
        (Some("partner"), false),
        (Some("sales_rep"), false),
        (Some("sales_manager"), true),
        (Some("admin"), true),
    ] {
        s.app.assert_access("POST", MIGRATE, role, Some(json!({"dryRun": true})), allowed).await;
    }

    let (status, dry) = s.app.call("POST", MIGRATE, Some("sales_manager"), Some(json!({"dryRun": true}))).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["affected"], 2, "{dry}");
    let mut ids: Vec<&str> =
        dry["partners"].as_array().unwrap().iter().map(|p| p["partnerId"].as_str().unwrap()).collect();
    ids.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(ids, want, "{dry}");
    // Monthly +40,000; yearly (4,320,000 → 4,800,000) / 12 = +40,000.
    assert_eq!(dry["mrrChange"], 80_000, "{dry}");
    let stats_before = gold_mrr(&s).await;
    assert_eq!(dry["remaining"], 2);
    assert_eq!(partner(&s, &a).await["pricePerPeriod"], 360_000, "a dry run changes nothing");
    assert!(!dry.to_string().contains(&c), "platinum is not on the tier");

    let (status, bad) =
        s.app.call("POST", MIGRATE, Some("admin"), Some(json!({"dryRun": false, "fromVersion": 2}))).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["details"]["fields"]["fromVersion"].is_string(), "{bad}");

    let (status, run) = s.app.call("POST", MIGRATE, Some("admin"), Some(json!({"dryRun": false}))).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["migrated"].as_array().unwrap().len(), 2, "{run}");
    assert_eq!(run["remaining"], 0, "{run}");
    s.emulator.flush().await;
    let pa = partner(&s, &a).await;
    assert_eq!(
        (pa["pricePerPeriod"].clone(), pa["priceVersion"].clone(), pa["mrr"].clone()),
        (json!(400_000), json!(2), json!(400_000)),
        "{pa}"
    );
    let pb = partner(&s, &b).await;
    assert_eq!((pb["pricePerPeriod"].clone(), pb["mrr"].clone()), (json!(4_800_000), json!(400_000)), "{pb}");
    // Tier statistics moved with the partners, by the reported change.
    assert_eq!(gold_mrr(&s).await, stats_before + 80_000);

    // Idempotent: nobody is left to move.
    let (_, again) = s.app.call("POST", MIGRATE, Some("admin"), Some(json!({"dryRun": false}))).await;
    assert_eq!((again["affected"].clone(), again["migrated"].as_array().unwrap().len()), (json!(0), 0), "{again}");

    // No proration: the next renewal invoice charges the new price.
    s.advance(&a_sub).await;
    assert_eq!(latest_invoice(&s, &a_sub).await["amount_due"], 400_000);
    assert_eq!(partner(&s, &a).await["priceVersion"], 2);
}

#[tokio::test]
async fn a_paid_tier_created_by_an_admin_can_be_sold() {
    let s = StripeApp::start().await;
    let tier = json!({
        "tierId": "silver", "name": "Silver", "description": "Between free and gold",
        "segment": "core", "tierLevel": 2, "sortOrder": 15,
        "prices": {"monthly": 120_000, "yearly": 1_200_000},
        "limits": {"listings": 10},
        "features": [{"featureId": "profile", "name": "Profile"}]
    });
    let (status, created) = s.app.call("POST", "/api/admin/tiers", Some("admin"), Some(tier)).await;
    assert_eq!(status, 201, "{created}");
    let (id, token, _) = s.partner("Silver Buyer").await;
    let sub = s.subscribe(&token, "silver", "yearly").await;
    assert_eq!(latest_invoice(&s, &sub).await["amount_due"], 1_200_000);
    let p = partner(&s, &id).await;
    assert_eq!((p["engagementTier"].clone(), p["pricePerPeriod"].clone()), (json!("silver"), json!(1_200_000)), "{p}");
}

/// The token of the quote link in the last email `to` received.
async fn link_token(to: &str) -> String {
    let emails = ses::emails_to(to).await;
    let text = emails.last().map(|e| e.to_string()).unwrap_or_default();
    let at = text.find("/quote/").unwrap_or_else(|| panic!("no quote link for {to}: {text}"));
    text[at + "/quote/".len()..].chars().take(43).collect()
}

#[tokio::test]
async fn an_accepted_quote_is_billed_in_stripe_at_the_quoted_amount() {
    let s = StripeApp::start().await;
    let email = format!("quoted-{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let valid = (chrono::Utc::now().date_naive() + chrono::Days::new(30)).format("%Y-%m-%d").to_string();
    let body = json!({
        "prospectEmail": email, "prospectName": "Ada Buyer", "prospectCompany": "Quoted Realty",
        "baseTier": "gold", "billingPeriod": "monthly", "validUntil": valid,
        "discounts": [{"type": "percentage", "value": 10, "reason": "launch"}],
    });
    let (status, q) = s.app.call("POST", "/api/admin/quotes", Some("sales_rep"), Some(body)).await;
    assert_eq!(status, 201, "{q}");
    let quoted = q["finalPrice"].as_i64().unwrap();
    assert!(quoted < 360_000, "a discounted quote: {q}");
    let path = format!("/api/admin/quotes/{}/send", q["quoteId"].as_str().unwrap());
    let (status, sent) = s.app.call("POST", &path, Some("sales_rep"), None).await;
    assert_eq!(status, 200, "{sent}");
    let token = link_token(&email).await;

    let (status, accepted) = s.app.call("POST", &format!("/api/quotes/view/{token}/accept"), None, None).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["billingStatus"], "subscribed", "{accepted}");
    let sub = accepted["stripeSubscriptionId"].as_str().unwrap().to_string();
    s.emulator.flush().await;
    let stripe_sub = stripe_subscription(&s, &sub).await;
    let price = &stripe_sub["items"]["data"][0]["price"];
    assert_eq!(price["unit_amount"], quoted, "{stripe_sub}");
    assert_eq!(stripe_sub["metadata"]["quote_id"], q["quoteId"], "{stripe_sub}");
    assert_eq!(latest_invoice(&s, &sub).await["amount_due"], quoted);

    // Repeats, ten at once, answer with the same subscription and create nothing.
    let accept = format!("/api/quotes/view/{token}/accept");
    let repeats = futures::future::join_all((0..10).map(|_| s.app.call("POST", &accept, None, None))).await;
    for (status, again) in repeats {
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["stripeSubscriptionId"], sub.as_str(), "{again}");
    }
    let (_, list) = s.stripe_api("GET", "subscriptions?limit=100", &[], None).await;
    let count = list["data"].as_array().unwrap().iter().filter(|x| x["metadata"]["quote_id"] == q["quoteId"]).count();
    assert_eq!(count, 1, "{list}");

    let p = partner(&s, accepted["partnerId"].as_str().unwrap()).await;
    assert_eq!(p["engagementTier"], "gold");
    assert_eq!(p["pricePerPeriod"], quoted, "{p}");
    assert_eq!(p["stripeSubscriptionId"], sub.as_str(), "the webhook linked the partner: {p}");
}

/// Seed 004 grandfathering on schedule: under `grandfatherMonths`, a list-price
/// change records the day the old price ends; the daily cron leaves subscribers
/// alone before it, moves each once from that day's run (two concurrent runs
/// included), and the next invoice is at the new price.
#[tokio::test]
async fn grandfathered_subscribers_move_to_the_new_price_on_the_scheduled_day_once() {
    use expiry_cron::{grandfathering::MigrateGrandfathered, DailyStep, RunDate};
    let s = StripeApp::start().await;
    let (early_id, early_token, _) = s.partner("Grandfathered Co").await;
    let early_sub = s.subscribe(&early_token, "gold", "monthly").await;
    let limits = json!({"version": 0, "constraints": {"grandfatherMonths": 2}});
    let (status, body) =
        s.app.call("PUT", "/api/admin/pricing-constraints/tier/gold", Some("admin"), Some(limits)).await;
    assert_eq!(status, 200, "{body}");
    let (status, preview) = s
        .app
        .call(
            "POST",
            "/api/admin/tiers/gold/price-impact",
            Some("admin"),
            Some(json!({"prices": {"monthly": 400_000, "yearly": 4_000_000}})),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let tier = reprice(&s, "gold", 400_000, 4_000_000).await;
    assert_eq!(tier["grandfatheredUntil"], preview["grandfatheredUntil"], "the preview's date is the schedule");
    let until = chrono::NaiveDate::parse_from_str(tier["grandfatheredUntil"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let (_, catalog) = s.app.call("GET", "/api/tiers", None, None).await;
    let public = catalog["items"].as_array().unwrap().iter().find(|t| t["tierId"] == "gold").unwrap().clone();
    assert_eq!(public["grandfatheredUntil"], tier["grandfatheredUntil"], "the portal can say when");
    let (_, late_token, _) = s.partner("After The Change").await;
    s.subscribe(&late_token, "gold", "monthly").await;

    let step = MigrateGrandfathered { app: s.app.function_app(), stripe: s.stripe.clone() };
    let run = |date| RunDate::for_date(date);
    let day_before = until.pred_opt().unwrap();
    assert_eq!(
        tierdesk::calls::as_function(expiry_cron::LOGICAL_ID, step.run(&s.app.store, &run(day_before))).await.unwrap(),
        0,
        "not before the day"
    );
    assert_eq!(partner(&s, &early_id).await["priceVersion"], 1);

    let on_the_day = run(until);
    let (a, b) = tierdesk::calls::as_function(expiry_cron::LOGICAL_ID, async {
        futures::join!(step.run(&s.app.store, &on_the_day), step.run(&s.app.store, &on_the_day))
    })
    .await;
    assert_eq!(a.unwrap() + b.unwrap(), 1, "one partner moved once, by one of two concurrent runs");
    assert_eq!(
        tierdesk::calls::as_function(expiry_cron::LOGICAL_ID, step.run(&s.app.store, &on_the_day)).await.unwrap(),
        0,
        "a rerun moves nobody"
    );
    let p = partner(&s, &early_id).await;
    assert_eq!((p["pricePerPeriod"].clone(), p["priceVersion"].clone()), (json!(400_000), json!(2)), "{p}");
    let price = &stripe_subscription(&s, &early_sub).await["items"]["data"][0]["price"];
    assert_eq!(price["lookup_key"], "tierdesk_gold_v2_monthly", "{price}");
    let history = s.app.items().await;
    let moved: Vec<&Value> = history.iter().filter(|i| i["action"] == "partner.price_migration").collect();
    assert_eq!(moved.len(), 1, "one audited move");
    assert_eq!(moved[0]["actor"], "cron:grandfathering", "{}", moved[0]);

    // From the next invoice on, the new price; the week after the day, no more looking.
    s.advance(&early_sub).await;
    assert_eq!(latest_invoice(&s, &early_sub).await["amount_due"], 400_000);
    let later = until + chrono::Days::new(expiry_cron::grandfathering::WINDOW_DAYS as u64);
    assert_eq!(
        tierdesk::calls::as_function(expiry_cron::LOGICAL_ID, step.run(&s.app.store, &run(later))).await.unwrap(),
        0
    );
}
