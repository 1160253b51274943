//! A partner's data export and erasure (docs/privacy.md), end to end: a partner
//! who paid through the Stripe emulator, their notes and usage, the export for the
//! partner and for an admin, the erasure's refusals, what it anonymises, what it
//! keeps (analytics unchanged), the email free again, and a second call harmless.

use serde_json::{json, Value};
use tierdesk::domain::privacy::{self, ERASED_NAME, ERASED_TEXT};
use tierdesk::store::{PartnerStore, PrivacyStore};
use tierdesk_tests::stripe::StripeApp;
use tierdesk_tests::TestApp;

fn export_path(id: &str) -> String {
    format!("/api/admin/partners/{id}/export")
}

fn erase_path(id: &str) -> String {
    format!("/api/admin/partners/{id}/erase")
}

/// The analytics figures an erasure must not move: the summary (without its
/// clock-dependent fields) and the dashboard's active counts.
async fn totals(app: &TestApp) -> (Value, Value) {
    let (status, mut summary) = app.call("GET", "/api/admin/tiers/analytics", Some("admin"), None).await;
    assert_eq!(status, 200, "{summary}");
    if let Some(o) = summary.as_object_mut() {
        o.retain(|k, _| !k.ends_with("At") && k != "asOf" && k != "generated");
    }
    let (status, subs) = app.call("GET", "/api/admin/subscriptions?view=active", Some("admin"), None).await;
    assert_eq!(status, 200, "{subs}");
    (summary, subs["counts"].clone())
}

/// Every item of the test's own table as text (a test reading its private table).
async fn table_text(app: &TestApp) -> String {
    app.snapshot().await.join("\n")
}

#[tokio::test]
async fn export_then_erasure_end_to_end_through_stripe() {
    let s = StripeApp::start().await;
    let app = &s.app;
    let company = "Privacy Paid Co";
    let (id, token, email) = s.partner(company).await;
    s.subscribe(&token, "gold", "monthly").await;

    // Notes, usage and free text about the partner.
    let note_text = "Spoke with Jane Roe, mobile +1 555 0100";
    let (status, note) = app
        .call(
            "POST",
            &format!("/api/admin/partners/{id}/notes"),
            Some("sales_rep"),
            Some(json!({"note": note_text, "nextAction": "Send Jane the deck", "contactType": "call"})),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    let profile_note = "Prefers calls after 5pm (Jane)";
    let (status, body) = app
        .call(
            "PATCH",
            &format!("/api/admin/partners/{id}"),
            Some("admin"),
            Some(json!({"subscriptionNotes": profile_note})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call(
            "POST",
            "/api/usage/track",
            Some("service"),
            Some(json!({"partnerId": id, "metric": "leads", "count": 2, "idempotencyKey": "privacy-1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The partner's own export: everything about them, nothing staff-only.
    let (status, own) = s.as_partner(&token, "GET", "/api/privacy/export", None).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!((own["format"].as_str(), own["partnerId"].as_str()), (Some(privacy::EXPORT_FORMAT), Some(id.as_str())));
    assert_eq!(own["erased"], false);
    assert_eq!(
        (own["partner"]["companyName"].as_str(), own["partner"]["primaryEmail"].as_str()),
        (Some(company), Some(email.as_str()))
    );
    assert_eq!(own["partner"]["subscriptionNotes"], profile_note);
    for staff_only in ["assignedSalesRep", "churnRisk", "upsell", "createdBy", "updatedBy"] {
        assert!(own["partner"].get(staff_only).is_none(), "{staff_only} in the partner's own export: {own}");
    }
    let events: Vec<&str> = own["history"].as_array().unwrap().iter().filter_map(|t| t["event"].as_str()).collect();
    assert_eq!(events.first(), Some(&"signup"), "oldest first: {events:?}");
    assert!(events.contains(&"upgrade"), "{events:?}");
    let invoices = own["invoices"].as_array().unwrap();
    assert!(invoices.iter().any(|i| i["status"] == "paid" && i["amountPaid"] == 360_000), "{own}");
    assert!(invoices.iter().all(|i| i["salesRep"].is_null()), "{own}");
    let usage = own["usage"].as_array().unwrap();
    assert_eq!(usage.iter().filter_map(|u| u["counts"]["leads"].as_u64()).sum::<u64>(), 2, "{own}");
    let notes = own["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["note"], note_text);
    assert!(notes[0].get("rep").is_none() && notes[0].get("nextAction").is_none(), "{own}");

    // The admin's export of the same partner has the staff fields too.
    let (status, staff) = app.call("GET", &export_path(&id), Some("admin"), None).await;
    assert_eq!(status, 200, "{staff}");
    assert_eq!(staff["notes"][0]["rep"], "user-sales_rep");
    assert_eq!(staff["notes"][0]["nextAction"], "Send Jane the deck");
    assert!(staff["partner"]["churnRisk"].is_object(), "{staff}");
    assert_eq!(staff["history"].as_array().unwrap().len(), own["history"].as_array().unwrap().len());

    // A paid term in force blocks the erasure, and the refusal writes nothing.
    let before = app.snapshot().await;
    let (status, body) = app.call("POST", &erase_path(&id), Some("admin"), Some(json!({"confirmPartnerId": id}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("erasure_blocked")), "{body}");
    assert_eq!(body["error"]["details"]["reason"], "subscription_in_force");
    assert_eq!(app.snapshot().await, before);

    // Ended at once (the admin route; Stripe is told separately): now erasable.
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/admin/partners/{id}/cancel"),
            Some("admin"),
            Some(json!({"reason": "Jane Roe asked to close the account", "immediate": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    s.emulator.flush().await;
    let totals_before = totals(app).await;
    assert!(table_text(app).await.contains(note_text), "the note is stored before the erasure");

    let (status, report) =
        app.call("POST", &erase_path(&id), Some("admin"), Some(json!({"confirmPartnerId": id}))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["newlyErased"].as_bool(), report["erasedBy"].as_str()), (Some(true), Some("user-admin")));
    assert!(report["itemsAnonymised"].as_u64().unwrap() >= 3, "note, cancel reason, audit snapshots: {report}");
    let p = &report["partner"];
    assert_eq!(p["companyName"], ERASED_NAME);
    assert_eq!(p["primaryEmail"], privacy::erased_email(&id));
    assert!(p["subscriptionNotes"].is_null(), "{p}");
    assert_eq!(p["cancellationReason"], ERASED_TEXT);
    assert_eq!((p["totalPaid"].as_i64(), p["engagementTier"].as_str()), (Some(360_000), Some("free")), "kept: {p}");

    // Analytics did not move.
    assert_eq!(totals(app).await, totals_before);

    // Nothing personal is left anywhere in the table: record, copies, notes,
    // transitions, invoices, audit trail.
    let text = table_text(app).await;
    for personal in [company, email.as_str(), note_text, profile_note, "Send Jane the deck", "Jane Roe asked"] {
        assert!(!text.contains(personal), "{personal:?} is still stored");
    }
    // The financial records stay: the paid invoice and every transition.
    let (status, history) = app.call("GET", &format!("/api/admin/partners/{id}/history"), Some("admin"), None).await;
    assert_eq!(status, 200, "{history}");
    let events: Vec<&str> = history["items"].as_array().unwrap().iter().filter_map(|t| t["event"].as_str()).collect();
    assert_eq!(
        events.len(),
        staff["history"].as_array().unwrap().len() + 1,
        "the cancel joined, none left: {events:?}"
    );
    assert_eq!(history["items"][0]["trigger"]["reason"], ERASED_TEXT);
    let audit = app.partition(&format!("AUDIT#partner#{id}")).await;
    assert!(audit.iter().any(|a| a["action"].as_s().ok().map(String::as_str) == Some("partner.erase")));

    // The email is free again, and the old name no longer finds anyone.
    let (status, reused) = app
        .call(
            "POST",
            "/api/admin/partners",
            Some("admin"),
            Some(json!({"companyName": "New Owner Co", "primaryEmail": email})),
        )
        .await;
    assert_eq!(status, 201, "{reused}");
    let (_, by_email) = app.call("GET", &format!("/api/admin/partners?email={email}"), Some("admin"), None).await;
    let found: Vec<&str> =
        by_email["items"].as_array().unwrap().iter().filter_map(|p| p["partnerId"].as_str()).collect();
    assert_eq!(found, vec![reused["partnerId"].as_str().unwrap()]);
    let (_, by_name) = app.call("GET", "/api/admin/partners?name=privacy", Some("admin"), None).await;
    assert!(by_name["items"].as_array().unwrap().is_empty(), "{by_name}");
    let (_, by_erased_name) = app.call("GET", "/api/admin/partners?name=erased", Some("admin"), None).await;
    assert!(by_erased_name["items"].as_array().unwrap().is_empty(), "{by_erased_name}");

    // Exports now show the anonymised form.
    let (status, after) = s.as_partner(&token, "GET", "/api/privacy/export", None).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["erased"], true);
    assert_eq!(after["partner"]["companyName"], ERASED_NAME);
    assert_eq!(after["notes"][0]["note"], ERASED_TEXT);
    assert!(after["invoices"].as_array().unwrap().iter().all(|i| i["invoiceUrl"].is_null() && i["pdfUrl"].is_null()));
    assert!(after["invoices"].as_array().unwrap().iter().any(|i| i["amountPaid"] == 360_000), "{after}");
    let (_, staff_after) = app.call("GET", &export_path(&id), Some("admin"), None).await;
    assert_eq!(staff_after["notes"][0]["nextAction"], Value::Null);

    // A second call is harmless: nothing written, nothing more to do.
    let before = app.snapshot().await;
    let (status, again) =
        app.call("POST", &erase_path(&id), Some("admin"), Some(json!({"confirmPartnerId": id}))).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!((again["newlyErased"].as_bool(), again["itemsAnonymised"].as_u64()), (Some(false), Some(0)));
    assert_eq!(again["erasedAt"], report["erasedAt"]);
    assert_eq!(app.snapshot().await, before);

    // An erased partner no longer changes.
    for (method, path, body) in [
        ("PATCH", format!("/api/admin/partners/{id}"), json!({"companyName": "Back Again"})),
        ("POST", format!("/api/admin/partners/{id}/notes"), json!({"note": "hello"})),
        ("PATCH", format!("/api/admin/partners/{id}/engagement-tier"), json!({"tier": "gold"})),
        ("POST", format!("/api/admin/partners/{id}/assign"), json!({"salesRep": "user-admin"})),
    ] {
        let (status, body) = app.call(method, &path, Some("admin"), Some(body)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("partner_erased")), "{method} {path}: {body}");
    }
    // Nor through the partner's own billing: refused before anything reaches Stripe.
    let stripe_events = s.events().await.len();
    for (method, path, body) in [
        ("POST", "/api/billing/subscribe", json!({"tierId": "gold"})),
        ("PUT", "/api/billing/upgrade", json!({"tierId": "platinum"})),
        ("PUT", "/api/billing/downgrade", json!({"tierId": "free"})),
        ("DELETE", "/api/billing/cancel", json!({})),
        ("POST", "/api/billing/payment-method", json!({})),
        ("PUT", "/api/billing/add-ons", json!({"addOns": []})),
    ] {
        let (status, body) = s.as_partner(&token, method, path, Some(body)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("partner_erased")), "{method} {path}: {body}");
    }
    assert_eq!(s.events().await.len(), stripe_events, "nothing changed in Stripe for an erased partner");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn an_erasure_cut_short_reads_anonymised_and_the_next_call_finishes_it() {
    let app = TestApp::seeded().await;
    let created = app.create_partner("Halfway Co").await;
    let id = created["partnerId"].as_str().unwrap().to_string();
    let (status, _) = app
        .call(
            "POST",
            &format!("/api/admin/partners/{id}/notes"),
            Some("admin"),
            Some(json!({"note": "Lunch with Max Mustermann"})),
        )
        .await;
    assert_eq!(status, 201);
    // Step 1 only, as if the function died right after its transaction.
    let partner = app.store.get_partner(&id).await.unwrap().unwrap();
    let after = privacy::erase_partner(&partner, "2026-12-06T04:00:00.000Z", "user-admin");
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T04:00:00.000Z").unwrap().with_timezone(&chrono::Utc);
    let by = tierdesk::domain::actor::Actor::system("user-admin", at, "r");
    let audit = tierdesk::domain::audit::AuditEntry::change::<tierdesk::domain::partner::Partner>(
        "aud1".into(),
        "partner.erase",
        &by,
        None,
        &after,
    );
    app.store.erase_partner_record(&partner, &after, &audit).await.unwrap();
    assert!(table_text(&app).await.contains("Max Mustermann"), "step 2 has not run");
    // Readers never see the half-done state: the export anonymises the history too.
    let (status, export) = app.call("GET", &export_path(&id), Some("admin"), None).await;
    assert_eq!(status, 200, "{export}");
    assert_eq!((export["erased"].as_bool(), export["notes"][0]["note"].as_str()), (Some(true), Some(ERASED_TEXT)));
    // The email was released in step 1.
    let email = created["primaryEmail"].as_str().unwrap();
    let (status, body) = app
        .call("POST", "/api/admin/partners", Some("admin"), Some(json!({"companyName": "Next", "primaryEmail": email})))
        .await;
    assert_eq!(status, 201, "{body}");
    // The repeated request finishes step 2.
    let (status, report) =
        app.call("POST", &erase_path(&id), Some("admin"), Some(json!({"confirmPartnerId": id}))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["newlyErased"], false);
    assert!(report["itemsAnonymised"].as_u64().unwrap() >= 2, "the note and the audit snapshots: {report}");
    let text = table_text(&app).await;
    assert!(!text.contains("Max Mustermann") && !text.contains("Halfway Co"), "step 2 finished");
}

#[tokio::test]
async fn erase_refuses_bad_input_and_unknown_partners_without_writing() {
    let app = TestApp::seeded().await;
    let id = app.create_partner("Careful Co").await["partnerId"].as_str().unwrap().to_string();
    let other = app.create_partner("Other Co").await["partnerId"].as_str().unwrap().to_string();
    let before = app.snapshot().await;
    let path = erase_path(&id);
    let field_error = |body: &Value, field: &str| body["error"]["details"]["fields"][field].is_string();
    let (status, body) = app.call("POST", &path, Some("admin"), None).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.call("POST", &path, Some("admin"), Some(json!({}))).await;
    assert!(status == 400 && field_error(&body, "confirmPartnerId"), "{body}");
    let (status, body) = app.call("POST", &path, Some("admin"), Some(json!({"confirmPartnerId": 7}))).await;
    assert!(status == 400 && field_error(&body, "confirmPartnerId"), "{body}");
    let (status, body) = app.call("POST", &path, Some("admin"), Some(json!({"confirmPartnerId": other}))).await;
    assert!(status == 400 && field_error(&body, "confirmPartnerId"), "another partner's id: {body}");
    let (status, body) =
        app.call("POST", &path, Some("admin"), Some(json!({"confirmPartnerId": id, "erasedBy": "someone"}))).await;
    assert!(status == 400 && field_error(&body, "erasedBy"), "server-owned/unknown field: {body}");
    let (status, body) = app.call_raw("POST", &path, "admin", b"{not json").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .call(
            "POST",
            &erase_path("prt_nosuchpartner"),
            Some("admin"),
            Some(json!({"confirmPartnerId": "prt_nosuchpartner"})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) =
        app.call("POST", &erase_path("NOT%20AN%20ID"), Some("admin"), Some(json!({"confirmPartnerId": "x"}))).await;
    assert_eq!(status, 404);
    let (status, _) = app.call("GET", &export_path("prt_nosuchpartner"), Some("admin"), None).await;
    assert_eq!(status, 404);
    // A manager may not erase (system_config is admin's).
    let (status, body) = app.call("POST", &path, Some("sales_manager"), Some(json!({"confirmPartnerId": id}))).await;
    assert_eq!((status, body["error"]["details"]["permission"].as_str()), (403, Some("system_config")), "{body}");
    assert_eq!(app.snapshot().await, before, "refused calls wrote nothing");
}

#[tokio::test]
async fn own_export_is_the_callers_only() {
    let app = TestApp::seeded().await;
    let a = app.create_partner("Own A Co").await["partnerId"].as_str().unwrap().to_string();
    let b = app.create_partner("Own B Co").await["partnerId"].as_str().unwrap().to_string();
    let (status, _) = app.call("GET", "/api/privacy/export", None, None).await;
    assert_eq!(status, 401);
    for role in ["sales_rep", "sales_manager", "admin", "service"] {
        let (status, body) = app.call("GET", "/api/privacy/export", Some(role), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("not_a_partner")), "{role}: {body}");
    }
    // A partner token without a partner id is no partner's.
    let (status, _) = app.call("GET", "/api/privacy/export", Some("partner"), None).await;
    assert_eq!(status, 403);
    let (status, own) = app.call_with_token("GET", "/api/privacy/export", &app.partner_token(&a), None).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["partnerId"], a.as_str());
    assert_eq!(own["partner"]["companyName"], "Own A Co");
    assert!(!own.to_string().contains(&b) && !own.to_string().contains("Own B Co"), "{own}");
    // The admin surface does not exist for a partner, even for its own id.
    let (status, _) = app.call_with_token("GET", &export_path(&a), &app.partner_token(&a), None).await;
    assert_eq!(status, 404);
    let (status, _) = app.call_with_token("GET", "/api/privacy/export", &app.partner_token("prt_gone"), None).await;
    assert_eq!(status, 404);
}
