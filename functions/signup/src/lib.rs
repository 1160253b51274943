//! Partner self sign-up through Cognito's triggers (docs/signup.md): the confirmed
//! account gets a partner (or claims the one its verified email already names), and
//! its tokens carry that partner. Only the table is touched: the claims are added at
//! token time, so the function needs no rights over the user pool.

use serde_json::Value;
use tierdesk::app::App;
use tierdesk::domain::signup::{self, CognitoTrigger, ConfirmedAccount, SignupError};
use tierdesk::domain::subscription::{self, Catalog, Trigger, TriggerType};
use tierdesk::store::{AccountStore, PartnerRefusal, PartnerStore, StoreError, TierStore, WriteError};

/// The function's logical id in template.yaml (the IAM test reads its calls by it).
pub const LOGICAL_ID: &str = "SignupFunction";

/// How often a confirmation retries when a concurrent one created the partner first.
const CREATE_ATTEMPTS: usize = 3;

pub struct Signup {
    app: App,
}

#[derive(Debug, thiserror::Error)]
pub enum SignupFailure {
    #[error(transparent)]
    Event(#[from] SignupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the partner could not be created: {0}")]
    Partner(String),
}

impl Signup {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

/// One trigger invocation. Cognito retries a failed or slow trigger, so every path is
/// idempotent: a second confirmation finds the link (or the partner by email), and a
/// token request only reads.
pub async fn handle(s: &Signup, event: Value, request_id: &str) -> Result<Value, SignupFailure> {
    // Boxed: the label's scope would otherwise hold the whole future on the stack.
    let work = Box::pin(async {
        match CognitoTrigger::parse(&event)? {
            CognitoTrigger::Confirmed(account) => {
                let partner_id = partner_for(s, &account, request_id).await?;
                tracing::info!(account = account.account, partner = partner_id, "self sign-up linked");
                Ok(event)
            }
            CognitoTrigger::TokenIssued(request) if request.needs_lookup() => {
                let partner = s.app.store.partner_of_account(&request.account).await?;
                Ok(signup::with_partner_claims(event, partner.as_deref()))
            }
            CognitoTrigger::TokenIssued(_) | CognitoTrigger::Ignored(_) => Ok(event),
        }
    });
    tierdesk::calls::as_function(LOGICAL_ID, work).await
}

/// The partner the account owns: linked already, else the partner its verified email
/// names, else a new free-tier partner; then the link, written once.
async fn partner_for(s: &Signup, account: &ConfirmedAccount, request_id: &str) -> Result<String, SignupFailure> {
    let store = &s.app.store;
    if let Some(linked) = store.partner_of_account(&account.account).await? {
        return Ok(linked);
    }
    let by = s.app.acting("signup", request_id);
    for _ in 0..CREATE_ATTEMPTS {
        if let Some(existing) = store.partner_id_by_email(&account.email).await? {
            return Ok(store.link_account(&account.account, &existing, &by.at).await?);
        }
        let catalog = store.active_catalog().await?;
        let trigger = Trigger::new(TriggerType::SelfService, Some("Signed up on the pricing page".into()));
        let tctx = s.app.transition_context(&by, trigger);
        let partner_id = format!("prt_{}", s.app.ids.new_id());
        let created = subscription::plan_signup(&partner_id, account.new_partner(), Catalog::new(&catalog), &tctx)
            .map_err(|e| SignupFailure::Partner(e.to_string()))?;
        let audit = s.app.audit("partner.self_signup", &by, None, &created.after);
        match store.apply_transition(&created, &audit).await {
            Ok(()) => return Ok(store.link_account(&account.account, &partner_id, &by.at).await?),
            // A concurrent confirmation created the partner with this email first: link that one.
            Err(WriteError::Refused(PartnerRefusal::EmailTaken)) => continue,
            Err(WriteError::Refused(other)) => return Err(SignupFailure::Partner(format!("{other:?}"))),
            Err(WriteError::Store(e)) => return Err(e.into()),
        }
    }
    Err(SignupFailure::Partner("the email's partner kept changing".into()))
}
