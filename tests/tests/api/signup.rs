//! Partner self sign-up (docs/signup.md): Cognito's trigger events (the fixtures in
//! `events/`) through the signup function against the table, then the API with the
//! token those claims make.

use futures::future::join_all;
use serde_json::{json, Value};
use tierdesk_tests::TestApp;

fn fixture(name: &str) -> Value {
    serde_json::from_str(&tierdesk_tests::read_repo_file(&format!("events/{name}"))).expect("fixture")
}

/// A confirmation of a fresh account: its own `sub` and address.
fn confirmation(sub: &str, email: &str) -> Value {
    let mut e = fixture("cognito-post-confirmation.json");
    e["userName"] = json!(sub);
    e["request"]["userAttributes"]["sub"] = json!(sub);
    e["request"]["userAttributes"]["email"] = json!(email);
    e
}

fn token_request(sub: &str) -> Value {
    let mut e = fixture("cognito-pre-token.json");
    e["userName"] = json!(sub);
    e["request"]["userAttributes"]["sub"] = json!(sub);
    e
}

fn fresh() -> (String, String) {
    let id = ulid::Ulid::new().to_string().to_lowercase();
    (format!("acct-{id}"), format!("owner-{id}@harbour{}.example", &id[20..]))
}

async fn partners_with_email(app: &TestApp, email: &str) -> Vec<Value> {
    let (status, list) =
        app.call("GET", &format!("/api/admin/partners?email={}", email.replace('+', "%2B")), Some("admin"), None).await;
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().cloned().unwrap_or_default()
}

async fn claimed_partner(signup: &signup::Signup, sub: &str) -> Option<String> {
    let out = signup::handle(signup, token_request(sub), "req-token").await.expect("token trigger");
    out["response"]["claimsOverrideDetails"]["claimsToAddOrOverride"]["custom:partner_id"].as_str().map(str::to_string)
}

#[tokio::test]
async fn a_confirmed_account_gets_one_free_partner_and_its_tokens_carry_it_however_often_cognito_retries() {
    let app = TestApp::seeded().await;
    let signup = signup::Signup::new(app.function_app());
    let (sub, email) = fresh();

    // Cognito retries a trigger that failed or was slow: eight at once, then again.
    let answers = join_all((0..8).map(|_| signup::handle(&signup, confirmation(&sub, &email), "req-1"))).await;
    for a in &answers {
        assert_eq!(a.as_ref().expect("confirmation"), &confirmation(&sub, &email), "the event goes back unchanged");
    }
    signup::handle(&signup, confirmation(&sub, &email), "req-2").await.expect("a later retry");
    let found = partners_with_email(&app, &email).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let partner = &found[0];
    assert_eq!(
        (partner["engagementTier"].as_str(), partner["subscriptionStatus"].as_str()),
        (Some("free"), Some("active"))
    );
    assert_eq!(partner["companyName"], email.rsplit_once('@').unwrap().1, "named after the email's domain");
    let partner_id = partner["partnerId"].as_str().unwrap().to_string();
    let partner_records = app
        .items()
        .await
        .into_iter()
        .filter(|i| i["SK"] == "META" && i["PK"].as_str().is_some_and(|p| p.starts_with("PARTNER#")))
        .count();
    assert_eq!(partner_records, 1, "no second partner was created by a retry");

    // The ID token's claims: the partner and the partner group, nothing else.
    let out = signup::handle(&signup, token_request(&sub), "req-3").await.unwrap();
    assert_eq!(
        out["response"]["claimsOverrideDetails"],
        json!({"claimsToAddOrOverride": {"custom:partner_id": partner_id},
               "groupOverrideDetails": {"groupsToOverride": ["partner"]}})
    );
    // A token with those claims is that partner's, and only that partner's.
    let token = app.partner_token(&partner_id);
    let (status, me) = app.call_with_token("GET", "/api/billing/subscription", &token, None).await;
    assert_eq!((status, me["tierId"].as_str()), (200, Some("free")), "{me}");
    let (status, _) = app.call_with_token("GET", "/api/admin/partners", &token, None).await;
    assert_eq!(status, 404, "a self-registered partner is a partner, never staff (staff routes: not found)");
    let audits: Vec<Value> = app.items().await.into_iter().filter(|i| i["action"] == "partner.self_signup").collect();
    assert_eq!(audits.len(), 1, "{audits:?}");
}

#[tokio::test]
async fn an_account_whose_verified_email_names_a_partner_claims_that_partner() {
    let app = TestApp::seeded().await;
    let signup = signup::Signup::new(app.function_app());
    let existing = app.create_partner("Quoted Prospect").await;
    let email = existing["primaryEmail"].as_str().unwrap().to_uppercase();
    let (sub, _) = fresh();
    signup::handle(&signup, confirmation(&sub, &email), "req-1").await.expect("confirmation");
    assert_eq!(partners_with_email(&app, &email.to_lowercase()).await.len(), 1, "claimed, not duplicated");
    assert_eq!(claimed_partner(&signup, &sub).await.as_deref(), existing["partnerId"].as_str());
}

#[tokio::test]
async fn staff_invited_partners_and_unlinked_accounts_keep_their_tokens_as_they_are() {
    let app = TestApp::seeded().await;
    let signup = signup::Signup::new(app.function_app());
    let (sub, email) = fresh();
    signup::handle(&signup, confirmation(&sub, &email), "req-1").await.expect("confirmation");

    let mut staff = token_request(&sub);
    staff["request"]["groupConfiguration"]["groupsToOverride"] = json!(["sales_rep"]);
    assert_eq!(signup::handle(&signup, staff.clone(), "r").await.unwrap(), staff, "a group: untouched");
    let mut invited = token_request(&sub);
    invited["request"]["userAttributes"]["custom:partner_id"] = json!("prt_invited");
    assert_eq!(signup::handle(&signup, invited.clone(), "r").await.unwrap(), invited, "an invited partner: untouched");
    let (stranger, _) = fresh();
    assert_eq!(claimed_partner(&signup, &stranger).await, None, "an account with no partner gets no role");
    let mut reset = confirmation(&stranger, "someone@example.com");
    reset["triggerSource"] = json!("PostConfirmation_ConfirmForgotPassword");
    let before = app.snapshot().await;
    assert_eq!(signup::handle(&signup, reset.clone(), "r").await.unwrap(), reset);
    assert_eq!(app.snapshot().await, before, "a password reset writes nothing");
}

#[tokio::test]
async fn an_unverified_or_malformed_confirmation_is_refused_and_writes_nothing() {
    let app = TestApp::seeded().await;
    let signup = signup::Signup::new(app.function_app());
    let before = app.snapshot().await;
    let (sub, email) = fresh();
    let mut unverified = confirmation(&sub, &email);
    unverified["request"]["userAttributes"]["email_verified"] = json!("false");
    let bad_sub = confirmation("acct#1", &email);
    let bad_email = confirmation(&sub, "not-an-address");
    for event in [unverified, bad_sub, bad_email, json!({"triggerSource": "PostConfirmation_ConfirmSignUp"})] {
        let refused = signup::handle(&signup, event.clone(), "r").await;
        assert!(refused.is_err(), "{event}");
    }
    assert_eq!(app.snapshot().await, before);
}
