//! Campaign automation against the local stack (DynamoDB Local + the SES
//! emulator; docs/campaigns.md): a trigger replayed over 13 months of daily runs
//! (some repeated, some concurrent) sends exactly what the cooldown, the frequency
//! cap and the daily cap allow, counted against a brute-force model; personal
//! codes are single-use and bound to their partner; unsubscribed partners get no
//! email; conversions are attributed once; the routes' roles and bad input.

use chrono::{Duration, NaiveDate};
use expiry_cron::campaigns::Campaigns;
use expiry_cron::{DailyStep, RunDate};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tierdesk::domain::campaign::TriggerKind;
use tierdesk::mail::{MailConfig, Mailer};
use tierdesk::store::{CampaignSignal, CampaignStore};
use tierdesk_tests::{ses, TestApp};

const ADMIN: &str = "/api/admin/campaigns";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn step(app: &TestApp) -> Campaigns {
    let mailer = Mailer::connect(&MailConfig::local(ses::endpoint()), app.store.clone()).await;
    Campaigns {
        mailer,
        clock: app.function_app().clock.clone(),
        lease_secs: 900,
        daily_cap: 1,
        portal_url: "http://127.0.0.1:3000/partner-portal".into(),
    }
}

fn campaign_body(extra: Value) -> Value {
    let mut b = json!({
        "name": "Payment trouble",
        "type": "retention",
        "trigger": {"type": "payment_failed"},
        "content": {"subject": "{{companyName}}: your {{tierName}} payment", "body": "Update your card at {{portalUrl}}."},
        "channels": ["email", "in_app"],
        "cooldownDays": 10,
        "maxFrequency": {"count": 2, "periodDays": 30},
        "startDate": "2025-01-01"
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

async fn launched(app: &TestApp, body: Value) -> Value {
    let (status, created) = app.call("POST", ADMIN, Some("sales_manager"), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "draft");
    let id = created["campaignId"].as_str().unwrap();
    let (status, active) = app.call("POST", &format!("{ADMIN}/{id}/launch"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(active["status"], "active");
    active
}

fn signal(partner: &str, source: &str, on: NaiveDate) -> CampaignSignal {
    CampaignSignal {
        trigger: TriggerKind::PaymentFailed,
        partner_id: partner.into(),
        source: source.into(),
        at: format!("{on}T12:00:00.000Z"),
        tier: Some("gold".into()),
    }
}

/// The rules as docs/campaigns.md states them, written again independently: each
/// run on day D sees the signals of D−3..D−1; each (partner, source) not yet
/// sent is tried in (partner, source) order; it goes out unless the partner got
/// this campaign within the cooldown, or its frequency period (a fixed window
/// from the first send after the last one ended) is full, or the partner already
/// got a marketing email that day.
struct Model {
    cooldown: i64,
    max: u32,
    period: i64,
    sent: BTreeSet<(String, String)>,
    last: HashMap<String, NaiveDate>,
    window: HashMap<String, (NaiveDate, u32)>,
    per_partner: BTreeMap<String, usize>,
}

impl Model {
    fn run(&mut self, run: NaiveDate, signals: &[(NaiveDate, String, String)]) {
        let due: BTreeSet<(String, String)> = signals
            .iter()
            .filter(|(d, _, _)| *d >= run - Duration::days(3) && *d < run)
            .map(|(_, p, s)| (p.clone(), s.clone()))
            .collect();
        let mut emailed_today: BTreeSet<String> = BTreeSet::new();
        for (p, s) in due {
            if self.sent.contains(&(p.clone(), s.clone())) {
                continue;
            }
            if self.last.get(&p).is_some_and(|l| run < *l + Duration::days(self.cooldown)) {
                continue;
            }
            let (start, n) = match self.window.get(&p) {
                Some((start, n)) if run < *start + Duration::days(self.period) => (*start, *n),
                _ => (run, 0),
            };
            if n >= self.max || emailed_today.contains(&p) {
                continue;
            }
            self.window.insert(p.clone(), (start, n + 1));
            self.last.insert(p.clone(), run);
            emailed_today.insert(p.clone());
            *self.per_partner.entry(p.clone()).or_default() += 1;
            self.sent.insert((p, s));
        }
    }
}

#[tokio::test]
async fn thirteen_months_of_daily_runs_send_exactly_what_the_rules_allow() {
    let app = TestApp::seeded().await;
    let campaign = launched(&app, campaign_body(json!({}))).await;
    let id = campaign["campaignId"].as_str().unwrap().to_string();
    let mut partners = Vec::new();
    for name in ["Replay Alpha", "Replay Beta", "Replay Gamma", "Replay Delta"] {
        let p = app.create_partner(name).await;
        partners.push((p["partnerId"].as_str().unwrap().to_string(), p["primaryEmail"].as_str().unwrap().to_string()));
    }
    let step = step(&app).await;
    let mut model = Model {
        cooldown: 10,
        max: 2,
        period: 30,
        sent: BTreeSet::new(),
        last: HashMap::new(),
        window: HashMap::new(),
        per_partner: BTreeMap::new(),
    };
    let first = day("2025-11-01");
    let mut signals: Vec<(NaiveDate, String, String)> = Vec::new();
    for i in 0..395i64 {
        let today = first + Duration::days(i);
        // Failed payments on a fixed pseudo-random pattern; an invoice failing again
        // on the next days repeats its source (the same occasion).
        for (k, (pid, _)) in partners.iter().enumerate() {
            let k = k as i64;
            if (i * 7 + k * 13) % 23 < 2 || (i + k * 5) % 41 == 0 {
                let source = format!("in_{k}_{}", (i + k) / 4);
                app.store.put_campaign_signal(&today.to_string(), &signal(pid, &source, today)).await.unwrap();
                signals.push((today, pid.clone(), source));
            }
        }
        let run = RunDate::for_date(today);
        if i % 15 == 7 {
            // Two runs at once: the claims keep each occasion and cap to one send.
            let (a, b) = futures::join!(step.run(&app.store, &run), step.run(&app.store, &run));
            a.unwrap();
            b.unwrap();
        } else {
            step.run(&app.store, &run).await.unwrap();
            if i % 10 == 3 {
                assert_eq!(step.run(&app.store, &run).await.unwrap(), 0, "a rerun sends nothing (day {today})");
            }
        }
        model.run(today, &signals);
    }
    let total: usize = model.per_partner.values().sum();
    assert!(total >= 20, "the pattern must send often enough to test the rules: {total}");
    let occasions: BTreeSet<(String, String)> = signals.iter().map(|(_, p, s)| (p.clone(), s.clone())).collect();
    assert!(occasions.len() > total + 10, "the rules must refuse some: {} occasions, {total} sent", occasions.len());

    for (pid, email) in &partners {
        let mail = ses::emails_to(email).await;
        let expected = model.per_partner.get(pid).copied().unwrap_or(0);
        assert_eq!(mail.len(), expected, "emails to {pid}");
        // Brute force on the emails themselves: no two within the cooldown.
        let (_, list) = app.call_with_token("GET", "/api/billing/messages", &app.partner_token(pid), None).await;
        assert_eq!(list["messages"].as_array().unwrap().len(), expected.min(50), "in-app messages of {pid}: {list}");
        if let Some(first_mail) = mail.first() {
            let subject = first_mail["subject"].as_str().unwrap();
            assert!(subject.starts_with("Replay ") && subject.ends_with("your Free Tier payment"), "{subject}");
            let text = first_mail["body"]["text"].as_str().unwrap();
            assert!(text.contains("Update your card at http://127.0.0.1:3000/partner-portal."), "{text}");
            assert!(text.contains("To stop marketing email"), "{text}");
        }
    }
    let (status, insights) = app.call("GET", &format!("{ADMIN}/{id}/insights"), Some("admin"), None).await;
    assert_eq!(status, 200, "{insights}");
    assert_eq!(insights["totals"]["sent"], total as i64, "{insights}");
    assert_eq!(insights["totals"]["emails"], total as i64);
    assert_eq!(insights["totals"]["inApp"], total as i64);
    assert_eq!(insights["variants"][0]["sent"], total as i64);
    assert!(insights["skipped"]["cooldown"].as_i64().unwrap_or(0) > 0, "{insights}");
    assert!(insights["opens"].is_null());

    // An erasure blanks the messages' text (they name the partner) and keeps the sends.
    let (pid, _) = partners.iter().max_by_key(|(p, _)| model.per_partner.get(p).copied().unwrap_or(0)).unwrap();
    let body = json!({"confirmPartnerId": pid});
    let (status, report) =
        app.call("POST", &format!("/api/admin/partners/{pid}/erase"), Some("admin"), Some(body)).await;
    assert_eq!(status, 200, "{report}");
    let (_, list) = app.call_with_token("GET", "/api/billing/messages", &app.partner_token(pid), None).await;
    let messages = list["messages"].as_array().unwrap();
    assert!(!messages.is_empty());
    for m in messages {
        assert_eq!((m["subject"].as_str(), m["body"].as_str()), (Some("[erased]"), Some("[erased]")), "{m}");
    }
    // And no campaign reaches an erased partner again.
    let later = first + Duration::days(400);
    app.store.put_campaign_signal(&later.to_string(), &signal(pid, "in_after_erasure", later)).await.unwrap();
    let next = RunDate::for_date(later + Duration::days(1));
    assert_eq!(step.run(&app.store, &next).await.unwrap(), 0);
    let (_, after) = app.call_with_token("GET", "/api/billing/messages", &app.partner_token(pid), None).await;
    assert_eq!(after["messages"].as_array().unwrap().len(), messages.len());
    let (_, insights) = app.call("GET", &format!("{ADMIN}/{id}/insights"), Some("admin"), None).await;
    assert_eq!(insights["skipped"]["erased"], 1, "{insights}");
}

#[tokio::test]
async fn personal_codes_are_bound_unsubscribed_partners_get_no_email_and_conversions_count_once() {
    use tierdesk::domain::partner::NewPartner;
    use tierdesk::domain::subscription::{
        plan_signup, plan_tier_change, Catalog, TierChange, TransitionContext, Trigger, TriggerType,
    };
    use tierdesk::store::{PartnerStore, TierStore};
    let app = TestApp::seeded().await;
    // A code-only promotion, once per customer: it can back personal codes.
    let (status, promo) = app
        .call(
            "POST",
            "/api/admin/promotions",
            Some("sales_manager"),
            Some(json!({
                "name": "Stay with us", "description": "20% off", "discountType": "percentage",
                "discountValue": 20, "appliesTo": "both", "startDate": "2026-01-01", "endDate": "2099-12-31",
                "redemptionsPerUser": 1, "promotionCodes": ["STAY-BASE"]
            })),
        )
        .await;
    assert_eq!(status, 201, "{promo}");
    let promo_id = promo["promotionId"].as_str().unwrap().to_string();
    let body = campaign_body(json!({
        "content": {"subject": "A code for {{companyName}}", "body": "Use {{promoCode}} by {{offerEndDate}}."},
        "offer": {"promotionId": promo_id},
        "cooldownDays": 0,
        "maxFrequency": {"count": 5, "periodDays": 30},
        "attributionWindowDays": 7
    }));
    let (status, draft) = app.call("POST", ADMIN, Some("sales_manager"), Some(body)).await;
    assert_eq!(status, 201, "{draft}");
    let id = draft["campaignId"].as_str().unwrap().to_string();
    // The promotion is still a draft: launching is refused, naming the field.
    let (status, refused) = app.call("POST", &format!("{ADMIN}/{id}/launch"), Some("sales_manager"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("offer_not_usable")), "{refused}");
    let (status, submitted) =
        app.call("POST", &format!("/api/admin/promotions/{promo_id}/submit"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{submitted}");
    if submitted["status"] == "pending_approval" {
        let path = format!("/api/admin/promotions/{promo_id}/approve");
        assert_eq!(app.call("POST", &path, Some("admin"), None).await.0, 200);
    }
    let (status, active) = app.call("POST", &format!("{ADMIN}/{id}/launch"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{active}");
    // Launching again answers the same; pausing a draft-only move is refused.
    let (status, again) = app.call("POST", &format!("{ADMIN}/{id}/launch"), Some("sales_manager"), None).await;
    assert_eq!((status, again["version"].clone()), (200, active["version"].clone()));

    // Two partners on free (signed up on day 0), one of them unsubscribed.
    let tiers = app.store.all_tiers().await.unwrap();
    let catalog = Catalog::new(&tiers);
    let d0 = day("2026-03-02");
    let ctx = |d: NaiveDate, n: &str, promotion: Option<String>| TransitionContext {
        today: d,
        at: format!("{d}T10:00:00.000Z"),
        actor: "test".into(),
        request_id: None,
        transition_id: format!("t{n}"),
        movement_id: format!("m{n}"),
        trigger: Trigger {
            trigger_type: TriggerType::SelfService,
            sales_rep: None,
            promotion_id: promotion,
            reason: None,
        },
    };
    let audit = |n: &str, pid: &str| tierdesk::domain::audit::AuditEntry {
        audit_id: format!("a{n}"),
        entity_type: "partner",
        entity_id: pid.into(),
        action: "partner.test",
        actor: "test".into(),
        at: "2026-03-02T10:00:00.000Z".into(),
        request_id: "r".into(),
        before: None,
        after: None,
    };
    let tag = ulid::Ulid::new().to_string().to_lowercase();
    let mut signups = Vec::new();
    for (n, name) in ["Keen", "Quiet"].iter().enumerate() {
        let email = format!("{}-{tag}@campaigns.example.com", name.to_lowercase());
        let new = NewPartner::parse(&json!({"companyName": format!("{name} Co"), "primaryEmail": email})).unwrap();
        let pid = format!("prt_{}{}", name.to_lowercase(), &tag[..8]);
        let s = plan_signup(&pid, new, catalog, &ctx(d0, &format!("s{n}"), None)).unwrap();
        app.store.apply_transition(&s, &audit(&format!("s{n}"), &pid)).await.unwrap();
        signups.push((pid, email, s.after));
    }
    let (keen, keen_email, _) = &signups[0];
    let (quiet, quiet_email, _) = &signups[1];
    let quiet_token = app.partner_token(quiet);
    let (status, prefs) = app
        .call_with_token(
            "PUT",
            "/api/billing/marketing-preferences",
            &quiet_token,
            Some(json!({"marketingEmails": false})),
        )
        .await;
    assert_eq!((status, prefs["marketingEmails"].as_bool()), (200, Some(false)), "{prefs}");
    let (status, bad) = app
        .call_with_token(
            "PUT",
            "/api/billing/marketing-preferences",
            &quiet_token,
            Some(json!({"marketingEmails": "no"})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["details"]["fields"]["marketingEmails"].is_string(), "{bad}");

    for (pid, _, _) in &signups {
        app.store.put_campaign_signal(&d0.to_string(), &signal(pid, "in_offer", d0)).await.unwrap();
    }
    let step = step(&app).await;
    let d1 = d0 + Duration::days(1);
    assert_eq!(step.run(&app.store, &RunDate::for_date(d1)).await.unwrap(), 2);

    // Keen got the email with a personal code; Quiet only the in-app message.
    let mail = ses::emails_to(keen_email).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let text = mail[0]["body"]["text"].as_str().unwrap().to_string();
    let code: String = text.split_whitespace().find(|w| w.starts_with("OFFER-")).unwrap().to_string();
    assert!(text.contains("by 2099-12-31."), "{text}");
    assert!(ses::emails_to(quiet_email).await.is_empty(), "unsubscribed: no email");
    let (_, quiet_messages) = app.call_with_token("GET", "/api/billing/messages", &quiet_token, None).await;
    let message = quiet_messages["messages"][0].clone();
    assert_eq!(quiet_messages["unread"], 1, "{quiet_messages}");
    let quiet_code = message["promoCode"].as_str().unwrap().to_string();
    assert_ne!(quiet_code, code, "each partner has a code of their own");

    // The code exists only for its partner, and only once.
    let redeem = |token: String, code: String| {
        let app = &app;
        async move {
            app.call_with_token("POST", "/api/promotions/redeem", &token, Some(json!({"code": code, "tierId": "gold"})))
                .await
        }
    };
    let (status, theirs) = redeem(quiet_token.clone(), code.clone()).await;
    assert_eq!(
        (status, theirs["error"]["details"]["reasons"][0]["code"].as_str()),
        (422, Some("not_found")),
        "{theirs}"
    );
    let (status, mine) = redeem(app.partner_token(keen), code.clone()).await;
    assert_eq!(status, 201, "{mine}");
    let (status, again) = redeem(app.partner_token(keen), code.clone()).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("per_user_limit_reached")), "single use: {again}");

    // Reading a message: once, and only one's own.
    let mid = message["messageId"].as_str().unwrap();
    let path = format!("/api/billing/messages/{mid}/read");
    let (status, read) = app.call_with_token("POST", &path, &quiet_token, None).await;
    assert_eq!(status, 200, "{read}");
    let first_read = read["readAt"].clone();
    let (_, again) = app.call_with_token("POST", &path, &quiet_token, None).await;
    assert_eq!(again["readAt"], first_read);
    let (status, _) = app.call_with_token("POST", &path, &app.partner_token(keen), None).await;
    assert_eq!(status, 404, "another partner's message");

    // Keen upgrades with the campaign's promotion two days later; Quiet without.
    let d2 = d0 + Duration::days(2);
    for (n, (pid, _, before), promotion) in
        [(0, &signups[0], Some(promo_id.clone())), (1, &signups[1], None)].map(|(n, s, p)| (n, s, p))
    {
        let change = TierChange {
            tier: "gold".into(),
            billing_period: Some(tierdesk::domain::money::BillingPeriod::Monthly),
            subscription_end_date: Some(d2 + Duration::days(30)),
            ..TierChange::default()
        };
        let t = plan_tier_change(before, &change, catalog, &ctx(d2, &format!("u{n}"), promotion)).unwrap();
        assert!(t.movement.is_some());
        app.store.apply_transition(&t, &audit(&format!("u{n}"), pid)).await.unwrap();
    }
    // Runs on the next days attribute each conversion once (the lookback sees the
    // day three times).
    for n in 3..=5 {
        step.run(&app.store, &RunDate::for_date(d0 + Duration::days(n))).await.unwrap();
    }
    let (status, insights) = app.call("GET", &format!("{ADMIN}/{id}/insights"), Some("admin"), None).await;
    assert_eq!(status, 200, "{insights}");
    let gold = tiers.iter().find(|t| t.tier_id == "gold").unwrap().prices.monthly;
    assert_eq!(insights["totals"]["conversions"], 2, "{insights}");
    assert_eq!(insights["totals"]["redemptions"], 1, "{insights}");
    assert_eq!(insights["totals"]["revenue"], 2 * gold, "{insights}");
    assert_eq!(insights["conversionRateBp"], 10_000);
    assert_eq!(insights["totals"]["emails"], 1);
    assert_eq!(insights["totals"]["inApp"], 2);
    // A partner's own store read agrees: Keen's record names the promotion.
    assert_eq!(app.store.get_partner(keen).await.unwrap().unwrap().engagement_tier, "gold");
}

#[tokio::test]
async fn campaign_routes_roles_lifecycle_and_bad_input() {
    let app = TestApp::seeded().await;
    let body = campaign_body(json!({}));
    for role in ["sales_rep", "partner"] {
        let (status, _) = app.call("POST", ADMIN, Some(role), Some(body.clone())).await;
        assert_eq!(status, if role == "partner" { 404 } else { 403 }, "{role} creates");
    }
    let (status, created) = app.call("POST", ADMIN, Some("admin"), Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["campaignId"].as_str().unwrap().to_string();
    let (status, list) = app.call("GET", ADMIN, Some("sales_rep"), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 1);
    let (status, _) = app.call("GET", &format!("{ADMIN}/{id}/insights"), Some("sales_rep"), None).await;
    assert_eq!(status, 403, "insights carry revenue");
    let (status, _) = app.call("GET", &format!("{ADMIN}/cmp_nope"), Some("admin"), None).await;
    assert_eq!(status, 404);

    // Bad input names every field and writes nothing.
    let mut bad = body.clone();
    bad["trigger"] = json!({"type": "churn_risk"});
    bad["channels"] = json!(["push"]);
    bad["campaignId"] = json!("cmp_mine");
    let (status, refused) = app.call("POST", ADMIN, Some("admin"), Some(bad)).await;
    assert_eq!(status, 400, "{refused}");
    let fields = &refused["error"]["details"]["fields"];
    assert!(fields["trigger.level"].is_string() && fields["channels"].is_string(), "{refused}");
    assert_eq!(fields["campaignId"], "is not a known field");
    let (_, list) = app.call("GET", ADMIN, Some("admin"), None).await;
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 1, "nothing written");

    // Edits need the version read, and only while draft or paused.
    let mut edit = body.clone();
    edit["name"] = json!("Renamed");
    let (status, _) = app.call("PUT", &format!("{ADMIN}/{id}"), Some("admin"), Some(edit.clone())).await;
    assert_eq!(status, 409, "no version");
    edit["version"] = json!(1);
    let (status, edited) = app.call("PUT", &format!("{ADMIN}/{id}"), Some("admin"), Some(edit.clone())).await;
    assert_eq!((status, edited["version"].as_i64()), (200, Some(2)), "{edited}");
    let (status, moved) = app.call("POST", &format!("{ADMIN}/{id}/pause"), Some("admin"), None).await;
    assert_eq!((status, moved["error"]["code"].as_str()), (409, Some("illegal_transition")), "{moved}");
    assert_eq!(app.call("POST", &format!("{ADMIN}/{id}/launch"), Some("admin"), None).await.0, 200);
    edit["version"] = json!(3);
    let (status, busy) = app.call("PUT", &format!("{ADMIN}/{id}"), Some("admin"), Some(edit.clone())).await;
    assert_eq!((status, busy["error"]["code"].as_str()), (409, Some("campaign_not_editable")), "{busy}");
    assert_eq!(app.call("POST", &format!("{ADMIN}/{id}/pause"), Some("admin"), None).await.0, 200);
    assert_eq!(app.call("POST", &format!("{ADMIN}/{id}/complete"), Some("admin"), None).await.0, 200);
    let (status, _) = app.call("POST", &format!("{ADMIN}/{id}/resume"), Some("admin"), None).await;
    assert_eq!(status, 409, "completed is final");
    let (status, _) = app.call("POST", &format!("{ADMIN}/{id}/cancel"), Some("admin"), Some(json!({"x": 1}))).await;
    assert_eq!(status, 400, "lifecycle moves take no body");
    // Partners' routes refuse staff.
    let (status, _) = app.call("GET", "/api/billing/messages", Some("admin"), None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_failed_invoice_and_a_usage_crossing_write_their_signals_with_their_records() {
    use tierdesk::domain::billing::InvoiceRecord;
    use tierdesk::store::{BillingWrite, InvoiceStore};
    let app = TestApp::seeded().await;
    let record: InvoiceRecord = serde_json::from_value(json!({
        "invoiceId": "in_signal", "partnerId": "prt_signal", "invoiceNumber": null, "amount": 360_000,
        "amountPaid": 0, "currency": "usd", "tier": "gold", "billingReason": "subscription_cycle",
        "periodStart": null, "periodEnd": null, "status": "failed", "paidAt": null,
        "invoiceUrl": null, "pdfUrl": null, "attemptCount": 1, "stripeSubscriptionId": null,
        "stripeCreated": 1_795_168_800, "createdAt": "2026-04-10T10:00:00.000Z", "updatedAt": "2026-04-10T10:00:00.000Z"
    }))
    .unwrap();
    fn write<'a>(record: &'a InvoiceRecord, previous: Option<&'a InvoiceRecord>) -> BillingWrite<'a> {
        BillingWrite {
            change: None,
            audit: None,
            invoice: Some((record, previous)),
            event: None,
            pending_email: None,
            commission: None,
        }
    }
    app.store.apply_billing(&write(&record, None)).await.unwrap();
    let signals = app.store.campaign_signals("2026-04-10").await.unwrap();
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!((signals[0].trigger, signals[0].source.as_str()), (TriggerKind::PaymentFailed, "in_signal"));
    // The same record again (a retried webhook) writes nothing new.
    let _ = app.store.apply_billing(&write(&record, Some(&record))).await;
    assert_eq!(app.store.campaign_signals("2026-04-10").await.unwrap().len(), 1);

    // Usage: the call that crosses 80% of the free tier's lead limit signals once.
    let partner = app.create_partner("Usage Signal").await;
    let pid = partner["partnerId"].as_str().unwrap();
    let token = app.partner_token(pid);
    // The free tier allows 10 leads a month: the 8th crosses 80%.
    for n in 0..9 {
        let (status, body) = app
            .call_with_token(
                "POST",
                "/api/usage/track",
                &token,
                Some(json!({"metric": "leads", "count": 1, "idempotencyKey": format!("k{n}")})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let today = chrono::Utc::now().date_naive().to_string();
    let crossings: Vec<CampaignSignal> =
        app.store.campaign_signals(&today).await.unwrap().into_iter().filter(|s| s.partner_id == pid).collect();
    assert_eq!(crossings.len(), 1, "{crossings:?}");
    assert_eq!(crossings[0].trigger, TriggerKind::UsageNearLimit);
    assert!(crossings[0].source.starts_with("leads#"), "{crossings:?}");
}

/// Every staff campaign route for every role (anonymous, rep, manager, admin,
/// partner): refused ones answer 401/403/404 and write nothing; allowed ones
/// answer 2xx. Each route starts from a campaign in the state it needs.
#[tokio::test]
async fn every_role_on_every_campaign_route() {
    let app = TestApp::seeded().await;
    let roles: [Option<&str>; 5] = [None, Some("sales_rep"), Some("sales_manager"), Some("admin"), Some("partner")];
    let reads = [Some("sales_rep"), Some("sales_manager"), Some("admin")];
    let writes = [Some("sales_manager"), Some("admin")];
    let revenue = [Some("sales_manager"), Some("admin")];
    // (method, path suffix, state to start from, roles allowed)
    type Case<'a> = (&'a str, &'a str, &'a [&'a str], &'a [Option<&'a str>]);
    let routes: [Case; 10] = [
        ("GET", "", &[], &reads),
        ("POST", "", &[], &writes),
        ("GET", "/{id}", &[], &reads),
        ("PUT", "/{id}", &[], &writes),
        ("POST", "/{id}/launch", &[], &writes),
        ("POST", "/{id}/pause", &["launch"], &writes),
        ("POST", "/{id}/resume", &["launch", "pause"], &writes),
        ("POST", "/{id}/complete", &["launch"], &writes),
        ("POST", "/{id}/cancel", &[], &writes),
        ("GET", "/{id}/insights", &[], &revenue),
    ];
    let mut cases = 0;
    for (method, suffix, setup, allowed) in routes {
        let (_, created) = app.call("POST", ADMIN, Some("admin"), Some(campaign_body(json!({})))).await;
        let id = created["campaignId"].as_str().unwrap().to_string();
        for step in setup {
            let (status, out) = app.call("POST", &format!("{ADMIN}/{id}/{step}"), Some("admin"), None).await;
            assert_eq!(status, 200, "{out}");
        }
        let path =
            if suffix.is_empty() { ADMIN.to_string() } else { format!("{ADMIN}{}", suffix.replace("{id}", &id)) };
        for role in roles {
            let body = match (method, suffix) {
                ("POST", "") => Some(campaign_body(json!({}))),
                ("PUT", _) => {
                    let (_, now) = app.call("GET", &format!("{ADMIN}/{id}"), Some("admin"), None).await;
                    Some(campaign_body(json!({"version": now["version"]})))
                }
                _ => None,
            };
            app.assert_access(method, &path, role, body, allowed.contains(&role)).await;
            cases += 1;
        }
    }
    assert_eq!(cases, 50);
    // The partner's own routes: staff are refused as not partners, anonymous as unauthenticated.
    for (method, path, body) in [
        ("GET", "/api/billing/messages", None),
        ("POST", "/api/billing/messages/msg_00000000000000000000/read", None),
        ("GET", "/api/billing/marketing-preferences", None),
        ("PUT", "/api/billing/marketing-preferences", Some(json!({"marketingEmails": false}))),
    ] {
        let (status, _) = app.call(method, path, None, body.clone()).await;
        assert_eq!(status, 401, "anonymous {method} {path}");
        for role in ["sales_rep", "sales_manager", "admin"] {
            let (status, out) = app.call(method, path, Some(role), body.clone()).await;
            assert_eq!((status, out["error"]["code"].as_str()), (403, Some("not_a_partner")), "{role} {method} {path}");
        }
    }
}

/// Four more triggers end to end, each from what the real routes write today,
/// sent by the next day's run: a usage crossing, a downgrade, a scheduled
/// broadcast to one tier's partners, and churn risk at a level.
#[tokio::test]
async fn usage_downgrade_scheduled_and_churn_risk_triggers_reach_exactly_their_partners() {
    let app = TestApp::seeded().await;
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today + Duration::days(1);
    let start = today.to_string();
    let in_app = |name: &str, trigger: Value, audience: Value| {
        campaign_body(json!({"name": name, "trigger": trigger, "audience": audience, "channels": ["in_app"],
                             "startDate": start, "cooldownDays": 0}))
    };
    let usage = launched(&app, in_app("Near the limit", json!({"type": "usage_near_limit"}), json!({}))).await;
    let downgrade = launched(&app, in_app("Sorry to see", json!({"type": "downgrade"}), json!({}))).await;
    let broadcast = launched(
        &app,
        in_app(
            "Platinum news",
            json!({"type": "scheduled", "sendOn": tomorrow.to_string()}),
            json!({"tiers": ["platinum"]}),
        ),
    )
    .await;
    let risk =
        launched(&app, in_app("At risk", json!({"type": "churn_risk", "level": "medium"}), json!({"tiers": ["gold"]})))
            .await;

    let id = |v: &Value| v["partnerId"].as_str().unwrap().to_string();
    let move_to = |pid: String, tier: &'static str| {
        let app = &app;
        async move {
            let path = format!("/api/admin/partners/{pid}/engagement-tier");
            let (status, body) = app.call("PATCH", &path, Some("admin"), Some(json!({"tier": tier}))).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    let user = id(&app.create_partner("Trigger Usage").await);
    let token = app.partner_token(&user);
    for n in 0..9 {
        let ask = json!({"metric": "leads", "count": 1, "idempotencyKey": format!("t{n}")});
        assert_eq!(app.call_with_token("POST", "/api/usage/track", &token, Some(ask)).await.0, 200);
    }
    let down = id(&app.create_partner("Trigger Downgrade").await);
    move_to(down.clone(), "platinum").await;
    move_to(down.clone(), "gold").await;
    let mut platinum = Vec::new();
    for name in ["Trigger Plat One", "Trigger Plat Two"] {
        let p = id(&app.create_partner(name).await);
        move_to(p.clone(), "platinum").await;
        platinum.push(p);
    }
    let bystander = id(&app.create_partner("Trigger Bystander").await);
    // Cancelling a paid term (it runs to its end date) is a pending cancellation:
    // churn risk 40, medium.
    let leaving = id(&app.create_partner("Trigger Leaving").await);
    move_to(leaving.clone(), "gold").await;
    let path = format!("/api/admin/partners/{leaving}/cancel");
    let (status, body) = app.call("POST", &path, Some("admin"), Some(json!({"reason": "budget"}))).await;
    assert_eq!(status, 200, "{body}");

    let step = step(&app).await;
    step.run(&app.store, &RunDate::for_date(tomorrow)).await.unwrap();

    let campaigns_of = |pid: String| {
        let app = &app;
        async move {
            let (_, list) = app.call_with_token("GET", "/api/billing/messages", &app.partner_token(&pid), None).await;
            let mut ids: Vec<String> = list["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["campaignId"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let cid = |v: &Value| v["campaignId"].as_str().unwrap().to_string();
    // The churn-risk campaign is for gold partners at medium risk or above, as
    // their own scores say: the one leaving (a pending cancellation), not the one
    // who only downgraded once.
    let mut at_risk = BTreeSet::new();
    for pid in [&down, &leaving] {
        let (_, p) = app.call("GET", &format!("/api/admin/partners/{pid}"), Some("admin"), None).await;
        if p["churnRisk"]["probability"].as_u64().unwrap() >= 30 {
            at_risk.insert(pid.clone());
        }
    }
    assert_eq!(at_risk, BTreeSet::from([leaving.clone()]));
    let expect = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let risk_of = |pid: &String| if at_risk.contains(pid) { vec![cid(&risk)] } else { vec![] };
    assert_eq!(campaigns_of(user.clone()).await, expect([vec![cid(&usage)], risk_of(&user)].concat()));
    assert_eq!(campaigns_of(down.clone()).await, expect([vec![cid(&downgrade)], risk_of(&down)].concat()));
    for p in &platinum {
        assert_eq!(campaigns_of(p.clone()).await, vec![cid(&broadcast)], "{p}");
    }
    assert_eq!(campaigns_of(bystander.clone()).await, risk_of(&bystander));
    assert_eq!(campaigns_of(leaving.clone()).await, risk_of(&leaving));
    // A second run of the day sends nothing more.
    assert_eq!(step.run(&app.store, &RunDate::for_date(tomorrow)).await.unwrap(), 0);
}

/// `upsell_not_taken`: an offer shown to a signed-in partner today is followed up
/// the day after, unless the partner took it (moved to the offered tier).
#[tokio::test]
async fn an_upsell_shown_and_not_taken_is_followed_up_and_one_taken_is_not() {
    let app = TestApp::seeded().await;
    let today = chrono::Utc::now().date_naive();
    let usage_rule = json!({"ruleId": "near-limit", "name": "Near a limit", "priority": 5,
                            "trigger": {"type": "usage_share", "basisPoints": 8000},
                            "action": {"type": "suggest_upgrade", "discountBasisPoints": 500}});
    let (status, body) = app.call("POST", "/api/admin/upsell-rules", Some("admin"), Some(usage_rule)).await;
    assert_eq!(status, 201, "{body}");
    let campaign = launched(
        &app,
        campaign_body(json!({"trigger": {"type": "upsell_not_taken", "afterDays": 1}, "channels": ["in_app"],
                             "startDate": today.to_string()})),
    )
    .await;
    let mut partners = Vec::new();
    for name in ["Upsell Waits", "Upsell Takes"] {
        let pid = app.create_partner(name).await["partnerId"].as_str().unwrap().to_string();
        let token = app.partner_token(&pid);
        let track = json!({"metric": "listings", "count": 1, "idempotencyKey": "l1"});
        assert!((200..300).contains(&app.call_with_token("POST", "/api/usage/track", &token, Some(track)).await.0));
        let ask = json!({"tierId": "free"});
        let (status, offers) = app.call_with_token("POST", "/api/billing/upsell/evaluate", &token, Some(ask)).await;
        assert_eq!(status, 200, "{offers}");
        let to = offers["offers"][0]["toTierId"].as_str().unwrap().to_string();
        partners.push((pid, token, to));
    }
    // The second takes the offer today.
    let (taker, _, to) = &partners[1];
    let path = format!("/api/admin/partners/{taker}/engagement-tier");
    assert_eq!(app.call("PATCH", &path, Some("admin"), Some(json!({"tier": to}))).await.0, 200);

    let step = step(&app).await;
    step.run(&app.store, &RunDate::for_date(today + Duration::days(1))).await.unwrap();
    let count = |token: String| {
        let app = &app;
        async move {
            let (_, list) = app.call_with_token("GET", "/api/billing/messages", &token, None).await;
            list["messages"].as_array().unwrap().len()
        }
    };
    assert_eq!(count(partners[0].1.clone()).await, 1, "not taken: followed up");
    assert_eq!(count(partners[1].1.clone()).await, 0, "taken: left alone");
    let id = campaign["campaignId"].as_str().unwrap();
    let (_, insights) = app.call("GET", &format!("{ADMIN}/{id}/insights"), Some("admin"), None).await;
    assert_eq!(insights["totals"]["sent"], 1, "{insights}");
    assert_eq!(insights["skipped"]["not_in_audience"], 1, "{insights}");
}

/// `trial_ending`: a trial the cron owns gets the campaign once, on the first run
/// `daysBefore` ahead of its last day, whatever the runs around it.
#[tokio::test]
async fn a_trial_ending_campaign_reaches_the_trial_once_days_before_its_last_day() {
    use tierdesk::store::PartnerStore;
    let app = TestApp::seeded().await;
    let pid = app.create_partner("Trial Ending").await["partnerId"].as_str().unwrap().to_string();
    let path = format!("/api/admin/partners/{pid}/engagement-tier");
    let (status, out) = app.call("PATCH", &path, Some("admin"), Some(json!({"tier": "gold", "trial": true}))).await;
    assert_eq!(status, 200, "{out}");
    let last = app.store.get_partner(&pid).await.unwrap().unwrap().trial_end_date.expect("a trial");
    let campaign = launched(
        &app,
        campaign_body(json!({"trigger": {"type": "trial_ending", "daysBefore": 3}, "channels": ["in_app"],
                             "content": {"subject": "Your trial ends {{trialEndDate}}", "body": "Keep {{tierName}}."},
                             "startDate": (last - Duration::days(30)).to_string()})),
    )
    .await;
    let step = step(&app).await;
    let mut sent_on = Vec::new();
    for n in (0..=6).rev() {
        let run = last - Duration::days(n);
        if step.run(&app.store, &RunDate::for_date(run)).await.unwrap() > 0 {
            sent_on.push(run);
        }
    }
    assert_eq!(sent_on, vec![last - Duration::days(3)]);
    let (_, list) = app.call_with_token("GET", "/api/billing/messages", &app.partner_token(&pid), None).await;
    assert_eq!(list["messages"][0]["subject"], format!("Your trial ends {last}"), "{list}");
    assert_eq!(list["messages"][0]["campaignId"], campaign["campaignId"]);
}

/// A run whose email fails leaves its claim; once the lease lapses the next run
/// sends it, once, though the partner's cooldown (counted with the claim) would
/// refuse a new send.
#[tokio::test]
async fn a_send_whose_email_failed_is_finished_by_a_later_run_once() {
    let app = TestApp::seeded().await;
    launched(&app, campaign_body(json!({"channels": ["email"]}))).await;
    let partner = app.create_partner("Failed Email").await;
    let (pid, email) =
        (partner["partnerId"].as_str().unwrap().to_string(), partner["primaryEmail"].as_str().unwrap().to_string());
    let d0 = day("2026-05-04");
    app.store.put_campaign_signal(&d0.to_string(), &signal(&pid, "in_fail", d0)).await.unwrap();
    let run = RunDate::for_date(d0 + Duration::days(1));
    // SES unreachable (nothing listens on port 9), and a lease that lapses at once.
    let broken = Campaigns {
        mailer: Mailer::connect(&MailConfig::local("http://127.0.0.1:9"), app.store.clone()).await,
        lease_secs: 0,
        ..step(&app).await
    };
    assert!(broken.run(&app.store, &run).await.is_err(), "the failed email fails the step");
    assert!(ses::emails_to(&email).await.is_empty());
    let working = Campaigns { lease_secs: 0, ..step(&app).await };
    assert_eq!(working.run(&app.store, &run).await.unwrap(), 1);
    assert_eq!(working.run(&app.store, &run).await.unwrap(), 0);
    assert_eq!(ses::emails_to(&email).await.len(), 1);
}

/// Campaign variants as an experiment of type `campaign` (docs/campaigns.md):
/// the experiment takes the campaign's variants and no tier; the campaign's
/// sends are its exposures (once per partner, whatever the reruns) and the
/// conversions attributed to them its conversions and revenue, so the results
/// route judges them with the pricing experiments' statistics; the variants are
/// locked while it runs; the winner is rolled out by reallocating the campaign.
#[tokio::test]
async fn a_campaign_experiment_counts_sends_and_attributed_conversions_and_rolls_the_winner_out() {
    use tierdesk::domain::campaign::{variant_for, Campaign};
    use tierdesk::domain::partner::NewPartner;
    use tierdesk::domain::subscription::{
        plan_signup, plan_tier_change, Catalog, TierChange, TransitionContext, Trigger, TriggerType,
    };
    use tierdesk::store::{ExperimentStore, PartnerStore, TierStore};
    const EXPERIMENTS: &str = "/api/admin/experiments";
    let app = TestApp::seeded().await;
    let variants = json!({"variants": [
        {"variantId": "plain", "subject": "About your payment", "body": "Update your card at {{portalUrl}}.", "allocation": 50},
        {"variantId": "urgent", "subject": "Action needed: your payment", "body": "Update your card today.", "allocation": 50}
    ]});
    let body = campaign_body(json!({
        "content": variants, "cooldownDays": 0, "maxFrequency": {"count": 5, "periodDays": 30},
        "attributionWindowDays": 14
    }));
    let c = launched(&app, body.clone()).await;
    let cid = c["campaignId"].as_str().unwrap().to_string();

    // Bad input names its field; a campaign that does not exist is a 400 too.
    let ask = |extra: Value| {
        let mut b = json!({"experimentType": "campaign", "campaignId": cid, "name": "Subject line",
                           "minSampleSize": 1, "sequential": true});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (extra, field) in [
        (json!({"targetTier": "gold"}), "targetTier"),
        (json!({"primaryMetric": "signups"}), "primaryMetric"),
        (json!({"campaignId": "cmp_00000000000000000000000000"}), "campaignId"),
    ] {
        let (status, bad) = app.call("POST", EXPERIMENTS, Some("sales_manager"), Some(ask(extra))).await;
        assert_eq!(status, 400, "{bad}");
        assert!(bad["error"]["details"]["fields"][field].is_string(), "{field}: {bad}");
    }
    // A sales rep may not create experiments.
    assert_eq!(app.call("POST", EXPERIMENTS, Some("sales_rep"), Some(ask(json!({})))).await.0, 403);
    let (status, exp) = app.call("POST", EXPERIMENTS, Some("sales_manager"), Some(ask(json!({})))).await;
    assert_eq!(status, 201, "{exp}");
    let eid = exp["experimentId"].as_str().unwrap().to_string();
    assert_eq!(exp["experimentType"], "campaign");
    assert!(exp.get("targetTier").is_none(), "{exp}");
    let ids: Vec<(&str, bool)> = exp["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["variantId"].as_str().unwrap(), v["isControl"].as_bool().unwrap()))
        .collect();
    assert_eq!(ids, vec![("plain", true), ("urgent", false)]);
    // Recorded on the campaign in the same write; one open experiment a campaign.
    let (_, c) = app.call("GET", &format!("{ADMIN}/{cid}"), Some("admin"), None).await;
    assert_eq!(c["experimentId"], eid.as_str());
    let (status, second) = app.call("POST", EXPERIMENTS, Some("sales_manager"), Some(ask(json!({})))).await;
    assert_eq!((status, second["error"]["code"].as_str()), (409, Some("campaign_under_experiment")), "{second}");

    // While it is open the variants are locked; other edits go through.
    let (status, paused) = app.call("POST", &format!("{ADMIN}/{cid}/pause"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{paused}");
    let mut edit = body.clone();
    edit["version"] = paused["version"].clone();
    edit["content"]["variants"][1]["subject"] = json!("Last chance");
    let (status, locked) = app.call("PUT", &format!("{ADMIN}/{cid}"), Some("sales_manager"), Some(edit)).await;
    assert_eq!((status, locked["error"]["code"].as_str()), (409, Some("campaign_under_experiment")), "{locked}");
    let mut rename = body.clone();
    rename["version"] = paused["version"].clone();
    rename["name"] = json!("Payment trouble (subject test)");
    let (status, renamed) = app.call("PUT", &format!("{ADMIN}/{cid}"), Some("sales_manager"), Some(rename)).await;
    assert_eq!((status, renamed["experimentId"].as_str()), (200, Some(eid.as_str())), "{renamed}");
    assert_eq!(app.call("POST", &format!("{ADMIN}/{cid}/resume"), Some("sales_manager"), None).await.0, 200);

    // 24 partners on free, each with a failed payment on day 0.
    let tiers = app.store.all_tiers().await.unwrap();
    let catalog = Catalog::new(&tiers);
    let d0 = day("2026-05-04");
    let ctx = |d: NaiveDate, n: &str| TransitionContext {
        today: d,
        at: format!("{d}T10:00:00.000Z"),
        actor: "test".into(),
        request_id: None,
        transition_id: format!("t{n}"),
        movement_id: format!("m{n}"),
        trigger: Trigger { trigger_type: TriggerType::SelfService, sales_rep: None, promotion_id: None, reason: None },
    };
    let audit = |n: &str, pid: &str| tierdesk::domain::audit::AuditEntry {
        audit_id: format!("a{n}"),
        entity_type: "partner",
        entity_id: pid.into(),
        action: "partner.test",
        actor: "test".into(),
        at: format!("{d0}T10:00:00.000Z"),
        request_id: "r".into(),
        before: None,
        after: None,
    };
    let tag = ulid::Ulid::new().to_string().to_lowercase();
    let mut partners = Vec::new();
    for n in 0..24 {
        let email = format!("exp{n}-{tag}@campaigns.example.com");
        let new = NewPartner::parse(&json!({"companyName": format!("Test {n}"), "primaryEmail": email})).unwrap();
        let pid = format!("prt_x{n}{}", &tag[..10]);
        let s = plan_signup(&pid, new, catalog, &ctx(d0, &format!("{tag}s{n}"))).unwrap();
        app.store.apply_transition(&s, &audit(&format!("{tag}s{n}"), &pid)).await.unwrap();
        app.store.put_campaign_signal(&d0.to_string(), &signal(&pid, "in_exp1", d0)).await.unwrap();
        partners.push((pid, email, s.after));
    }
    let stored: Campaign = app.store.campaign(&cid).await.unwrap().unwrap();
    let in_variant = |v: &str| partners.iter().filter(|(p, _, _)| variant_for(&stored, p).variant_id == v).count();
    let (plain, urgent) = (in_variant("plain") as u64, in_variant("urgent") as u64);
    assert!(plain > 0 && urgent > 0, "both variants are sent: {plain}/{urgent}");

    // A partner reached while the experiment is a draft (no exposure), who
    // upgrades the day before its first send under the running experiment: the
    // conversion is the campaign's (attributed to the earlier send), not the
    // experiment's, as it came before the partner's exposure.
    let step = step(&app).await;
    let early = {
        let email = format!("early-{tag}@campaigns.example.com");
        let new = NewPartner::parse(&json!({"companyName": "Early Co", "primaryEmail": email})).unwrap();
        let pid = format!("prt_early{}", &tag[..10]);
        let on = d0 - Duration::days(3);
        let s = plan_signup(&pid, new, catalog, &ctx(on, &format!("{tag}se"))).unwrap();
        app.store.apply_transition(&s, &audit(&format!("{tag}se"), &pid)).await.unwrap();
        app.store.put_campaign_signal(&on.to_string(), &signal(&pid, "in_early", on)).await.unwrap();
        assert_eq!(step.run(&app.store, &RunDate::for_date(on + Duration::days(1))).await.unwrap(), 1);
        let change = TierChange {
            tier: "gold".into(),
            billing_period: Some(tierdesk::domain::money::BillingPeriod::Monthly),
            subscription_end_date: Some(d0 + Duration::days(29)),
            ..TierChange::default()
        };
        let t =
            plan_tier_change(&s.after, &change, catalog, &ctx(d0 - Duration::days(1), &format!("{tag}ue"))).unwrap();
        app.store.apply_transition(&t, &audit(&format!("{tag}ue"), &pid)).await.unwrap();
        app.store.put_campaign_signal(&d0.to_string(), &signal(&pid, "in_exp1", d0)).await.unwrap();
        pid
    };
    let early_in = |v: &str| u64::from(variant_for(&stored, &early).variant_id == v);

    // Started, it holds no tier and is not the public routes' to assign or track.
    let (status, started) = app.call("POST", &format!("{EXPERIMENTS}/{eid}/start"), Some("sales_manager"), None).await;
    assert_eq!((status, started["status"].as_str()), (200, Some("active")), "{started}");
    assert!(app.store.live_experiments().await.unwrap().iter().all(|l| l.experiment_id != eid));
    for route in ["assign", "track"] {
        let body = json!({"userId": "visitor-1", "metric": "conversion"});
        let body = if route == "assign" { json!({"userId": "visitor-1"}) } else { body };
        let (status, refused) = app.call("POST", &format!("/api/experiments/{eid}/{route}"), None, Some(body)).await;
        assert_eq!(status, 404, "{route}: {refused}");
    }

    let results = || async {
        let (status, r) = app.call("GET", &format!("{EXPERIMENTS}/{eid}/results"), Some("admin"), None).await;
        assert_eq!(status, 200, "{r}");
        r
    };
    let figures = |r: &Value, i: usize| {
        let v = &r["results"][i];
        (v["participants"].as_u64().unwrap(), v["conversions"].as_u64().unwrap(), v["revenue"].as_i64().unwrap())
    };
    // Day 1: every partner gets one send; a rerun (and a later run that sees the
    // same signal) exposes nobody again. The early partner's conversion, seen by
    // this run, came before their exposure: nobody has converted.
    let d1 = d0 + Duration::days(1);
    assert_eq!(step.run(&app.store, &RunDate::for_date(d1)).await.unwrap(), 25);
    step.run(&app.store, &RunDate::for_date(d1)).await.unwrap();
    let (plain_n, urgent_n) = (plain + early_in("plain"), urgent + early_in("urgent"));
    let r = results().await;
    assert_eq!((figures(&r, 0), figures(&r, 1)), ((plain_n, 0, 0), (urgent_n, 0, 0)), "{r}");
    assert_eq!(r["totalParticipants"], 25);
    assert!(r["srm"]["pValue"].is_number(), "SRM is judged on the sends: {r}");

    // Day 2: every "urgent" partner and one "plain" partner upgrade to gold.
    let gold = tiers.iter().find(|t| t.tier_id == "gold").unwrap().prices.monthly;
    let d2 = d0 + Duration::days(2);
    let mut plain_converted = false;
    for (n, (pid, _, before)) in partners.iter().enumerate() {
        let converts = match variant_for(&stored, pid).variant_id.as_str() {
            "urgent" => true,
            _ if !plain_converted => {
                plain_converted = true;
                true
            }
            _ => false,
        };
        if !converts {
            continue;
        }
        let change = TierChange {
            tier: "gold".into(),
            billing_period: Some(tierdesk::domain::money::BillingPeriod::Monthly),
            subscription_end_date: Some(d2 + Duration::days(30)),
            ..TierChange::default()
        };
        let t = plan_tier_change(before, &change, catalog, &ctx(d2, &format!("{tag}u{n}"))).unwrap();
        app.store.apply_transition(&t, &audit(&format!("{tag}u{n}"), pid)).await.unwrap();
    }
    // Three runs see day 2 (the lookback); each conversion counts once.
    for n in 3..=5 {
        step.run(&app.store, &RunDate::for_date(d0 + Duration::days(n))).await.unwrap();
    }
    let r = results().await;
    let expected = ((plain_n, 1, gold), (urgent_n, urgent, urgent as i64 * gold));
    assert_eq!((figures(&r, 0), figures(&r, 1)), expected, "{r}");
    let (_, insights) = app.call("GET", &format!("{ADMIN}/{cid}/insights"), Some("admin"), None).await;
    // The campaign's own figures count the early partner's conversion too.
    assert_eq!(insights["totals"]["conversions"].as_u64(), Some(urgent + 2), "{insights}");
    // The framework's statistics: the sample size, the sequential test, SRM.
    assert!(r["sampleSize"]["requiredPerVariant"].is_number(), "{r}");
    assert!(r["comparisons"][0]["sequentialPValue"].is_number(), "{r}");
    assert!(r["comparisons"][0]["conversionPValue"].as_f64().unwrap() < 0.01, "{r}");
    if r["hasWinner"] == true {
        assert_eq!(r["winner"], "urgent", "{r}");
    }

    // The rollout: the campaign's variants reallocated with the experiment's end.
    let (status, rollout) = app
        .call(
            "POST",
            &format!("{EXPERIMENTS}/{eid}/implement-winner"),
            Some("sales_manager"),
            Some(json!({"variantId": "urgent", "force": true, "reason": "urgent converts better"})),
        )
        .await;
    assert_eq!(status, 200, "{rollout}");
    let split: Vec<(String, u64)> = rollout["campaign"]["content"]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["variantId"].as_str().unwrap().to_string(), v["allocation"].as_u64().unwrap()))
        .collect();
    assert_eq!(split, vec![("plain".to_string(), 0), ("urgent".to_string(), 100)]);
    assert_eq!(rollout["experiment"]["status"], "completed");
    assert_eq!(rollout["experiment"]["implementation"]["campaignVersion"], rollout["campaign"]["version"]);
    assert!(rollout.get("tier").is_none(), "no tier changes: {rollout}");

    // Everyone now gets the winner; the ended experiment counts no more sends.
    let d6 = d0 + Duration::days(6);
    for (pid, _, _) in &partners {
        app.store.put_campaign_signal(&d6.to_string(), &signal(pid, "in_exp2", d6)).await.unwrap();
    }
    assert_eq!(step.run(&app.store, &RunDate::for_date(d6 + Duration::days(1))).await.unwrap(), 24);
    let (_, insights) = app.call("GET", &format!("{ADMIN}/{cid}/insights"), Some("admin"), None).await;
    let sent: Vec<i64> = insights["variants"].as_array().unwrap().iter().map(|v| v["sent"].as_i64().unwrap()).collect();
    let early_sends = |v: &str| 2 * early_in(v) as i64;
    assert_eq!(
        sent,
        vec![plain as i64 + early_sends("plain"), urgent as i64 + early_sends("urgent") + 24],
        "{insights}"
    );
    let r = results().await;
    assert_eq!(r["totalParticipants"], 25, "{r}");
    let latest = ses::emails_to(&partners[0].1).await;
    assert!(latest.iter().any(|m| m["subject"].as_str().is_some_and(|s| s.contains("Action needed"))), "{latest:?}");

    // Ended, the experiment no longer locks the variants.
    let (_, paused) = app.call("POST", &format!("{ADMIN}/{cid}/pause"), Some("sales_manager"), None).await;
    let mut edit = body.clone();
    edit["version"] = paused["version"].clone();
    edit["content"]["variants"][1]["subject"] = json!("Last chance");
    let (status, edited) = app.call("PUT", &format!("{ADMIN}/{cid}"), Some("sales_manager"), Some(edit)).await;
    assert_eq!(status, 200, "{edited}");

    // An experiment that ended without a rollout cannot reallocate the campaign
    // once another experiment has taken it.
    let (status, second) = app.call("POST", EXPERIMENTS, Some("sales_manager"), Some(ask(json!({})))).await;
    assert_eq!(status, 201, "{second}");
    let second = second["experimentId"].as_str().unwrap().to_string();
    for action in ["start", "complete"] {
        let (status, moved) =
            app.call("POST", &format!("{EXPERIMENTS}/{second}/{action}"), Some("sales_manager"), None).await;
        assert_eq!(status, 200, "{action}: {moved}");
    }
    let (status, third) = app.call("POST", EXPERIMENTS, Some("sales_manager"), Some(ask(json!({})))).await;
    assert_eq!(status, 201, "{third}");
    let (status, stale) = app
        .call(
            "POST",
            &format!("{EXPERIMENTS}/{second}/implement-winner"),
            Some("sales_manager"),
            Some(json!({"variantId": "plain", "force": true, "reason": "late"})),
        )
        .await;
    assert_eq!((status, stale["error"]["code"].as_str()), (409, Some("campaign_changed")), "{stale}");
    let (_, c) = app.call("GET", &format!("{ADMIN}/{cid}"), Some("admin"), None).await;
    let split: Vec<u64> =
        c["content"]["variants"].as_array().unwrap().iter().map(|v| v["allocation"].as_u64().unwrap()).collect();
    assert_eq!(split, vec![50, 50], "the campaign kept its split: {c}");
}
