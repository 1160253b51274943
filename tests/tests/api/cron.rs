//! The expiry cron against the local stack (DynamoDB Local + the SES emulator): the
//! reminder windows, expiry through the transition mechanism, exactly-once emails
//! under reruns, concurrent runs, crashes and SES failures, renewals between runs,
//! the dev gateway route, and a 13-month time-travel replay. The SES emulator is
//! shared, so every partner here has its own unique address.

use chrono::{DateTime, Days, NaiveDate, Utc};
use devtools::gateway::{Gateway, Handler};
use expiry_cron::{CronConfig, ExpiryCron, RunDate};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tierdesk::clock::FixedClock;
use tierdesk::domain::renewal::{ActionKind, NoticeKind, ReminderSchedule, RunSummary};
use tierdesk::mail::{MailConfig, Mailer};
use tierdesk::store::{keys, Claim, MarkerClaim, MarkerState, PartnerStore, ReminderStore, TierStore};
use tierdesk::{Clock, SystemClock};
use tierdesk_tests::{read_repo_file, ses, TestApp};

fn ymd(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn plus(d: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        d.checked_add_days(Days::new(days as u64)).unwrap()
    } else {
        d.checked_sub_days(Days::new(days.unsigned_abs())).unwrap()
    }
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn instant(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn address(tag: &str) -> String {
    format!("{tag}-{}@cron.example.com", ulid::Ulid::new().to_string().to_lowercase())
}

/// A seeded app whose table has no stream. DynamoDB Local slows every write to a
/// stream-enabled table by an order of magnitude once the process holds tens of
/// thousands of stream records (other tests' tables leave them; measured 2,300 → 240
/// items/s), and the cron never reads the stream: without it these tests take the
/// same time wherever they fall in the suite.
async fn cron_app() -> TestApp {
    let app = TestApp::new().await;
    let off = aws_sdk_dynamodb::types::StreamSpecification::builder().stream_enabled(false).build().unwrap();
    app.store.client().update_table().table_name(&app.table).stream_specification(off).send().await.unwrap();
    let (status, body) = app.call("POST", "/api/admin/tiers/initialize", Some("admin"), None).await;
    assert_eq!(status, 200, "{body}");
    app
}

async fn cron_with(app: &TestApp, ses_endpoint: &str, config: CronConfig, clock: Arc<dyn Clock>) -> ExpiryCron {
    let mailer = Mailer::connect(&MailConfig::local(ses_endpoint), app.store.clone()).await;
    ExpiryCron::new(app.function_app().with_clock(clock), mailer, config)
}

async fn cron(app: &TestApp) -> ExpiryCron {
    cron_with(app, &ses::endpoint(), CronConfig::default(), Arc::new(SystemClock)).await
}

async fn run(cron: &ExpiryCron, date: NaiveDate) -> RunSummary {
    let summary = cron.run(&RunDate::for_date(date)).await.expect("cron run");
    assert!(summary.errors.is_empty() || summary.has_failures(), "{:?}", summary.errors);
    summary
}

/// A partner (unique address) on the term `term` (an engagement-tier body), through
/// the API as an admin. Returns (partnerId, address).
async fn partner(app: &TestApp, tag: &str, term: Value) -> (String, String) {
    let email = address(tag);
    let body = json!({"companyName": format!("{tag} Co"), "primaryEmail": email});
    let (status, created) = app.call("POST", "/api/admin/partners", Some("admin"), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["partnerId"].as_str().unwrap().to_string();
    let path = format!("/api/admin/partners/{id}/engagement-tier");
    let (status, out) = app.call("PATCH", &path, Some("admin"), Some(term)).await;
    assert_eq!(status, 200, "{out}");
    (id, email)
}

fn gold_until(end: NaiveDate, auto_renewal: bool) -> Value {
    json!({"tier": "gold", "subscriptionEndDate": end.to_string(), "autoRenewal": auto_renewal})
}

/// The email kinds an address received, oldest first, read from the SES emulator.
async fn kinds_received(address: &str) -> Vec<&'static str> {
    ses::emails_to(address).await.iter().map(|e| kind_of(e["subject"].as_str().unwrap_or_default())).collect()
}

/// The template subjects (shared/src/mail/templates.rs) tell the kinds apart.
fn kind_of(subject: &str) -> &'static str {
    if subject.starts_with("Final reminder:") {
        "renewal_urgent_7"
    } else if subject.contains("has expired") {
        "subscription_expired"
    } else if subject.contains("subscription expires in") {
        "renewal_reminder_30"
    } else {
        "other"
    }
}

fn sent(summary: &RunSummary, kind: NoticeKind) -> Vec<String> {
    let mut ids: Vec<String> =
        summary.actions.iter().filter(|a| a.what == ActionKind::Sent(kind)).map(|a| a.partner_id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn each_window_gets_exactly_its_email_and_the_lapsed_term_expires_through_a_transition() {
    let app = cron_app().await;
    // The run date lies 40 days ahead, so every end date below is a valid future date today.
    let d = plus(today(), 40);
    let mut partners = Vec::new();
    for days in [35, 30, 20, 7, 3, 0, -1] {
        let (id, email) = partner(&app, &format!("w{days}"), gold_until(plus(d, days), false)).await;
        partners.push((days, id, email));
    }
    let cron = cron(&app).await;
    let summary = run(&cron, d).await;
    assert_eq!(summary.reminders_sent.renewal_reminder_30, 2, "{summary:?}");
    assert_eq!(summary.reminders_sent.renewal_urgent_7, 3);
    assert_eq!((summary.expired, summary.expiry_emails_sent), (1, 1));
    // The window reaches 30 days ahead: the 35-day partner is not even read.
    assert_eq!(summary.window_partners, 6);
    assert!(!summary.has_failures(), "{summary:?}");

    let expected: [(i64, &[&str]); 7] = [
        (35, &[]),
        (30, &["renewal_reminder_30"]),
        (20, &["renewal_reminder_30"]),
        (7, &["renewal_urgent_7"]),
        (3, &["renewal_urgent_7"]),
        (0, &["renewal_urgent_7"]),
        (-1, &["subscription_expired"]),
    ];
    for ((days, _, email), (want_days, want)) in partners.iter().zip(expected) {
        assert_eq!(*days, want_days);
        assert_eq!(kinds_received(email).await, want.to_vec(), "{days} days before the end");
    }
    // The email states the days left and the amount from cents.
    let urgent = &ses::emails_to(&partners[4].2).await[0];
    assert_eq!(urgent["subject"], "Final reminder: Subscription expires in 3 days");
    assert!(urgent["body"]["text"].as_str().unwrap().contains("$3,600.00"), "{urgent}");

    // The expiry is a real transition: history, audit, ledger and statistics.
    let expired_id = &partners[6].1;
    let after = app.store.get_partner(expired_id).await.unwrap().unwrap();
    assert_eq!((after.engagement_tier.as_str(), after.subscription_status.as_str()), ("free", "expired"));
    assert_eq!(after.subscription_end_date, None);
    let (status, history) =
        app.call("GET", &format!("/api/admin/partners/{expired_id}/history"), Some("admin"), None).await;
    assert_eq!(status, 200);
    let last = &history["items"][0];
    assert_eq!(last["event"], "expiration", "{history}");
    assert_eq!(last["trigger"]["type"], "automated");
    assert_eq!(last["metadata"]["actor"], expiry_cron::ACTOR);
    assert_eq!(last["timestamp"], format!("{d}T00:00:00.000Z"), "timestamps come from the run date");
    assert_eq!(last["financialImpact"]["mrrChange"], -360_000);
    let audit = app.partition(&keys::audit_pk("partner", expired_id)).await;
    assert!(audit.iter().any(|i| i["action"].as_s().unwrap() == "partner.expire"), "{audit:?}");
    let movements = app.partition(&keys::movements_pk(&format!("{d}T00:00:00.000Z"))).await;
    assert!(movements
        .iter()
        .any(|m| m["partnerId"].as_s().unwrap() == expired_id && m["kind"].as_s().unwrap() == "churn"));

    // One snapshot per tier, copied from the live statistics after the expiry.
    assert_eq!(summary.snapshots, 3);
    let gold = app.partition(&keys::tier_stats_pk("gold")).await;
    let day = gold.iter().find(|i| i["SK"].as_s().unwrap() == keys::stats_day_sk(d).as_str()).expect("gold snapshot");
    assert_eq!(day["memberCount"].as_n().unwrap(), "6");
    assert_eq!(day["GSI1PK"].as_s().unwrap(), &keys::stats_day_pk(d));
    assert_eq!(day["GSI1SK"].as_s().unwrap(), "gold");
    let free = app.partition(&keys::tier_stats_pk("free")).await;
    let day = free.iter().find(|i| i["SK"].as_s().unwrap() == keys::stats_day_sk(d).as_str()).unwrap();
    assert_eq!(day["memberCount"].as_n().unwrap(), "1");
    // A rerun keeps the day's first snapshot and sends nothing.
    let again = run(&cron, d).await;
    assert_eq!((again.snapshots, again.expired, again.reminders_sent), (0, 0, Default::default()));
    assert_eq!(again.skipped.already_sent, 5);
}

#[tokio::test]
async fn reminders_write_dates_in_the_partners_locale() {
    let app = cron_app().await;
    let d = plus(today(), 40);
    let end = plus(d, 25);
    let create = |tag: &str, locale: Option<&str>| {
        let mut body = json!({"companyName": format!("{tag} Ltd"), "primaryEmail": address(tag)});
        if let Some(l) = locale {
            body["locale"] = json!(l);
        }
        body
    };
    // A locale other than en-US / en-GB is refused on create and on PATCH, naming the field.
    let (status, bad) =
        app.call("POST", "/api/admin/partners", Some("admin"), Some(create("badloc", Some("fr-FR")))).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["details"]["fields"]["locale"].is_string(), "{bad}");

    // gb: en-GB from the start; patched: en-US by default, then PATCHed; us: the default.
    let mut ids = Vec::new();
    for (tag, locale) in [("gb", Some("en-GB")), ("patched", None), ("us", None)] {
        let body = create(tag, locale);
        let email = body["primaryEmail"].as_str().unwrap().to_string();
        let (status, created) = app.call("POST", "/api/admin/partners", Some("admin"), Some(body)).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["locale"], locale.unwrap_or("en-US"));
        let id = created["partnerId"].as_str().unwrap().to_string();
        let path = format!("/api/admin/partners/{id}/engagement-tier");
        let (status, out) = app.call("PATCH", &path, Some("admin"), Some(gold_until(end, false))).await;
        assert_eq!(status, 200, "{out}");
        ids.push((id, email));
    }
    let patched = format!("/api/admin/partners/{}", ids[1].0);
    let (status, bad) = app.call("PATCH", &patched, Some("admin"), Some(json!({"locale": "de"}))).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["details"]["fields"]["locale"].is_string(), "{bad}");
    let (status, out) = app.call("PATCH", &patched, Some("admin"), Some(json!({"locale": "en_gb"}))).await;
    assert_eq!((status, &out["locale"]), (200, &json!("en-GB")), "{out}");

    let s = run(&cron(&app).await, d).await;
    assert_eq!(s.reminders_sent.renewal_reminder_30, 3, "{s:?}");
    let day_month = end.format("%-d %B %Y").to_string();
    let month_day = end.format("%B %-d, %Y").to_string();
    for (i, (_, email)) in ids.iter().enumerate() {
        let received = ses::emails_to(email).await;
        assert_eq!(received.len(), 1, "{received:?}");
        let text = received[0]["body"]["text"].as_str().unwrap();
        let html = received[0]["body"]["html"].as_str().expect("the email has an HTML part");
        let (want, not) = if i < 2 { (&day_month, &month_day) } else { (&month_day, &day_month) };
        assert!(text.contains(&format!("ends on {want}")), "{text}");
        assert!(html.contains(want.as_str()), "{html}");
        assert!(!text.contains(not.as_str()) && !html.contains(not.as_str()), "{text}");
    }
}

/// A Stripe-billed monthly auto-renewing partner (the billing function's shape): an
/// API partner on gold monthly, given a Stripe subscription id and written back
/// through the store's own index copies.
async fn stripe_monthly(app: &TestApp, tag: &str, end: NaiveDate) -> (String, String) {
    let term = json!({"tier": "gold", "billingPeriod": "monthly", "subscriptionEndDate": end.to_string(),
                      "autoRenewal": true});
    let (id, email) = partner(app, tag, term).await;
    let mut p = app.store.get_partner(&id).await.unwrap().unwrap();
    p.stripe_subscription_id = Some(format!("sub_{tag}"));
    p.stripe_customer_id = Some(format!("cus_{tag}"));
    app.store.backfill_partners(&[p]).await.unwrap();
    (id, email)
}

fn gsi2_pk(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> String {
    item.get("GSI2PK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

#[tokio::test]
async fn self_renewing_monthly_terms_are_read_only_once_due_for_expiry() {
    let app = cron_app().await;
    let d = plus(today(), 40);
    // In the reminder window, in the grace period, past it; and a reminder candidate.
    let (soon, soon_email) = stripe_monthly(&app, "selfsoon", plus(d, 10)).await;
    let (grace, _) = stripe_monthly(&app, "selfgrace", plus(d, -5)).await;
    let (lapsed, lapsed_email) = stripe_monthly(&app, "selflapsed", plus(d, -20)).await;
    let (candidate, _) = partner(&app, "candidate", gold_until(plus(d, 10), false)).await;
    let meta = |id: String| {
        let app = &app;
        async move {
            app.partition(&keys::partner_pk(&id)).await.into_iter().find(|i| i["SK"].as_s().unwrap() == "META").unwrap()
        }
    };
    assert_eq!(gsi2_pk(&meta(soon.clone()).await), keys::sub_renew_pk(plus(d, 10)));
    assert_eq!(gsi2_pk(&meta(candidate.clone()).await), keys::sub_end_pk(plus(d, 10)));

    let cron = cron(&app).await;
    let s = run(&cron, d).await;
    // Only the lapsed one and the candidate are read: no monthly term skipped as
    // "renews monthly", none read before its grace period is over.
    assert_eq!(s.window_partners, 2, "{s:?}");
    assert_eq!(s.skipped.renews_monthly, 0, "{s:?}");
    assert_eq!(sent(&s, NoticeKind::RenewalReminder30), vec![candidate.clone()]);
    assert_eq!(sent(&s, NoticeKind::SubscriptionExpired), vec![lapsed.clone()]);
    assert_eq!(s.expired, 1);
    assert_eq!(kinds_received(&lapsed_email).await, ["subscription_expired"]);
    let after = app.store.get_partner(&lapsed).await.unwrap().unwrap();
    assert_eq!(after.subscription_status.as_str(), "expired");
    assert_eq!(app.store.get_partner(&grace).await.unwrap().unwrap().subscription_status.as_str(), "active");
    assert!(kinds_received(&soon_email).await.is_empty());

    // Turning auto-renewal off rewrites the index copy: a reminder candidate again.
    let path = format!("/api/admin/partners/{soon}");
    let (status, out) = app.call("PATCH", &path, Some("admin"), Some(json!({"autoRenewal": false}))).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(gsi2_pk(&meta(soon.clone()).await), keys::sub_end_pk(plus(d, 10)));
    let s = run(&cron, plus(d, 1)).await;
    assert_eq!(sent(&s, NoticeKind::RenewalReminder30), vec![soon.clone()], "{s:?}");
    assert_eq!(kinds_received(&soon_email).await, ["renewal_reminder_30"]);

    // The one in its grace period is read (and expired) once its grace is over.
    let s = run(&cron, plus(d, 10)).await;
    assert_eq!(sent(&s, NoticeKind::SubscriptionExpired), vec![grace.clone()], "{s:?}");
}

#[tokio::test]
async fn a_lapsed_trial_ends_once_through_a_transition_and_a_converted_one_stays() {
    let app = cron_app().await;
    let trial = json!({"tier": "gold", "trial": true});
    let (lapsing, lapsing_email) = partner(&app, "trial-lapse", trial.clone()).await;
    let (converting, _) = partner(&app, "trial-convert", trial.clone()).await;
    let last_day = app.store.get_partner(&lapsing).await.unwrap().unwrap().trial_end_date.expect("a trial end");
    let meta = |id: String| {
        let app = &app;
        async move {
            app.partition(&keys::partner_pk(&id)).await.into_iter().find(|i| i["SK"].as_s().unwrap() == "META").unwrap()
        }
    };
    assert_eq!(gsi2_pk(&meta(lapsing.clone()).await), keys::trial_end_pk(last_day));
    let path = format!("/api/admin/partners/{converting}/engagement-tier");
    let (status, out) = app.call("PATCH", &path, Some("admin"), Some(json!({"tier": "gold"}))).await;
    assert_eq!((status, out["subscriptionStatus"].as_str()), (200, Some("active")), "{out}");
    assert_ne!(gsi2_pk(&meta(converting.clone()).await), keys::trial_end_pk(last_day), "converted: out of the index");
    let gold_active = || async {
        let (status, m) = app.call("GET", "/api/admin/tiers/gold/metrics", Some("admin"), None).await;
        assert_eq!(status, 200, "{m}");
        m["activeSubscriptions"].as_i64().unwrap()
    };
    assert_eq!(gold_active().await, 2);

    let cron = cron(&app).await;
    // The trial's last day is still a trial day.
    let s = run(&cron, last_day).await;
    assert_eq!(s.steps.get("trials_ended"), Some(&0), "{s:?}");
    // The day after, it ends; a rerun and a concurrent pair end nothing more.
    let s = run(&cron, plus(last_day, 1)).await;
    assert_eq!(s.steps.get("trials_ended"), Some(&1), "{s:?}");
    let (a, b) = tokio::join!(run(&cron, plus(last_day, 1)), run(&cron, plus(last_day, 2)));
    assert_eq!((a.steps.get("trials_ended"), b.steps.get("trials_ended")), (Some(&0), Some(&0)));

    let ended = app.store.get_partner(&lapsing).await.unwrap().unwrap();
    assert_eq!(
        (ended.engagement_tier.as_str(), ended.subscription_status.as_str(), ended.trial_end_date, ended.mrr),
        ("free", "active", None, 0)
    );
    assert_eq!(gsi2_pk(&meta(lapsing.clone()).await), "", "a free partner has no term to index");
    let (_, history) = app.call("GET", &format!("/api/admin/partners/{lapsing}/history"), Some("admin"), None).await;
    let events: Vec<&str> = history["items"].as_array().unwrap().iter().filter_map(|h| h["event"].as_str()).collect();
    assert_eq!(events.iter().filter(|e| **e == "trial_expired").count(), 1, "{history}");
    assert_eq!(app.store.get_partner(&converting).await.unwrap().unwrap().subscription_status.as_str(), "active");
    assert_eq!(gold_active().await, 1, "the lapsed trial no longer counts on gold");
    assert!(kinds_received(&lapsing_email).await.is_empty(), "no expiry notice: the term never started paying");
}

#[tokio::test]
async fn an_end_date_coming_closer_rescores_the_partner_in_an_audited_write_only_when_its_ranking_moves() {
    let app = cron_app().await;
    let end = plus(today(), 45);
    let (id, _) = partner(&app, "rescore", gold_until(end, false)).await;
    let stored = || async { app.store.get_partner(&id).await.unwrap().unwrap() };
    let codes = |p: &tierdesk::domain::partner::Partner| -> Vec<String> {
        p.churn_risk.factors.iter().map(|f| f.code.clone()).collect()
    };
    let before = stored().await;
    assert!(before.churn_risk.probability == 0 && codes(&before).is_empty(), "{:?}", before.churn_risk);
    let listed = || async {
        let (status, page) = app.call("GET", "/api/admin/partners/churn-risk?level=low", Some("admin"), None).await;
        assert_eq!(status, 200, "{page}");
        page.to_string().contains(&id)
    };
    assert!(!listed().await);
    let history_len = || async {
        let (status, history) =
            app.call("GET", &format!("/api/admin/partners/{id}/history"), Some("admin"), None).await;
        assert_eq!(status, 200, "{history}");
        history["items"].as_array().expect("history items").len()
    };
    let transitions = history_len().await;
    assert_eq!(transitions, 2, "the signup and the move to gold");
    let rescores = || async {
        let pk = keys::audit_pk("partner", &id);
        let mut entries: Vec<Value> = app.items().await.into_iter().filter(|i| i["PK"] == pk.as_str()).collect();
        assert!(!entries.is_empty(), "the partner's creation and move are audited");
        entries.retain(|e| e["action"] == "partner.rescore");
        // Oldest first, as the partition's sort key orders them.
        entries.sort_by(|a, b| a["SK"].as_str().cmp(&b["SK"].as_str()));
        entries
    };
    assert!(rescores().await.is_empty());

    let cron = cron(&app).await;
    // 25 days left with auto-renewal off: the renewal factor appears.
    let s = run(&cron, plus(end, -25)).await;
    assert_eq!(s.steps.get("scores_refreshed"), Some(&1), "{s:?}");
    let scored = stored().await;
    assert!(scored.churn_risk.probability > 0 && !codes(&scored).is_empty(), "{:?}", scored.churn_risk);
    assert_eq!(scored.scored_on, plus(end, -25));
    assert!(listed().await, "the indexed churn-risk list follows");
    // Again the same day, or a day later with only the wording counting down: no write.
    let s = run(&cron, plus(end, -25)).await;
    assert_eq!(s.steps.get("scores_refreshed"), Some(&0), "{s:?}");
    let s = run(&cron, plus(end, -24)).await;
    assert_eq!(s.steps.get("scores_refreshed"), Some(&0), "{s:?}");
    assert_eq!(stored().await.version, scored.version);
    // Inside the urgent week the weight rises: written again.
    let s = run(&cron, plus(end, -5)).await;
    assert_eq!(s.steps.get("scores_refreshed"), Some(&1), "{s:?}");
    let urgent = stored().await;
    assert!(urgent.churn_risk.probability > scored.churn_risk.probability, "{:?}", urgent.churn_risk);
    // A rescore is a write to the partner, not a transition: the history is as it
    // was; each of the two writes has its audit entry, by the cron, before → after.
    assert_eq!(history_len().await, transitions, "a rescore adds no transition");
    let audited = rescores().await;
    assert_eq!(audited.len(), 2, "one audit entry per write: {audited:?}");
    for (entry, (before, after)) in audited.iter().zip([(&before, &scored), (&scored, &urgent)]) {
        assert_eq!(entry["actor"], expiry_cron::ACTOR, "{entry}");
        assert_eq!(entry["entityId"], id.as_str(), "{entry}");
        assert_eq!(entry["before"]["version"].as_u64(), Some(before.version), "{entry}");
        assert_eq!(entry["after"]["version"].as_u64(), Some(after.version), "{entry}");
        assert_eq!(
            entry["after"]["churnRisk"]["probability"].as_u64(),
            Some(u64::from(after.churn_risk.probability)),
            "{entry}"
        );
    }
}

#[tokio::test]
async fn sequential_and_concurrent_runs_send_each_email_once_and_expire_once() {
    let app = cron_app().await;
    let d = plus(today(), 40);
    let (p30, a30) = partner(&app, "seq30", gold_until(plus(d, 20), false)).await;
    let (p7, a7) = partner(&app, "seq7", gold_until(plus(d, 5), false)).await;
    let (px, ax) = partner(&app, "seqx", gold_until(plus(d, -1), false)).await;
    // Due only on the second date: 7 days left then, and ended the day before.
    let (q7, b7) = partner(&app, "conc7", gold_until(plus(d, 17), false)).await;
    let (qx, bx) = partner(&app, "concx", gold_until(plus(d, 9), false)).await;

    let first = cron(&app).await;
    let a = run(&first, d).await;
    let b = run(&first, d).await;
    let mut notices = vec![p30.clone(), q7.clone(), qx.clone()];
    notices.sort();
    assert_eq!(sent(&a, NoticeKind::RenewalReminder30), notices);
    assert_eq!(sent(&a, NoticeKind::RenewalUrgent7), vec![p7.clone()]);
    assert_eq!(a.expired, 1);
    assert_eq!((b.reminders_sent, b.expired, b.expiry_emails_sent), (Default::default(), 0, 0), "{b:?}");
    assert_eq!(b.skipped.already_sent, 4, "{b:?}");

    // Two runs of a later date at once, from two separate cron instances: two urgent
    // notices and two expiries are due.
    let d2 = plus(d, 13);
    let second = cron(&app).await;
    let on_d2 = RunDate::for_date(d2);
    let (x, y) = tokio::join!(first.run(&on_d2), second.run(&on_d2));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(!x.has_failures() && !y.has_failures(), "{x:?} {y:?}");
    let mut both = x.clone();
    both.merge(y.clone());
    let mut urgent = vec![p30.clone(), q7.clone()];
    urgent.sort();
    assert_eq!(sent(&both, NoticeKind::RenewalUrgent7), urgent, "{x:?} {y:?}");
    let mut expired = vec![p7.clone(), qx.clone()];
    expired.sort();
    assert_eq!(sent(&both, NoticeKind::SubscriptionExpired), expired);
    assert_eq!(both.expired, 2, "{x:?} {y:?}");
    assert_eq!(both.reminders_sent.renewal_reminder_30, 0);

    assert_eq!(kinds_received(&a30).await, ["renewal_reminder_30", "renewal_urgent_7"]);
    assert_eq!(kinds_received(&a7).await, ["renewal_urgent_7", "subscription_expired"]);
    assert_eq!(kinds_received(&ax).await, ["subscription_expired"]);
    assert_eq!(kinds_received(&b7).await, ["renewal_reminder_30", "renewal_urgent_7"]);
    assert_eq!(kinds_received(&bx).await, ["renewal_reminder_30", "subscription_expired"]);
    // One expiration transition each.
    for id in [&px, &p7, &qx] {
        let (_, history) = app.call("GET", &format!("/api/admin/partners/{id}/history"), Some("admin"), None).await;
        let expirations = history["items"].as_array().unwrap().iter().filter(|e| e["event"] == "expiration").count();
        assert_eq!(expirations, 1, "{history}");
    }
    // Markers say what went out, with SES's message id.
    let marker = app.store.get_marker(&p7, plus(d, 5), NoticeKind::RenewalUrgent7).await.unwrap().unwrap();
    assert_eq!(marker.state, MarkerState::Sent);
    assert!(marker.message_id.is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn a_claim_left_by_a_crashed_run_is_honoured_during_its_lease_then_taken_over() {
    let app = cron_app().await;
    let d = plus(today(), 40);
    let end = plus(d, 4);
    let (id, email) = partner(&app, "crash", gold_until(end, false)).await;
    // A run claimed the urgent notice at 10:00 (lease 15 min) and died before sending.
    let claim = MarkerClaim {
        partner_id: &id,
        end_date: end,
        kind: NoticeKind::RenewalUrgent7,
        owner: "cron-crashed",
        run_date: d,
        now: "2026-01-01T10:00:00.000Z",
        lease_until: "2026-01-01T10:15:00.000Z",
        details: None,
        require_active_term: true,
    };
    assert_eq!(app.store.claim_marker(&claim).await.unwrap(), Claim::Claimed);

    // Inside the lease another run keeps off it.
    let during = FixedClock::new(instant("2026-01-01T10:05:00Z"));
    let cron_during = cron_with(&app, &ses::endpoint(), CronConfig::default(), Arc::new(during)).await;
    let s = run(&cron_during, d).await;
    assert_eq!((s.reminders_sent.renewal_urgent_7, s.skipped.held_by_another_run), (0, 1), "{s:?}");
    assert!(kinds_received(&email).await.is_empty());

    // After it, the rerun takes the claim over and sends once; later runs find it sent.
    let after = FixedClock::new(instant("2026-01-01T10:20:00Z"));
    let cron_after = cron_with(&app, &ses::endpoint(), CronConfig::default(), Arc::new(after)).await;
    let s = run(&cron_after, d).await;
    assert_eq!(s.reminders_sent.renewal_urgent_7, 1, "{s:?}");
    let s = run(&cron_after, plus(d, 1)).await;
    assert_eq!((s.reminders_sent.renewal_urgent_7, s.skipped.already_sent), (0, 1));
    assert_eq!(kinds_received(&email).await, ["renewal_urgent_7"]);
    let marker = app.store.get_marker(&id, end, NoticeKind::RenewalUrgent7).await.unwrap().unwrap();
    assert_eq!(marker.state, MarkerState::Sent);
    assert_ne!(marker.owner, "cron-crashed");
}

#[tokio::test]
async fn an_expiry_whose_notice_was_interrupted_is_notified_once_by_the_next_run() {
    use tierdesk::domain::renewal::NoticeDetails;
    use tierdesk::domain::subscription::{plan_expiration, Catalog, TransitionContext, Trigger, TriggerType};
    let app = cron_app().await;
    let d = plus(today(), 40);
    let end = plus(d, -1);
    let (id, email) = partner(&app, "halfway", gold_until(end, false)).await;
    // A run claimed the notice, wrote the expiry, and crashed before sending.
    let before = app.store.get_partner(&id).await.unwrap().unwrap();
    let catalog = app.store.active_catalog().await.unwrap();
    let details = NoticeDetails::of(&before, Catalog::new(&catalog).any("gold")).unwrap();
    let claim = MarkerClaim {
        partner_id: &id,
        end_date: end,
        kind: NoticeKind::SubscriptionExpired,
        owner: "cron-crashed",
        run_date: d,
        now: "2026-01-01T10:00:00.000Z",
        lease_until: "2026-01-01T10:15:00.000Z",
        details: Some(&details),
        require_active_term: false,
    };
    assert_eq!(app.store.claim_marker(&claim).await.unwrap(), Claim::Claimed);
    let ctx = TransitionContext {
        today: d,
        at: format!("{d}T00:00:00.000Z"),
        actor: expiry_cron::ACTOR.into(),
        request_id: None,
        transition_id: ulid::Ulid::new().to_string().to_lowercase(),
        movement_id: ulid::Ulid::new().to_string().to_lowercase(),
        trigger: Trigger { trigger_type: TriggerType::Automated, sales_rep: None, promotion_id: None, reason: None },
    };
    let t = plan_expiration(&before, Catalog::new(&catalog), &ctx, 14).unwrap().unwrap();
    let audit = tierdesk::domain::audit::AuditEntry {
        audit_id: ctx.transition_id.clone(),
        entity_type: "partner",
        entity_id: id.clone(),
        action: "partner.expire",
        actor: expiry_cron::ACTOR.into(),
        at: ctx.at.clone(),
        request_id: "crashed".into(),
        before: None,
        after: None,
    };
    app.store.apply_transition(&t, &audit).await.unwrap();

    let cron = cron(&app).await;
    let s = run(&cron, d).await;
    assert_eq!((s.expired, s.expiry_emails_sent, s.stale_claims_resumed), (0, 1, 1), "{s:?}");
    let s = run(&cron, plus(d, 1)).await;
    assert_eq!((s.expired, s.expiry_emails_sent, s.stale_claims_resumed), (0, 0, 0), "{s:?}");
    assert_eq!(kinds_received(&email).await, ["subscription_expired"]);
    let marker = app.store.get_marker(&id, end, NoticeKind::SubscriptionExpired).await.unwrap().unwrap();
    assert_eq!(marker.state, MarkerState::Sent);
}

#[tokio::test]
async fn an_ses_failure_releases_the_claim_and_the_next_run_sends() {
    let app = cron_app().await;
    let d = plus(today(), 40);
    let (rid, remind) = partner(&app, "sesdown30", gold_until(plus(d, 12), false)).await;
    let (xid, expire) = partner(&app, "sesdownx", gold_until(plus(d, -2), false)).await;

    let broken = cron_with(&app, "http://127.0.0.1:1", CronConfig::default(), Arc::new(SystemClock)).await;
    let s = broken.run(&RunDate::for_date(d)).await.unwrap();
    assert_eq!((s.failed.emails, s.reminders_sent.renewal_reminder_30, s.expiry_emails_sent), (2, 0, 0), "{s:?}");
    assert_eq!(s.expired, 1, "the expiry itself is written; only its notice waits");
    assert!(s.has_failures());
    assert!(s.errors.iter().all(|e| !e.message.contains('@')), "no addresses in errors: {:?}", s.errors);
    // The reminder's claim is gone; the notice's claim waits for the next run's sweep.
    assert!(app.store.get_marker(&rid, plus(d, 12), NoticeKind::RenewalReminder30).await.unwrap().is_none());
    let waiting = app.store.get_marker(&xid, plus(d, -2), NoticeKind::SubscriptionExpired).await.unwrap().unwrap();
    assert_eq!(waiting.state, MarkerState::Claimed);
    // The waiting marker keeps the term (the partner is on free now), not who it goes to.
    assert_eq!(waiting.details.as_ref().map(|t| t.tier_id.as_str()), Some("gold"));
    assert_marker_holds_no_personal_data(&app, &xid, &expire).await;
    // The Lambda handler reports a failed run as an error (retried, then the DLQ).
    let event = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {"date": d.to_string()}});
    let (rid2, _) = partner(&app, "sesdown2", gold_until(plus(d, 11), false)).await;
    assert!(expiry_cron::handle(&broken, event).await.is_err());
    assert!(app.store.get_marker(&rid2, plus(d, 11), NoticeKind::RenewalReminder30).await.unwrap().is_none());

    let working = cron(&app).await;
    let s = run(&working, d).await;
    assert_eq!((s.reminders_sent.renewal_reminder_30, s.expiry_emails_sent, s.expired), (2, 1, 0), "{s:?}");
    assert!(!s.has_failures());
    assert_eq!(kinds_received(&remind).await, ["renewal_reminder_30"]);
    assert_eq!(kinds_received(&expire).await, ["subscription_expired"]);
    let s = run(&working, d).await;
    assert_eq!((s.reminders_sent.renewal_reminder_30, s.expiry_emails_sent), (0, 0));
    assert_marker_holds_no_personal_data(&app, &xid, &expire).await;
    assert_marker_holds_no_personal_data(&app, &rid, &remind).await;
}

/// Every `REMINDER#` item of the partner, as stored: no address, no company name.
async fn assert_marker_holds_no_personal_data(app: &TestApp, id: &str, email: &str) {
    let company = app.store.get_partner(id).await.unwrap().unwrap().company_name;
    let markers: Vec<_> = app
        .partition(&keys::partner_pk(id))
        .await
        .into_iter()
        .filter(|i| i["SK"].as_s().unwrap().starts_with(keys::REMINDER_PREFIX))
        .collect();
    assert!(!markers.is_empty());
    for mut item in markers {
        // SES's message id is the emulator's to format; everything else is ours.
        item.remove("messageId");
        let raw = format!("{item:?}");
        assert!(!raw.contains('@') && !raw.contains(email), "an address in the marker: {raw}");
        assert!(!raw.contains(&company), "the company name in the marker: {raw}");
    }
}

#[tokio::test]
async fn a_renewal_between_runs_ends_the_reminders_for_the_old_end_date() {
    let app = cron_app().await;
    let d = plus(today(), 40);
    let old_end = plus(d, 20);
    let (id, email) = partner(&app, "renews", gold_until(old_end, false)).await;
    let cron = cron(&app).await;
    assert_eq!(run(&cron, d).await.reminders_sent.renewal_reminder_30, 1);
    // A run crashed holding the urgent notice of the old term.
    let crashed = MarkerClaim {
        partner_id: &id,
        end_date: old_end,
        kind: NoticeKind::RenewalUrgent7,
        owner: "cron-crashed",
        run_date: d,
        now: "2026-01-01T10:00:00.000Z",
        lease_until: "2026-01-01T10:15:00.000Z",
        details: None,
        require_active_term: true,
    };
    assert_eq!(app.store.claim_marker(&crashed).await.unwrap(), Claim::Claimed);

    // The renewal (same tier again) extends the term from its end by the commitment.
    let path = format!("/api/admin/partners/{id}/engagement-tier");
    let (status, renewed) = app.call("PATCH", &path, Some("admin"), Some(json!({"tier": "gold"}))).await;
    assert_eq!(status, 200, "{renewed}");
    let new_end = ymd(renewed["subscriptionEndDate"].as_str().unwrap());
    assert!(new_end > old_end);

    // 6 days before the old end: no urgent notice for it, and the crashed run's claim
    // on it is cleared away.
    let s = run(&cron, plus(d, 14)).await;
    assert_eq!(s.reminders_sent, Default::default(), "{s:?}");
    assert_eq!(kinds_received(&email).await, ["renewal_reminder_30"]);
    assert!(app.store.get_marker(&id, old_end, NoticeKind::RenewalUrgent7).await.unwrap().is_none());
    assert_eq!(app.store.stale_claims("9999").await.unwrap().0, vec![], "no claims left");
    // Even a run whose index read still showed the old end date could not claim it.
    let claim = MarkerClaim {
        partner_id: &id,
        end_date: old_end,
        kind: NoticeKind::RenewalUrgent7,
        owner: "cron-stale-view",
        run_date: plus(d, 14),
        now: "2026-01-01T10:00:00.000Z",
        lease_until: "2026-01-01T10:15:00.000Z",
        details: None,
        require_active_term: true,
    };
    assert_eq!(app.store.claim_marker(&claim).await.unwrap(), Claim::PartnerChanged);
    // The new term gets its own reminders when its time comes.
    let s = run(&cron, plus(new_end, -30)).await;
    assert_eq!(sent(&s, NoticeKind::RenewalReminder30), vec![id.clone()]);
}

#[tokio::test]
async fn the_dev_gateway_runs_the_cron_on_demand_and_still_serves_the_api() {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let app = cron_app().await;
    let d = plus(today(), 40);
    let (_, email) = partner(&app, "devgw", gold_until(plus(d, 6), false)).await;
    let cron = Arc::new(cron(&app).await);
    let router = devtools::cron::router(cron).merge(app.gateway.clone().router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let call = |method: &'static str, path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let req = http::Request::builder().method(method).uri(url).body(Full::new(Bytes::new())).unwrap();
            let resp = client.request(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
        }
    };
    let (status, summary) = call("POST", format!("/_local/cron/expiry-cron?date={d}")).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["date"], d.to_string());
    assert_eq!(summary["remindersSent"], json!({"renewal_reminder_30": 0, "renewal_urgent_7": 1}));
    assert_eq!(summary["expired"], 0);
    for key in ["expiryEmailsSent", "skipped", "failed", "snapshots", "dynamodbReads"] {
        assert!(summary.get(key).is_some(), "{key} in {summary}");
    }
    assert_eq!(kinds_received(&email).await, ["renewal_urgent_7"]);
    let (status, again) = call("POST", format!("/_local/cron/expiry-cron?date={d}")).await;
    assert_eq!((status, &again["remindersSent"]["renewal_urgent_7"]), (200, &json!(0)));
    let (status, bad) = call("POST", "/_local/cron/expiry-cron?date=2026-02-30".into()).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["details"]["fields"]["date"].is_string());
    let (status, _) = call("GET", "/_local/cron/expiry-cron".into()).await;
    assert_eq!(status, 405);
    let (status, tiers) = call("GET", "/api/tiers".into()).await;
    assert_eq!(status, 200, "{tiers}");
}

#[test]
fn the_schedule_the_events_and_the_docs_agree() {
    let template: serde_yaml::Value = serde_yaml::from_str(&read_repo_file("template.yaml")).unwrap();
    let f = &template["Resources"]["ExpiryCronFunction"]["Properties"];
    assert_eq!(f["CodeUri"].as_str(), Some("functions/expiry-cron/"));
    let daily = &f["Events"]["Daily"];
    assert_eq!(daily["Type"].as_str(), Some("Schedule"));
    assert!(daily["Properties"]["Schedule"].as_str().unwrap().starts_with("cron("));
    assert!(f["EventInvokeConfig"]["MaximumRetryAttempts"].as_u64().is_some());
    assert_eq!(f["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"].as_str(), Some("SQS"));
    // Its IAM policy (no Scan, exactly the calls it makes) is checked by `iam::`.
    assert_eq!(
        devtools::cron::scheduled_functions(&read_repo_file("template.yaml")).unwrap(),
        vec![devtools::cron::CRON_FUNCTION.to_string()]
    );
    let env = &f["Environment"]["Variables"];
    let docs = read_repo_file("docs/cron.md");
    for var in ["RENEWAL_REMINDER_DAYS", "RENEWAL_REMINDER_DAYS_BY_TIER", "EXPIRY_GRACE_DAYS", "CRON_MARKER_LEASE_SECS"]
    {
        assert!(env[var].is_string(), "{var} set in the template");
        assert!(docs.contains(var), "{var} documented");
    }

    let scheduled: Value = serde_json::from_str(&read_repo_file("events/expiry-cron.json")).unwrap();
    assert!(devtools::cron::is_scheduled_event(&scheduled));
    let run = RunDate::from_event(&scheduled).unwrap();
    assert_eq!(run.at, "2026-11-21T06:15:00.000Z");
    let backfill: Value = serde_json::from_str(&read_repo_file("events/expiry-cron-backfill.json")).unwrap();
    assert_eq!(RunDate::from_event(&backfill).unwrap().date, ymd("2026-11-20"));
}

/// `make invoke FN=… EVENT=…` (devctl) routes the sample events as Lambda would, and
/// refuses a FN that is not the event's target.
#[test]
fn make_invoke_routes_scheduled_events_to_the_cron_and_http_events_to_their_function() {
    use devtools::invoke::{logical_id, target, Target};
    let template = read_repo_file("template.yaml");
    let event = |name: &str| -> Value { serde_json::from_str(&read_repo_file(&format!("events/{name}"))).unwrap() };
    assert_eq!(logical_id("expiry-cron"), devtools::cron::CRON_FUNCTION);
    assert_eq!(logical_id("stripe_webhook"), "StripeWebhookFunction");
    for name in ["expiry-cron.json", "expiry-cron-backfill.json"] {
        let to = target(&template, &event(name), Some("expiry-cron"), name).unwrap();
        assert_eq!(to, Target::Scheduled("ExpiryCronFunction".into()), "{name}");
        assert_eq!(target(&template, &event(name), None, name).unwrap(), to);
        let wrong = target(&template, &event(name), Some("partners"), name).unwrap_err();
        assert_eq!(wrong, format!("{name} goes to ExpiryCronFunction, not PartnersFunction"));
    }
    let to = target(&template, &event("tiers-compare.json"), Some("tiers"), "tiers-compare.json").unwrap();
    assert!(matches!(&to, Target::Http(r) if r.function == "TiersFunction"), "{to:?}");
    assert!(target(&template, &event("tiers-compare.json"), Some("expiry-cron"), "x").is_err());
    assert!(target(&template, &json!({"routeKey": "GET /nowhere"}), None, "x").is_err());
}

/// The dev gateway's daily task: today at the time if still ahead, else tomorrow.
#[test]
fn the_daily_task_runs_next_at_its_time_today_or_tomorrow() {
    use devtools::cron::next_daily_run;
    let at = chrono::NaiveTime::from_hms_opt(6, 15, 0).unwrap();
    assert_eq!(next_daily_run(instant("2027-03-01T05:00:00Z"), at), instant("2027-03-01T06:15:00Z"));
    assert_eq!(next_daily_run(instant("2027-03-01T06:15:00Z"), at), instant("2027-03-02T06:15:00Z"));
    assert_eq!(next_daily_run(instant("2027-03-01T23:59:59Z"), at), instant("2027-03-02T06:15:00Z"));
    assert_eq!(next_daily_run(instant("2028-02-28T07:00:00Z"), at), instant("2028-02-29T06:15:00Z"));
}

// ---- Time travel ------------------------------------------------------------------

/// What happened, in the order it happened: the cron's emails and expiries, and the
/// renewals, reactivations and cancellations that came in through the API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Happening {
    date: NaiveDate,
    /// 0: the day's cron run (it runs first, at 00:00 UTC), 1: the API afterwards.
    phase: u8,
    who: &'static str,
    what: &'static str,
}

fn rank(what: &str) -> u8 {
    match what {
        "expired" => 0,
        "subscription_expired" => 1,
        "renewal_reminder_30" => 2,
        "renewal_urgent_7" => 3,
        _ => 4,
    }
}

/// A partner of the replay: its term at the start, and what arrives through the API.
struct Scenario {
    who: &'static str,
    term: Value,
    /// (date, action): "renew" = the same tier again (a renewal payment), "cancel".
    later: &'static [(&'static str, &'static str)],
}

/// Kill Bill–style: 22 partners with mixed tiers, billing periods, end dates and
/// renewal flags; 13 months of daily runs (2027-01-01 … 2028-01-31, run dates
/// injected); renewals, a late renewal (reactivation), cancellations and monthly
/// self-renewals arriving through the partners API with a pinned clock. Platinum has
/// its own offsets (60/14 days). The exact sequence of emails, renewals and expiries
/// is asserted, and the SES emulator and each partner's history agree with it.
#[tokio::test]
async fn time_travel_thirteen_months_of_daily_runs() {
    let app = cron_app().await;
    let flex = json!({"tierId": "flex", "name": "Flex", "tierLevel": 2, "sortOrder": 5,
                      "prices": {"monthly": 100_000, "yearly": 1_000_000}, "commitmentMonths": 0});
    let (status, body) = app.call("POST", "/api/admin/tiers", Some("admin"), Some(flex)).await;
    assert_eq!(status, 201, "{body}");

    // The partners function with a clock the test moves.
    let clock = Arc::new(FixedClock::new(instant("2026-12-20T09:00:00Z")));
    let partners_app = Arc::new(partners::Partners::new(app.function_app().with_clock(clock.clone())));
    let handler: Handler = Arc::new(move |req| {
        let a = partners_app.clone();
        Box::pin(async move { partners::handle(&a, req).await })
    });
    let routes = devtools::routes::from_template(&read_repo_file("template.yaml"))
        .unwrap()
        .into_iter()
        .filter(|r| r.function == "PartnersFunction")
        .collect();
    let gw =
        Gateway::new(routes, &HashMap::from([("PartnersFunction".to_string(), handler)]), app.secret().into()).unwrap();
    let api = |method: &'static str, path: String, body: Value| {
        let gw = &gw;
        // A token per call: the thirteen months take longer than a token lives on a
        // loaded machine.
        let admin = app.token("admin");
        async move {
            let (status, out) = devtools::seed::call_json(gw, method, &path, Some(&admin), Some(body)).await;
            assert_eq!(status, if path.ends_with("/api/admin/partners") { 201 } else { 200 }, "{path} {out}");
            out
        }
    };

    let term = |tier: &str, period: &str, end: &str, auto: bool| json!({"tier": tier, "billingPeriod": period, "subscriptionEndDate": end, "autoRenewal": auto});
    let scenarios = vec![
        Scenario { who: "P01", term: term("gold", "monthly", "2027-01-20", false), later: &[] },
        Scenario { who: "P02", term: term("gold", "monthly", "2027-02-15", false), later: &[("2027-02-05", "renew")] },
        Scenario { who: "P03", term: term("platinum", "yearly", "2027-03-10", true), later: &[] },
        Scenario {
            who: "P04",
            term: term("platinum", "monthly", "2027-04-30", true),
            later: &[("2027-05-06", "renew")],
        },
        Scenario {
            who: "P05",
            term: term("flex", "monthly", "2027-02-01", true),
            later: &[("2027-01-30", "renew"), ("2027-02-27", "renew"), ("2027-03-30", "renew")],
        },
        Scenario { who: "P06", term: term("flex", "monthly", "2027-01-25", false), later: &[] },
        Scenario { who: "P07", term: term("gold", "monthly", "2027-06-30", false), later: &[("2027-05-01", "cancel")] },
        Scenario { who: "P08", term: term("gold", "monthly", "2027-08-15", false), later: &[("2027-07-25", "cancel")] },
        Scenario { who: "P09", term: Value::Null, later: &[] },
        Scenario { who: "P10", term: term("gold", "monthly", "2027-02-10", true), later: &[] },
        Scenario { who: "P11", term: term("gold", "monthly", "2027-12-31", false), later: &[("2027-12-28", "renew")] },
        Scenario { who: "P12", term: term("platinum", "monthly", "2027-09-09", false), later: &[] },
        Scenario { who: "P13", term: term("gold", "yearly", "2027-10-01", true), later: &[("2027-09-20", "renew")] },
        Scenario { who: "P14", term: term("gold", "monthly", "2027-11-15", false), later: &[("2027-10-01", "renew")] },
        Scenario { who: "P15", term: term("gold", "monthly", "2027-01-05", false), later: &[] },
        Scenario { who: "P16", term: term("gold", "monthly", "2027-01-01", false), later: &[] },
        Scenario {
            who: "P17",
            term: term("platinum", "monthly", "2027-07-31", true),
            later: &[("2027-08-14", "renew")],
        },
        Scenario {
            who: "P18",
            term: term("platinum", "monthly", "2027-05-20", true),
            later: &[("2027-06-04", "renew")],
        },
        Scenario { who: "P19", term: term("flex", "yearly", "2027-04-15", true), later: &[("2027-04-10", "renew")] },
        Scenario { who: "P20", term: term("gold", "monthly", "2028-01-20", false), later: &[] },
        Scenario { who: "P21", term: term("gold", "monthly", "2027-02-28", false), later: &[] },
        Scenario { who: "P22", term: term("gold", "monthly", "2027-05-31", false), later: &[("2027-05-31", "renew")] },
    ];

    // Everyone signs up and takes their term on 2026-12-20.
    let mut ids: HashMap<&'static str, (String, String)> = HashMap::new();
    for s in &scenarios {
        let email = address(&s.who.to_lowercase());
        let created = api(
            "POST",
            "/api/admin/partners".into(),
            json!({"companyName": format!("Replay {}", s.who), "primaryEmail": email}),
        )
        .await;
        let id = created["partnerId"].as_str().unwrap().to_string();
        if !s.term.is_null() {
            api("PATCH", format!("/api/admin/partners/{id}/engagement-tier"), s.term.clone()).await;
        }
        ids.insert(s.who, (id, email));
    }
    let who_is: HashMap<String, &'static str> = ids.iter().map(|(w, (id, _))| (id.clone(), *w)).collect();

    let config =
        CronConfig { schedule: ReminderSchedule::parse("30,7", "platinum=60,14").unwrap(), ..CronConfig::default() };
    // The cron runs on the test's clock too: the whole replay is on injected time.
    let cron = cron_with(&app, &ses::endpoint(), config, clock.clone()).await;

    let mut happened: Vec<Happening> = Vec::new();
    let mut day = ymd("2027-01-01");
    let last = ymd("2028-01-31");
    let mut reads = 0;
    let mut runs = 0;
    while day <= last {
        // The day's run at 06:15 UTC, as scheduled, before the day's business.
        clock.set(day.and_hms_opt(6, 15, 0).unwrap().and_utc());
        let summary = cron.run(&RunDate::for_date(day)).await.expect("run");
        assert!(!summary.has_failures() && summary.errors.is_empty(), "{day}: {summary:?}");
        runs += 1;
        reads += summary.dynamodb_reads;
        for action in &summary.actions {
            let what = match action.what {
                ActionKind::Expired => "expired",
                ActionKind::Sent(kind) => kind.as_str(),
            };
            happened.push(Happening { date: day, phase: 0, who: who_is[&action.partner_id], what });
        }
        // Then the day's business through the API, at noon.
        clock.set(day.and_hms_opt(12, 0, 0).unwrap().and_utc());
        for s in &scenarios {
            for (date, action) in s.later {
                if ymd(date) != day {
                    continue;
                }
                let id = &ids[s.who].0;
                let what = match *action {
                    "renew" => {
                        let tier = s.term["tier"].as_str().unwrap();
                        let out =
                            api("PATCH", format!("/api/admin/partners/{id}/engagement-tier"), json!({"tier": tier}))
                                .await;
                        if out["subscriptionStartDate"] == day.to_string() {
                            "reactivate"
                        } else {
                            "renewal"
                        }
                    }
                    _ => {
                        api("POST", format!("/api/admin/partners/{id}/cancel"), json!({"reason": "budget"})).await;
                        "cancel"
                    }
                };
                happened.push(Happening { date: day, phase: 1, who: s.who, what });
            }
        }
        day = plus(day, 1);
    }
    assert_eq!(runs, 396);

    let h =
        |date: &str, phase: u8, who: &'static str, what: &'static str| Happening { date: ymd(date), phase, who, what };
    let (r30, r7, exp, note) = ("renewal_reminder_30", "renewal_urgent_7", "expired", "subscription_expired");
    let mut expected = vec![
        // P01: non-renewing, ends 01-20 (19 days left on the first run).
        h("2027-01-01", 0, "P01", r30),
        h("2027-01-13", 0, "P01", r7),
        h("2027-01-21", 0, "P01", exp),
        h("2027-01-21", 0, "P01", note),
        // P02: renewed after the first notice; the new term's notice comes a year later.
        h("2027-01-16", 0, "P02", r30),
        h("2027-02-05", 1, "P02", "renewal"),
        h("2028-01-16", 0, "P02", r30),
        // P03: platinum yearly, auto-renewing (60/14 days); no payment: expires after 14 days' grace.
        h("2027-01-09", 0, "P03", r30),
        h("2027-02-24", 0, "P03", r7),
        h("2027-03-25", 0, "P03", exp),
        h("2027-03-25", 0, "P03", note),
        // P04: pays late, inside the grace period: renewed from its old end date.
        h("2027-03-01", 0, "P04", r30),
        h("2027-04-16", 0, "P04", r7),
        h("2027-05-06", 1, "P04", "renewal"),
        // P05: no-commitment monthly auto-renewal: no reminders; stops paying, expires after grace.
        h("2027-01-30", 1, "P05", "renewal"),
        h("2027-02-27", 1, "P05", "renewal"),
        h("2027-03-30", 1, "P05", "renewal"),
        h("2027-05-16", 0, "P05", exp),
        h("2027-05-16", 0, "P05", note),
        // P06: the same tier, not renewing: reminded, then expired the day after its end.
        h("2027-01-01", 0, "P06", r30),
        h("2027-01-18", 0, "P06", r7),
        h("2027-01-26", 0, "P06", exp),
        h("2027-01-26", 0, "P06", note),
        // P07: cancelled before any reminder: none; expires after the term.
        h("2027-05-01", 1, "P07", "cancel"),
        h("2027-07-01", 0, "P07", exp),
        h("2027-07-01", 0, "P07", note),
        // P08: cancelled between the notices: no urgent notice.
        h("2027-07-16", 0, "P08", r30),
        h("2027-07-25", 1, "P08", "cancel"),
        h("2027-08-16", 0, "P08", exp),
        h("2027-08-16", 0, "P08", note),
        // P09: free, nothing ever.
        // P10: gold billed monthly on a 12-month commitment, auto-renewing, never pays.
        h("2027-01-11", 0, "P10", r30),
        h("2027-02-03", 0, "P10", r7),
        h("2027-02-25", 0, "P10", exp),
        h("2027-02-25", 0, "P10", note),
        // P11: renews after the urgent notice.
        h("2027-12-01", 0, "P11", r30),
        h("2027-12-24", 0, "P11", r7),
        h("2027-12-28", 1, "P11", "renewal"),
        // P12: platinum, not renewing.
        h("2027-07-11", 0, "P12", r30),
        h("2027-08-26", 0, "P12", r7),
        h("2027-09-10", 0, "P12", exp),
        h("2027-09-10", 0, "P12", note),
        // P13: gold yearly, renews between the notices.
        h("2027-09-01", 0, "P13", r30),
        h("2027-09-20", 1, "P13", "renewal"),
        // P14: renews before the first notice: no email at all.
        h("2027-10-01", 1, "P14", "renewal"),
        // P15, P16: already inside the urgent window on the first run.
        h("2027-01-01", 0, "P15", r7),
        h("2027-01-06", 0, "P15", exp),
        h("2027-01-06", 0, "P15", note),
        h("2027-01-01", 0, "P16", r7),
        h("2027-01-02", 0, "P16", exp),
        h("2027-01-02", 0, "P16", note),
        // P17: pays on the last day of grace.
        h("2027-06-01", 0, "P17", r30),
        h("2027-07-17", 0, "P17", r7),
        h("2027-08-14", 1, "P17", "renewal"),
        // P18: pays a day too late: expired that morning, back as a reactivation at noon.
        h("2027-03-21", 0, "P18", r30),
        h("2027-05-06", 0, "P18", r7),
        h("2027-06-04", 0, "P18", exp),
        h("2027-06-04", 0, "P18", note),
        h("2027-06-04", 1, "P18", "reactivate"),
        // P19: no-commitment tier billed yearly renews yearly: reminded.
        h("2027-03-16", 0, "P19", r30),
        h("2027-04-08", 0, "P19", r7),
        h("2027-04-10", 1, "P19", "renewal"),
        // P20: ends near the end of the replay.
        h("2027-12-21", 0, "P20", r30),
        h("2028-01-13", 0, "P20", r7),
        h("2028-01-21", 0, "P20", exp),
        h("2028-01-21", 0, "P20", note),
        // P21
        h("2027-01-29", 0, "P21", r30),
        h("2027-02-21", 0, "P21", r7),
        h("2027-03-01", 0, "P21", exp),
        h("2027-03-01", 0, "P21", note),
        // P22: renews on its last day.
        h("2027-05-01", 0, "P22", r30),
        h("2027-05-24", 0, "P22", r7),
        h("2027-05-31", 1, "P22", "renewal"),
    ];
    expected.sort_by_key(|h| (h.date, h.phase, h.who, rank(h.what)));
    let mut by_day = happened.clone();
    by_day.sort_by_key(|h| (h.date, h.phase, h.who, rank(h.what)));
    assert_eq!(by_day, expected);

    // The order inside a day, as it happened (not sorted): the run first, then the API.
    // A run works through its window in end-date order, then partner id (ids are ULIDs,
    // so creation order: P01 first), with an expiry right before its notice; resumed
    // claims come after the window. Deterministic, so asserted as is.
    let mut days: Vec<NaiveDate> = happened.iter().map(|h| h.date).collect();
    days.dedup();
    let mut shared_days = Vec::new();
    for day in days {
        let of_day: Vec<&Happening> = happened.iter().filter(|h| h.date == day).collect();
        assert!(of_day.windows(2).all(|w| w[0].phase <= w[1].phase), "{day}: the run before the API: {of_day:?}");
        let run: Vec<(&str, &str)> = of_day.iter().filter(|h| h.phase == 0).map(|h| (h.who, h.what)).collect();
        for (i, (who, what)) in run.iter().enumerate() {
            if *what == "expired" {
                assert_eq!(run.get(i + 1), Some(&(*who, note)), "{day}: an expiry's notice follows it: {run:?}");
            }
        }
        let mut partners: Vec<&str> = run.iter().map(|(who, _)| *who).collect();
        partners.dedup();
        if partners.len() > 1 {
            shared_days.push((day.to_string(), run));
        }
    }
    let shared_days: Vec<(&str, Vec<(&str, &str)>)> =
        shared_days.iter().map(|(d, run)| (d.as_str(), run.clone())).collect();
    assert_eq!(
        shared_days,
        vec![
            // End dates 01-01, 01-05, 01-20, 01-25.
            ("2027-01-01", vec![("P16", r7), ("P15", r7), ("P01", r30), ("P06", r30)]),
            // End dates 02-28 (expired) and 04-30 (platinum's 60-day notice).
            ("2027-03-01", vec![("P21", exp), ("P21", note), ("P04", r30)]),
        ],
        "the days on which a run acted for more than one partner, in the order it did"
    );

    // The SES emulator received exactly those emails, in that order, per partner; each
    // partner's history holds exactly those transitions.
    for s in &scenarios {
        let (id, email) = &ids[s.who];
        let want: Vec<&str> =
            expected.iter().filter(|h| h.who == s.who && h.phase == 0 && h.what != "expired").map(|h| h.what).collect();
        assert_eq!(kinds_received(email).await, want, "{} emails", s.who);
        let history = app.store.partner_history(id).await.unwrap();
        let events: Vec<String> = history
            .transitions
            .iter()
            .map(|t| serde_json::to_value(t.event).unwrap().as_str().unwrap().to_string())
            .filter(|e| e != "signup" && e != "upgrade")
            .collect();
        let want: Vec<&str> = expected
            .iter()
            .filter(|h| h.who == s.who && h.what != r30 && h.what != r7 && h.what != note)
            .map(|h| match h.what {
                "expired" => "expiration",
                other => other,
            })
            .collect();
        assert_eq!(events, want, "{} history", s.who);
    }
    // The final states.
    let state = |who: &'static str| {
        let id = ids[who].0.clone();
        let store = app.store.clone();
        async move { store.get_partner(&id).await.unwrap().unwrap() }
    };
    let p02 = state("P02").await;
    assert_eq!((p02.engagement_tier.as_str(), p02.subscription_end_date), ("gold", Some(ymd("2028-02-15"))));
    let p18 = state("P18").await;
    assert_eq!((p18.subscription_status.as_str(), p18.subscription_end_date), ("active", Some(ymd("2028-06-04"))));
    let p05 = state("P05").await;
    assert_eq!((p05.engagement_tier.as_str(), p05.subscription_status.as_str()), ("free", "expired"));
    // The cost per run follows the window, not the days replayed: a handful of reads.
    assert!(reads / runs <= 10, "{reads} reads over {runs} runs");
}

#[tokio::test]
async fn a_marker_past_its_ttl_counts_as_absent() {
    let app = cron_app().await;
    let end = plus(today(), 10);
    let (id, _) = partner(&app, "ttl", gold_until(end, false)).await;
    let kind = NoticeKind::RenewalUrgent7;
    let claim = |owner: &'static str, now: &'static str| MarkerClaim {
        partner_id: &id,
        end_date: end,
        kind,
        owner,
        run_date: today(),
        now,
        lease_until: "2026-01-01T11:00:00.000Z",
        details: None,
        require_active_term: false,
    };
    assert_eq!(app.store.claim_marker(&claim("run-1", "2026-01-01T10:00:00.000Z")).await.unwrap(), Claim::Claimed);
    assert!(app.store.mark_sent(&id, end, kind, "run-1", "2026-01-01T10:01:00.000Z", "msg-1").await.unwrap());
    assert_eq!(app.store.claim_marker(&claim("run-2", "2026-01-01T10:02:00.000Z")).await.unwrap(), Claim::AlreadySent);
    // Its ttl passes; DynamoDB has not deleted it yet, but it no longer counts.
    let sk = keys::reminder_sk(end, kind.as_str());
    let mut marker = app
        .partition(&keys::partner_pk(&id))
        .await
        .into_iter()
        .find(|i| i.get("SK").and_then(|v| v.as_s().ok()) == Some(&sk))
        .expect("the marker");
    marker.insert("ttl".into(), tierdesk_tests::n(instant("2026-01-01T10:00:00Z").timestamp()));
    app.put_raw(marker).await;
    assert_eq!(app.store.claim_marker(&claim("run-3", "2026-01-01T10:30:00.000Z")).await.unwrap(), Claim::Claimed);
}
