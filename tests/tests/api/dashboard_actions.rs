//! The subscription dashboard's actions (seed 003 §2.3, issue 22 §3): "send
//! reminder" now, through the cron's own markers, so the daily cron sends no second
//! reminder the same day.

use chrono::{Days, NaiveDate, Utc};
use expiry_cron::{CronConfig, ExpiryCron, RunDate};
use serde_json::{json, Value};
use tierdesk::domain::renewal::NoticeKind;
use tierdesk::mail::{MailConfig, Mailer};
use tierdesk::store::{JobStore, ReminderStore};
use tierdesk_tests::{ses, TestApp};

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn in_days(days: u64) -> NaiveDate {
    today().checked_add_days(Days::new(days)).unwrap()
}

/// A partner on gold until `end` (manual renewal), with a unique address.
async fn partner(app: &TestApp, tag: &str, end: NaiveDate, rep: Option<&str>) -> (String, String) {
    let email = format!("{tag}-{}@remind.example.com", ulid::Ulid::new().to_string().to_lowercase());
    let mut body = json!({"companyName": format!("{tag} Co"), "primaryEmail": email});
    if let Some(rep) = rep {
        body["assignedSalesRep"] = json!(rep);
    }
    let (status, created) = app.call("POST", "/api/admin/partners", Some("admin"), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["partnerId"].as_str().unwrap().to_string();
    let term = json!({"tier": "gold", "subscriptionEndDate": end.to_string(), "autoRenewal": false});
    let (status, out) =
        app.call("PATCH", &format!("/api/admin/partners/{id}/engagement-tier"), Some("admin"), Some(term)).await;
    assert_eq!(status, 200, "{out}");
    (id, email)
}

async fn cron(app: &TestApp) -> ExpiryCron {
    let mailer = Mailer::connect(&MailConfig::local(ses::endpoint()), app.store.clone()).await;
    ExpiryCron::new(app.function_app(), mailer, CronConfig::default())
}

async fn remind(app: &TestApp, id: &str, role: &str) -> (u16, Value) {
    app.call("POST", &format!("/api/admin/partners/{id}/reminders"), Some(role), None).await
}

#[tokio::test]
async fn a_reminder_sent_now_is_the_crons_template_and_the_cron_sends_none_that_day() {
    let app = TestApp::seeded().await;
    let (id, email) = partner(&app, "now", in_days(20), None).await;
    let (status, sent) = remind(&app, &id, "sales_manager").await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["kind"], "renewal_reminder_30");
    assert_eq!(sent["daysLeft"], 20);
    assert_eq!(sent["endDate"], in_days(20).to_string());
    let emails = ses::emails_to(&email).await;
    assert_eq!(emails.len(), 1);
    let subject = emails[0]["subject"].as_str().unwrap_or_default();
    assert!(subject.contains("subscription expires in"), "the cron's 30-day template: {subject}");

    // The cron's marker, sent, naming who sent it.
    let marker = app.store.get_marker(&id, in_days(20), NoticeKind::RenewalReminder30).await.unwrap().expect("marker");
    assert_eq!(marker.state, tierdesk::store::MarkerState::Sent);
    assert!(marker.sent_by.as_deref().is_some_and(|s| s.contains("sales_manager")), "{marker:?}");

    // The daily run the same day finds it sent: no second email.
    let summary = cron(&app).await.run(&RunDate::for_date(today())).await.unwrap();
    assert_eq!(summary.reminders_sent.renewal_reminder_30, 0, "{summary:?}");
    assert!(summary.skipped.already_sent >= 1, "{summary:?}");
    // A second click the same day is refused and sends nothing.
    let (status, again) = remind(&app, &id, "admin").await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("reminder_already_sent")), "{again}");
    assert_eq!(ses::emails_to(&email).await.len(), 1);
}

#[tokio::test]
async fn after_the_crons_reminder_a_click_the_same_day_sends_nothing_and_urgent_terms_get_the_urgent_notice() {
    let app = TestApp::seeded().await;
    let (id, email) = partner(&app, "cronfirst", in_days(5), None).await;
    let summary = cron(&app).await.run(&RunDate::for_date(today())).await.unwrap();
    assert!(summary.reminders_sent.renewal_urgent_7 >= 1, "{summary:?}");
    let (status, e) = remind(&app, &id, "admin").await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("reminder_already_sent")), "{e}");
    assert_eq!(ses::emails_to(&email).await.len(), 1);

    let (other, other_email) = partner(&app, "urgent", in_days(3), None).await;
    let (status, sent) = remind(&app, &other, "admin").await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["kind"], "renewal_urgent_7");
    let subject = ses::emails_to(&other_email).await[0]["subject"].as_str().unwrap_or_default().to_string();
    assert!(subject.starts_with("Final reminder:"), "{subject}");
}

#[tokio::test]
async fn concurrent_clicks_send_one_email() {
    let app = TestApp::seeded().await;
    let (id, email) = partner(&app, "race", in_days(25), None).await;
    let calls = (0..6).map(|i| {
        let app = &app;
        let id = id.clone();
        async move { remind(app, &id, if i % 2 == 0 { "admin" } else { "sales_manager" }).await }
    });
    let answers = futures::future::join_all(calls).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 409, "{body}");
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(code == "reminder_in_progress" || code == "reminder_already_sent", "{body}");
    }
    assert_eq!(ses::emails_to(&email).await.len(), 1);
}

#[tokio::test]
async fn reminders_refuse_what_the_cron_would_not_remind_bad_bodies_and_other_reps_partners() {
    let app = TestApp::seeded().await;
    // A free partner: nothing to renew.
    let free = app.create_partner("Free Remind").await["partnerId"].as_str().unwrap().to_string();
    let (status, e) = remind(&app, &free, "admin").await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("not_remindable")), "{e}");
    assert_eq!(e["error"]["details"]["reason"], "not_paid");
    // No such partner; an id that cannot exist.
    for id in ["prt_nobody", "Bad.Id"] {
        let (status, _) = remind(&app, id, "admin").await;
        assert_eq!(status, 404, "{id}");
    }
    // Unknown fields are refused, naming them.
    let (id, email) = partner(&app, "body", in_days(10), Some("rep-anna")).await;
    let (status, e) = app
        .call("POST", &format!("/api/admin/partners/{id}/reminders"), Some("admin"), Some(json!({"kind": "x"})))
        .await;
    assert_eq!(status, 400, "{e}");
    assert!(e["error"]["details"]["fields"]["kind"].is_string(), "{e}");
    // A rep may remind their own partner, not another rep's.
    let path = format!("/api/admin/partners/{id}/reminders");
    let (status, e) = app.call_with_token("POST", &path, &app.token_as("sales_rep", "rep-bob"), None).await;
    assert_eq!(status, 403, "{e}");
    assert!(ses::emails_to(&email).await.is_empty());
    let (status, sent) = app.call_with_token("POST", &path, &app.token_as("sales_rep", "rep-anna"), None).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["sentBy"], "rep-anna");
    assert_eq!(ses::emails_to(&email).await.len(), 1);
    // Anonymous and partner tokens never reach it.
    app.assert_access("POST", &path, None, None, false).await;
    app.assert_access("POST", &path, Some("partner"), None, false).await;
}

async fn job_call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, job) = app.call(method, path, Some("sales_manager"), body).await;
    assert!(status == 200 || status == 201, "{method} {path}: {status} {job}");
    job
}

#[tokio::test]
async fn bulk_reminders_run_in_chunks_once_per_partner_and_resume_after_a_lost_progress_write() {
    let app = TestApp::seeded().await;
    let mut emails = Vec::new();
    for i in 0..27u64 {
        let (_, email) = partner(&app, &format!("bulk{i}"), in_days(8 + i % 15), None).await;
        emails.push(email);
    }
    // One of them was reminded by hand today: the job skips it.
    let first = app.call("GET", "/api/admin/subscriptions?view=expiring&limit=1", Some("admin"), None).await.1;
    let first_id = first["items"][0]["partnerId"].as_str().unwrap().to_string();
    assert_eq!(remind(&app, &first_id, "admin").await.0, 200);

    let job = job_call(
        &app,
        "POST",
        "/api/admin/subscriptions/jobs",
        Some(json!({"action": "send_reminders", "view": "expiring", "tier": "gold"})),
    )
    .await;
    let id = job["jobId"].as_str().unwrap().to_string();
    assert_eq!(job["status"], "running", "{job}");
    assert_eq!(job["chunks"], 1);
    assert_eq!(job["counts"], json!({"processed": 25, "succeeded": 24, "skipped": 1, "failed": 0}));
    let polled = job_call(&app, "GET", &format!("/api/admin/subscriptions/jobs/{id}"), None).await;
    assert_eq!(polled, job, "polling reads the same progress");
    let after_first: tierdesk::domain::dashboard_job::Job = serde_json::from_value(job.clone()).unwrap();

    // Three runners continue at once: one counts the last chunk, every partner once.
    let path = format!("/api/admin/subscriptions/jobs/{id}/continue");
    let runs = (0..3).map(|_| {
        let (app, path) = (&app, path.clone());
        async move { app.call("POST", &path, Some("admin"), None).await }
    });
    for (status, body) in futures::future::join_all(runs).await {
        assert_eq!(status, 200, "{body}");
    }
    let done = job_call(&app, "GET", &format!("/api/admin/subscriptions/jobs/{id}"), None).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["counts"], json!({"processed": 27, "succeeded": 26, "skipped": 1, "failed": 0}), "{done}");
    for email in &emails {
        assert_eq!(ses::emails_to(email).await.len(), 1, "{email}: one reminder, manual or bulk");
    }

    // A crash lost the last chunk's progress write: the job is back where it was after
    // chunk 1. The rerun finds every partner of the chunk done and counts them again
    // as the lost write would have; nobody gets a second email.
    let current = done["version"].as_u64().unwrap();
    let lost = tierdesk::domain::dashboard_job::Job { version: current, ..after_first };
    assert!(app.store.save_job(current, &lost, Utc::now().timestamp()).await.unwrap());
    let rerun = job_call(&app, "POST", &path, None).await;
    assert_eq!(rerun["status"], "completed", "{rerun}");
    assert_eq!(rerun["counts"], done["counts"], "{rerun}");
    for email in &emails {
        assert_eq!(ses::emails_to(email).await.len(), 1, "{email}");
    }
    // A completed job continues to nothing.
    let again = job_call(&app, "POST", &path, None).await;
    assert_eq!(again["version"], rerun["version"]);
}

#[tokio::test]
async fn bulk_renewal_renews_manual_terms_once_and_skips_the_rest() {
    let app = TestApp::seeded().await;
    let mut manual = Vec::new();
    for i in 0..3 {
        manual.push(partner(&app, &format!("renew{i}"), in_days(10 + i), None).await.0);
    }
    let auto = app.create_partner("Auto Renew").await["partnerId"].as_str().unwrap().to_string();
    let term = json!({"tier": "gold", "subscriptionEndDate": in_days(12).to_string(), "autoRenewal": true});
    let (status, _) =
        app.call("PATCH", &format!("/api/admin/partners/{auto}/engagement-tier"), Some("admin"), Some(term)).await;
    assert_eq!(status, 200);

    let job = job_call(
        &app,
        "POST",
        "/api/admin/subscriptions/jobs",
        Some(json!({"action": "renew", "view": "expiring", "tier": "gold"})),
    )
    .await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["counts"], json!({"processed": 4, "succeeded": 3, "skipped": 1, "failed": 0}), "{job}");
    for (i, id) in manual.iter().enumerate() {
        let (_, p) = app.call("GET", &format!("/api/admin/partners/{id}"), Some("admin"), None).await;
        let end = in_days(10 + i as u64).checked_add_months(chrono::Months::new(12)).unwrap();
        assert_eq!(p["subscriptionEndDate"], end.to_string(), "{p}");
        assert_eq!(p["autoRenewal"], false, "still renewed by hand");
        let (_, h) = app.call("GET", &format!("/api/admin/partners/{id}/history"), Some("admin"), None).await;
        let renewals = h["items"].as_array().unwrap().iter().filter(|e| e["event"] == "renewal").count();
        assert_eq!(renewals, 1, "{h}");
    }
    let (_, a) = app.call("GET", &format!("/api/admin/partners/{auto}"), Some("admin"), None).await;
    assert_eq!(a["subscriptionEndDate"], in_days(12).to_string());
    // A second job over the same view finds nobody left to renew.
    let second = job_call(
        &app,
        "POST",
        "/api/admin/subscriptions/jobs",
        Some(json!({"action": "renew", "view": "expiring", "tier": "gold"})),
    )
    .await;
    assert_eq!(second["counts"]["succeeded"], 0, "{second}");
}

#[tokio::test]
async fn bulk_jobs_refuse_bad_input_reps_and_unknown_jobs() {
    let app = TestApp::seeded().await;
    for (body, field) in [
        (json!({}), "action"),
        (json!({"action": "export"}), "action"),
        (json!({"action": "renew", "view": "history"}), "view"),
        (json!({"action": "renew", "tier": "Not A Slug"}), "tier"),
        (json!({"action": "renew", "cursor": "x"}), "cursor"),
    ] {
        let (status, e) = app.call("POST", "/api/admin/subscriptions/jobs", Some("admin"), Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert!(e["error"]["details"]["fields"][field].is_string(), "{body}: {e}");
    }
    app.assert_access(
        "POST",
        "/api/admin/subscriptions/jobs",
        Some("sales_rep"),
        Some(json!({"action": "send_reminders"})),
        false,
    )
    .await;
    for path in ["/api/admin/subscriptions/jobs/job_nope", "/api/admin/subscriptions/jobs/bad%23id"] {
        let (status, _) = app.call("GET", path, Some("admin"), None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = app.call("POST", "/api/admin/subscriptions/jobs/job_nope/continue", Some("admin"), None).await;
    assert_eq!(status, 404);
}
