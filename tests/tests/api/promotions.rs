//! Promotions through the gateway: workflow and authority, codes, validate with
//! every failing rule, and redemption under concurrency and replays.

use serde_json::{json, Value};
use tierdesk_tests::TestApp;

const ADMIN: &str = "/api/admin/promotions";

fn body(extra: Value) -> Value {
    let mut b = json!({
        "name": "Winter deal",
        "description": "15% off",
        "discountType": "percentage",
        "discountValue": 15,
        "appliesTo": "both",
        "startDate": "2026-01-01",
        "endDate": "2099-12-31",
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// Creates (as a sales manager) and activates a promotion; approval, when the
/// policy asks for it, comes from the admin.
async fn active(app: &TestApp, extra: Value) -> Value {
    let (status, created) = app.call("POST", ADMIN, Some("sales_manager"), Some(body(extra))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["promotionId"].as_str().unwrap().to_string();
    let (status, submitted) = app.call("POST", &format!("{ADMIN}/{id}/submit"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{submitted}");
    if submitted["status"] == "pending_approval" {
        let (status, approved) = app.call("POST", &format!("{ADMIN}/{id}/approve"), Some("admin"), None).await;
        assert_eq!(status, 200, "{approved}");
        return approved;
    }
    assert_eq!(submitted["status"], "active");
    submitted
}

fn id_of(v: &Value) -> String {
    v["promotionId"].as_str().unwrap().to_string()
}

async fn redeem_as_partner(app: &TestApp, partner: &str, ask: Value) -> (u16, Value) {
    app.call_with_token("POST", "/api/promotions/redeem", &app.partner_token(partner), Some(ask)).await
}

#[tokio::test]
async fn a_promotion_goes_from_draft_to_redeemed_with_its_counters() {
    let app = TestApp::seeded().await;
    let (status, created) = app
        .call(
            "POST",
            ADMIN,
            Some("sales_manager"),
            Some(body(json!({"discountValue": 25, "promotionCodes": ["Winter25"]}))),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "draft");
    assert_eq!(created["promotionCodes"], json!(["WINTER25"]));
    assert_eq!(created["createdBy"], "user-sales_manager");
    let id = id_of(&created);

    // 25% is above the default 20% policy: approval, and not by the creator.
    let (_, submitted) = app.call("POST", &format!("{ADMIN}/{id}/submit"), Some("sales_manager"), None).await;
    assert_eq!(
        (submitted["status"].as_str(), submitted["requiresApproval"].as_bool()),
        (Some("pending_approval"), Some(true))
    );
    let self_approval = app.token_as("admin", "user-sales_manager");
    let (status, refused) = app.call_with_token("POST", &format!("{ADMIN}/{id}/approve"), &self_approval, None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("self_approval")), "{refused}");
    let (status, rep) = app.call("POST", &format!("{ADMIN}/{id}/approve"), Some("sales_rep"), None).await;
    assert_eq!(status, 403, "{rep}");
    let (status, approved) = app.call("POST", &format!("{ADMIN}/{id}/approve"), Some("admin"), None).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!((approved["status"].as_str(), approved["approvedBy"].as_str()), (Some("active"), Some("user-admin")));
    assert_eq!(approved["active"], true);

    // Anyone may validate a code (case-insensitive); amounts are cents of gold monthly.
    let (status, valid) = app
        .call(
            "POST",
            "/api/promotions/validate",
            None,
            Some(json!({"code": "winter25", "tierId": "gold", "billingPeriod": "monthly"})),
        )
        .await;
    assert_eq!(status, 200, "{valid}");
    assert_eq!(valid["valid"], true, "{valid}");
    assert_eq!(
        (valid["originalPrice"].as_i64(), valid["discountAmount"].as_i64(), valid["finalPrice"].as_i64()),
        (Some(360_000), Some(90_000), Some(270_000))
    );
    assert_eq!(valid["promotion"]["promotionId"], id.as_str());

    let partner = app.create_partner("Redeemer").await;
    let pid = partner["partnerId"].as_str().unwrap();
    let (status, redeemed) = redeem_as_partner(&app, pid, json!({"code": "WINTER25", "tierId": "gold"})).await;
    assert_eq!(status, 201, "{redeemed}");
    assert_eq!(redeemed["redemption"]["userId"], pid);
    assert_eq!(redeemed["redemption"]["finalPrice"], 270_000);
    assert_eq!(redeemed["redemption"]["code"], "WINTER25");
    assert_eq!(redeemed["redemption"]["tierBefore"], "free");

    let (_, read) = app.call("GET", &format!("{ADMIN}/{id}"), Some("sales_rep"), None).await;
    assert_eq!(read["redemptionCount"], 1);
    assert_eq!(read["uniqueUsers"], 1);
    assert_eq!(read["totalRevenue"], 270_000);
    assert_eq!(read["totalDiscount"], 90_000);
    assert_eq!(read["averageDealSize"], 270_000);
    assert_eq!(read["validationCount"], 1);
    assert_eq!(read["conversionRate"], 1.0);

    let (_, redemptions) = app.call("GET", &format!("{ADMIN}/{id}/redemptions"), Some("sales_manager"), None).await;
    assert_eq!(redemptions["items"].as_array().unwrap().len(), 1);
    let (_, listed) = app.call("GET", &format!("{ADMIN}?status=active"), Some("sales_rep"), None).await;
    assert!(listed["items"].as_array().unwrap().iter().any(|p| p["promotionId"] == id.as_str()));
    // create, submit, approve: three audit entries.
    assert_eq!(app.partition(&format!("AUDIT#promotion#{id}")).await.len(), 3);

    // The same partner again: the per-user limit (1) names itself.
    let (status, again) = redeem_as_partner(&app, pid, json!({"code": "WINTER25", "tierId": "gold"})).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("per_user_limit_reached")), "{again}");
    let (_, v) = app
        .call(
            "POST",
            "/api/promotions/validate",
            None,
            Some(json!({"code": "WINTER25", "tierId": "gold", "partnerId": pid})),
        )
        .await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["reasons"][0]["code"], "per_user_limit_reached", "{v}");
}

fn with_subject<'a>(emails: &'a [Value], needle: &str) -> Vec<&'a Value> {
    emails.iter().filter(|e| e["subject"].as_str().is_some_and(|s| s.contains(needle))).collect()
}

#[tokio::test]
async fn approval_requests_and_outcomes_are_emailed() {
    let app = TestApp::seeded().await;
    let name = format!("Mail check {}", ulid::Ulid::new());
    let creator = "user-sales_manager@staff.tierdesk.local";
    for outcome in ["approve", "reject"] {
        let title = format!("{name} {outcome}");
        let (_, p) = app
            .call("POST", ADMIN, Some("sales_manager"), Some(body(json!({"name": title, "discountValue": 35}))))
            .await;
        let id = id_of(&p);
        app.call("POST", &format!("{ADMIN}/{id}/submit"), Some("sales_manager"), None).await;
        let requests = tierdesk_tests::ses::emails_to(promotions::DEFAULT_APPROVALS_EMAIL).await;
        let requests = with_subject(&requests, &title);
        assert_eq!(requests.len(), 1, "one approval request for {title}");
        assert!(requests[0]["subject"].as_str().unwrap().starts_with("Approval needed"));
        assert!(requests[0]["body"]["text"].as_str().unwrap().contains("35% off"));
        let reason = (outcome == "reject").then(|| json!({"reason": "too generous for Q4"}));
        let (status, b) = app.call("POST", &format!("{ADMIN}/{id}/{outcome}"), Some("admin"), reason).await;
        assert_eq!(status, 200, "{b}");
        let mail = tierdesk_tests::ses::emails_to(creator).await;
        let mail = with_subject(&mail, &title);
        assert_eq!(mail.len(), 1, "{outcome}: one outcome email to the creator");
        let subject = mail[0]["subject"].as_str().unwrap();
        match outcome {
            "approve" => assert!(subject.starts_with("Approved"), "{subject}"),
            _ => {
                assert!(subject.starts_with("Not approved"), "{subject}");
                assert!(mail[0]["body"]["text"].as_str().unwrap().contains("too generous for Q4"));
                assert_eq!(b["status"], "draft");
                assert_eq!(b["rejectionReason"], "too generous for Q4");
            }
        }
    }
    // Below the policy nothing needs approval and nobody is emailed.
    let title = format!("{name} small");
    let (_, p) =
        app.call("POST", ADMIN, Some("sales_manager"), Some(body(json!({"name": title, "discountValue": 20})))).await;
    let (_, submitted) = app.call("POST", &format!("{ADMIN}/{}/submit", id_of(&p)), Some("sales_manager"), None).await;
    assert_eq!(submitted["status"], "active");
    let requests = tierdesk_tests::ses::emails_to(promotions::DEFAULT_APPROVALS_EMAIL).await;
    assert!(with_subject(&requests, &title).is_empty());
}

#[tokio::test]
async fn every_illegal_transition_is_a_409_and_changes_nothing() {
    let app = TestApp::seeded().await;
    let actions = ["submit", "approve", "reject", "pause", "resume", "cancel"];
    // status → the actions that are legal from it.
    let legal: &[(&str, &[&str])] = &[
        ("draft", &["submit", "cancel"]),
        ("pending_approval", &["approve", "reject", "cancel"]),
        ("active", &["pause", "cancel"]),
        ("paused", &["resume", "cancel"]),
        ("cancelled", &[]),
    ];
    for (status, allowed) in legal {
        for action in actions {
            // A fresh promotion in `status` for every attempt.
            let (_, p) = app.call("POST", ADMIN, Some("sales_manager"), Some(body(json!({"discountValue": 30})))).await;
            let id = id_of(&p);
            let path = |a: &str| format!("{ADMIN}/{id}/{a}");
            let steps: &[&str] = match *status {
                "draft" => &[],
                "pending_approval" => &["submit"],
                "active" => &["submit", "approve"],
                "paused" => &["submit", "approve", "pause"],
                _ => &["cancel"],
            };
            for step in steps {
                let (s, b) = app.call("POST", &path(step), Some("admin"), None).await;
                assert_eq!(s, 200, "{step}: {b}");
            }
            let before = app.snapshot().await;
            let (s, b) = app.call("POST", &path(action), Some("admin"), None).await;
            if allowed.contains(&action) {
                assert_eq!(s, 200, "{status} {action}: {b}");
            } else {
                assert_eq!(s, 409, "{status} {action}: {b}");
                assert_eq!(b["error"]["code"], "illegal_transition");
                assert_eq!(app.snapshot().await, before, "{status} {action} wrote something");
            }
        }
    }
}

#[tokio::test]
async fn two_hundred_concurrent_redemptions_of_a_hundred_cap() {
    let app = TestApp::seeded().await;
    let promo = active(&app, json!({"maxRedemptions": 100})).await;
    let id = id_of(&promo);
    let names: Vec<String> = (0..200).map(|i| format!("Cap {i}")).collect();
    // Setup at a modest concurrency: DynamoDB Local times out lock waits on the
    // tier statistics item that every signup updates.
    use futures::StreamExt;
    let partners: Vec<Value> =
        futures::stream::iter(names.iter().map(|n| app.create_partner(n))).buffered(8).collect().await;
    let calls = partners.iter().map(|p| {
        let pid = p["partnerId"].as_str().unwrap().to_string();
        let id = id.clone();
        let app = &app;
        async move {
            let ask = json!({"promotionId": id, "tierId": "gold"});
            tierdesk_tests::retrying_conflicts(|| redeem_as_partner(app, &pid, ask.clone())).await
        }
    });
    let results = futures::future::join_all(calls).await;
    let won = results.iter().filter(|(s, _)| *s == 201).count();
    let refused: Vec<&Value> = results.iter().filter(|(s, _)| *s == 409).map(|(_, b)| b).collect();
    assert_eq!(won, 100, "{:?}", results.iter().filter(|(s, _)| *s != 201 && *s != 409).collect::<Vec<_>>());
    assert_eq!(refused.len(), 100);
    assert!(refused.iter().all(|b| b["error"]["code"] == "max_redemptions_reached"), "{refused:?}");
    let (_, read) = app.call("GET", &format!("{ADMIN}/{id}"), Some("admin"), None).await;
    assert_eq!((read["redemptionCount"].as_u64(), read["uniqueUsers"].as_u64()), (Some(100), Some(100)));
    assert_eq!(read["totalDiscount"], 100 * 54_000);
    let items = app.partition(&format!("PROMO#{id}")).await;
    let redemptions = items.iter().filter(|i| i["SK"].as_s().unwrap().starts_with("REDEMPTION#")).count();
    assert_eq!(redemptions, 100);
}

#[tokio::test]
async fn one_partner_twenty_times_at_once_redeems_once() {
    let app = TestApp::seeded().await;
    let promo = active(&app, json!({"redemptionsPerUser": 1, "promotionCodes": ["ONCE-ONLY"]})).await;
    let partner = app.create_partner("Eager").await;
    let pid = partner["partnerId"].as_str().unwrap();
    let calls = (0..20).map(|_| redeem_as_partner(&app, pid, json!({"code": "once-only", "tierId": "platinum"})));
    let results = futures::future::join_all(calls).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
    assert!(results
        .iter()
        .filter(|(s, _)| *s != 201)
        .all(|(s, b)| *s == 409 && b["error"]["code"] == "per_user_limit_reached"));
    let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id_of(&promo)), Some("admin"), None).await;
    assert_eq!((read["redemptionCount"].as_u64(), read["uniqueUsers"].as_u64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn a_second_redemption_within_the_per_user_limit_counts_one_user() {
    let app = TestApp::seeded().await;
    let promo = active(&app, json!({"redemptionsPerUser": 2})).await;
    let id = id_of(&promo);
    let partner = app.create_partner("Twice").await;
    let pid = partner["partnerId"].as_str().unwrap();
    for expected in [201, 201, 409] {
        let (status, b) = redeem_as_partner(&app, pid, json!({"promotionId": id, "tierId": "gold"})).await;
        assert_eq!(status, expected, "{b}");
    }
    let (_, read) = app.call("GET", &format!("{ADMIN}/{id}"), Some("admin"), None).await;
    assert_eq!((read["redemptionCount"].as_u64(), read["uniqueUsers"].as_u64()), (Some(2), Some(1)));
}

#[tokio::test]
async fn sequential_repeats_of_an_idempotency_key_replay_the_first_redemption() {
    let app = TestApp::seeded().await;
    // A per-user limit of 5: only the key, not the limit, keeps repeats at one.
    let promo = active(&app, json!({"redemptionsPerUser": 5})).await;
    let id = id_of(&promo);
    let partner = app.create_partner("Retry").await;
    let pid = partner["partnerId"].as_str().unwrap();
    let token = app.partner_token(pid);
    let ask = json!({"promotionId": id, "tierId": "gold"});
    let key = [("idempotency-key", "checkout-42")];
    let redeem = |body: Value| app.call_with_headers("POST", "/api/promotions/redeem", Some(&token), &key, Some(body));
    let (s1, h1, first) = redeem(ask.clone()).await;
    assert_eq!(s1, 201, "{first}");
    assert!(!h1.contains_key("idempotent-replayed"));
    assert!(first["redemption"]["redemptionId"].is_string(), "{first}");
    // Each repeat is sent after the one before has finished: every one is the first
    // answer replayed, never a 409 (a key left "in progress" would be one).
    for n in 0..3 {
        let (s, h, b) = redeem(ask.clone()).await;
        assert_eq!(s, 201, "repeat {n}: {b}");
        assert_eq!(h.get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]), "repeat {n}");
        assert_eq!(b, first, "repeat {n} answers the first body");
    }
    let (s, _, b) = redeem(json!({"promotionId": id, "tierId": "platinum"})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (422, Some("idempotency_key_reused")), "{b}");
    let (_, read) = app.call("GET", &format!("{ADMIN}/{id}"), Some("admin"), None).await;
    assert_eq!(read["redemptionCount"], 1, "{read}");
}

#[tokio::test]
async fn concurrent_repeats_of_an_idempotency_key_redeem_once() {
    let app = TestApp::seeded().await;
    let promo = active(&app, json!({"redemptionsPerUser": 5})).await;
    let id = id_of(&promo);
    let partner = app.create_partner("Retry at once").await;
    let pid = partner["partnerId"].as_str().unwrap();
    let token = app.partner_token(pid);
    let ask = json!({"promotionId": id, "tierId": "gold"});
    let key = [("idempotency-key", "checkout-43")];
    let redeem = || app.call_with_headers("POST", "/api/promotions/redeem", Some(&token), &key, Some(ask.clone()));
    // Sent together: one runs; the others either wait out as 409 request_in_progress
    // or, arriving after it finished, replay its answer.
    let answers = futures::future::join_all((0..6).map(|_| redeem())).await;
    let mut ran = Vec::new();
    let mut replayed = Vec::new();
    for (s, h, b) in answers {
        match s {
            201 if h.contains_key("idempotent-replayed") => replayed.push(b),
            201 => ran.push(b),
            409 => assert_eq!(b["error"]["code"], "request_in_progress", "{b}"),
            _ => panic!("{s} {b}"),
        }
    }
    assert_eq!(ran.len(), 1, "exactly one of the concurrent calls ran: {ran:?}");
    let first = &ran[0];
    for b in &replayed {
        assert_eq!(b, first);
    }
    // Once it has finished, a repeat is the replay.
    let (s, h, b) = redeem().await;
    assert_eq!((s, h.contains_key("idempotent-replayed")), (201, true), "{b}");
    assert_eq!(&b, first);
    let (_, read) = app.call("GET", &format!("{ADMIN}/{id}"), Some("admin"), None).await;
    assert_eq!(read["redemptionCount"], 1, "{read}");
}

#[tokio::test]
async fn validate_lists_every_failing_rule_and_redeem_refuses_them() {
    let app = TestApp::seeded().await;
    let promo = active(
        &app,
        json!({"targetTiers": ["platinum"], "appliesTo": "yearly", "eligibilityRules": {"userType": "existing", "segments": ["luxury"]}}),
    )
    .await;
    let id = id_of(&promo);
    let partner = app.create_partner("Wrong fit").await;
    let pid = partner["partnerId"].as_str().unwrap();
    let (status, v) = app
        .call(
            "POST",
            "/api/promotions/validate",
            None,
            Some(json!({"promotionId": id, "tierId": "gold", "partnerId": pid})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let codes: Vec<&str> = v["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["tier_not_eligible", "billing_period_not_eligible", "user_type_not_eligible", "segment_not_eligible"]
    );
    assert!(v.get("finalPrice").is_none());
    let (status, r) = redeem_as_partner(&app, pid, json!({"promotionId": id, "tierId": "gold"})).await;
    assert_eq!((status, r["error"]["code"].as_str()), (422, Some("promotion_not_applicable")), "{r}");
    assert_eq!(r["error"]["details"]["reasons"].as_array().unwrap().len(), 4);

    // Unknown code; paused promotion.
    let (_, v) =
        app.call("POST", "/api/promotions/validate", None, Some(json!({"code": "NOPE-NOPE", "tierId": "gold"}))).await;
    assert_eq!((v["valid"].as_bool(), v["reasons"][0]["code"].as_str()), (Some(false), Some("not_found")));
    let other = active(&app, json!({})).await;
    let oid = id_of(&other);
    app.call("POST", &format!("{ADMIN}/{oid}/pause"), Some("admin"), None).await;
    let (_, v) =
        app.call("POST", "/api/promotions/validate", None, Some(json!({"promotionId": oid, "tierId": "gold"}))).await;
    assert_eq!(v["reasons"][0]["code"], "not_active", "{v}");
    let (status, r) = redeem_as_partner(&app, pid, json!({"promotionId": oid, "tierId": "gold"})).await;
    assert_eq!((status, r["error"]["details"]["reasons"][0]["code"].as_str()), (422, Some("not_active")), "{r}");
}

#[tokio::test]
async fn stacking_combines_stackable_promotions_and_refuses_the_rest() {
    let app = TestApp::seeded().await;
    active(&app, json!({"stackable": true, "promotionCodes": ["STACK-A"]})).await;
    active(&app, json!({"stackable": true, "discountType": "fixed_amount", "discountValue": 10_000, "promotionCodes": ["STACK-B"]}))
        .await;
    active(&app, json!({"stackable": false, "promotionCodes": ["SOLO-1"]})).await;
    let (_, v) = app
        .call(
            "POST",
            "/api/promotions/validate",
            None,
            Some(json!({"codes": ["stack-a", "stack-b"], "tierId": "gold"})),
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");
    // 360,000 → 15% → 306,000 → −10,000 → 296,000
    assert_eq!((v["discountAmount"].as_i64(), v["finalPrice"].as_i64()), (Some(64_000), Some(296_000)));
    let partner = app.create_partner("Stacker").await;
    let pid = partner["partnerId"].as_str().unwrap();
    let (status, r) = redeem_as_partner(&app, pid, json!({"codes": ["STACK-A", "STACK-B"], "tierId": "gold"})).await;
    assert_eq!(status, 201, "{r}");
    let shares: Vec<i64> =
        r["redemptions"].as_array().unwrap().iter().map(|x| x["discountAmount"].as_i64().unwrap()).collect();
    assert_eq!(shares, vec![54_000, 10_000]);
    let (_, v) = app
        .call("POST", "/api/promotions/validate", None, Some(json!({"codes": ["STACK-A", "SOLO-1"], "tierId": "gold"})))
        .await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["reasons"][0]["code"], "not_stackable", "{v}");
}

#[tokio::test]
async fn codes_are_unique_across_promotions_and_generated_without_look_alikes() {
    let app = TestApp::seeded().await;
    let (_, a) =
        app.call("POST", ADMIN, Some("sales_manager"), Some(body(json!({"promotionCodes": ["SHARED1"]})))).await;
    let before = app.snapshot().await;
    let (status, b) =
        app.call("POST", ADMIN, Some("sales_manager"), Some(body(json!({"promotionCodes": ["shared1"]})))).await;
    assert_eq!((status, b["error"]["code"].as_str()), (409, Some("code_taken")), "{b}");
    assert_eq!(app.snapshot().await, before);
    let id = id_of(&a);
    let (status, generated) = app
        .call(
            "POST",
            &format!("{ADMIN}/{id}/codes"),
            Some("sales_manager"),
            Some(json!({"count": 25, "prefix": "vip-"})),
        )
        .await;
    assert_eq!(status, 201, "{generated}");
    let codes: Vec<&str> = generated["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(codes.len(), 25);
    for code in &codes {
        assert!(code.starts_with("VIP-") && code.len() == 12, "{code}");
        assert!(!code[4..].contains(['0', 'O', '1', 'I', 'L']), "{code}");
        assert_eq!(app.partition(&format!("CODE#{code}")).await.len(), 1);
    }
    assert_eq!(generated["promotion"]["promotionCodes"].as_array().unwrap().len(), 26);
    // Deleting the draft frees its codes for another promotion.
    let (status, _) = app.call("DELETE", &format!("{ADMIN}/{id}"), Some("sales_manager"), None).await;
    assert_eq!(status, 204);
    assert!(app.partition("CODE#SHARED1").await.is_empty());
    let (status, _) =
        app.call("POST", ADMIN, Some("sales_manager"), Some(body(json!({"promotionCodes": ["SHARED1"]})))).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_code_whose_copy_went_stale_redeems_at_the_current_terms() {
    let app = TestApp::seeded().await;
    let (_, draft) =
        app.call("POST", ADMIN, Some("sales_manager"), Some(body(json!({"promotionCodes": ["EDITED"]})))).await;
    let id = id_of(&draft);
    let (status, edited) = app
        .call("PUT", &format!("{ADMIN}/{id}"), Some("sales_manager"), Some(json!({"version": 1, "discountValue": 10})))
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["termsVersion"], 2);
    app.call("POST", &format!("{ADMIN}/{id}/submit"), Some("sales_manager"), None).await;
    // A live promotion keeps its terms.
    let (status, refused) = app
        .call("PUT", &format!("{ADMIN}/{id}"), Some("sales_manager"), Some(json!({"version": 3, "discountValue": 50})))
        .await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("not_editable")), "{refused}");
    let partner = app.create_partner("Stale").await;
    let (status, r) =
        redeem_as_partner(&app, partner["partnerId"].as_str().unwrap(), json!({"code": "EDITED", "tierId": "gold"}))
            .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["discountAmount"], 36_000, "10% of 3,600.00, not the 15% the copy held");
    let lookup = app.partition("CODE#EDITED").await;
    assert_eq!(lookup[0]["termsVersion"].as_n().unwrap(), "2", "the redemption repaired the copy");

    // A copy whose old terms would refuse (platinum only) does not refuse once the
    // draft was opened to every tier.
    let (_, draft) = app
        .call(
            "POST",
            ADMIN,
            Some("sales_manager"),
            Some(body(json!({"targetTiers": ["platinum"], "promotionCodes": ["WIDENED"]}))),
        )
        .await;
    let id = id_of(&draft);
    let (status, _) = app
        .call("PUT", &format!("{ADMIN}/{id}"), Some("sales_manager"), Some(json!({"version": 1, "targetTiers": []})))
        .await;
    assert_eq!(status, 200);
    app.call("POST", &format!("{ADMIN}/{id}/submit"), Some("sales_manager"), None).await;
    let (status, r) =
        redeem_as_partner(&app, partner["partnerId"].as_str().unwrap(), json!({"code": "WIDENED", "tierId": "gold"}))
            .await;
    assert_eq!(status, 201, "{r}");
}

#[tokio::test]
async fn a_code_only_promotion_is_not_found_by_its_id_except_by_staff() {
    let app = TestApp::seeded().await;
    let promo = active(&app, json!({"promotionCodes": ["SECRET-1"]})).await;
    let id = id_of(&promo);
    let (_, v) =
        app.call("POST", "/api/promotions/validate", None, Some(json!({"promotionId": id, "tierId": "gold"}))).await;
    assert_eq!((v["valid"].as_bool(), v["reasons"][0]["code"].as_str()), (Some(false), Some("not_found")), "{v}");
    let partner = app.create_partner("Guesser").await;
    let pid = partner["partnerId"].as_str().unwrap();
    let (status, r) = redeem_as_partner(&app, pid, json!({"promotionId": id, "tierId": "gold"})).await;
    assert_eq!((status, r["error"]["details"]["reasons"][0]["code"].as_str()), (422, Some("not_found")), "{r}");
    let (status, r) = app
        .call(
            "POST",
            "/api/promotions/redeem",
            Some("admin"),
            Some(json!({"promotionId": id, "tierId": "gold", "partnerId": pid})),
        )
        .await;
    assert_eq!(status, 201, "staff may apply it by id: {r}");
    // Lists carry the same rates as a single read: 1 redemption over 1 validation… of none here.
    let (_, list) = app.call("GET", &format!("{ADMIN}?status=active"), Some("sales_rep"), None).await;
    let listed = list["items"].as_array().unwrap().iter().find(|p| p["promotionId"] == id.as_str()).unwrap().clone();
    let (_, one) = app.call("GET", &format!("{ADMIN}/{id}"), Some("sales_rep"), None).await;
    assert_eq!(listed["conversionRate"], one["conversionRate"]);
    assert_eq!(listed["validationCount"], one["validationCount"]);
    assert!(listed.get("createdByEmail").is_none() && one.get("createdByEmail").is_none());
}

#[tokio::test]
async fn who_may_call_what() {
    let app = TestApp::seeded().await;
    let promo = active(&app, json!({"promotionCodes": ["ROLES"]})).await;
    let id = id_of(&promo);
    let partner = app.create_partner("Roles").await;
    let pid = partner["partnerId"].as_str().unwrap().to_string();
    let roles = [None, Some("sales_rep"), Some("sales_manager"), Some("admin"), Some("partner")];
    // (method, path, body, roles allowed)
    let reads: Vec<(&str, String, Option<Value>, &[&str])> = vec![
        ("GET", ADMIN.into(), None, &["sales_rep", "sales_manager", "admin"]),
        ("GET", format!("{ADMIN}/{id}"), None, &["sales_rep", "sales_manager", "admin"]),
        ("GET", format!("{ADMIN}/{id}/redemptions"), None, &["sales_rep", "sales_manager", "admin"]),
    ];
    for (method, path, b, allowed) in &reads {
        for role in roles {
            let ok = role.is_some_and(|r| allowed.contains(&r));
            app.assert_access(method, path, role, b.clone(), ok).await;
        }
    }
    // Writes: a fresh draft per allowed call so each succeeds on its own merits.
    for role in roles {
        let ok = matches!(role, Some("sales_manager" | "admin"));
        app.assert_access("POST", ADMIN, role, Some(body(json!({}))), ok).await;
        let (_, d) = app.call("POST", ADMIN, Some("admin"), Some(body(json!({"discountValue": 40})))).await;
        let did = id_of(&d);
        app.assert_access("PUT", &format!("{ADMIN}/{did}"), role, Some(json!({"version": 1, "name": "x"})), ok).await;
        app.assert_access("POST", &format!("{ADMIN}/{did}/codes"), role, Some(json!({"count": 1})), ok).await;
        app.assert_access("POST", &format!("{ADMIN}/{did}/submit"), role, None, ok).await;
        // Approval needs approve_custom_pricing and another person than the creator (admin here).
        let approver_ok = matches!(role, Some("sales_manager"));
        if matches!(role, Some("admin")) {
            // The creator: refused with 403 self_approval (checked in the lifecycle test).
        } else {
            let (_, fresh) = app.call("POST", ADMIN, Some("admin"), Some(body(json!({"discountValue": 40})))).await;
            let fid = id_of(&fresh);
            app.call("POST", &format!("{ADMIN}/{fid}/submit"), Some("admin"), None).await;
            app.assert_access("POST", &format!("{ADMIN}/{fid}/approve"), role, None, approver_ok).await;
            let (_, fresh) = app.call("POST", ADMIN, Some("admin"), Some(body(json!({"discountValue": 40})))).await;
            let fid = id_of(&fresh);
            app.call("POST", &format!("{ADMIN}/{fid}/submit"), Some("admin"), None).await;
            app.assert_access("POST", &format!("{ADMIN}/{fid}/reject"), role, None, approver_ok).await;
        }
        let (_, live) = app.call("POST", ADMIN, Some("admin"), Some(body(json!({})))).await;
        let lid = id_of(&live);
        app.call("POST", &format!("{ADMIN}/{lid}/submit"), Some("admin"), None).await;
        app.assert_access("POST", &format!("{ADMIN}/{lid}/pause"), role, None, ok).await;
        if ok {
            app.assert_access("POST", &format!("{ADMIN}/{lid}/resume"), role, None, ok).await;
        } else {
            app.call("POST", &format!("{ADMIN}/{lid}/pause"), Some("admin"), None).await;
            app.assert_access("POST", &format!("{ADMIN}/{lid}/resume"), role, None, ok).await;
        }
        app.assert_access("POST", &format!("{ADMIN}/{lid}/cancel"), role, None, ok).await;
        let (_, d) = app.call("POST", ADMIN, Some("admin"), Some(body(json!({})))).await;
        app.assert_access("DELETE", &format!("{ADMIN}/{}", id_of(&d)), role, None, ok).await;
    }
    // Validate is public for everyone.
    for role in roles {
        let (status, v) =
            app.call("POST", "/api/promotions/validate", role, Some(json!({"code": "ROLES", "tierId": "gold"}))).await;
        assert_eq!((status, v["valid"].as_bool()), (200, Some(true)), "{role:?} {v}");
    }
    // Redeem: managers and admins for a partner; a partner for itself only; reps never.
    let ask = json!({"promotionId": id, "tierId": "gold", "partnerId": pid});
    let (status, _) = app.call("POST", "/api/promotions/redeem", None, Some(ask.clone())).await;
    assert_eq!(status, 401);
    let (status, b) = app.call("POST", "/api/promotions/redeem", Some("sales_rep"), Some(ask.clone())).await;
    assert_eq!((status, b["error"]["code"].as_str()), (403, Some("forbidden")));
    let other = app.create_partner("Someone else").await;
    let before = app.snapshot().await;
    let (status, b) = app
        .call_with_token(
            "POST",
            "/api/promotions/redeem",
            &app.partner_token(other["partnerId"].as_str().unwrap()),
            Some(ask.clone()),
        )
        .await;
    assert_eq!(status, 404, "a partner naming another partner: {b}");
    assert_eq!(app.snapshot().await, before);
    let (status, b) = app.call("POST", "/api/promotions/redeem", Some("sales_manager"), Some(ask.clone())).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["redemption"]["salesRep"], "user-sales_manager");
}

#[tokio::test]
async fn bad_bodies_name_the_field_and_write_nothing() {
    let app = TestApp::seeded().await;
    let promo = active(&app, json!({})).await;
    let id = id_of(&promo);
    let partner = app.create_partner("Bad input").await;
    let pid = partner["partnerId"].as_str().unwrap();
    let cases: Vec<(&str, String, Value, &str)> = vec![
        ("POST", ADMIN.into(), json!({}), "name"),
        ("POST", ADMIN.into(), body(json!({"discountType": "bogo"})), "discountType"),
        ("POST", ADMIN.into(), body(json!({"discountValue": -5})), "discountValue"),
        ("POST", ADMIN.into(), body(json!({"discountType": "fixed_amount", "discountValue": 9.99})), "discountValue"),
        ("POST", ADMIN.into(), body(json!({"appliesTo": "weekly"})), "appliesTo"),
        ("POST", ADMIN.into(), body(json!({"startDate": "2026-13-01"})), "startDate"),
        ("POST", ADMIN.into(), body(json!({"endDate": "2025-12-31"})), "endDate"),
        ("POST", ADMIN.into(), body(json!({"status": "active"})), "status"),
        ("POST", ADMIN.into(), body(json!({"redemptionCount": 3})), "redemptionCount"),
        ("POST", ADMIN.into(), body(json!({"createdBy": "me"})), "createdBy"),
        ("POST", ADMIN.into(), body(json!({"maxRedemptions": 0})), "maxRedemptions"),
        ("POST", ADMIN.into(), body(json!({"promotionCodes": ["no spaces"]})), "promotionCodes"),
        ("POST", ADMIN.into(), body(json!({"eligibilityRules": {"userType": "gold"}})), "eligibilityRules.userType"),
        ("POST", ADMIN.into(), body(json!({"eligibilityRules": {"minAge": 3}})), "eligibilityRules.minAge"),
        ("PUT", format!("{ADMIN}/{id}"), json!({"name": "no version"}), "version"),
        ("POST", format!("{ADMIN}/{id}/codes"), json!({"count": 0}), "count"),
        ("POST", format!("{ADMIN}/{id}/codes"), json!({"count": 5, "codes": ["ABCDEF"]}), "count"),
        ("POST", format!("{ADMIN}/{id}/reject"), json!({"reason": 5}), "reason"),
        ("POST", "/api/promotions/validate".into(), json!({"code": "X", "tierId": "gold"}), "code"),
        ("POST", "/api/promotions/validate".into(), json!({"tierId": "gold"}), "code"),
        ("POST", "/api/promotions/validate".into(), json!({"code": "ABCD", "tierId": "GOLD!"}), "tierId"),
        (
            "POST",
            "/api/promotions/validate".into(),
            json!({"code": "ABCD", "tierId": "gold", "billingPeriod": "weekly"}),
            "billingPeriod",
        ),
        ("POST", "/api/promotions/validate".into(), json!({"code": "ABCD", "tierId": "nosuch"}), "tierId"),
        (
            "POST",
            "/api/promotions/redeem".into(),
            json!({"promotionId": "promo_x", "tierId": "gold", "partnerId": pid}),
            "promotionId",
        ),
        ("POST", "/api/promotions/redeem".into(), json!({"promotionId": id, "tierId": "gold"}), "partnerId"),
        (
            "POST",
            "/api/promotions/redeem".into(),
            json!({"promotionId": id, "tierId": "gold", "partnerId": "bob"}),
            "partnerId",
        ),
    ];
    let before = app.snapshot().await;
    for (method, path, b, field) in cases {
        let (status, resp) = app.call(method, &path, Some("admin"), Some(b.clone())).await;
        assert_eq!(status, 400, "{method} {path} {b}: {resp}");
        assert!(resp["error"]["details"]["fields"].get(field).is_some(), "{field} not named: {resp}");
    }
    let (status, _) = app.call_raw("POST", ADMIN, "admin", b"{not json").await;
    assert_eq!(status, 400);
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn the_daily_cron_completes_promotions_past_their_end_date_once() {
    use expiry_cron::{CronConfig, ExpiryCron, RunDate};
    let app = TestApp::seeded().await;
    let today = chrono::Utc::now().date_naive();
    let end = today.format("%Y-%m-%d").to_string();
    let expiring = active(&app, json!({"endDate": end})).await;
    let paused = active(&app, json!({"endDate": end})).await;
    app.call("POST", &format!("{ADMIN}/{}/pause", id_of(&paused)), Some("admin"), None).await;
    let kept = active(&app, json!({"endDate": end, "autoExpire": false})).await;
    let later = active(&app, json!({})).await;
    let mailer = tierdesk::mail::Mailer::connect(
        &tierdesk::mail::MailConfig::local(tierdesk_tests::ses::endpoint()),
        app.store.clone(),
    )
    .await;
    let cron = ExpiryCron::new(app.function_app(), mailer, CronConfig::default());
    // On the end date itself nothing ends; the day after, both live ones complete.
    let first = cron.run(&RunDate::for_date(today)).await.unwrap();
    assert_eq!(first.steps.get("promotions_completed"), Some(&0));
    let tomorrow = today.succ_opt().unwrap();
    let second = cron.run(&RunDate::for_date(tomorrow)).await.unwrap();
    assert_eq!(second.steps.get("promotions_completed"), Some(&2), "{second:?}");
    let again = cron.run(&RunDate::for_date(tomorrow)).await.unwrap();
    assert_eq!(again.steps.get("promotions_completed"), Some(&0));
    for (p, status) in [(&expiring, "completed"), (&paused, "completed"), (&kept, "active"), (&later, "active")] {
        let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id_of(p)), Some("admin"), None).await;
        assert_eq!(read["status"], status, "{read}");
    }
    let audit = app.partition(&format!("AUDIT#promotion#{}", id_of(&expiring))).await;
    assert!(audit.iter().any(|a| a["actor"].as_s().ok().map(String::as_str) == Some("system:expiry-cron")));
    // A completed promotion is refused like any ended one.
    let (_, v) = app
        .call(
            "POST",
            "/api/promotions/validate",
            None,
            Some(json!({"promotionId": id_of(&expiring), "tierId": "gold"})),
        )
        .await;
    assert_eq!(v["reasons"][0]["code"], "not_active", "{v}");
}

#[tokio::test]
async fn cached_prospect_validations_still_count_and_a_change_clears_them() {
    let app = TestApp::seeded().await;
    let promo = active(&app, json!({"promotionCodes": ["CACHED1"]})).await;
    let id = id_of(&promo);
    let ask = json!({"code": "CACHED1", "tierId": "gold"});
    for _ in 0..3 {
        let (status, v) = app.call("POST", "/api/promotions/validate", None, Some(ask.clone())).await;
        assert_eq!((status, v["valid"].as_bool()), (200, Some(true)), "{v}");
    }
    let (_, read) = app.call("GET", &format!("{ADMIN}/{id}"), Some("admin"), None).await;
    assert_eq!(read["validationCount"], 3, "cache hits are counted too: {read}");
    // Fifty at once on a cold key: one computes, the rest wait for its answer; every
    // one is answered and counted.
    let (status, _) =
        app.call("POST", &format!("{ADMIN}/{id}/codes"), Some("admin"), Some(json!({"codes": ["CACHED2"]}))).await;
    assert_eq!(status, 201);
    let burst = futures::future::join_all((0..50).map(|_| {
        app.call("POST", "/api/promotions/validate", None, Some(json!({"code": "CACHED2", "tierId": "gold"})))
    }))
    .await;
    assert!(burst.iter().all(|(s, v)| *s == 200 && v["valid"] == true), "{burst:?}");
    let (_, read) = app.call("GET", &format!("{ADMIN}/{id}"), Some("admin"), None).await;
    assert_eq!(read["validationCount"], 53, "{read}");
    let (status, _) = app.call("POST", &format!("{ADMIN}/{id}/pause"), Some("admin"), None).await;
    assert_eq!(status, 200);
    let (_, v) = app.call("POST", "/api/promotions/validate", None, Some(ask)).await;
    assert_eq!(v["reasons"][0]["code"], "not_active", "the pause cleared the cached answer: {v}");
}

#[tokio::test]
async fn cleared_fields_leave_the_stored_promotion() {
    let app = TestApp::seeded().await;
    let (_, p) = app
        .call("POST", ADMIN, Some("sales_manager"), Some(body(json!({"discountValue": 30, "maxRedemptions": 5}))))
        .await;
    let id = id_of(&p);
    let (status, lifted) = app
        .call(
            "PUT",
            &format!("{ADMIN}/{id}"),
            Some("sales_manager"),
            Some(json!({"version": 1, "maxRedemptions": null})),
        )
        .await;
    assert_eq!(status, 200, "{lifted}");
    app.call("POST", &format!("{ADMIN}/{id}/submit"), Some("sales_manager"), None).await;
    let (status, _) =
        app.call("POST", &format!("{ADMIN}/{id}/reject"), Some("admin"), Some(json!({"reason": "not now"}))).await;
    assert_eq!(status, 200);
    let (_, rejected) = app.call("GET", &format!("{ADMIN}/{id}"), Some("admin"), None).await;
    assert_eq!(rejected["rejectionReason"], "not now");
    let (_, resubmitted) = app.call("POST", &format!("{ADMIN}/{id}/submit"), Some("sales_manager"), None).await;
    assert_eq!(resubmitted["status"], "pending_approval");
    let meta =
        app.partition(&format!("PROMO#{id}")).await.into_iter().find(|i| i["SK"].as_s().unwrap() == "META").unwrap();
    assert!(!meta.contains_key("maxRedemptions"), "the lifted cap is gone from the item");
    assert!(!meta.contains_key("rejectionReason") && !meta.contains_key("rejectedBy"), "the old rejection is gone");
}

/// A customer's redemptions of every promotion, newest first, from the customer's
/// index partition: staff (`view_customer_info`) see any partner's at
/// `/api/admin/partners/{id}/redemptions`, a partner its own at
/// `/api/promotions/redemptions`, and never another's.
#[tokio::test]
async fn a_customers_redemptions_are_listed_for_staff_and_for_the_partner_itself() {
    let app = TestApp::seeded().await;
    let first = id_of(&active(&app, json!({"name": "First"})).await);
    let second = id_of(&active(&app, json!({"name": "Second", "stackable": true})).await);
    let alpha = app.create_partner("Alpha Redeems").await["partnerId"].as_str().unwrap().to_string();
    let beta = app.create_partner("Beta Redeems").await["partnerId"].as_str().unwrap().to_string();
    let (status, b) = redeem_as_partner(&app, &alpha, json!({"promotionId": first, "tierId": "gold"})).await;
    assert_eq!(status, 201, "{b}");
    // Later, and through staff: both are the customer's.
    let (status, b) = app
        .call(
            "POST",
            "/api/promotions/redeem",
            Some("sales_manager"),
            Some(json!({"promotionId": second, "tierId": "platinum", "partnerId": alpha})),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let (status, b) = redeem_as_partner(&app, &beta, json!({"promotionId": first, "tierId": "gold"})).await;
    assert_eq!(status, 201, "{b}");

    let promos = |v: &Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|r| r["promotionId"].as_str().unwrap().to_string()).collect()
    };
    let staff_path = format!("/api/admin/partners/{alpha}/redemptions");
    let (status, staff) = app.call("GET", &staff_path, Some("sales_rep"), None).await;
    assert_eq!(status, 200, "{staff}");
    assert_eq!(promos(&staff), vec![second.clone(), first.clone()], "newest first");
    assert!(staff["items"].as_array().unwrap().iter().all(|r| r["userId"] == alpha.as_str()));
    assert_eq!(staff["items"][0]["tierAfter"], "platinum");
    // Paged by the same partition.
    let (_, page1) = app.call("GET", &format!("{staff_path}?limit=1"), Some("admin"), None).await;
    assert_eq!(promos(&page1), vec![second.clone()]);
    let cursor = page1["nextCursor"].as_str().unwrap();
    let (_, page2) = app.call("GET", &format!("{staff_path}?limit=1&cursor={cursor}"), Some("admin"), None).await;
    assert_eq!(promos(&page2), vec![first.clone()]);
    // A cursor of alpha's list does not open beta's.
    let (status, _) =
        app.call("GET", &format!("/api/admin/partners/{beta}/redemptions?cursor={cursor}"), Some("admin"), None).await;
    assert_eq!(status, 400);

    // The partner's own list: its own only, whatever it tries.
    let alpha_token = app.partner_token(&alpha);
    let (status, own) = app.call_with_token("GET", "/api/promotions/redemptions", &alpha_token, None).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["items"], staff["items"]);
    let (_, beta_own) =
        app.call_with_token("GET", "/api/promotions/redemptions", &app.partner_token(&beta), None).await;
    assert_eq!(promos(&beta_own), vec![first.clone()]);
    let (status, _) =
        app.call_with_token("GET", &format!("/api/admin/partners/{beta}/redemptions"), &alpha_token, None).await;
    assert_eq!(status, 404, "the admin surface does not exist for partners");

    // Role matrix of both routes.
    let roles = [None, Some("sales_rep"), Some("sales_manager"), Some("admin"), Some("partner")];
    for role in roles {
        let ok = matches!(role, Some("sales_rep" | "sales_manager" | "admin"));
        app.assert_access("GET", &staff_path, role, None, ok).await;
    }
    for role in [None, Some("sales_rep"), Some("sales_manager"), Some("admin")] {
        let (status, body) = app.call("GET", "/api/promotions/redemptions", role, None).await;
        match role {
            None => assert_eq!(status, 401),
            Some(r) => assert_eq!((status, body["error"]["code"].as_str()), (403, Some("not_a_partner")), "{r}"),
        }
    }
    // Bad input and unknown partners.
    for path in
        ["/api/admin/partners/prt_00000000000000000000000000/redemptions", "/api/admin/partners/nobody/redemptions"]
    {
        let (status, _) = app.call("GET", path, Some("admin"), None).await;
        assert_eq!(status, 404, "{path}");
    }
    for (query, field) in [("limit=0", "limit"), ("limit=x", "limit"), ("cursor=garbage", "cursor")] {
        let (status, body) = app.call("GET", &format!("{staff_path}?{query}"), Some("admin"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["details"]["fields"][field].is_string(), "{query}: {body}");
        let (status, body) =
            app.call_with_token("GET", &format!("/api/promotions/redemptions?{query}"), &alpha_token, None).await;
        assert_eq!(status, 400, "{query}: {body}");
    }
}
