//! Sales commissions (docs/billing.md "Commissions"): accrual on paid invoices in
//! the payment's own transaction, reversal on refunds, exactly once under
//! redelivered and out-of-order webhooks, against a brute-force recount.

use chrono::NaiveDate;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tierdesk::stripe_adapter::config::LOCAL_WEBHOOK_SECRET;
use tierdesk::stripe_adapter::webhook::sign;
use tierdesk_tests::stripe::StripeApp;
use tierdesk_tests::TestApp;

/// `net × bp / 10 000`, half away from zero: written out again here, not imported.
fn share(net: i64, bp: i64) -> i64 {
    let scaled = net * bp;
    let rounded = (scaled.abs() * 2 + 10_000) / 20_000;
    if scaled < 0 {
        -rounded
    } else {
        rounded
    }
}

async fn partner_of(s: &StripeApp, company: &str, rep: &str) -> (String, String) {
    let email = format!("c-{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let body = json!({"companyName": company, "primaryEmail": email, "assignedSalesRep": rep});
    let (status, created) = s.app.call("POST", "/api/admin/partners", Some("admin"), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["partnerId"].as_str().unwrap().to_string();
    let token = s.app.partner_token(&id);
    (id, token)
}

async fn deliver(s: &StripeApp, payload: &str) -> u16 {
    // The webhook function keeps the real clock (Stripe signs with the real time).
    let t = chrono::Utc::now().timestamp();
    let call = devtools::event::HttpCall {
        method: "POST".into(),
        path: "/api/webhooks/stripe".into(),
        query: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("stripe-signature".into(), sign(payload, LOCAL_WEBHOOK_SECRET, t)),
        ],
        body: Some(payload.as_bytes().to_vec()),
    };
    s.app.gateway.call(call).await.status().as_u16()
}

async fn set_rate(s: &StripeApp, bp: i64, from: NaiveDate) {
    let body = json!({"basisPoints": bp, "effectiveFrom": from.to_string()});
    let (status, rate) = s.app.call("PUT", "/api/admin/commissions/rates/standard", Some("admin"), Some(body)).await;
    assert_eq!(status, 200, "{rate}");
}

fn month_of(d: NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}

/// The invoice records among the table's items.
fn invoices(items: Vec<Value>) -> Vec<Value> {
    items
        .into_iter()
        .filter(|i| i["PK"].as_str().is_some_and(|p| p.starts_with("PARTNER#")))
        .filter(|i| i["SK"].as_str().is_some_and(|k| k.starts_with("INVOICE#")))
        .collect()
}

/// Commission and collected revenue per rep over every month from `start` to the
/// emulator's now, from the summaries; each rep's statement lines checked against
/// its month's total on the way.
async fn reported(s: &StripeApp, start: NaiveDate) -> BTreeMap<String, (i64, i64)> {
    let mut by_rep: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let end = month_of(chrono::DateTime::from_timestamp(s.emulator.now(), 0).unwrap().date_naive());
    let mut month = month_of(start);
    loop {
        let path = format!("/api/admin/commissions/summary?month={month}");
        let (status, summary) = s.app.call("GET", &path, Some("sales_manager"), None).await;
        assert_eq!(status, 200, "{summary}");
        for line in summary["reps"].as_array().unwrap() {
            let t = by_rep.entry(line["id"].as_str().unwrap().to_string()).or_default();
            t.0 += line["commission"].as_i64().unwrap();
            t.1 += line["revenue"].as_i64().unwrap();
        }
        for rep in ["rep-a", "rep-b"] {
            let path = format!("/api/admin/commissions/statement?repId={rep}&month={month}");
            let (_, statement) = s.app.call("GET", &path, Some("admin"), None).await;
            let lines: i64 = statement["lines"].as_array().unwrap().iter().map(|l| l["amount"].as_i64().unwrap()).sum();
            assert_eq!(lines, statement["commission"].as_i64().unwrap(), "{statement}");
        }
        if month == end {
            return by_rep;
        }
        let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").unwrap();
        month = month_of(first.checked_add_months(chrono::Months::new(1)).unwrap());
    }
}

#[tokio::test]
async fn a_replayed_year_of_invoices_earns_commission_exactly_once_to_the_cent() {
    let s = StripeApp::start().await;
    let start = chrono::Utc::now().date_naive();
    // The catalog's segment earns 10 %; halfway through the year the rate becomes
    // 12.5 % from that day on (payments arrive at real time, so the change is told
    // apart by the instant it was made).
    set_rate(&s, 1_000, NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()).await;
    let mut raised_at = String::new();

    let mut reps = BTreeMap::new();
    let mut subs = Vec::new();
    for (company, rep, tier) in [("A Co", "rep-a", "gold"), ("B Co", "rep-b", "platinum"), ("C Co", "rep-a", "gold")] {
        let (id, token) = partner_of(&s, company, rep).await;
        subs.push(s.subscribe(&token, tier, "monthly").await);
        reps.insert(id, rep.to_string());
    }
    // A month of the emulator's clock per round, so payments fall in twelve months
    // and on both sides of the rate change.
    let t0 = s.emulator.now();
    for round in 1..=11 {
        if round == 6 {
            raised_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            set_rate(&s, 1_250, start).await;
        }
        let (status, body) =
            tierdesk_tests::stripe::post(&s.control("clock"), json!({"now": t0 + round * 31 * 86_400})).await;
        assert_eq!(status, 200, "{body}");
        for sub in &subs {
            s.advance(sub).await;
        }
    }
    // Refunds: part of one invoice, all of another (each also arrives as a
    // credit_note.created event, which then changes nothing).
    let all = invoices(s.app.items().await);
    assert_eq!(all.len(), 36, "a year of three monthly subscriptions");
    let paid: Vec<&Value> = all.iter().filter(|i| i["status"] == "paid").collect();
    for (invoice, body) in [(paid[3], json!({"amount": 12_345})), (paid[20], json!({}))] {
        let path = format!("/api/admin/invoices/{}/refund", invoice["invoiceId"].as_str().unwrap());
        let (status, answer) = s.app.call("POST", &path, Some("admin"), Some(body)).await;
        assert_eq!(status, 200, "{answer}");
    }
    s.emulator.flush().await;

    let reported = reported(&s, start).await;

    // The brute-force recount: every invoice in the table, what was collected on
    // it, its partner's rep, the schedule's rate on the day it was paid.
    let recount = |items: Vec<Value>| {
        let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for i in invoices(items).iter().filter(|i| i["status"] == "paid") {
            let net = (i["amountPaid"].as_i64().unwrap() - i["refundedAmount"].as_i64().unwrap_or(0)).max(0);
            let bp = if i["paidAt"].as_str().unwrap() < raised_at.as_str() { 1_000 } else { 1_250 };
            let rep = &reps[i["partnerId"].as_str().unwrap()];
            let t = expected.entry(rep.clone()).or_default();
            t.0 += share(net, bp);
            t.1 += net;
        }
        expected
    };
    let expected = recount(s.app.items().await);
    assert!(expected["rep-a"].0 > 0 && expected["rep-b"].0 > 0, "{expected:?}");
    assert_eq!(reported, expected, "commission and collected revenue per rep, to the cent");
    let raised = invoices(s.app.items().await).iter().filter(|i| i["commission"]["basisPoints"] == 1_250).count();
    assert!(raised > 0 && raised < 36, "the rate change applies to invoices paid after it: {raised}");

    // Every payment and refund event again, newest first, twice: nothing changes.
    let events = s.events().await;
    let replayed: Vec<String> = events
        .iter()
        .filter(|e| {
            matches!(e["type"].as_str(), Some("invoice.paid" | "invoice.payment_succeeded" | "credit_note.created"))
        })
        .map(|e| e["event"].to_string())
        .collect();
    assert!(replayed.len() >= 36, "{}", replayed.len());
    for payload in replayed.iter().rev().chain(replayed.iter().rev()) {
        assert_eq!(deliver(&s, payload).await, 200);
    }
    assert_eq!(
        super::commissions::reported(&s, start).await,
        expected,
        "redelivered and out-of-order events earned nothing more"
    );

    // A partner's own invoices never show who earns on them.
    let (id, _) = reps.iter().next().unwrap();
    let (_, own) = s.app.call_with_token("GET", "/api/billing/invoices", &s.app.partner_token(id), None).await;
    assert!(own["items"].as_array().unwrap().iter().all(|i| i.get("commission").is_none() && i["salesRep"].is_null()));
}

/// Chargebacks (`charge.dispute.*`) reverse a rep's commission like a refund while
/// the dispute is open and when it is lost, and restore it when it is won; every
/// dispute event again, newest first, twice, changes nothing; and the totals equal
/// a recount from the invoice records.
#[tokio::test]
async fn chargebacks_reverse_commission_until_won_exactly_once() {
    let s = StripeApp::start().await;
    let start = chrono::Utc::now().date_naive();
    set_rate(&s, 1_000, NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()).await;
    let mut reps = BTreeMap::new();
    for (company, rep) in [("Won Co", "rep-a"), ("Lost Co", "rep-b")] {
        let (id, token) = partner_of(&s, company, rep).await;
        s.subscribe(&token, "gold", "monthly").await;
        reps.insert(id, rep.to_string());
    }
    let paid = invoices(s.app.items().await);
    assert_eq!(paid.len(), 2);
    let invoice_of = |rep: &str| {
        let partner = reps.iter().find(|(_, r)| r.as_str() == rep).unwrap().0.clone();
        paid.iter().find(|i| i["partnerId"] == partner.as_str()).unwrap()["invoiceId"].as_str().unwrap().to_string()
    };
    let before = reported(&s, start).await;
    assert_eq!(before["rep-a"], (36_000, 360_000), "{before:?}");

    // rep-a's customer disputes all of it, and the business wins; rep-b's disputes
    // a part, and the business loses.
    let open = |invoice: String, body: Value| {
        let url = s.control(&format!("invoices/{invoice}/dispute"));
        async move { tierdesk_tests::stripe::post(&url, body).await }
    };
    let (status, won) = open(invoice_of("rep-a"), json!({})).await;
    assert_eq!(status, 200, "{won}");
    let (status, lost) = open(invoice_of("rep-b"), json!({"amount": 100_001, "reason": "product_not_received"})).await;
    assert_eq!(status, 200, "{lost}");
    s.emulator.flush().await;
    let during = reported(&s, start).await;
    assert_eq!(during["rep-a"], (0, 0), "an open dispute holds everything back: {during:?}");
    assert_eq!(during["rep-b"], (share(259_999, 1_000), 259_999), "{during:?}");

    for (dispute, outcome) in [(&won, "won"), (&lost, "lost")] {
        let url = s.control(&format!("disputes/{}/close", dispute["id"].as_str().unwrap()));
        let (status, closed) = tierdesk_tests::stripe::post(&url, json!({"status": outcome})).await;
        assert_eq!((status, closed["status"].as_str()), (200, Some(outcome)), "{closed}");
    }
    s.emulator.flush().await;
    let after = reported(&s, start).await;
    assert_eq!(after["rep-a"], (36_000, 360_000), "a won dispute earns it back");
    assert_eq!(after["rep-b"], (share(259_999, 1_000), 259_999), "a lost one stays reversed");

    // The recount from the records, and the records say why.
    let records = invoices(s.app.items().await);
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for i in &records {
        let held: i64 = i["disputes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] != "won")
            .map(|d| d["amount"].as_i64().unwrap())
            .sum();
        let net = i["amountPaid"].as_i64().unwrap() - held;
        let t = expected.entry(reps[i["partnerId"].as_str().unwrap()].clone()).or_default();
        t.0 += share(net, 1_000);
        t.1 += net;
    }
    assert_eq!(after, expected);

    // Every dispute event again, newest first, twice (a `created` after its `closed`).
    let replayed: Vec<String> = s
        .events()
        .await
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("charge.dispute.")))
        .map(|e| e["event"].to_string())
        .collect();
    assert_eq!(replayed.len(), 7, "2 × (created, funds_withdrawn, closed) and one funds_reinstated");
    for payload in replayed.iter().rev().chain(replayed.iter().rev()) {
        assert_eq!(deliver(&s, payload).await, 200);
    }
    assert_eq!(reported(&s, start).await, after, "redelivered and out-of-order dispute events moved nothing");
}

#[tokio::test]
async fn every_role_on_every_commission_route_and_bad_input_names_the_field() {
    let app = TestApp::seeded().await;
    let (status, body) = app
        .call(
            "PUT",
            "/api/admin/commissions/rates/standard",
            Some("admin"),
            Some(json!({"basisPoints": 800, "effectiveFrom": "2026-01-01"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let roles = [None, Some("partner"), Some("service"), Some("sales_rep"), Some("sales_manager"), Some("admin")];
    for role in roles {
        let staff = matches!(role, Some("sales_rep" | "sales_manager" | "admin"));
        let manager = matches!(role, Some("sales_manager" | "admin"));
        app.assert_access("GET", "/api/admin/commissions/rates", role, None, staff).await;
        let rate = json!({"basisPoints": 900, "effectiveFrom": "2026-02-01"});
        app.assert_access("PUT", "/api/admin/commissions/rates/standard", role, Some(rate), role == Some("admin"))
            .await;
        app.assert_access("GET", "/api/admin/commissions/statement", role, None, staff).await;
        app.assert_access("GET", "/api/admin/commissions/statement?repId=someone-else", role, None, manager).await;
        app.assert_access("GET", "/api/admin/commissions/summary", role, None, manager).await;
        let targets = json!({"reps": {"rep-a": 1_000_000}, "segments": {"standard": 5_000_000}});
        app.assert_access("PUT", "/api/admin/commissions/targets/2026-03", role, Some(targets), manager).await;
    }
    // A rep reads their own statement, with the target a manager set.
    let rep = app.token_as("sales_rep", "rep-a");
    let (status, own) = app.call_with_token("GET", "/api/admin/commissions/statement?month=2026-03", &rep, None).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(
        (own["repId"].as_str(), own["target"].as_i64(), own["commission"].as_i64()),
        (Some("rep-a"), Some(1_000_000), Some(0))
    );
    assert_eq!(own["attainmentBasisPoints"], 0);
    let (_, summary) = app.call("GET", "/api/admin/commissions/summary?month=2026-03", Some("admin"), None).await;
    assert_eq!(
        summary["segments"][0],
        json!({"id": "standard", "commission": 0, "revenue": 0, "target": 5_000_000, "attainmentBasisPoints": 0})
    );
    let (status, rates) = app.call("GET", "/api/admin/commissions/rates", Some("sales_rep"), None).await;
    assert_eq!((status, rates["items"].as_array().map(Vec::len)), (200, Some(2)), "{rates}");

    let before = app.snapshot().await;
    for (method, path, body, field) in [
        (
            "PUT",
            "/api/admin/commissions/rates/standard",
            json!({"basisPoints": 9_000, "effectiveFrom": "2026-01-01"}),
            "basisPoints",
        ),
        (
            "PUT",
            "/api/admin/commissions/rates/standard",
            json!({"basisPoints": 900, "effectiveFrom": "2026-02-30"}),
            "effectiveFrom",
        ),
        ("PUT", "/api/admin/commissions/rates/standard", json!({"basisPoints": 900}), "effectiveFrom"),
        ("PUT", "/api/admin/commissions/targets/2026-03", json!({"reps": {"rep-a": -5}}), "reps.rep-a"),
        ("PUT", "/api/admin/commissions/targets/2026-03", json!({}), "reps"),
        ("PUT", "/api/admin/commissions/targets/2026-3", json!({"reps": {"rep-a": 5}}), "month"),
    ] {
        let (status, answer) = app.call(method, path, Some("admin"), Some(body)).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(answer["error"]["details"]["fields"][field].is_string(), "{field}: {answer}");
    }
    for path in ["/api/admin/commissions/summary?month=2026-13", "/api/admin/commissions/statement?format=pdf"] {
        let (status, answer) = app.call("GET", path, Some("admin"), None).await;
        assert_eq!(status, 400, "{path}: {answer}");
    }
    let (status, _) = app
        .call(
            "PUT",
            "/api/admin/commissions/rates/nowhere",
            Some("admin"),
            Some(json!({"basisPoints": 900, "effectiveFrom": "2026-02-01"})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(app.snapshot().await, before);
}
