//! Staff alerts and KPIs against the local stack (DynamoDB Local + the SES
//! emulator): cancellations counted in their transitions' transactions, a rule
//! crossed fires one email per window under reruns and concurrent runs, the claim
//! lease, the role matrix, bad input, and the month's KPIs.

use chrono::{Duration, Utc};
use expiry_cron::{CronConfig, ExpiryCron, RunDate};
use serde_json::{json, Value};
use tierdesk::domain::alerts::{Alert, AlertMetric, AlertState};
use tierdesk::mail::{MailConfig, Mailer};
use tierdesk::store::AlertStore;
use tierdesk_tests::{ses, TestApp};

fn address(tag: &str) -> String {
    format!("{tag}-{}@alerts.example.com", ulid::Ulid::new().to_string().to_lowercase())
}

async fn cron(app: &TestApp) -> ExpiryCron {
    let mailer = Mailer::connect(&MailConfig::local(ses::endpoint()), app.store.clone()).await;
    ExpiryCron::new(app.function_app(), mailer, CronConfig::default())
}

/// A partner who subscribes to gold and cancels today.
async fn cancels(app: &TestApp, name: &str) {
    let id = app.create_partner(name).await["partnerId"].as_str().unwrap().to_string();
    let path = format!("/api/admin/partners/{id}/engagement-tier");
    let (status, body) = app.call("PATCH", &path, Some("admin"), Some(json!({"tier": "gold"}))).await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/api/admin/partners/{id}/cancel");
    let (status, body) = app.call("POST", &path, Some("admin"), Some(json!({"reason": "budget"}))).await;
    assert_eq!(status, 200, "{body}");
}

fn rule(name: &str, metric: &str, threshold: i64, to: &str) -> Value {
    json!({"name": name, "metric": metric, "threshold": threshold, "recipients": [to]})
}

#[tokio::test]
async fn a_crossed_rule_emails_its_recipients_once_per_window() {
    let app = TestApp::seeded().await;
    let ops = address("ops");
    let (status, created) = app
        .call(
            "PUT",
            "/api/admin/alert-rules/cancellations",
            Some("admin"),
            Some(rule("Cancellations", "cancellations_per_week", 1, &ops)),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["version"], 1);
    // A rule that does not fire: no payment failed.
    let (status, _) = app
        .call(
            "PUT",
            "/api/admin/alert-rules/failures",
            Some("admin"),
            Some(rule("Failures", "payment_failures_per_day", 0, &ops)),
        )
        .await;
    assert_eq!(status, 201);

    cancels(&app, "Alert One").await;
    cancels(&app, "Alert Two").await;
    let today = Utc::now().date_naive();
    let counted = app.store.ops_days(&today.to_string(), &today.to_string()).await.unwrap();
    assert_eq!(counted.len(), 1);
    assert_eq!(counted[0].1.cancellations, 2);

    // The next day's runs: one twice, four at once.
    let tomorrow = today + Duration::days(1);
    let cron = cron(&app).await;
    let first = cron.run(&RunDate::for_date(tomorrow)).await.unwrap();
    assert_eq!(first.steps.get("staff_alerts"), Some(&1), "{first:?}");
    cron.run(&RunDate::for_date(tomorrow)).await.unwrap();
    let run = RunDate::for_date(tomorrow);
    futures::future::join_all((0..4).map(|_| cron.run(&run))).await;
    let mail = ses::emails_to(&ops).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["subject"], "Tierdesk alert: Cancellations");
    assert!(
        mail[0]["body"]["text"].as_str().unwrap_or_default().contains("Cancellations: 2 in week 20"),
        "{}",
        mail[0]
    );

    let (status, list) = app.call("GET", "/api/admin/alerts", Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{list}");
    let alerts = list["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{list}");
    assert_eq!((alerts[0]["ruleId"].as_str(), alerts[0]["value"].as_i64()), (Some("cancellations"), Some(2)));
    assert_eq!(alerts[0]["state"], "sent");

    // The KPIs of this month count the same cancellations.
    let month = tierdesk::domain::analytics::month_of(today);
    let (status, kpis) =
        app.call("GET", &format!("/api/admin/analytics/kpis?month={month}"), Some("admin"), None).await;
    assert_eq!(status, 200, "{kpis}");
    assert_eq!(kpis["cancellations"], 2);
    assert!(kpis["paymentSuccessRate"].is_null(), "no payment this month: {kpis}");
    assert!(kpis["needsInput"].as_array().unwrap().len() >= 3);
}

#[tokio::test]
async fn an_alert_claim_holds_until_its_lease_lapses() {
    let app = TestApp::new().await;
    let alert = |claim: &str, lease_until: &str| Alert {
        alert_id: "2026-12-06#r".into(),
        rule_id: "r".into(),
        name: "R".into(),
        metric: AlertMetric::PaymentFailuresPerDay,
        value: 9,
        threshold: 1,
        window: "2026-12-06".into(),
        message: "m".into(),
        state: AlertState::Sending,
        fired_at: "2026-12-07T06:15:00.000Z".into(),
        claim: claim.into(),
        lease_until: lease_until.into(),
        sent_at: None,
    };
    let first = alert("a", "2026-12-07T06:30:00.000Z");
    assert!(app.store.claim_alert(&first, "2026-12-07T06:15:00.000Z").await.unwrap());
    // Another run inside the lease: refused.
    assert!(!app.store.claim_alert(&alert("b", "2026-12-07T06:45:00.000Z"), "2026-12-07T06:20:00.000Z").await.unwrap());
    // After it, the lapsed claim is taken over; the first run can no longer mark it.
    let second = alert("c", "2026-12-07T07:00:00.000Z");
    assert!(app.store.claim_alert(&second, "2026-12-07T06:31:00.000Z").await.unwrap());
    assert!(!app.store.mark_alert_sent(&first, "2026-12-07T06:32:00.000Z").await.unwrap());
    assert!(app.store.mark_alert_sent(&second, "2026-12-07T06:33:00.000Z").await.unwrap());
    // Sent: never claimed again, whatever the time.
    assert!(!app.store.claim_alert(&alert("d", "2027-01-01T00:00:00.000Z"), "2026-12-31T00:00:00.000Z").await.unwrap());
    // A released claim (its email failed) is claimed by the next run.
    let other = Alert { alert_id: "2026-12-06#s".into(), ..alert("e", "2026-12-07T06:30:00.000Z") };
    assert!(app.store.claim_alert(&other, "2026-12-07T06:15:00.000Z").await.unwrap());
    assert!(app.store.release_alert(&other).await.unwrap());
    assert!(app.store.claim_alert(&Alert { claim: "f".into(), ..other }, "2026-12-07T06:16:00.000Z").await.unwrap());
}

#[tokio::test]
async fn alert_rules_roles_versions_and_bad_input() {
    let app = TestApp::seeded().await;
    let ops = address("rules");
    let body = rule("Churn", "churn_rate", 500, &ops);
    let path = "/api/admin/alert-rules/churn";
    for role in ["sales_rep", "sales_manager"] {
        app.assert_access("PUT", path, Some(role), Some(body.clone()), false).await;
    }
    app.assert_access("PUT", path, Some("partner"), Some(body.clone()), false).await;
    app.assert_access("PUT", path, None, Some(body.clone()), false).await;
    app.assert_access("GET", "/api/admin/alert-rules", Some("sales_rep"), None, false).await;
    app.assert_access("GET", "/api/admin/alerts", Some("sales_rep"), None, false).await;
    app.assert_access("GET", "/api/admin/analytics/kpis", Some("sales_rep"), None, false).await;
    app.assert_access("GET", "/api/admin/alert-rules", Some("sales_manager"), None, true).await;

    let (status, created) = app.call("PUT", path, Some("admin"), Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    // Again without the version: a conflict naming the current one.
    let (status, again) = app.call("PUT", path, Some("admin"), Some(body.clone())).await;
    assert_eq!((status, again["error"]["details"]["currentVersion"].as_i64()), (409, Some(1)), "{again}");
    let mut change = body.clone();
    change["threshold"] = json!(800);
    change["version"] = json!(1);
    let (status, changed) = app.call("PUT", path, Some("admin"), Some(change.clone())).await;
    assert_eq!((status, changed["version"].as_i64(), changed["threshold"].as_i64()), (200, Some(2), Some(800)));
    let (status, _) = app.call("PUT", path, Some("admin"), Some(change)).await;
    assert_eq!(status, 409, "a stale version");
    let mut ghost = body.clone();
    ghost["version"] = json!(3);
    let (status, _) = app.call("PUT", "/api/admin/alert-rules/ghost", Some("admin"), Some(ghost)).await;
    assert_eq!(status, 404);

    let (_, list) = app.call("GET", "/api/admin/alert-rules", Some("admin"), None).await;
    assert_eq!(list["rules"].as_array().unwrap().len(), 1);
    for (ask, field) in [
        (json!({"name": "x", "metric": "mood", "threshold": 1, "recipients": [ops]}), "metric"),
        (json!({"name": "x", "metric": "churn_rate", "threshold": -1, "recipients": [ops]}), "threshold"),
        (json!({"name": "x", "metric": "churn_rate", "threshold": 1, "recipients": []}), "recipients"),
        (json!({"name": "x", "metric": "churn_rate", "threshold": 1, "recipients": ["nobody"]}), "recipients"),
        (json!({"name": "", "metric": "churn_rate", "threshold": 1, "recipients": [ops]}), "name"),
        (json!({"name": "x", "metric": "churn_rate", "threshold": 1, "recipients": [ops], "state": "sent"}), "state"),
    ] {
        let before = app.snapshot().await;
        let (status, out) = app.call("PUT", "/api/admin/alert-rules/new-rule", Some("admin"), Some(ask.clone())).await;
        assert_eq!(status, 400, "{ask}: {out}");
        assert!(out["error"]["details"]["fields"][field].is_string(), "{ask}: {out}");
        assert_eq!(app.snapshot().await, before, "{ask} wrote something");
    }
    let (status, out) = app.call("PUT", "/api/admin/alert-rules/Bad%20Id", Some("admin"), Some(body)).await;
    assert_eq!(status, 400, "{out}");
    for bad in ["13", "2026-13", "2999-01", "26-01"] {
        let (status, out) =
            app.call("GET", &format!("/api/admin/analytics/kpis?month={bad}"), Some("admin"), None).await;
        assert_eq!(status, 400, "{bad}: {out}");
        assert!(out["error"]["details"]["fields"]["month"].is_string());
    }
}

/// A first payment that arrives as the invoice (the activation path of
/// `record_payment`): the transition and the paid invoice record write their
/// counts to one day's item, once, in one transaction.
#[tokio::test]
async fn a_first_payment_counts_its_transition_and_its_invoice_in_one_item() {
    use tierdesk::domain::billing::{BillingChange, InvoiceRecord};
    use tierdesk::domain::money::BillingPeriod;
    use tierdesk::domain::partner::NewPartner;
    use tierdesk::domain::subscription::{
        plan_signup, plan_tier_change, Catalog, TierChange, TransitionContext, Trigger, TriggerType,
    };
    use tierdesk::store::{BillingWrite, InvoiceStore, PartnerStore, TierStore};
    let app = TestApp::seeded().await;
    let tiers = app.store.all_tiers().await.unwrap();
    let catalog = Catalog::new(&tiers);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let ctx = |id: &str| TransitionContext {
        today: day,
        at: "2026-11-20T10:00:00.000Z".into(),
        actor: "stripe".into(),
        request_id: None,
        transition_id: format!("t{id}"),
        movement_id: format!("m{id}"),
        trigger: Trigger { trigger_type: TriggerType::SelfService, sales_rep: None, promotion_id: None, reason: None },
    };
    let new = NewPartner::parse(&json!({"companyName": "First Co", "primaryEmail": address("first")})).unwrap();
    let signup = plan_signup("prt_first", new, catalog, &ctx("1")).unwrap();
    let audit = |id: &str| tierdesk::domain::audit::AuditEntry {
        audit_id: id.into(),
        entity_type: "partner",
        entity_id: "prt_first".into(),
        action: "partner.test",
        actor: "stripe".into(),
        at: "2026-11-20T10:00:00.000Z".into(),
        request_id: "r".into(),
        before: None,
        after: None,
    };
    app.store.apply_transition(&signup, &audit("a1")).await.unwrap();
    let change = TierChange {
        tier: "gold".into(),
        billing_period: Some(BillingPeriod::Monthly),
        subscription_end_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 20),
        ..TierChange::default()
    };
    let paid = plan_tier_change(&signup.after, &change, catalog, &ctx("2")).unwrap();
    assert!(paid.after.first_paid_date.is_some());
    let record: InvoiceRecord = serde_json::from_value(json!({
        "invoiceId": "in_first", "partnerId": "prt_first", "invoiceNumber": null, "amount": 360_000,
        "amountPaid": 360_000, "currency": "usd", "tier": "gold", "billingReason": "subscription_create",
        "periodStart": null, "periodEnd": null, "status": "paid", "paidAt": "2026-11-20T10:00:00.000Z",
        "invoiceUrl": null, "pdfUrl": null, "attemptCount": 1, "stripeSubscriptionId": null,
        "stripeCreated": 1_795_168_800, "createdAt": "2026-11-20T10:00:00.000Z", "updatedAt": "2026-11-20T10:00:00.000Z"
    }))
    .unwrap();
    let change = BillingChange::Transition(Box::new(paid));
    let write = BillingWrite {
        change: Some(&change),
        audit: Some(&audit("a2")),
        invoice: Some((&record, None)),
        event: None,
        pending_email: None,
        commission: None,
    };
    app.store.apply_billing(&write).await.unwrap();
    let days = app.store.ops_days("2026-11-20", "2026-11-20").await.unwrap();
    assert_eq!(days.len(), 1);
    let c = days[0].1;
    assert_eq!((c.payments_succeeded, c.first_payments, c.payment_failures), (1, 1, 0), "{c:?}");
    assert_eq!(app.store.get_partner("prt_first").await.unwrap().unwrap().engagement_tier, "gold");
}
