//! Stripe configuration, read once at init.
//!
//! In AWS the API key and the webhook signing secrets live in one Secrets
//! Manager secret (`STRIPE_SECRET_ARN`, a JSON object `{"apiKey": "sk_…",
//! "webhookSecrets": ["whsec_…", …]}`), fetched at cold start; the template only
//! holds its ARN. Locally they come from `STRIPE_API_KEY` and
//! `STRIPE_WEBHOOK_SECRET`, with the documented development defaults.

use crate::config::ConfigError;
use crate::domain::money::BillingPeriod;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::env;

/// The development key the local Stripe emulator accepts.
pub const LOCAL_API_KEY: &str = "sk_test_tierdesk_local";
/// The local webhook signing secret (README "Configuration").
pub const LOCAL_WEBHOOK_SECRET: &str = "whsec_tierdesk_local_development_secret";

#[derive(Clone)]
pub struct StripeConfig {
    pub api_key: String,
    /// `STRIPE_API_BASE`: only set locally, to reach the Stripe emulator.
    pub api_base: Option<String>,
    /// Every secret a signature may match (`STRIPE_WEBHOOK_SECRET`, comma
    /// separated): during a rotation both the old and the new one are valid.
    pub webhook_secrets: Vec<String>,
    /// `STRIPE_PRICE_IDS="gold:monthly=price_…,gold:yearly=price_…"`: an existing
    /// price used while its amount is the tier's current price version; every
    /// other version is found (or created) by its lookup key
    /// `tierdesk_{tier}_v{version}_{period}` (`StripeGateway::price_for`).
    pub price_ids: BTreeMap<(String, BillingPeriod), String>,
    pub success_url: String,
    pub cancel_url: String,
}

impl std::fmt::Debug for StripeConfig {
    // Keys and secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("price_ids", &self.price_ids)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretValue {
    api_key: String,
    #[serde(default)]
    webhook_secrets: Vec<String>,
}

impl StripeConfig {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let mut config = Self {
            api_key: env::var("STRIPE_API_KEY").unwrap_or_else(|_| LOCAL_API_KEY.into()),
            api_base: env::var("STRIPE_API_BASE").ok().filter(|s| !s.is_empty()),
            webhook_secrets: split_secrets(&env::var("STRIPE_WEBHOOK_SECRET").unwrap_or_default()),
            price_ids: parse_price_ids(&env::var("STRIPE_PRICE_IDS").unwrap_or_default())?,
            success_url: env::var("CHECKOUT_SUCCESS_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:3000/billing/success?session_id={CHECKOUT_SESSION_ID}".into()),
            cancel_url: env::var("CHECKOUT_CANCEL_URL").unwrap_or_else(|_| "http://127.0.0.1:3000/billing".into()),
        };
        refuse_local_defaults_in_lambda(&|name| env::var(name).ok())?;
        if let Some(arn) = env::var("STRIPE_SECRET_ARN").ok().filter(|s| !s.is_empty()) {
            let secret = fetch_secret(&arn).await?;
            config.api_key = secret.api_key;
            config.webhook_secrets = secret.webhook_secrets;
        } else if config.webhook_secrets.is_empty() {
            config.webhook_secrets = vec![LOCAL_WEBHOOK_SECRET.into()];
        }
        if config.webhook_secrets.is_empty() {
            return Err(ConfigError::Invalid { name: "STRIPE_SECRET_ARN", reason: "webhookSecrets is empty".into() });
        }
        Ok(config)
    }

    /// The local configuration against an emulator at `api_base`.
    pub fn local(api_base: impl Into<String>) -> Self {
        Self {
            api_key: LOCAL_API_KEY.into(),
            api_base: Some(api_base.into()),
            webhook_secrets: vec![LOCAL_WEBHOOK_SECRET.into()],
            price_ids: BTreeMap::new(),
            success_url: "http://127.0.0.1:3000/billing/success?session_id={CHECKOUT_SESSION_ID}".into(),
            cancel_url: "http://127.0.0.1:3000/billing".into(),
        }
    }
}

/// In Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set) the Stripe key and webhook secrets
/// must come from the secret (`STRIPE_SECRET_ARN`) or be given explicitly: the local
/// development key and the public local webhook secret would let anyone sign a
/// webhook. The function refuses to start instead of falling back to them.
fn refuse_local_defaults_in_lambda(var: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    if !set("AWS_LAMBDA_FUNCTION_NAME") || set("STRIPE_SECRET_ARN") {
        return Ok(());
    }
    if !set("STRIPE_WEBHOOK_SECRET") || !set("STRIPE_API_KEY") {
        return Err(ConfigError::Invalid {
            name: "STRIPE_SECRET_ARN",
            reason: "not set in Lambda: the Stripe key and webhook secrets would fall back to the public local \
                     development values; set STRIPE_SECRET_ARN (or both STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET)"
                .into(),
        });
    }
    Ok(())
}

fn split_secrets(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn parse_price_ids(raw: &str) -> Result<BTreeMap<(String, BillingPeriod), String>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { name: "STRIPE_PRICE_IDS", reason };
    let mut out = BTreeMap::new();
    for entry in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (key, price) =
            entry.split_once('=').ok_or_else(|| invalid(format!("'{entry}' is not tier:period=price")))?;
        let (tier, period) = key.split_once(':').ok_or_else(|| invalid(format!("'{key}' is not tier:period")))?;
        let period = BillingPeriod::parse(&serde_json::Value::String(period.to_string()))
            .map_err(|e| invalid(format!("'{key}': {e}")))?;
        out.insert((tier.to_string(), period), price.to_string());
    }
    Ok(out)
}

async fn fetch_secret(arn: &str) -> Result<SecretValue, ConfigError> {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&shared);
    let out = client.get_secret_value().secret_id(arn).send().await.map_err(|e| ConfigError::Invalid {
        name: "STRIPE_SECRET_ARN",
        reason: format!("could not read the secret: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)),
    })?;
    let raw = out.secret_string().unwrap_or_default();
    serde_json::from_str(raw).map_err(|_| ConfigError::Invalid {
        name: "STRIPE_SECRET_ARN",
        reason: "the secret must be JSON {\"apiKey\": …, \"webhookSecrets\": […]}".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn in_lambda_the_public_local_secrets_are_refused() {
        let lambda = ("AWS_LAMBDA_FUNCTION_NAME", "tierdesk-StripeWebhookFunction-abc");
        // In Lambda without the secret's ARN: refuse, whichever half is missing.
        for env in [
            vec![lambda],
            vec![lambda, ("STRIPE_SECRET_ARN", "")],
            vec![lambda, ("STRIPE_API_KEY", "sk_live_x")],
            vec![lambda, ("STRIPE_WEBHOOK_SECRET", "whsec_x")],
        ] {
            let err = refuse_local_defaults_in_lambda(&env_of(&env)).unwrap_err();
            assert!(err.to_string().contains("STRIPE_SECRET_ARN"), "{err}");
        }
        // In Lambda with the secret, or with both values given explicitly: start.
        let arn = ("STRIPE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:stripe");
        assert!(refuse_local_defaults_in_lambda(&env_of(&[lambda, arn])).is_ok());
        let both = [lambda, ("STRIPE_API_KEY", "sk_live_x"), ("STRIPE_WEBHOOK_SECRET", "whsec_x")];
        assert!(refuse_local_defaults_in_lambda(&env_of(&both)).is_ok());
        // Outside Lambda (the local stack, tests): the local defaults apply.
        assert!(refuse_local_defaults_in_lambda(&env_of(&[])).is_ok());
    }

    #[test]
    fn price_ids_parse_per_tier_and_period() {
        let ids = parse_price_ids("gold:monthly=price_a, gold:yearly=price_b").unwrap();
        assert_eq!(ids.get(&("gold".into(), BillingPeriod::Yearly)).map(String::as_str), Some("price_b"));
        assert!(parse_price_ids("gold=price_a").is_err());
        assert!(parse_price_ids("gold:weekly=price_a").is_err());
        assert_eq!(split_secrets(" whsec_a ,,whsec_b"), vec!["whsec_a", "whsec_b"]);
    }
}
