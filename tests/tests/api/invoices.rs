//! Invoices for staff: `GET /api/admin/invoices` (filters, paging, CSV, totals,
//! who sees what) and the Stripe actions (resend, mark paid, void, refund) end to
//! end against the Stripe emulator, including a repeated action and redelivered
//! webhooks that change nothing the second time.

use serde_json::{json, Value};
use tierdesk::domain::billing::{InvoiceRecord, InvoiceStatus};
use tierdesk::store::{BillingWrite, InvoiceStore};
use tierdesk_tests::stripe::StripeApp;
use tierdesk_tests::TestApp;

const ACTIONS: [&str; 4] = ["send", "pay", "void", "refund"];

/// A partner with `rep` as its sales rep; returns its id.
async fn partner_of(app: &TestApp, company: &str, rep: Option<&str>) -> String {
    let local: String = company.chars().filter(char::is_ascii_alphanumeric).collect();
    let email = format!("{local}-{}@example.com", ulid::Ulid::new()).to_lowercase();
    let mut body = json!({"companyName": company, "primaryEmail": email});
    if let Some(rep) = rep {
        body["assignedSalesRep"] = json!(rep);
    }
    let (status, created) = app.call("POST", "/api/admin/partners", Some("admin"), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["partnerId"].as_str().unwrap().to_string()
}

/// An invoice record written as the webhook writes one (through `apply_billing`).
#[allow(clippy::too_many_arguments)]
async fn record(
    app: &TestApp,
    partner: &str,
    rep: Option<&str>,
    id: &str,
    tier: &str,
    created: &str,
    status: InvoiceStatus,
    amount: i64,
    refunded: i64,
) -> InvoiceRecord {
    let at = chrono::DateTime::parse_from_rfc3339(created).unwrap().timestamp();
    let paid = if status == InvoiceStatus::Paid { amount } else { 0 };
    let r = InvoiceRecord {
        invoice_id: id.to_string(),
        partner_id: partner.to_string(),
        invoice_number: Some(format!("N-{id}")),
        amount,
        amount_paid: paid,
        currency: "usd".into(),
        tier: tier.into(),
        billing_reason: Some("subscription_cycle".into()),
        period_start: None,
        period_end: None,
        status: match status {
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Uncollectible => "uncollectible",
            _ => "pending",
        }
        .into(),
        paid_at: None,
        invoice_url: None,
        pdf_url: None,
        attempt_count: 0,
        stripe_subscription_id: None,
        stripe_created: at,
        created_at: created.into(),
        updated_at: created.into(),
        stripe_status: Some(status),
        billing_status: None,
        refunded_amount: refunded,
        credit_notes: if refunded > 0 { vec![format!("cn_{id}")] } else { vec![] },
        sales_rep: rep.map(str::to_string),
        commission: None,
        disputes: vec![],
    }
    .normalized();
    app.store.apply_billing(&BillingWrite { invoice: Some((&r, None)), ..Default::default() }).await.expect("write");
    r
}

fn ids(body: &Value) -> Vec<String> {
    body["items"].as_array().unwrap().iter().map(|i| i["invoiceId"].as_str().unwrap().to_string()).collect()
}

/// Seven invoices of three partners (two of rep-ann, one of rep-bo) over three
/// months, in every status.
async fn book(app: &TestApp) -> (String, String, String) {
    let a = partner_of(app, "Ann One", Some("rep-ann")).await;
    let b = partner_of(app, "Ann Two", Some("rep-ann")).await;
    let c = partner_of(app, "Bo Three", Some("rep-bo")).await;
    use InvoiceStatus::*;
    record(app, &a, Some("rep-ann"), "in_a1", "gold", "2026-01-05T10:00:00Z", Paid, 360_000, 0).await;
    record(app, &a, Some("rep-ann"), "in_a2", "gold", "2026-02-05T10:00:00Z", Paid, 360_000, 100_000).await;
    record(app, &a, Some("rep-ann"), "in_a3", "gold", "2026-03-05T10:00:00Z", Open, 360_000, 0).await;
    record(app, &b, Some("rep-ann"), "in_b1", "platinum", "2026-01-20T10:00:00Z", Paid, 600_000, 600_000).await;
    record(app, &b, Some("rep-ann"), "in_b2", "platinum", "2026-02-20T10:00:00Z", Void, 600_000, 0).await;
    record(app, &c, Some("rep-bo"), "in_c1", "gold", "2026-02-10T10:00:00Z", Uncollectible, 360_000, 0).await;
    record(app, &c, Some("rep-bo"), "in_c2", "gold", "2026-03-31T23:59:59Z", Draft, 360_000, 0).await;
    (a, b, c)
}

#[tokio::test]
async fn the_staff_list_filters_pages_and_totals_through_its_indexes() {
    let app = TestApp::seeded().await;
    let (a, _b, c) = book(&app).await;

    // Everything, newest first, with totals per status over the whole range.
    let (status, all) = app.call("GET", "/api/admin/invoices", Some("admin"), None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), ["in_c2", "in_a3", "in_b2", "in_c1", "in_a2", "in_b1", "in_a1"]);
    let t = &all["totals"];
    assert_eq!(t["paid"], json!({"count": 1, "amount": 360_000, "amountPaid": 360_000, "amountRefunded": 0}));
    assert_eq!(t["partially_refunded"]["count"], 1);
    assert_eq!(t["partially_refunded"]["amountRefunded"], 100_000);
    assert_eq!(t["refunded"], json!({"count": 1, "amount": 600_000, "amountPaid": 600_000, "amountRefunded": 600_000}));
    for s in ["open", "void", "uncollectible", "draft"] {
        assert_eq!(t[s]["count"], 1, "{s}: {t}");
    }
    assert_eq!(all["items"][4]["billingStatus"], "partially_refunded");
    assert_eq!(all["items"][4]["refundedAmount"], 100_000);

    // One status (its own index), a date range (inclusive days), a tier, a partner.
    let (_, paid) = app.call("GET", "/api/admin/invoices?status=refunded", Some("admin"), None).await;
    assert_eq!(ids(&paid), ["in_b1"]);
    assert_eq!(paid["totals"]["open"]["count"], 1, "totals cover every status: {paid}");
    let (_, feb) = app.call("GET", "/api/admin/invoices?from=2026-02-01&to=2026-02-28", Some("admin"), None).await;
    assert_eq!(ids(&feb), ["in_b2", "in_c1", "in_a2"]);
    assert_eq!(feb["totals"]["paid"]["count"], 0);
    assert_eq!(feb["totals"]["void"]["amount"], 600_000);
    let (_, last_day) = app.call("GET", "/api/admin/invoices?from=2026-03-31&to=2026-03-31", Some("admin"), None).await;
    assert_eq!(ids(&last_day), ["in_c2"], "the last second of the day is inside");
    let (_, plat) = app.call("GET", "/api/admin/invoices?tier=platinum", Some("admin"), None).await;
    assert_eq!(ids(&plat), ["in_b2", "in_b1"]);
    let (_, own) =
        app.call("GET", &format!("/api/admin/invoices?partnerId={a}&status=open"), Some("admin"), None).await;
    assert_eq!(ids(&own), ["in_a3"]);
    assert_eq!(own["totals"]["paid"]["count"], 1, "{own}");
    assert_eq!(own["totals"]["partially_refunded"]["count"], 1);
    let (_, gold_paid) =
        app.call("GET", "/api/admin/invoices?status=uncollectible&tier=gold", Some("sales_manager"), None).await;
    assert_eq!(ids(&gold_paid), ["in_c1"]);

    // Paging with the project's cursors: three pages of 3, 3 and 1, nothing twice.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let path = match &cursor {
            Some(c) => format!("/api/admin/invoices?limit=3&cursor={}", urlencode(c)),
            None => "/api/admin/invoices?limit=3".to_string(),
        };
        let (status, body) = app.call("GET", &path, Some("admin"), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["totals"].is_null(), page > 0, "totals on the first page only: {body}");
        seen.extend(ids(&body));
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));
    // A cursor from another list is refused.
    let (_, first) = app.call("GET", "/api/admin/invoices?limit=1", Some("admin"), None).await;
    let other = first["nextCursor"].as_str().unwrap();
    let (status, body) = app
        .call("GET", &format!("/api/admin/invoices?status=paid&cursor={}", urlencode(other)), Some("admin"), None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["details"]["fields"]["cursor"].is_string(), "{body}");

    // CSV: the same page as rows, guarded cells, the next cursor in a header.
    let (status, headers, text) =
        app.call_text("GET", "/api/admin/invoices?format=csv&limit=2&tier=gold", "admin").await;
    assert_eq!(status, 200, "{text}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(headers.contains_key("x-next-cursor"));
    let rows = tierdesk::http::csv::parse(&text).unwrap();
    assert_eq!(rows[0][..6], ["invoiceId", "invoiceNumber", "partnerId", "tier", "status", "amount"]);
    assert_eq!(rows.len(), 3, "{text}");
    assert_eq!(rows[1][0], "in_c2");
    assert_eq!(rows[1][2], c);
    assert_eq!(rows[1][4], "draft");
    assert_eq!(rows[2][0], "in_a3");
    assert_eq!(rows[2][9], "2026-03-05T10:00:00.000Z");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_rep_sees_the_invoices_of_their_own_accounts_only() {
    let app = TestApp::seeded().await;
    let (a, b, c) = book(&app).await;
    let ann = app.token_as("sales_rep", "rep-ann");
    let (status, mine) = app.call_with_token("GET", "/api/admin/invoices", &ann, None).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(ids(&mine), ["in_a3", "in_b2", "in_a2", "in_b1", "in_a1"]);
    assert_eq!(mine["totals"]["uncollectible"]["count"], 0, "another rep's invoices are not in the totals");
    assert_eq!(mine["totals"]["draft"]["count"], 0);
    // Another rep's account, asked by id: nothing of it.
    let (status, theirs) = app.call_with_token("GET", &format!("/api/admin/invoices?partnerId={c}"), &ann, None).await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(ids(&theirs), Vec::<String>::new());
    assert_eq!(theirs["totals"]["uncollectible"]["count"], 0);
    let (_, own) = app.call_with_token("GET", &format!("/api/admin/invoices?partnerId={b}"), &ann, None).await;
    assert_eq!(ids(&own), ["in_b2", "in_b1"]);

    // Reassigned to rep-bo: rep-ann stops seeing the account at once, though the
    // invoices' index copy still names her; the backfill moves them to rep-bo.
    let (status, moved) = app
        .call(
            "POST",
            &format!("/api/admin/partners/{a}/assign"),
            Some("sales_manager"),
            Some(json!({"salesRep": "rep-bo"})),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    let (_, after) = app.call_with_token("GET", "/api/admin/invoices", &ann, None).await;
    assert_eq!(ids(&after), ["in_b2", "in_b1"]);
    let bo = app.token_as("sales_rep", "rep-bo");
    let (_, bo_before) = app.call_with_token("GET", "/api/admin/invoices", &bo, None).await;
    assert_eq!(ids(&bo_before), ["in_c2", "in_c1"]);
    assert_eq!(app.store.reindex_all_invoices().await.expect("reindex"), 7);
    let (_, bo_after) = app.call_with_token("GET", "/api/admin/invoices", &bo, None).await;
    assert_eq!(ids(&bo_after), ["in_c2", "in_a3", "in_c1", "in_a2", "in_a1"]);
    let (_, ann_after) = app.call_with_token("GET", "/api/admin/invoices", &ann, None).await;
    assert_eq!(ids(&ann_after), ["in_b2", "in_b1"]);
}

#[tokio::test]
async fn every_role_on_every_invoice_route() {
    let app = TestApp::seeded().await;
    book(&app).await;
    for role in [None, Some("partner"), Some("service"), Some("sales_rep"), Some("sales_manager"), Some("admin")] {
        let reads = matches!(role, Some("sales_rep" | "sales_manager" | "admin"));
        app.assert_access("GET", "/api/admin/invoices", role, None, reads).await;
        for action in ACTIONS {
            let path = format!("/api/admin/invoices/in_a3/{action}");
            if matches!(role, Some("sales_manager" | "admin")) {
                continue; // allowed: the end-to-end tests act as both
            }
            app.assert_access("POST", &path, role, Some(json!({})), false).await;
        }
    }
    // A partner token never reaches the staff list through its own partner id either.
    let (status, _) = app.call("GET", "/api/billing/invoices", Some("admin"), None).await;
    assert_eq!(status, 403, "staff have no partner invoices of their own");
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_field_and_writes_nothing() {
    let app = TestApp::seeded().await;
    book(&app).await;
    let before = app.snapshot().await;
    for (query, field) in [
        ("status=pending", "status"),
        ("from=2026-02-30", "from"),
        ("from=2026-03-01&to=2026-02-01", "to"),
        ("from=2025-01-01&to=2026-03-01", "to"),
        ("tier=Gold!", "tier"),
        ("partnerId=not%20an%20id", "partnerId"),
        ("format=xml", "format"),
        ("limit=0", "limit"),
    ] {
        let (status, body) = app.call("GET", &format!("/api/admin/invoices?{query}"), Some("admin"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["details"]["fields"][field].is_string(), "{query}: {body}");
    }
    for action in ACTIONS {
        let (status, body) =
            app.call("POST", &format!("/api/admin/invoices/bogus/{action}"), Some("admin"), None).await;
        assert_eq!(status, 400, "{action}: {body}");
        assert!(body["error"]["details"]["fields"]["invoiceId"].is_string(), "{body}");
        let (status, body) =
            app.call("POST", &format!("/api/admin/invoices/in_unknown1/{action}"), Some("admin"), None).await;
        assert_eq!(status, 404, "{action}: {body}");
        assert!(body["error"]["details"]["fields"]["invoiceId"].is_string(), "{body}");
    }
    for (body, field) in [
        (json!({"amount": "10"}), "amount"),
        (json!({"amount": 0}), "amount"),
        (json!({"amount": 100, "note": "x"}), "note"),
        (json!({"reason": ""}), "reason"),
    ] {
        let (status, answer) =
            app.call("POST", "/api/admin/invoices/in_a1/refund", Some("admin"), Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"]["details"]["fields"][field].is_string(), "{body}: {answer}");
    }
    // The state checks come before Stripe is asked: nothing is sent anywhere.
    for (id, action, status) in [
        ("in_a1", "void", "paid"),
        ("in_a1", "pay", "paid"),
        ("in_b1", "refund", "refunded"),
        ("in_a3", "refund", "open"),
        ("in_b2", "send", "void"),
        ("in_c2", "send", "draft"),
    ] {
        let (code, body) = app.call("POST", &format!("/api/admin/invoices/{id}/{action}"), Some("admin"), None).await;
        assert_eq!(code, 409, "{id} {action}: {body}");
        assert_eq!(body["error"]["code"], "invoice_state", "{body}");
        assert_eq!(body["error"]["details"]["status"], status, "{body}");
        assert!(body["error"]["details"]["fields"]["invoiceId"].is_string(), "{body}");
    }
    let (status, body) =
        app.call("POST", "/api/admin/invoices/in_a2/refund", Some("admin"), Some(json!({"amount": 260_001}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["details"]["fields"]["amount"].as_str().unwrap().contains("260000"), "{body}");
    assert_eq!(app.snapshot().await, before, "bad input wrote something");
}

/// The emulator's credit notes of an invoice.
async fn credit_notes(s: &StripeApp, invoice: &str) -> Vec<Value> {
    let (status, body) = s.stripe_api("GET", &format!("credit_notes?invoice={invoice}"), &[], None).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

async fn keyed(s: &StripeApp, role: &str, path: &str, body: Option<Value>, key: &str) -> (u16, http::HeaderMap, Value) {
    let token = s.app.token(role);
    s.app.call_with_headers("POST", path, Some(&token), &[("idempotency-key", key)], body).await
}

async fn deliver(s: &StripeApp, event: &Value) -> (u16, Value) {
    let payload = event.to_string();
    let signature = tierdesk::stripe_adapter::webhook::sign(
        &payload,
        tierdesk::stripe_adapter::config::LOCAL_WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
    );
    let call = devtools::event::HttpCall {
        method: "POST".into(),
        path: "/api/webhooks/stripe".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into()), ("stripe-signature".into(), signature)],
        body: Some(payload.into_bytes()),
    };
    let response = s.app.gateway.call(call).await;
    let status = response.status().as_u16();
    let value = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, value)
}

#[tokio::test]
async fn a_refund_reaches_stripe_once_and_reverses_revenue_once() {
    let s = StripeApp::start().await;
    let (partner_id, token, _) = s.partner("Refund Co").await;
    s.subscribe(&token, "gold", "monthly").await;
    let (_, list) =
        s.app.call("GET", &format!("/api/admin/invoices?partnerId={partner_id}"), Some("admin"), None).await;
    let invoice = list["items"][0]["invoiceId"].as_str().unwrap().to_string();
    let (_, own) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    assert_eq!(own["items"][0]["invoiceId"], invoice.as_str());
    assert_eq!(own["items"][0]["billingStatus"], "paid");
    assert!(own["items"][0]["salesRep"].is_null(), "a partner's list never names its rep");
    assert_eq!(list["items"][0]["billingStatus"], "paid", "{list}");
    let path = format!("/api/admin/invoices/{invoice}/refund");
    let (_, before) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(before["totalPaid"], 360_000);
    let movements_before =
        s.app.items().await.iter().filter(|i| i["PK"].as_str().unwrap().starts_with("MOVEMENTS#")).count();

    // A manager refunds 1,000.00 of 3,600.00.
    let body = json!({"amount": 100_000, "reason": "service outage credit"});
    let (status, _, first) = keyed(&s, "sales_manager", &path, Some(body.clone()), "refund-1").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["invoice"]["billingStatus"], "partially_refunded");
    assert_eq!(first["invoice"]["refundedAmount"], 100_000);
    assert_eq!(first["refunded"], 100_000);
    let note = first["creditNoteId"].as_str().unwrap().to_string();
    let notes = credit_notes(&s, &invoice).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["id"], note.as_str());
    assert_eq!(notes[0]["refunds"][0]["amount_refunded"], 100_000);
    let refund_id = notes[0]["refunds"][0]["refund"].as_str().unwrap();
    let (status, refund) = s.stripe_api("GET", &format!("refunds/{refund_id}"), &[], None).await;
    assert_eq!((status, refund["amount"].as_i64()), (200, Some(100_000)), "{refund}");

    // The same request again: the first answer, and nothing more anywhere.
    let (status, headers, again) = keyed(&s, "sales_manager", &path, Some(body.clone()), "refund-1").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(again, first);
    s.emulator.flush().await;
    let settled = s.app.snapshot().await;
    assert_eq!(credit_notes(&s, &invoice).await.len(), 1);
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(view["totalPaid"], 260_000, "revenue reversed once: {view}");
    assert_eq!(view["mrr"], 360_000, "a refund is not an MRR movement");

    // credit_note.created arrived after the action had recorded it: unchanged. Its
    // redelivery is a duplicate, and the same credit note in another event changes nothing.
    let events = s.events().await;
    let created = events.iter().find(|e| e["type"] == "credit_note.created").expect("credit_note.created sent");
    assert_eq!(created["attempts"].as_array().unwrap().last().unwrap()["status"], 200, "{created}");
    let (status, dup) = deliver(&s, &created["event"]).await;
    assert_eq!((status, dup["duplicate"].as_bool()), (200, Some(true)), "{dup}");
    let mut other = created["event"].clone();
    other["id"] = json!(format!("evt_again{}", ulid::Ulid::new().to_string().to_lowercase()));
    let (status, answer) = deliver(&s, &other).await;
    assert_eq!((status, answer["action"].as_str()), (200, Some("unchanged")), "{answer}");
    let changed: Vec<String> = {
        let now = s.app.snapshot().await;
        now.into_iter().filter(|i| !settled.contains(i) && !i.contains("STRIPEEVT#")).collect()
    };
    assert!(changed.is_empty(), "a redelivered credit note changed {changed:?}");

    // A credit note made in Stripe's dashboard is recorded by its event, once.
    let (status, dashboard) = s
        .stripe_api(
            "POST",
            "credit_notes",
            &[("invoice", &invoice), ("amount", "10000"), ("refund_amount", "10000")],
            None,
        )
        .await;
    assert_eq!(status, 200, "{dashboard}");
    s.emulator.flush().await;
    let events = s.events().await;
    let recorded = events
        .iter()
        .find(|e| e["type"] == "credit_note.created" && e["event"]["data"]["object"]["id"] == dashboard["id"])
        .expect("the dashboard's credit note event");
    let (status, dup) = deliver(&s, &recorded["event"]).await;
    assert_eq!((status, dup["duplicate"].as_bool()), (200, Some(true)), "{dup}");
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(view["totalPaid"], 250_000, "{view}");

    // More than is left: the field is named, Stripe is not asked.
    let (status, over) = s.app.call("POST", &path, Some("admin"), Some(json!({"amount": 250_001}))).await;
    assert_eq!(status, 400, "{over}");
    assert!(over["error"]["details"]["fields"]["amount"].as_str().unwrap().contains("250000"), "{over}");
    assert_eq!(credit_notes(&s, &invoice).await.len(), 2);

    // The rest, without a body: refunded in full; then nothing is left.
    let (status, rest) = s.app.call("POST", &path, Some("admin"), None).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["invoice"]["billingStatus"], "refunded");
    assert_eq!(rest["invoice"]["refundedAmount"], 360_000);
    assert_eq!(rest["invoice"]["status"], "paid", "the partner's status keeps Stripe's paid");
    let (_, own) = s.as_partner(&token, "GET", "/api/billing/invoices", None).await;
    assert_eq!(own["items"][0]["billingStatus"], "refunded");
    assert_eq!(own["items"][0]["refundedAmount"], 360_000);
    s.emulator.flush().await;
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(view["totalPaid"], 0);
    let (status, none_left) = s.app.call("POST", &path, Some("admin"), None).await;
    assert_eq!((status, none_left["error"]["code"].as_str()), (409, Some("invoice_state")), "{none_left}");
    let (status, void) = s.app.call("POST", &format!("/api/admin/invoices/{invoice}/void"), Some("admin"), None).await;
    assert_eq!((status, void["error"]["details"]["status"].as_str()), (409, Some("refunded")), "{void}");

    // Listed as refunded, with both refunds in the totals; audited twice; no MRR movement.
    let (_, refunded) = s.app.call("GET", "/api/admin/invoices?status=refunded", Some("admin"), None).await;
    assert_eq!(ids(&refunded), std::slice::from_ref(&invoice));
    assert_eq!(refunded["totals"]["refunded"]["amountRefunded"], 360_000);
    let items = s.app.items().await;
    let audits: Vec<&Value> = items.iter().filter(|i| i["PK"] == format!("AUDIT#invoice#{invoice}").as_str()).collect();
    assert_eq!(audits.len(), 3, "two refunds here, one from Stripe's dashboard: {audits:?}");
    assert!(audits.iter().all(|a| a["action"] == "invoice.refund"));
    assert_eq!(audits[0]["actor"], "user-sales_manager");
    assert!(audits[1]["actor"].as_str().unwrap().starts_with("stripe:evt_"), "{:?}", audits[1]);
    let movements = items.iter().filter(|i| i["PK"].as_str().unwrap().starts_with("MOVEMENTS#")).count();
    assert_eq!(movements, movements_before);
}

#[tokio::test]
async fn resend_mark_paid_and_void_reach_stripe_and_the_webhook_changes_nothing_after() {
    let s = StripeApp::start().await;
    let (partner_id, token, _) = s.partner("Open Co").await;
    let sub = s.subscribe(&token, "gold", "monthly").await;
    let (_, view) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    let customer = view["stripeCustomerId"].as_str().unwrap().to_string();
    s.card_fails(&customer, true).await;
    s.advance(&sub).await;
    let (_, open) = s
        .app
        .call("GET", &format!("/api/admin/invoices?partnerId={partner_id}&status=open"), Some("admin"), None)
        .await;
    let renewal = ids(&open).pop().expect("an open renewal invoice");
    let (_, past_due) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(past_due["status"], "past_due", "{past_due}");

    // Resend: Stripe sends the email (invoice.sent), the record is unchanged, audited.
    let (status, sent) =
        s.app.call("POST", &format!("/api/admin/invoices/{renewal}/send"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["invoice"]["billingStatus"], "open");
    s.emulator.flush().await;
    let events = s.events().await;
    assert!(
        events.iter().any(|e| e["type"] == "invoice.sent" && e["event"]["data"]["object"]["id"] == renewal.as_str()),
        "no invoice.sent"
    );

    // Mark paid out of band: paid in Stripe and here, the partner current again.
    let (status, paid) = s.app.call("POST", &format!("/api/admin/invoices/{renewal}/pay"), Some("admin"), None).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["invoice"]["billingStatus"], "paid");
    assert_eq!(paid["invoice"]["amountPaid"], 360_000);
    s.emulator.flush().await;
    let (_, after) = s.as_partner(&token, "GET", "/api/billing/subscription", None).await;
    assert_eq!(after["status"], "active", "{after}");
    assert_eq!(after["paymentStatus"], "current");
    assert_eq!(after["totalPaid"], 720_000, "recorded once by the action and the invoice.paid that followed");
    let (status, stripe_inv) = s.stripe_api("GET", &format!("invoices/{renewal}"), &[], None).await;
    assert_eq!((status, stripe_inv["status"].as_str()), (200, Some("paid")));

    // An open one-off invoice, then voided.
    s.card_fails(&customer, false).await;
    let (status, item) = s
        .stripe_api("POST", "invoiceitems", &[("customer", &customer), ("amount", "5000"), ("currency", "usd")], None)
        .await;
    assert_eq!(status, 200, "{item}");
    let (status, draft) = s
        .stripe_api(
            "POST",
            "invoices",
            &[("customer", &customer), ("pending_invoice_items_behavior", "include"), ("auto_advance", "false")],
            None,
        )
        .await;
    assert_eq!(status, 200, "{draft}");
    let one_off = draft["id"].as_str().unwrap().to_string();
    let (status, fin) = s.stripe_api("POST", &format!("invoices/{one_off}/finalize"), &[], None).await;
    assert_eq!(status, 200, "{fin}");
    s.emulator.flush().await;
    let (status, voided) =
        s.app.call("POST", &format!("/api/admin/invoices/{one_off}/void"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{voided}");
    assert_eq!(voided["invoice"]["billingStatus"], "void");
    s.emulator.flush().await;
    let settled = s.app.snapshot().await;
    // The invoice.voided event redelivered under a new id: nothing changes.
    let events = s.events().await;
    let voided_event = events.iter().find(|e| e["type"] == "invoice.voided").expect("invoice.voided");
    let mut again = voided_event["event"].clone();
    again["id"] = json!(format!("evt_again{}", ulid::Ulid::new().to_string().to_lowercase()));
    let (status, answer) = deliver(&s, &again).await;
    assert_eq!(status, 200, "{answer}");
    let changed: Vec<String> =
        s.app.snapshot().await.into_iter().filter(|i| !settled.contains(i) && !i.contains("STRIPEEVT#")).collect();
    assert!(changed.is_empty(), "{changed:?}");
    let (status, twice) = s.app.call("POST", &format!("/api/admin/invoices/{one_off}/void"), Some("admin"), None).await;
    assert_eq!((status, twice["error"]["details"]["status"].as_str()), (409, Some("void")), "{twice}");

    let items = s.app.items().await;
    let actions: Vec<&str> = items
        .iter()
        .filter(|i| i["PK"].as_str().is_some_and(|pk| pk.starts_with("AUDIT#invoice#")))
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    for action in ["invoice.send", "invoice.mark_paid", "invoice.void"] {
        assert_eq!(actions.iter().filter(|a| **a == action).count(), 1, "{actions:?}");
    }
    // Each action reached Stripe with an idempotency key of its own.
    let key_of = |kind: &str, id: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind && e["event"]["data"]["object"]["id"] == id)
            .and_then(|e| e["event"]["request"]["idempotency_key"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("{kind} {id} without a key"))
    };
    assert!(key_of("invoice.sent", &renewal).starts_with(&format!("invoice-send-{renewal}-")));
    assert!(key_of("invoice.voided", &one_off).starts_with(&format!("invoice-void-{one_off}-")));
    let paid_keys: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "invoice.paid" && e["event"]["data"]["object"]["id"] == renewal.as_str())
        .filter_map(|e| e["event"]["request"]["idempotency_key"].as_str())
        .collect();
    assert!(paid_keys.iter().any(|k| k.starts_with(&format!("invoice-pay-{renewal}-"))), "{paid_keys:?}");
}

#[tokio::test]
async fn make_runs_seed_leaves_invoices_in_every_state_that_the_actions_work_on() {
    let s = StripeApp::start().await;
    devtools::seed::seed(&s.app.gateway, s.app.secret()).await.expect("seed");
    let routes =
        devtools::routes::from_template(&tierdesk_tests::read_repo_file("template.yaml")).expect("template routes");
    devtools::seed::seed_lapsed(&s.app.config, routes, s.app.secret()).await.expect("seed lapsed");
    let log = devtools::seed_invoices::seed_invoices(&s.app.store, &s.stripe).await;
    assert_eq!(log.len(), 5, "{log:?}");
    let expected =
        ["paid, open", "refunded, void", "partially_refunded, paid", "paid, uncollectible", "partially_refunded"];
    for (line, states) in log.iter().zip(expected) {
        assert!(line.ends_with(states), "{log:?}");
    }
    s.emulator.flush().await;

    let (status, all) = s.app.call("GET", "/api/admin/invoices", Some("admin"), None).await;
    assert_eq!(status, 200, "{all}");
    let totals = &all["totals"];
    for (state, count) in
        [("paid", 3), ("open", 1), ("void", 1), ("uncollectible", 1), ("refunded", 1), ("partially_refunded", 2)]
    {
        assert_eq!(totals[state]["count"], count, "{state}: {totals}");
    }
    assert_eq!(totals["refunded"]["amountRefunded"], 600_000);
    assert_eq!(totals["partially_refunded"]["amountRefunded"], 160_000);
    // The demo partners are the demo rep's accounts; another rep sees none of them.
    let rep = s.app.token_as("sales_rep", "demo-rep");
    let (_, mine) = s.app.call_with_token("GET", "/api/admin/invoices", &rep, None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 9);
    let other = s.app.token_as("sales_rep", "rep-nobody");
    let (_, none) = s.app.call_with_token("GET", "/api/admin/invoices", &other, None).await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    assert_eq!(none["totals"]["paid"]["count"], 0);

    // The seeded invoices are Stripe's: the rest of a partly refunded one can be refunded.
    let (_, partly) = s.app.call("GET", "/api/admin/invoices?status=partially_refunded", Some("admin"), None).await;
    let item = partly["items"].as_array().unwrap().iter().find(|i| i["refundedAmount"] == 100_000).unwrap().clone();
    let id = item["invoiceId"].as_str().unwrap();
    let (status, rest) = s.app.call("POST", &format!("/api/admin/invoices/{id}/refund"), Some("admin"), None).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(
        (rest["invoice"]["billingStatus"].as_str(), rest["refunded"].as_i64()),
        (Some("refunded"), Some(260_000))
    );
    let (_, open) = s.app.call("GET", "/api/admin/invoices?status=open", Some("admin"), None).await;
    let open_id = open["items"][0]["invoiceId"].as_str().unwrap();
    let (status, voided) =
        s.app.call("POST", &format!("/api/admin/invoices/{open_id}/void"), Some("admin"), None).await;
    assert_eq!((status, voided["invoice"]["billingStatus"].as_str()), (200, Some("void")), "{voided}");

    let again = devtools::seed_invoices::seed_invoices(&s.app.store, &s.stripe).await;
    assert!(again.iter().all(|l| l.ends_with(": exist")), "{again:?}");
}
