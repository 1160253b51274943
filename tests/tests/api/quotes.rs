//! Quotes through the gateway: pricing and numbering, discount authority and the
//! approval workflow, send (a real PDF attached to a real SES email), the public
//! link's view count, acceptance into a subscription change exactly once, expiry,
//! visibility and bad input.

use base64::Engine;
use devtools::gateway::{self, Gateway, Handler};
use devtools::{jwt, routes, seed};
use futures::future::join_all;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use tierdesk::clock::FixedClock;
use tierdesk::mail::templates::format_amount;
use tierdesk::mail::{MailConfig, Mailer};
use tierdesk_tests::{read_repo_file, ses, TestApp};

const ADMIN: &str = "/api/admin/quotes";
const VIEW: &str = "/api/quotes/view";
/// The web app's quote page, where the emailed link points.
const PAGE: &str = "/quote/";

fn prospect_email() -> String {
    format!("buyer-{}@example.com", ulid::Ulid::new().to_string().to_lowercase())
}

fn body(email: &str, extra: Value) -> Value {
    let valid = (chrono::Utc::now().date_naive() + chrono::Days::new(30)).format("%Y-%m-%d").to_string();
    let mut b = json!({
        "prospectEmail": email,
        "prospectName": "Ada Buyer",
        "prospectCompany": "Buyer Realty",
        "baseTier": "gold",
        "billingPeriod": "monthly",
        "discounts": [],
        "validUntil": valid,
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

async fn create(app: &TestApp, role: &str, b: Value) -> Value {
    let (status, q) = app.call("POST", ADMIN, Some(role), Some(b)).await;
    assert_eq!(status, 201, "{q}");
    q
}

fn id(q: &Value) -> String {
    q["quoteId"].as_str().unwrap().to_string()
}

/// The token of the link in the newest quote email to `sent`'s recipient naming
/// its number, read back from the SES emulator: staff answers never carry it.
async fn emailed_token(sent: &Value) -> String {
    let to = sent["sentTo"].as_str().unwrap_or_else(|| panic!("no sentTo: {sent}"));
    let subject = format!("Your quote {} from", sent["quoteNumber"].as_str().unwrap());
    let mails = ses::emails_to(to).await;
    let mail = mails
        .iter()
        .rev()
        .find(|m| m["subject"].as_str().unwrap_or_default().starts_with(&subject))
        .unwrap_or_else(|| panic!("no quote email to {to}: {mails:?}"));
    let text = mail["body"]["text"].as_str().unwrap();
    let start = text.find(PAGE).expect("a link to the quote page") + PAGE.len();
    text[start..start + 43].to_string()
}

/// Staff answers hold the preview link and never the prospect's token.
fn assert_no_token(answer: &Value, token: &str) {
    assert!(!answer.to_string().contains(token), "the token leaked to staff: {answer}");
    assert!(answer.get("trackingUrl").is_none(), "{answer}");
    let preview = answer["previewUrl"].as_str().unwrap_or_else(|| panic!("no previewUrl: {answer}"));
    assert_eq!(preview, format!("{ADMIN}/{}/pdf", answer["quoteId"].as_str().unwrap()));
}

/// Creates and sends a quote within a rep's authority; returns (quote, token).
async fn sent_quote(app: &TestApp, email: &str, extra: Value) -> (Value, String) {
    let q = create(app, "sales_rep", body(email, extra)).await;
    let (status, sent) = app.call("POST", &format!("{ADMIN}/{}/send", id(&q)), Some("sales_rep"), None).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["status"], "sent");
    let token = emailed_token(&sent).await;
    assert_no_token(&sent, &token);
    (sent, token)
}

fn pdf_text(bytes: &[u8]) -> String {
    let doc = lopdf::Document::load_mem(bytes).expect("the PDF parses");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    assert!(!pages.is_empty());
    doc.extract_text(&pages).expect("text extracts")
}

#[tokio::test]
async fn a_quote_is_priced_sent_as_a_pdf_viewed_and_accepted_into_a_subscription() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let q = create(
        &app,
        "sales_rep",
        body(
            &email,
            json!({
                "billingPeriod": "yearly",
                "commitmentMonths": 12,
                "customizations": {
                    "additionalListings": {"quantity": 5},
                    "additionalImages": {"quantity": 10},
                    "customFeatures": [{"featureId": "sso", "name": "Single sign-on", "price": 120000}],
                    "customLimits": {"leads": 150}
                },
                "discounts": [
                    {"type": "percentage", "value": 10, "reason": "multi-year"},
                    {"type": "fixed_amount", "value": 25000, "reason": "launch"}
                ]
            }),
        ),
    )
    .await;
    let year = chrono::Utc::now().format("%Y").to_string();
    assert_eq!(q["quoteNumber"], format!("Q-{year}-001"));
    assert_eq!(q["status"], "draft");
    // Gold yearly list + 5 listings × $120/yr + 10 images × $24/yr + $1,200 feature.
    let (_, tiers) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
    let yearly = tiers["prices"]["yearly"].as_i64().unwrap();
    let subtotal = yearly + 5 * 12_000 + 10 * 2_400 + 120_000;
    assert_eq!(q["subtotal"], subtotal);
    let after_pct = subtotal - (subtotal * 10 + 50) / 100;
    let final_price = after_pct - 25_000;
    assert_eq!(q["finalPrice"], final_price, "{q}");
    assert_eq!(q["totalDiscount"], subtotal - final_price);
    assert_eq!(q["pricePerMonth"], (final_price + 6) / 12);
    assert_eq!(q["discounts"][1]["amount"], 25_000);

    // The staff PDF route serves the same document.
    let (status, headers, pdf) = app.call_bytes("GET", &format!("{ADMIN}/{}/pdf", id(&q)), "sales_rep").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/pdf");
    let text = pdf_text(&pdf);
    let money = format_amount(final_price, "usd");
    assert!(text.contains(&format!("Q-{year}-001")), "{text}");
    assert!(text.contains(&money), "{money} not in {text}");

    let (status, sent) = app.call("POST", &format!("{ADMIN}/{}/send", id(&q)), Some("sales_rep"), None).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!((sent["status"].as_str(), sent["emailSent"].as_bool()), (Some("sent"), Some(true)), "{sent}");
    assert_eq!(sent["sentTo"], email.as_str());
    let token = emailed_token(&sent).await;
    assert_eq!(token.len(), 43);
    // The token travels in the email only; staff get a preview link that cannot accept.
    assert_no_token(&sent, &token);
    let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id(&q)), Some("sales_rep"), None).await;
    assert_no_token(&read, &token);
    // Only the hash is stored: the token appears nowhere in the table.
    assert!(!app.snapshot().await.iter().any(|item| item.contains(&token)));

    // The email carries the PDF, read back from the SES emulator.
    let mails = ses::emails_to(&email).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let attachment = &mails[0]["attachments"][0];
    assert_eq!(attachment["contentType"], "application/pdf");
    assert_eq!(attachment["filename"], format!("Q-{year}-001.pdf"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(attachment["content"].as_str().unwrap()).unwrap();
    let text = pdf_text(&bytes);
    assert!(text.contains(&format!("Q-{year}-001")) && text.contains(&money), "{text}");
    // No QUOTE_VIEW_URL: the link is the web app's quote page on the host the
    // request came to (the dev gateway serves the app and the API on one host).
    let link = format!("http://127.0.0.1:3000/quote/{token}");
    assert!(mails[0]["body"]["text"].as_str().unwrap().contains(&link));

    // Two views are counted; the public view holds no internal fields.
    for _ in 0..2 {
        let (status, view) = app.call("GET", &format!("{VIEW}/{token}"), None, None).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["finalPrice"], final_price);
        assert!(view.get("createdBy").is_none() && view.get("prospectEmail").is_none(), "{view}");
    }
    let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id(&q)), Some("sales_rep"), None).await;
    assert_eq!(read["viewCount"], 2, "{read}");
    assert!(read["lastViewedAt"].is_string());

    let (status, accepted) =
        app.call("POST", &format!("{VIEW}/{token}/accept"), None, Some(json!({"acceptedBy": "Ada Buyer"}))).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["subscriptionCreated"], true);
    let partner_id = accepted["partnerId"].as_str().unwrap().to_string();
    let (_, partner) = app.call("GET", &format!("/api/admin/partners/{partner_id}"), Some("admin"), None).await;
    assert_eq!(partner["engagementTier"], "gold", "{partner}");
    assert_eq!(partner["primaryEmail"], email.as_str());
    assert_eq!(partner["companyName"], "Buyer Realty");
    assert_eq!(partner["pricePerPeriod"], final_price);
    assert_eq!(partner["billingPeriod"], "yearly");
    assert_eq!(partner["mrr"], (final_price + 6) / 12);
    assert_eq!(partner["customLimits"]["leads"], 150);
    assert_eq!(partner["assignedSalesRep"], "user-sales_rep");
    let (_, history) = app.call("GET", &format!("/api/admin/partners/{partner_id}/history"), Some("admin"), None).await;
    let upgrade = history["items"].as_array().unwrap().iter().find(|e| e["toTier"] == "gold").expect("tier change");
    assert_eq!(upgrade["trigger"]["type"], "sales_assisted");
    assert_eq!(upgrade["trigger"]["salesRep"], "user-sales_rep");
    assert_eq!(upgrade["transitionId"], accepted["subscriptionId"]);

    let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id(&q)), Some("sales_manager"), None).await;
    assert_eq!(read["status"], "accepted");
    assert_eq!(read["customerId"], partner_id.as_str());
    assert_eq!(read["conversion"]["partnerCreated"], true);
    // The rep is told, at the address their token carried.
    let notices = ses::emails_to("user-sales_rep@staff.tierdesk.local").await;
    assert!(notices.iter().any(|m| m["subject"].as_str().unwrap_or_default()
        == format!("Accepted: Ada Buyer accepted quote Q-{year}-001")
        && m["body"]["text"].as_str().unwrap_or_default().contains(&partner_id)));
    // Views after acceptance no longer count.
    app.call("GET", &format!("{VIEW}/{token}"), None, None).await;
    let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id(&q)), Some("sales_rep"), None).await;
    assert_eq!(read["viewCount"], 2);
}

#[tokio::test]
async fn quote_numbers_never_repeat_under_concurrent_creation() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let calls = (0..25).map(|_| app.call("POST", ADMIN, Some("sales_rep"), Some(body(&email, json!({})))));
    let results = join_all(calls).await;
    let numbers: BTreeSet<String> = results
        .iter()
        .map(|(status, q)| {
            assert_eq!(*status, 201, "{q}");
            q["quoteNumber"].as_str().unwrap().to_string()
        })
        .collect();
    let year = chrono::Utc::now().format("%Y").to_string();
    let expected: BTreeSet<String> = (1..=25).map(|n| format!("Q-{year}-{n:03}")).collect();
    assert_eq!(numbers, expected);
    // A refused creation uses no number.
    let (status, _) = app.call("POST", ADMIN, Some("sales_rep"), Some(body("nope", json!({})))).await;
    assert_eq!(status, 400);
    let q = create(&app, "sales_rep", body(&email, json!({}))).await;
    assert_eq!(q["quoteNumber"], format!("Q-{year}-026"));
}

#[tokio::test]
async fn discount_authority_follows_the_role_and_approval_gates_sending() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let pct = |v: f64| json!({"discounts": [{"type": "percentage", "value": v, "reason": "competitive"}]});
    // A rep may give 15% in total; 15.5% waits for a manager.
    let within = create(&app, "sales_rep", body(&email, pct(15.0))).await;
    assert_eq!((within["status"].as_str(), within["approvalRequired"].as_bool()), (Some("draft"), Some(false)));
    let q = create(&app, "sales_rep", body(&email, pct(15.5))).await;
    assert_eq!(q["status"], "pending_approval", "{q}");
    assert_eq!(q["discounts"][0]["approvalRequired"], true);
    let approvals = ses::emails_to(quotes::DEFAULT_APPROVALS_EMAIL).await;
    let number = q["quoteNumber"].as_str().unwrap();
    assert!(approvals.iter().any(|m| m["subject"].as_str().unwrap_or_default().contains(&format!("quote {number}"))));
    // A manager may give 30%, an admin anything.
    assert_eq!(create(&app, "sales_manager", body(&email, pct(30.0))).await["status"], "draft");
    assert_eq!(create(&app, "sales_manager", body(&email, pct(30.5))).await["status"], "pending_approval");
    assert_eq!(create(&app, "admin", body(&email, pct(80.0))).await["status"], "draft");

    let path = |step: &str| format!("{ADMIN}/{}/{step}", id(&q));
    let (status, _) = app.call("POST", &path("send"), Some("sales_rep"), None).await;
    assert_eq!(status, 409, "a pending quote cannot be sent");
    let (status, denied) = app.call("POST", &path("approve"), Some("sales_rep"), None).await;
    assert_eq!((status, denied["error"]["code"].as_str()), (403, Some("forbidden")));
    // A manager cannot approve their own quote.
    let own = create(&app, "sales_manager", body(&email, pct(20.0))).await;
    assert_eq!(own["status"], "draft", "20% is within a manager's authority");
    let deep = create(&app, "sales_manager", body(&email, pct(35.0))).await;
    let (status, selfish) =
        app.call("POST", &format!("{ADMIN}/{}/approve", id(&deep)), Some("sales_manager"), None).await;
    assert_eq!((status, selfish["error"]["code"].as_str()), (403, Some("self_approval")), "{selfish}");
    // Another manager cannot approve above their own cap; an admin can.
    let other = app.token_as("sales_manager", "mgr-other");
    let (status, above) = app.call_with_token("POST", &format!("{ADMIN}/{}/approve", id(&deep)), &other, None).await;
    assert_eq!((status, above["error"]["code"].as_str()), (403, Some("above_approval_authority")), "{above}");
    let (status, _) = app.call("POST", &format!("{ADMIN}/{}/approve", id(&deep)), Some("admin"), None).await;
    assert_eq!(status, 200);

    let (status, approved) = app.call("POST", &path("approve"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "draft");
    assert_eq!(approved["approval"]["outcome"], "approved");
    assert_eq!(approved["discounts"][0]["approvedBy"], "user-sales_manager");
    // Editing an approved quote returns it to draft and it needs approval again.
    let (status, edited) = app
        .call(
            "PUT",
            &format!("{ADMIN}/{}", id(&q)),
            Some("sales_rep"),
            Some(json!({"version": approved["version"], "notes": "Tuesday"})),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["status"], "draft");
    assert!(edited.get("approval").is_none(), "{edited}");
    let (status, refused) = app.call("POST", &path("send"), Some("sales_rep"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("approval_required")), "{refused}");
    let (status, asked) = app.call("POST", &path("request-approval"), Some("sales_rep"), None).await;
    assert_eq!((status, asked["status"].as_str()), (200, Some("pending_approval")));
    // Refused: back to draft, still not sendable.
    let (status, rejected) =
        app.call("POST", &path("reject"), Some("sales_manager"), Some(json!({"reason": "too deep"}))).await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(
        (rejected["status"].as_str(), rejected["approval"]["outcome"].as_str()),
        (Some("draft"), Some("rejected"))
    );
    let (status, _) = app.call("POST", &path("send"), Some("sales_rep"), None).await;
    assert_eq!(status, 422);
    // Lowering the discount within authority makes it sendable without approval.
    let (_, lowered) = app
        .call(
            "PUT",
            &format!("{ADMIN}/{}", id(&q)),
            Some("sales_rep"),
            Some(json!({"version": rejected["version"], "discounts": [{"type": "percentage", "value": 12, "reason": "ok"}]})),
        )
        .await;
    assert_eq!(lowered["approvalRequired"], false, "{lowered}");
    let (status, sent) = app.call("POST", &path("send"), Some("sales_rep"), None).await;
    assert_eq!((status, sent["status"].as_str()), (200, Some("sent")), "{sent}");
}

#[tokio::test]
async fn two_managers_deciding_at_once_exactly_one_wins() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let mut losers = BTreeSet::new();
    for round in 0..10 {
        let q = create(
            &app,
            "sales_rep",
            body(&email, json!({"discounts": [{"type": "percentage", "value": 25, "reason": "r"}]})),
        )
        .await;
        let (approver, rejecter) = (app.token_as("sales_manager", "mgr-a"), app.token_as("sales_manager", "mgr-b"));
        let (approve_path, reject_path) = (format!("{ADMIN}/{}/approve", id(&q)), format!("{ADMIN}/{}/reject", id(&q)));
        // Both carry a note, as a console sends them: a decision may say why.
        let note = Some(json!({"reason": format!("round {round}")}));
        let approve = app.call_with_token("POST", &approve_path, &approver, note.clone());
        let reject = app.call_with_token("POST", &reject_path, &rejecter, note);
        let ((a, av), (r, rv)) = futures::join!(approve, reject);
        let mut statuses = [a, r];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "never 400: {av} {rv}");
        let (winner, loser) = if a == 200 { ("approved", &rv) } else { ("rejected", &av) };
        // The loser learns the quote moved on and where it stands now.
        let code = loser["error"]["code"].as_str().unwrap().to_string();
        assert!(code == "quote_state_changed" || code == "illegal_transition", "{loser}");
        assert_eq!(loser["error"]["details"]["status"], "draft", "{loser}");
        losers.insert(code);
        let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id(&q)), Some("admin"), None).await;
        assert_eq!(read["approval"]["outcome"], winner, "{read}");
        assert_eq!(read["approval"]["reason"], format!("round {round}"), "{read}");
        assert_eq!(read["version"], 2);
    }
    eprintln!("losing answers seen: {losers:?}");
}

#[tokio::test]
async fn double_and_concurrent_accepts_make_one_subscription_change() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let (_, token) =
        sent_quote(&app, &email, json!({"discounts": [{"type": "percentage", "value": 5, "reason": "r"}]})).await;
    let path = format!("{VIEW}/{token}/accept");
    let results = join_all((0..10).map(|_| app.call("POST", &path, None, None))).await;
    let partners: BTreeSet<String> = results
        .iter()
        .map(|(status, v)| {
            assert_eq!(*status, 200, "{v}");
            format!("{}|{}", v["partnerId"].as_str().unwrap(), v["subscriptionId"].as_str().unwrap())
        })
        .collect();
    assert_eq!(partners.len(), 1, "every accept answers with the one acceptance: {partners:?}");
    let (status, again) = app.call("POST", &path, None, None).await;
    assert_eq!(status, 200);
    let partner_id = again["partnerId"].as_str().unwrap();
    let history = app.partition(&format!("PARTNER#{partner_id}")).await;
    let events: Vec<_> = history.iter().filter(|i| i["SK"].as_s().is_ok_and(|s| s.starts_with("EVENT#"))).collect();
    assert_eq!(events.len(), 2, "a signup and one tier change");
    // One partner for the prospect's email.
    let (_, found) = app.call("GET", &format!("/api/admin/partners?email={email}"), Some("admin"), None).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");

    // An existing partner found by email is moved, not duplicated.
    let existing = app.create_partner("Known Co").await;
    let known = existing["primaryEmail"].as_str().unwrap().to_string();
    let (_, token) = sent_quote(&app, &known, json!({"billingPeriod": "monthly"})).await;
    let (status, accepted) = app.call("POST", &format!("{VIEW}/{token}/accept"), None, None).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["partnerId"], existing["partnerId"]);
    let (_, partner) = app
        .call("GET", &format!("/api/admin/partners/{}", existing["partnerId"].as_str().unwrap()), Some("admin"), None)
        .await;
    assert_eq!(partner["engagementTier"], "gold");
}

/// A gateway whose quotes function reads `clock` (the others run as usual).
async fn gateway_at(app: &TestApp, clock: Arc<FixedClock>) -> Gateway {
    let mut handlers = gateway::handlers_on(app.store.clone(), &app.config).await;
    let mailer = Mailer::connect(&MailConfig::local(ses::endpoint()), app.store.clone()).await;
    let quotes_app =
        Arc::new(quotes::Quotes::new(app.function_app().with_clock(clock), quotes::Settings::default(), mailer));
    let handler: Handler = Arc::new(move |req| {
        let a = quotes_app.clone();
        Box::pin(async move { quotes::handle(&a, req).await })
    });
    handlers.insert("QuotesFunction".into(), handler);
    Gateway::new(routes::from_template(&read_repo_file("template.yaml")).unwrap(), &handlers, app.secret().into())
        .unwrap()
}

#[tokio::test]
async fn an_expired_quote_cannot_be_accepted() {
    let app = TestApp::seeded().await;
    let today = chrono::Utc::now().date_naive();
    let email = prospect_email();
    let valid = json!({"validUntil": today.format("%Y-%m-%d").to_string()});
    // Past validUntil the link refuses even before the cron has run.
    let (_, token) = sent_quote(&app, &email, valid.clone()).await;
    let tomorrow = today.succ_opt().unwrap().and_hms_opt(9, 0, 0).unwrap().and_utc();
    let later = gateway_at(&app, Arc::new(FixedClock::new(tomorrow))).await;
    let (status, refused) = seed::call_json(&later, "POST", &format!("{VIEW}/{token}/accept"), None, None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("quote_expired")), "{refused}");
    let (_, view) = seed::call_json(&later, "GET", &format!("{VIEW}/{token}"), None, None).await;
    assert_eq!(view["status"], "expired");
    // On its last day it still can be.
    let (_, other) = sent_quote(&app, &prospect_email(), valid.clone()).await;
    let (status, ok) = app.call("POST", &format!("{VIEW}/{other}/accept"), None, None).await;
    assert_eq!(status, 200, "{ok}");

    // The daily cron expires open quotes past validUntil, once.
    let draft = create(&app, "sales_rep", body(&email, valid.clone())).await;
    let mailer = Mailer::connect(&MailConfig::local(ses::endpoint()), app.store.clone()).await;
    let cron = expiry_cron::ExpiryCron::new(app.function_app(), mailer, expiry_cron::CronConfig::default());
    let run = expiry_cron::RunDate::for_date(today.succ_opt().unwrap());
    let first = cron.run(&run).await.unwrap();
    assert_eq!(first.steps.get("quotes_expired"), Some(&2), "{first:?}");
    let again = cron.run(&run).await.unwrap();
    assert_eq!(again.steps.get("quotes_expired"), Some(&0));
    let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id(&draft)), Some("sales_rep"), None).await;
    assert_eq!(read["status"], "expired");
    let (status, refused) = app.call("POST", &format!("{VIEW}/{token}/accept"), None, None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("illegal_transition")), "{refused}");
    // The accepted one was not touched.
    let (status, _) = app.call("POST", &format!("{VIEW}/{other}/accept"), None, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn prospects_decline_with_a_reason_and_closed_quotes_stay_closed() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let (q, token) = sent_quote(&app, &email, json!({})).await;
    let (status, missing) = app.call("POST", &format!("{VIEW}/{token}/reject"), None, Some(json!({}))).await;
    assert_eq!((status, missing["error"]["details"]["fields"]["reason"].is_string()), (400, true));
    let (status, declined) =
        app.call("POST", &format!("{VIEW}/{token}/reject"), None, Some(json!({"reason": "budget"}))).await;
    assert_eq!((status, declined["status"].as_str()), (200, Some("rejected")), "{declined}");
    let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id(&q)), Some("sales_rep"), None).await;
    assert_eq!(read["rejectionReason"], "budget");
    let (status, _) = app.call("POST", &format!("{VIEW}/{token}/accept"), None, None).await;
    assert_eq!(status, 409);

    // Cancelled: the link shows it and cannot accept.
    let (q, token) = sent_quote(&app, &email, json!({})).await;
    let (status, cancelled) = app
        .call("POST", &format!("{ADMIN}/{}/cancel", id(&q)), Some("sales_rep"), Some(json!({"reason": "duplicate"})))
        .await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")));
    let (_, view) = app.call("GET", &format!("{VIEW}/{token}"), None, None).await;
    assert_eq!(view["status"], "cancelled");
    let (status, _) = app.call("POST", &format!("{VIEW}/{token}/accept"), None, None).await;
    assert_eq!(status, 409);
    // Re-sending replaces the link: the old token is dead.
    let (q, old) = sent_quote(&app, &email, json!({})).await;
    let (_, resent) = app.call("POST", &format!("{ADMIN}/{}/send", id(&q)), Some("sales_rep"), None).await;
    let new = emailed_token(&resent).await;
    assert_ne!(new, old);
    assert_eq!(app.call("GET", &format!("{VIEW}/{old}"), None, None).await.0, 404);
    assert_eq!(app.call("GET", &format!("{VIEW}/{new}"), None, None).await.0, 200);
}

/// The link holder's PDF: the same token check as the view, the same document as
/// the email's attachment, in any status, never cached and not counted as a view.
#[tokio::test]
async fn the_link_holder_downloads_the_pdf_without_signing_in() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let (q, token) =
        sent_quote(&app, &email, json!({"discounts": [{"type": "percentage", "value": 10, "reason": "launch"}]})).await;
    let pdf_path = format!("{VIEW}/{token}/pdf");
    let (status, headers, bytes) = app.call_bytes_as("GET", &pdf_path, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["cache-control"], "no-store");
    let number = q["quoteNumber"].as_str().unwrap();
    assert_eq!(headers["content-disposition"], format!("attachment; filename=\"{number}.pdf\""));
    let text = pdf_text(&bytes);
    let money = format_amount(q["finalPrice"].as_i64().unwrap(), "usd");
    assert!(text.contains(number) && text.contains(&money), "{text}");
    // Byte for byte the document the email carried.
    let mails = ses::emails_to(&email).await;
    let attached = mails.last().unwrap()["attachments"][0]["content"].as_str().unwrap().to_string();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(attached).unwrap(), bytes);
    // Downloads are not views.
    let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id(&q)), Some("sales_rep"), None).await;
    assert_eq!(read["viewCount"], 0, "{read}");

    // A wrong, malformed or replaced token is not found, as for the view.
    let mut wrong = token.clone();
    wrong.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    let dotted = format!("{}.", &token[..42]);
    for bad in [wrong.as_str(), "short", dotted.as_str()] {
        let (status, _, _) = app.call_bytes_as("GET", &format!("{VIEW}/{bad}/pdf"), None).await;
        assert_eq!(status, 404, "{bad}");
    }
    let (_, resent) = app.call("POST", &format!("{ADMIN}/{}/send", id(&q)), Some("sales_rep"), None).await;
    let new = emailed_token(&resent).await;
    assert_eq!(app.call_bytes_as("GET", &pdf_path, None).await.0, 404, "the replaced link is dead");
    let new_pdf = format!("{VIEW}/{new}/pdf");
    // Accepted (or closed in any other way), the document stays the holder's to keep.
    let (status, _) = app.call("POST", &format!("{VIEW}/{new}/accept"), None, None).await;
    assert_eq!(status, 200);
    let (status, _, bytes) = app.call_bytes_as("GET", &new_pdf, None).await;
    assert_eq!(status, 200);
    assert!(pdf_text(&bytes).contains(number));
}

#[tokio::test]
async fn a_rep_sees_only_their_own_quotes() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let mine = app.token_as("sales_rep", "rep-a");
    let theirs = app.token_as("sales_rep", "rep-b");
    let (status, q) = app.call_with_token("POST", ADMIN, &mine, Some(body(&email, json!({})))).await;
    assert_eq!(status, 201);
    assert_eq!(q["salesRep"], "rep-a");
    let before = app.snapshot().await;
    for (method, path, b) in [
        ("GET", format!("{ADMIN}/{}", id(&q)), None),
        ("GET", format!("{ADMIN}/{}/pdf", id(&q)), None),
        ("PUT", format!("{ADMIN}/{}", id(&q)), Some(json!({"version": 1, "notes": "x"}))),
        ("POST", format!("{ADMIN}/{}/send", id(&q)), None),
        ("POST", format!("{ADMIN}/{}/cancel", id(&q)), None),
    ] {
        let (status, v) = app.call_with_token(method, &path, &theirs, b).await;
        assert_eq!(status, 404, "{method} {path}: {v}");
    }
    assert_eq!(app.snapshot().await, before, "another rep's calls wrote nothing");
    let (_, list) = app.call_with_token("GET", ADMIN, &theirs, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let (_, list) = app.call_with_token("GET", &format!("{ADMIN}?salesRep=rep-a"), &theirs, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let (_, list) = app.call_with_token("GET", ADMIN, &mine, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // Managers see every quote, by rep, by status or all.
    for query in ["", "?salesRep=rep-a", "?status=draft"] {
        let (_, list) = app.call("GET", &format!("{ADMIN}{query}"), Some("sales_manager"), None).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{query}: {list}");
    }
    let (_, list) = app.call("GET", &format!("{ADMIN}?status=sent"), Some("sales_manager"), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    // A rep cannot put a quote in someone else's book.
    let (status, v) = app.call_with_token("POST", ADMIN, &mine, Some(body(&email, json!({"salesRep": "rep-b"})))).await;
    assert_eq!((status, v["error"]["details"]["fields"]["salesRep"].is_string()), (400, true), "{v}");
}

#[tokio::test]
async fn every_role_and_route_pair_is_checked() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let roles = [None, Some("partner"), Some("sales_rep"), Some("sales_manager"), Some("admin")];
    for role in roles {
        let staff = matches!(role, Some("sales_rep" | "sales_manager" | "admin"));
        let approver = matches!(role, Some("sales_manager" | "admin"));
        app.assert_access("GET", ADMIN, role, None, staff).await;
        app.assert_access("POST", ADMIN, role, Some(body(&email, json!({}))), staff).await;
        // A fresh pending quote per role for the decision routes.
        let pending = create(
            &app,
            "sales_rep",
            body(&email, json!({"discounts": [{"type": "percentage", "value": 20, "reason": "r"}]})),
        )
        .await;
        let pid = id(&pending);
        app.assert_access("POST", &format!("{ADMIN}/{pid}/approve"), role, None, approver).await;
        let pending = create(
            &app,
            "sales_rep",
            body(&email, json!({"discounts": [{"type": "percentage", "value": 20, "reason": "r"}]})),
        )
        .await;
        app.assert_access("POST", &format!("{ADMIN}/{}/reject", id(&pending)), role, None, approver).await;
        let own = create(&app, "sales_rep", body(&email, json!({}))).await;
        let oid = id(&own);
        app.assert_access("GET", &format!("{ADMIN}/{oid}"), role, None, staff).await;
        app.assert_access("PUT", &format!("{ADMIN}/{oid}"), role, Some(json!({"version": 1, "notes": "n"})), staff)
            .await;
        app.assert_access("GET", &format!("{ADMIN}/{oid}/pdf"), role, None, staff).await;
        app.assert_access("POST", &format!("{ADMIN}/{oid}/send"), role, None, staff).await;
        app.assert_access("POST", &format!("{ADMIN}/{oid}/cancel"), role, None, staff).await;
        let over = create(
            &app,
            "sales_rep",
            body(&email, json!({"discounts": [{"type": "percentage", "value": 20, "reason": "r"}]})),
        )
        .await;
        let rid = id(&over);
        let (_, rejected) = app.call("POST", &format!("{ADMIN}/{rid}/reject"), Some("admin"), None).await;
        assert_eq!(rejected["status"], "draft");
        app.assert_access("POST", &format!("{ADMIN}/{rid}/request-approval"), role, None, staff).await;
        // The link routes: the link is the credential, whoever else the caller is.
        let (_, token) = sent_quote(&app, &email, json!({})).await;
        app.assert_access("GET", &format!("{VIEW}/{token}"), role, None, true).await;
        app.assert_access("GET", &format!("{VIEW}/{token}/pdf"), role, None, true).await;
        app.assert_access("POST", &format!("{VIEW}/{token}/accept"), role, None, true).await;
        let (_, token) = sent_quote(&app, &email, json!({})).await;
        app.assert_access("POST", &format!("{VIEW}/{token}/reject"), role, Some(json!({"reason": "budget"})), true)
            .await;
        let (_, declined) = app.call("GET", &format!("{VIEW}/{token}"), None, None).await;
        assert_eq!(declined["status"], "rejected", "{declined}");
    }
    // The public link routes take no token: anyone holding the link may use them.
    let (_, token) = sent_quote(&app, &email, json!({})).await;
    assert_eq!(app.call("GET", &format!("{VIEW}/{token}"), None, None).await.0, 200);
}

#[tokio::test]
async fn bad_input_is_refused_by_field_and_writes_nothing() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let q = create(&app, "sales_rep", body(&email, json!({}))).await;
    let before = app.snapshot().await;
    let (status, v) = app
        .call(
            "POST",
            ADMIN,
            Some("sales_rep"),
            Some(json!({
                "prospectEmail": "not-an-email",
                "prospectName": "",
                "baseTier": "free",
                "billingPeriod": "weekly",
                "discounts": [{"type": "percentage", "value": 150, "reason": "x"}],
                "status": "accepted",
                "finalPrice": 1,
                "quoteNumber": "Q-1999-001",
            })),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let fields = v["error"]["details"]["fields"].as_object().unwrap();
    for f in
        ["prospectEmail", "prospectName", "billingPeriod", "discounts[0].value", "status", "finalPrice", "quoteNumber"]
    {
        assert!(fields.contains_key(f), "{f} not named: {v}");
    }
    for (b, field) in [
        (body(&email, json!({"baseTier": "free"})), "baseTier"),
        (body(&email, json!({"baseTier": "nope"})), "baseTier"),
        (body(&email, json!({"validUntil": "2020-01-01"})), "validUntil"),
        (body(&email, json!({"validUntil": "2099-01-01"})), "validUntil"),
        (body(&email, json!({"customerId": "prt_nobody"})), "customerId"),
        (
            body(&email, json!({"customizations": {"additionalListings": {"quantity": 1, "pricePerUnit": 1}}})),
            "customizations.additionalListings.pricePerUnit",
        ),
        (
            body(&email, json!({"discounts": [{"type": "fixed_amount", "value": 10.5, "reason": "r"}]})),
            "discounts[0].value",
        ),
    ] {
        let (status, v) = app.call("POST", ADMIN, Some("sales_rep"), Some(b)).await;
        assert_eq!(status, 400, "{field}: {v}");
        assert!(v["error"]["details"]["fields"][field].is_string(), "{field}: {v}");
    }
    let (status, v) = app.call_raw("POST", ADMIN, "sales_rep", b"{not json").await;
    assert_eq!(status, 400, "{v}");
    let (status, _) =
        app.call("PUT", &format!("{ADMIN}/{}", id(&q)), Some("sales_rep"), Some(json!({"notes": "x"}))).await;
    assert_eq!(status, 400, "version is required");
    let (status, v) = app
        .call("PUT", &format!("{ADMIN}/{}", id(&q)), Some("sales_rep"), Some(json!({"version": 9, "notes": "x"})))
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("version_conflict")));
    let (status, _) = app
        .call("POST", &format!("{ADMIN}/{}/request-approval", id(&q)), Some("sales_rep"), Some(json!({"reason": "x"})))
        .await;
    assert_eq!(status, 400);
    for path in [format!("{ADMIN}/quo_nope"), format!("{ADMIN}/{}x", id(&q))] {
        assert_eq!(app.call("GET", &path, Some("admin"), None).await.0, 404);
    }
    for token in ["short", "A".repeat(43).as_str(), "../../etc/passwd"] {
        let (status, _) = app.call("GET", &format!("{VIEW}/{token}"), None, None).await;
        assert_eq!(status, 404, "{token}");
        let (status, _) = app.call("POST", &format!("{VIEW}/{token}/accept"), None, None).await;
        assert_eq!(status, 404, "{token}");
    }
    assert_eq!(app.snapshot().await, before, "nothing was written");
    let (_, token) = sent_quote(&app, &email, json!({})).await;
    let (status, v) = app.call("POST", &format!("{VIEW}/{token}/accept"), None, Some(json!({"price": 1}))).await;
    assert_eq!((status, v["error"]["details"]["fields"]["price"].is_string()), (400, true), "{v}");
    let token = jwt::token_for("sales_rep", None, "x", 0, 1, app.secret());
    assert_eq!(app.call_with_token("GET", ADMIN, &token, None).await.0, 401, "an expired token");
}

#[tokio::test]
async fn a_quote_for_an_existing_partner_goes_to_its_billing_contact_only() {
    let app = TestApp::seeded().await;
    let outsider = prospect_email();
    for role in ["sales_rep", "sales_manager", "admin"] {
        let partner = app.create_partner("Known Co").await;
        let pid = partner["partnerId"].as_str().unwrap();
        let contact = partner["primaryEmail"].as_str().unwrap();
        // Any other address for an existing partner is refused, naming the field.
        let before = app.snapshot().await;
        let (status, v) = app.call("POST", ADMIN, Some(role), Some(body(&outsider, json!({"customerId": pid})))).await;
        assert_eq!((status, v["error"]["details"]["fields"]["prospectEmail"].is_string()), (400, true), "{role}: {v}");
        assert_eq!(app.snapshot().await, before, "{role}: a refused quote writes nothing");
        // To the billing contact it is written; an edit cannot move it elsewhere.
        let q = create(&app, role, body(contact, json!({"customerId": pid}))).await;
        let (status, v) = app
            .call(
                "PUT",
                &format!("{ADMIN}/{}", id(&q)),
                Some(role),
                Some(json!({"version": 1, "prospectEmail": outsider})),
            )
            .await;
        assert_eq!((status, v["error"]["details"]["fields"]["prospectEmail"].is_string()), (400, true), "{role}: {v}");
        let (status, sent) = app.call("POST", &format!("{ADMIN}/{}/send", id(&q)), Some(role), None).await;
        assert_eq!(status, 200, "{role}: {sent}");
        assert_eq!(sent["sentTo"], contact, "{role}");
        let token = emailed_token(&sent).await;
        assert_no_token(&sent, &token);
        let (_, read) = app.call("GET", &format!("{ADMIN}/{}", id(&q)), Some(role), None).await;
        assert_no_token(&read, &token);
        // The preview link is the staff PDF: staff only, and it accepts nothing.
        let preview = sent["previewUrl"].as_str().unwrap();
        let (status, headers, _) = app.call_bytes("GET", preview, role).await;
        assert_eq!((status, headers["content-type"].to_str().unwrap()), (200, "application/pdf"), "{role}");
        assert_eq!(app.call("GET", preview, None, None).await.0, 401);
        // Only the partner's contact holds the link; accepting it moves that partner.
        let (status, accepted) = app.call("POST", &format!("{VIEW}/{token}/accept"), None, None).await;
        assert_eq!((status, accepted["partnerId"].as_str()), (200, Some(pid)), "{role}: {accepted}");
    }
    assert!(ses::emails_to(&outsider).await.is_empty(), "nothing went to the other address");
}

#[tokio::test]
async fn custom_limits_above_the_tier_wait_for_an_approver() {
    let app = TestApp::seeded().await;
    let (_, gold) = app.call("GET", "/api/admin/tiers/gold", Some("admin"), None).await;
    let limit = gold["limits"]["leads"].as_u64().unwrap_or_else(|| panic!("gold limits leads: {gold}"));
    let partner = app.create_partner("Limits Co").await;
    let pid = partner["partnerId"].as_str().unwrap();
    let contact = partner["primaryEmail"].as_str().unwrap();
    let limits = |n: u64| json!({"customerId": pid, "customizations": {"customLimits": {"leads": n}}});
    let huge = 1_000_000_000_000u64;

    // A rep: at the tier's limit nothing is granted; above it the quote waits.
    let within = create(&app, "sales_rep", body(contact, limits(limit))).await;
    assert_eq!((within["status"].as_str(), within["approvalRequired"].as_bool()), (Some("draft"), Some(false)));
    let q = create(&app, "sales_rep", body(contact, limits(huge))).await;
    assert_eq!((q["status"].as_str(), q["approvalRequired"].as_bool()), (Some("pending_approval"), Some(true)), "{q}");
    let approvals = ses::emails_to(quotes::DEFAULT_APPROVALS_EMAIL).await;
    let number = q["quoteNumber"].as_str().unwrap();
    assert!(approvals.iter().any(|m| m["subject"].as_str().unwrap_or_default().contains(&format!("quote {number}"))));
    let path = |step: &str| format!("{ADMIN}/{}/{step}", id(&q));
    let (status, v) = app.call("POST", &path("send"), Some("sales_rep"), None).await;
    assert_eq!(status, 409, "a pending quote cannot be sent: {v}");
    // An edit by the rep keeps it waiting for approval.
    let (status, edited) = app
        .call("PUT", &format!("{ADMIN}/{}", id(&q)), Some("sales_rep"), Some(json!({"version": 1, "notes": "n"})))
        .await;
    assert_eq!((status, edited["approvalRequired"].as_bool()), (200, Some(true)), "{edited}");
    let (status, refused) = app.call("POST", &path("send"), Some("sales_rep"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("approval_required")), "{refused}");
    let (status, _) = app.call("POST", &path("request-approval"), Some("sales_rep"), None).await;
    assert_eq!(status, 200);

    // A manager and an admin may grant them.
    for role in ["sales_manager", "admin"] {
        let q = create(&app, role, body(contact, limits(huge))).await;
        assert_eq!((q["status"].as_str(), q["approvalRequired"].as_bool()), (Some("draft"), Some(false)), "{role}");
    }
    // Approved by a manager, the rep's quote goes out and, accepted, sets the limit.
    let (status, approved) = app.call("POST", &path("approve"), Some("sales_manager"), None).await;
    assert_eq!(status, 200, "{approved}");
    let (status, sent) = app.call("POST", &path("send"), Some("sales_rep"), None).await;
    assert_eq!(status, 200, "{sent}");
    let token = emailed_token(&sent).await;
    let (status, accepted) = app.call("POST", &format!("{VIEW}/{token}/accept"), None, None).await;
    assert_eq!(status, 200, "{accepted}");
    let (_, read) = app.call("GET", &format!("/api/admin/partners/{pid}"), Some("admin"), None).await;
    assert_eq!(read["customLimits"]["leads"], huge, "{read}");
}

#[tokio::test]
async fn a_send_key_is_the_callers_own_and_its_record_holds_no_token() {
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let rep_a = app.token_as("sales_rep", "rep-a");
    let rep_b = app.token_as("sales_rep", "rep-b");
    let manager = app.token_as("sales_manager", "mgr-a");
    let (status, q) = app.call_with_token("POST", ADMIN, &rep_a, Some(body(&email, json!({})))).await;
    assert_eq!(status, 201);
    let path = format!("{ADMIN}/{}/send", id(&q));
    let key = [("idempotency-key", "send-1")];
    let (status, headers, first) = app.call_with_headers("POST", &path, Some(&rep_a), &key, None).await;
    assert_eq!((status, headers.contains_key("idempotent-replayed")), (200, false), "{first}");
    let token = emailed_token(&first).await;
    assert_no_token(&first, &token);
    // The caller's own repeat is the first answer, and sends nothing more.
    let (status, headers, again) = app.call_with_headers("POST", &path, Some(&rep_a), &key, None).await;
    assert_eq!((status, headers.contains_key("idempotent-replayed")), (200, true), "{again}");
    assert_eq!(again, first);
    assert_eq!(ses::emails_to(&email).await.len(), 1);
    // The replay record exists, and no item of the table holds the token.
    let items = app.snapshot().await;
    assert!(items.iter().any(|i| i.contains("IDEMP#quote-send#")), "the replay record");
    assert!(!items.iter().any(|i| i.contains(&token)), "the token is stored nowhere");

    // A rep who may not see the quote gets 404 with the same key, and writes nothing.
    let before = app.snapshot().await;
    let (status, headers, v) = app.call_with_headers("POST", &path, Some(&rep_b), &key, None).await;
    assert_eq!((status, headers.contains_key("idempotent-replayed")), (404, false), "{v}");
    assert!(!v.to_string().contains(&token));
    assert_eq!(app.snapshot().await, before);
    // Another caller who may send it, with the same key, gets their own send.
    let (status, headers, other) = app.call_with_headers("POST", &path, Some(&manager), &key, None).await;
    assert_eq!((status, headers.contains_key("idempotent-replayed")), (200, false), "{other}");
    assert_eq!(other["version"], first["version"].as_u64().unwrap() + 1);
    assert_ne!(emailed_token(&other).await, token);

    // Past its ttl the record is absent, even while DynamoDB still holds it.
    let pk = format!("IDEMP#quote-send#{}#rep-a#send-1", id(&q));
    let mut record = app.partition(&pk).await.pop().expect("rep-a's record");
    record.insert("ttl".into(), tierdesk_tests::n(chrono::Utc::now().timestamp() - 60));
    app.put_raw(record).await;
    let (status, headers, fresh) = app.call_with_headers("POST", &path, Some(&rep_a), &key, None).await;
    assert_eq!((status, headers.contains_key("idempotent-replayed")), (200, false), "{fresh}");
    assert_eq!(fresh["version"], other["version"].as_u64().unwrap() + 1);
}

fn handoff_fixture() -> Value {
    serde_json::from_str(&read_repo_file("events/pipe-quote-accepted.json")).expect("fixture parses")
}

/// The CRM hand-off as the bus delivers it (`events/pipe-quote-accepted.json`):
/// decoded into the documented `QuoteAccepted`; what the pipe would not pass is refused.
#[test]
fn the_quote_handoff_fixture_decodes_into_the_documented_event() {
    use tierdesk::store::outbox::quote_accepted_from_pipe_event;
    let e = quote_accepted_from_pipe_event(&handoff_fixture()).expect("decodes");
    assert_eq!((e.event_type.as_str(), e.quote_number.as_str()), ("quote.accepted", "Q-2026-014"));
    assert_eq!((e.final_price, e.price_per_month, e.commitment_months), (3_888_000, 324_000, Some(12)));
    assert!(e.partner_created);
    assert_eq!(quote_accepted_from_pipe_event(&handoff_fixture()["detail"]).unwrap(), e);
    let v = serde_json::to_value(&e).unwrap();
    assert!(v.get("PK").is_none() && v.get("token").is_none(), "{v}");
    for (path, value) in [
        (&["detail", "eventName"][..], json!("MODIFY")),
        (&["detail", "dynamodb", "Keys", "PK"][..], json!({"S": "PARTNER#prt_x"})),
        (&["source"][..], json!("tierdesk.partners")),
        (&["detail-type"][..], json!("TierTransition")),
    ] {
        let mut other = handoff_fixture();
        let mut at = &mut other;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        assert!(quote_accepted_from_pipe_event(&other).is_err(), "{path:?}");
    }
    // A partner's transition is not a quote hand-off, nor the other way round.
    let transition: Value = serde_json::from_str(&read_repo_file("events/pipe-tier-transition.json")).unwrap();
    assert!(quote_accepted_from_pipe_event(&transition).is_err());
    assert!(tierdesk::store::outbox::transition_from_pipe_event(&handoff_fixture()).is_err());
}

/// The template publishes exactly these INSERTs: the hand-off pipe's filter names the
/// quote's EVENT items, under the source and detail type the decoder checks.
#[test]
fn the_handoff_pipe_publishes_quote_events_under_their_own_type() {
    let t: serde_yaml::Value = serde_yaml::from_str(&read_repo_file("template.yaml")).expect("template parses");
    let pipe = &t["Resources"]["QuoteHandoffPipe"]["Properties"];
    let target = &pipe["TargetParameters"]["EventBridgeEventBusParameters"];
    assert_eq!(
        (target["Source"].as_str(), target["DetailType"].as_str()),
        (Some("tierdesk.quotes"), Some("QuoteAccepted"))
    );
    let filters = pipe["SourceParameters"]["FilterCriteria"]["Filters"].as_sequence().expect("filters");
    assert_eq!(filters.len(), 1);
    let pattern: Value = serde_json::from_str(filters[0]["Pattern"].as_str().unwrap()).unwrap();
    assert_eq!(pattern["eventName"], json!(["INSERT"]));
    assert_eq!(pattern["dynamodb"]["Keys"]["PK"]["S"], json!([{"prefix": "QUOTE#"}]));
    assert_eq!(pattern["dynamodb"]["Keys"]["SK"]["S"], json!([{"prefix": "EVENT#"}]));
    // The quote's own item (META) and its token lookup never match.
    let key = |pk: &str, sk: &str| pk.starts_with("QUOTE#") && sk.starts_with("EVENT#");
    assert!(!key("QUOTE#quo_1", "META") && !key("QUOTETOKEN#abc", "LOOKUP"));
    let transitions =
        &t["Resources"]["TransitionsPipe"]["Properties"]["TargetParameters"]["EventBridgeEventBusParameters"];
    assert_eq!(transitions["DetailType"].as_str(), Some("TierTransition"));
}

/// An accepted quote writes its CRM hand-off once, in the acceptance's transaction,
/// whatever the number of accepts; a declined quote hands nothing off.
#[tokio::test]
async fn an_accepted_quote_hands_off_to_the_crm_exactly_once() {
    use tierdesk::store::outbox::{dynamodb_json, quote_accepted_from_pipe_event};
    let app = TestApp::seeded().await;
    let email = prospect_email();
    let (sent, token) = sent_quote(
        &app,
        &email,
        json!({"billingPeriod": "yearly", "discounts": [{"type": "percentage", "value": 5, "reason": "r"}]}),
    )
    .await;
    let quote_id = sent["quoteId"].as_str().unwrap().to_string();
    let path = format!("{VIEW}/{token}/accept");
    let results =
        join_all((0..8).map(|_| app.call("POST", &path, None, Some(json!({"acceptedBy": "Ada Buyer"}))))).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let events: Vec<_> = app
        .partition(&format!("QUOTE#{quote_id}"))
        .await
        .into_iter()
        .filter(|i| i["SK"].as_s().is_ok_and(|s| s.starts_with("EVENT#")))
        .collect();
    assert_eq!(events.len(), 1, "one hand-off for eight accepts");
    let mut event = handoff_fixture();
    let image = dynamodb_json(&events[0]).unwrap();
    event["detail"]["dynamodb"]["Keys"] = json!({"PK": image["PK"], "SK": image["SK"]});
    event["detail"]["dynamodb"]["NewImage"] = image;
    let handoff = quote_accepted_from_pipe_event(&event).expect("the stored item decodes");
    let (_, q) = app.call("GET", &format!("{ADMIN}/{quote_id}"), Some("sales_manager"), None).await;
    assert_eq!(handoff.quote_id, quote_id);
    assert_eq!(handoff.quote_number, q["quoteNumber"].as_str().unwrap());
    assert_eq!(handoff.accepted_at, q["acceptedAt"].as_str().unwrap());
    assert_eq!(handoff.partner_id, results[0].1["partnerId"].as_str().unwrap());
    assert!(handoff.partner_created, "a new prospect becomes a partner");
    assert_eq!(handoff.accepted_by_name.as_deref(), Some("Ada Buyer"));
    assert_eq!(handoff.prospect_email, email);
    assert_eq!(handoff.final_price, q["finalPrice"].as_i64().unwrap());
    assert_eq!(handoff.total_discount, q["totalDiscount"].as_i64().unwrap());
    assert_eq!(handoff.sales_rep, q["salesRep"].as_str().unwrap());
    assert_eq!(serde_json::to_value(handoff.billing_period).unwrap(), "yearly");

    // Declined: no hand-off.
    let (declined, token) = sent_quote(&app, &prospect_email(), json!({})).await;
    let (status, b) =
        app.call("POST", &format!("{VIEW}/{token}/reject"), None, Some(json!({"reason": "not now"}))).await;
    assert_eq!(status, 200, "{b}");
    let items = app.partition(&format!("QUOTE#{}", declined["quoteId"].as_str().unwrap())).await;
    assert!(items.iter().all(|i| !i["SK"].as_s().is_ok_and(|s| s.starts_with("EVENT#"))));
}
