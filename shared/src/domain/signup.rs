//! Partner self sign-up (issue 23 §1, docs/signup.md): a visitor on the pricing page
//! creates a Cognito account, and two Cognito triggers make it a partner.
//!
//! - `PostConfirmation_ConfirmSignUp` (the email is verified): the account gets a
//!   partner, on the free tier, named after the email's domain until sales or the
//!   partner's rep renames it (the hosted sign-up form asks only for the address). A partner whose primary email is this address already (created
//!   by sales, or by accepting a quote) is claimed instead of duplicated: the visitor
//!   proved they own the address.
//! - `TokenGeneration_*`: an account with no group and no `custom:partner_id` gets,
//!   in its ID token, the `partner` group and the partner it owns. Staff and invited
//!   partners (who have a group) pass through untouched, without a table read.
//!
//! The claims are added at token time rather than written to the user pool, so the
//! triggers need no Cognito administrator rights, only the table.

use super::partner::{fields, NewPartner};
use serde_json::{json, Value};
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum SignupError {
    #[error("the Cognito event has no {0}")]
    Missing(&'static str),
    #[error("the account's email is not verified")]
    EmailNotVerified,
    #[error("the account's {field} is not usable: {problem}")]
    Invalid { field: &'static str, problem: String },
}

/// A Cognito trigger event, parsed: only the parts Tierdesk acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum CognitoTrigger {
    /// A new account confirmed its email.
    Confirmed(ConfirmedAccount),
    /// Tokens are being issued for an account.
    TokenIssued(TokenRequest),
    /// Any other trigger source (a password reset's confirmation): nothing to do.
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmedAccount {
    /// Cognito's `sub`: the account's permanent id.
    pub account: String,
    pub email: String,
    pub company_name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest {
    pub account: String,
    /// The user pool groups the account is in.
    pub groups: Vec<String>,
    /// `custom:partner_id`, set by an administrator for an invited partner.
    pub partner_id: Option<String>,
}

impl TokenRequest {
    /// Only an account that is nobody yet (no group, no partner attribute) may be a
    /// self-registered partner: staff and invited partners keep exactly their claims.
    pub fn needs_lookup(&self) -> bool {
        self.groups.is_empty() && self.partner_id.is_none()
    }
}

fn attributes(event: &Value) -> Result<&serde_json::Map<String, Value>, SignupError> {
    event["request"]["userAttributes"].as_object().ok_or(SignupError::Missing("request.userAttributes"))
}

/// The `sub`: Cognito's UUID, checked because it becomes part of a table key.
fn account_of(attrs: &serde_json::Map<String, Value>) -> Result<String, SignupError> {
    let sub = attrs.get("sub").and_then(Value::as_str).ok_or(SignupError::Missing("sub"))?;
    let ok = !sub.is_empty() && sub.len() <= 128 && sub.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(sub.to_string())
    } else {
        Err(SignupError::Invalid { field: "sub", problem: "must be letters, digits and '-'".into() })
    }
}

impl CognitoTrigger {
    pub fn parse(event: &Value) -> Result<Self, SignupError> {
        let source = event["triggerSource"].as_str().ok_or(SignupError::Missing("triggerSource"))?;
        match source {
            "PostConfirmation_ConfirmSignUp" => {
                let attrs = attributes(event)?;
                let account = account_of(attrs)?;
                if attrs.get("email_verified").and_then(Value::as_str) != Some("true") {
                    return Err(SignupError::EmailNotVerified);
                }
                let email = fields::email(attrs.get("email").ok_or(SignupError::Missing("email"))?)
                    .map_err(|problem| SignupError::Invalid { field: "email", problem })?;
                let company_name = company_from_email(&email);
                Ok(Self::Confirmed(ConfirmedAccount { account, email, company_name }))
            }
            s if s.starts_with("TokenGeneration_") => {
                let attrs = attributes(event)?;
                let account = account_of(attrs)?;
                let groups = event["request"]["groupConfiguration"]["groupsToOverride"]
                    .as_array()
                    .map(|g| g.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                let partner_id = attrs
                    .get("custom:partner_id")
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string);
                Ok(Self::TokenIssued(TokenRequest { account, groups, partner_id }))
            }
            other => Ok(Self::Ignored(other.to_string())),
        }
    }
}

/// A company name until the partner gives one: the email's domain ("acme.example").
pub fn company_from_email(email: &str) -> String {
    email.rsplit_once('@').map(|(_, domain)| domain.to_lowercase()).unwrap_or_else(|| email.to_string())
}

impl ConfirmedAccount {
    /// The partner a new account creates: the free tier, no rep (sales assigns one later).
    pub fn new_partner(&self) -> NewPartner {
        NewPartner {
            company_name: self.company_name.clone(),
            primary_email: self.email.clone(),
            assigned_sales_rep: None,
            subscription_notes: Some("Signed up on the pricing page".into()),
            locale: None,
        }
    }
}

/// The token trigger's answer: the event back, with the partner's claims when the
/// account owns one. Cognito's V1 format: `claimsOverrideDetails` adds
/// `custom:partner_id` and sets the groups to exactly `partner`.
pub fn with_partner_claims(mut event: Value, partner_id: Option<&str>) -> Value {
    if let Some(id) = partner_id {
        event["response"] = json!({
            "claimsOverrideDetails": {
                "claimsToAddOrOverride": {"custom:partner_id": id},
                "groupOverrideDetails": {"groupsToOverride": ["partner"]}
            }
        });
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
    }

    #[test]
    fn a_confirmed_sign_up_names_the_account_email_and_company() {
        let CognitoTrigger::Confirmed(a) = CognitoTrigger::parse(&fixture("cognito-post-confirmation.json")).unwrap()
        else {
            panic!("not a confirmation")
        };
        assert_eq!(a.account, "4f1c6e2a-8b3d-4c5e-9f7a-1b2c3d4e5f60");
        assert_eq!(a.email, "owner@harbourview.example");
        assert_eq!(a.company_name, "harbourview.example", "the email's domain until renamed");
        let p = a.new_partner();
        assert_eq!((p.primary_email.as_str(), p.assigned_sales_rep), ("owner@harbourview.example", None));
    }

    #[test]
    fn an_unverified_or_malformed_account_is_refused() {
        let mut e = fixture("cognito-post-confirmation.json");
        e["request"]["userAttributes"]["email_verified"] = json!("false");
        assert_eq!(CognitoTrigger::parse(&e), Err(SignupError::EmailNotVerified));
        let mut e = fixture("cognito-post-confirmation.json");
        e["request"]["userAttributes"]["sub"] = json!("a#b");
        assert!(matches!(CognitoTrigger::parse(&e), Err(SignupError::Invalid { field: "sub", .. })));
        let mut e = fixture("cognito-post-confirmation.json");
        e["request"]["userAttributes"]["email"] = json!("not an address");
        assert!(matches!(CognitoTrigger::parse(&e), Err(SignupError::Invalid { field: "email", .. })));
        assert_eq!(CognitoTrigger::parse(&json!({})), Err(SignupError::Missing("triggerSource")));
    }

    #[test]
    fn a_password_reset_confirmation_is_ignored() {
        let mut e = fixture("cognito-post-confirmation.json");
        e["triggerSource"] = json!("PostConfirmation_ConfirmForgotPassword");
        assert_eq!(
            CognitoTrigger::parse(&e).unwrap(),
            CognitoTrigger::Ignored("PostConfirmation_ConfirmForgotPassword".into())
        );
    }

    #[test]
    fn only_an_account_that_is_nobody_yet_is_looked_up() {
        let CognitoTrigger::TokenIssued(t) = CognitoTrigger::parse(&fixture("cognito-pre-token.json")).unwrap() else {
            panic!("not a token request")
        };
        assert!(t.needs_lookup(), "{t:?}");
        let mut staff = fixture("cognito-pre-token.json");
        staff["request"]["groupConfiguration"]["groupsToOverride"] = json!(["sales_rep"]);
        let CognitoTrigger::TokenIssued(t) = CognitoTrigger::parse(&staff).unwrap() else { panic!() };
        assert!(!t.needs_lookup());
        let mut invited = fixture("cognito-pre-token.json");
        invited["request"]["userAttributes"]["custom:partner_id"] = json!("prt_invited");
        let CognitoTrigger::TokenIssued(t) = CognitoTrigger::parse(&invited).unwrap() else { panic!() };
        assert_eq!((t.needs_lookup(), t.partner_id.as_deref()), (false, Some("prt_invited")));
    }

    #[test]
    fn the_token_answer_adds_the_partner_and_its_group_or_nothing() {
        let e = fixture("cognito-pre-token.json");
        let out = with_partner_claims(e.clone(), Some("prt_1"));
        let o = &out["response"]["claimsOverrideDetails"];
        assert_eq!(o["claimsToAddOrOverride"]["custom:partner_id"], "prt_1");
        assert_eq!(o["groupOverrideDetails"]["groupsToOverride"], json!(["partner"]));
        assert_eq!(with_partner_claims(e.clone(), None), e, "an account with no partner is left as it is");
    }
}
