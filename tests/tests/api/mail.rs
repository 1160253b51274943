//! The mailer against DynamoDB Local (quota) and the SES emulator (sending). The
//! emulator is shared by all tests, so each test mails its own unique addresses.

use chrono::NaiveDate;
use futures::future::join_all;
use tierdesk::domain::money::BillingPeriod;
use tierdesk::mail::{Email, EmailKind, EmailVars, MailConfig, MailError, Mailer, SendOutcome};
use tierdesk::store::{keys, MailQuotaStore};
use tierdesk_tests::{ses, TestApp};

fn address(tag: &str) -> String {
    format!("{tag}-{}@partners.example", ulid::Ulid::new().to_string().to_lowercase())
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn reminder(to: &str) -> Email {
    Email {
        kind: EmailKind::RenewalReminder30,
        to: to.to_string(),
        vars: EmailVars {
            company_name: "Acme <Roofing> & Sons".into(),
            tier_name: "Power Gold".into(),
            amount: Some(360_000),
            billing_period: Some(BillingPeriod::Monthly),
            end_date: NaiveDate::from_ymd_opt(2026, 12, 21),
            days_left: Some(30),
            ..EmailVars::default()
        },
    }
}

async fn mailer(app: &TestApp, config: MailConfig) -> Mailer {
    Mailer::connect(&config, app.store.clone()).await
}

fn local_config(cap: u32) -> MailConfig {
    MailConfig { daily_cap_per_recipient: cap, ..MailConfig::local(ses::endpoint()) }
}

#[tokio::test]
async fn a_sent_email_reaches_ses_with_its_headers_and_both_bodies() {
    let app = TestApp::new().await;
    let config = MailConfig {
        reply_to: Some("support@tierdesk.local".into()),
        manage_url: "https://app.tierdesk.example/billing".into(),
        ..local_config(5)
    };
    let mailer = mailer(&app, config).await;
    let to = address("sent");

    let outcome = mailer.send(&reminder(&to), day(21)).await.expect("send");
    let SendOutcome::Sent { message_id } = outcome else { panic!("expected Sent, got {outcome:?}") };
    assert!(!message_id.is_empty());

    let emails = ses::emails_to(&to).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let email = &emails[0];
    assert_eq!(email["messageId"], message_id.as_str());
    assert_eq!(email["subject"], "Your Power Gold subscription expires in 30 days");
    assert_eq!(email["from"], "Tierdesk Billing <billing@tierdesk.local>");
    assert_eq!(email["replyTo"], serde_json::json!(["support@tierdesk.local"]));
    assert_eq!(email["destination"]["to"], serde_json::json!([to]));
    let html = email["body"]["html"].as_str().expect("html body");
    let text = email["body"]["text"].as_str().expect("text body");
    assert!(html.contains("Hello Acme &lt;Roofing&gt; &amp; Sons,"), "{html}");
    assert!(html.contains("href=\"https://app.tierdesk.example/billing\""), "{html}");
    assert!(html.contains("December 21, 2026") && html.contains("$3,600.00/mo"), "{html}");
    assert!(text.starts_with("Hello Acme <Roofing> & Sons,"), "{text}");
    assert!(text.contains("https://app.tierdesk.example/billing"), "{text}");

    // The quota item: keyed by the address hash, counting, expiring a few days later.
    let pk = keys::mail_quota_pk(&keys::mail_recipient_hash(&to));
    let items = app.partition(&pk).await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["SK"].as_s().unwrap(), "DAY#2026-11-21");
    assert_eq!(item["sent"].as_n().unwrap(), "1");
    let ttl: i64 = item["ttl"].as_n().unwrap().parse().unwrap();
    let midnight = day(21).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    assert!(ttl > midnight + 86_400 && ttl <= midnight + 4 * 86_400, "ttl {ttl}");
    // No personal data in the table: the address appears nowhere.
    assert!(!format!("{:?}", app.snapshot().await).contains(&to));
}

#[tokio::test]
async fn the_cap_stops_the_next_email_that_day_and_the_next_day_starts_over() {
    let app = TestApp::new().await;
    let mailer = mailer(&app, local_config(2)).await;
    let to = address("cap");

    assert!(matches!(mailer.send(&reminder(&to), day(21)).await.unwrap(), SendOutcome::Sent { .. }));
    assert!(matches!(mailer.send(&reminder(&to), day(21)).await.unwrap(), SendOutcome::Sent { .. }));
    // The same person with different case is the same recipient.
    assert_eq!(mailer.send(&reminder(&to.to_uppercase()), day(21)).await.unwrap(), SendOutcome::Capped);
    assert_eq!(mailer.send(&reminder(&to), day(21)).await.unwrap(), SendOutcome::Capped);
    assert_eq!(ses::emails_to(&to).await.len(), 2);
    assert_eq!(app.store.mail_quota_used(&to, day(21)).await.unwrap(), 2);

    // Another recipient is not affected.
    let other = address("cap-other");
    assert!(matches!(mailer.send(&reminder(&other), day(21)).await.unwrap(), SendOutcome::Sent { .. }));

    // The next day has a fresh quota.
    assert!(matches!(mailer.send(&reminder(&to), day(22)).await.unwrap(), SendOutcome::Sent { .. }));
    assert_eq!(ses::emails_to(&to).await.len(), 3);
    assert_eq!(app.store.mail_quota_used(&to, day(22)).await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_sends_to_one_recipient_never_exceed_the_cap() {
    let app = TestApp::new().await;
    let mailer = mailer(&app, local_config(3)).await;
    let to = address("race");

    let email = reminder(&to);
    let outcomes = join_all((0..12).map(|_| mailer.send(&email, day(21)))).await;
    let sent = outcomes.iter().filter(|o| matches!(o, Ok(SendOutcome::Sent { .. }))).count();
    let capped = outcomes.iter().filter(|o| matches!(o, Ok(SendOutcome::Capped))).count();
    assert_eq!((sent, capped), (3, 9), "{outcomes:?}");
    assert_eq!(ses::emails_to(&to).await.len(), 3);
    assert_eq!(app.store.mail_quota_used(&to, day(21)).await.unwrap(), 3);
}

#[tokio::test]
async fn an_unreachable_ses_fails_and_gives_the_quota_back() {
    let app = TestApp::new().await;
    let broken =
        mailer(&app, MailConfig { daily_cap_per_recipient: 1, ..MailConfig::local("http://127.0.0.1:1") }).await;
    let to = address("down");

    let err = broken.send(&reminder(&to), day(21)).await.expect_err("SES is down");
    assert!(matches!(err, MailError::Ses(_)), "{err:?}");
    // The message names the failure, never the address.
    assert!(!err.to_string().contains(&to), "{err}");
    assert_eq!(app.store.mail_quota_used(&to, day(21)).await.unwrap(), 0);

    // The unit given back is usable: with SES up, the one email of the day goes out.
    let working = mailer(&app, local_config(1)).await;
    assert!(matches!(working.send(&reminder(&to), day(21)).await.unwrap(), SendOutcome::Sent { .. }));
    assert_eq!(working.send(&reminder(&to), day(21)).await.unwrap(), SendOutcome::Capped);
    assert_eq!(ses::emails_to(&to).await.len(), 1);
}

#[tokio::test]
async fn an_email_that_cannot_render_uses_no_quota_and_sends_nothing() {
    let app = TestApp::new().await;
    let mailer = mailer(&app, local_config(1)).await;
    let to = address("render");
    let mut email = reminder(&to);
    email.vars.end_date = None;

    let err = mailer.send(&email, day(21)).await.expect_err("no end date");
    assert!(matches!(err, MailError::Render(_)), "{err:?}");
    assert_eq!(app.store.mail_quota_used(&to, day(21)).await.unwrap(), 0);
    assert!(ses::emails_to(&to).await.is_empty());
}

#[tokio::test]
async fn a_zero_cap_sends_nothing() {
    let app = TestApp::new().await;
    let mailer = mailer(&app, local_config(0)).await;
    let to = address("zero");
    assert_eq!(mailer.send(&reminder(&to), day(21)).await.unwrap(), SendOutcome::Capped);
    assert!(ses::emails_to(&to).await.is_empty());
}

/// Every function in `template.yaml` that sends mail (it has `MAIL_FROM`) gets every
/// mail setting from the same template parameter, so one change reaches all senders.
#[test]
fn every_function_that_sends_mail_gets_every_mail_setting_from_a_parameter() {
    let template: serde_yaml::Value =
        serde_yaml::from_str(&tierdesk_tests::read_repo_file("template.yaml")).expect("template parses");
    let settings = [
        ("MAIL_FROM", "MailFrom"),
        ("MAIL_REPLY_TO", "MailReplyTo"),
        ("MAIL_DAILY_CAP", "MailDailyCap"),
        ("SES_CONFIGURATION_SET", "MailConfigurationSet"),
        ("MAIL_MANAGE_URL", "MailManageUrl"),
    ];
    for (_, parameter) in settings {
        assert!(template["Parameters"][parameter]["Type"].is_string(), "parameter {parameter}");
    }
    assert_eq!(template["Parameters"]["MailDailyCap"]["Default"].as_u64(), Some(20));
    assert_eq!(template["Parameters"]["MailReplyTo"]["Default"].as_str(), Some(""));
    let mut senders = Vec::new();
    for (name, resource) in template["Resources"].as_mapping().expect("resources") {
        let env = &resource["Properties"]["Environment"]["Variables"];
        if env.get("MAIL_FROM").is_none() {
            continue;
        }
        let name = name.as_str().unwrap().to_string();
        for (var, parameter) in settings {
            // `!Ref X` reads back as a tagged value.
            let value = format!("{:?}", env[var]);
            assert!(value.contains("Ref") && value.contains(&format!("\"{parameter}\"")), "{name} {var}: {value}");
        }
        senders.push(name);
    }
    senders.sort();
    assert_eq!(
        senders,
        [
            "BillingFunction",
            "ExpiryCronFunction",
            "PartnersFunction",
            "PromotionsFunction",
            "QuotesFunction",
            "StripeWebhookFunction"
        ]
    );
}
