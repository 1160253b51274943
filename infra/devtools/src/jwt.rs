//! HS256 dev tokens. In AWS the HTTP API's JWT authorizer verifies Cognito tokens;
//! locally the dev gateway verifies these instead and fills in the same
//! `requestContext.authorizer.jwt.claims`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

pub const ISSUER: &str = "tierdesk-dev";
pub const AUDIENCE: &str = "tierdesk";
/// Documented in the README; only ever used on loopback.
pub const DEFAULT_SECRET: &str = "tierdesk-local-dev-secret";

pub fn secret_from_env() -> String {
    std::env::var("TIERDESK_DEV_JWT_SECRET").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_SECRET.into())
}

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

pub fn sign(claims: &Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// A token for `role` (and the partner it acts for), valid for `ttl_secs`.
pub fn token_for(
    role: &str,
    partner_id: Option<&str>,
    subject: &str,
    now_epoch: i64,
    ttl_secs: i64,
    secret: &str,
) -> String {
    // Cognito puts the user's address in ID tokens; staff get a local one.
    let email = (role != "partner").then(|| format!("{subject}@staff.tierdesk.local"));
    sign(&claims(role, partner_id, subject, email.as_deref(), now_epoch, ttl_secs), secret)
}

/// The claims of a dev token, as Cognito's ID token names them.
fn claims(
    role: &str,
    partner_id: Option<&str>,
    subject: &str,
    email: Option<&str>,
    now_epoch: i64,
    ttl_secs: i64,
) -> Value {
    let mut claims = json!({
        "sub": subject,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now_epoch,
        "exp": now_epoch + ttl_secs,
        "cognito:groups": [role],
    });
    if let Some(p) = partner_id {
        claims["custom:partner_id"] = json!(p);
    }
    if let Some(e) = email.filter(|e| !e.is_empty()) {
        claims["email"] = json!(e);
    }
    claims
}

/// A self-registered partner's token, as Cognito issues it after the signup
/// triggers: the partner claims and the account's address.
pub fn signed_up_token(
    partner_id: &str,
    subject: &str,
    email: &str,
    now_epoch: i64,
    ttl_secs: i64,
    secret: &str,
) -> String {
    sign(&claims("partner", Some(partner_id), subject, Some(email), now_epoch, ttl_secs), secret)
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("wrong issuer or audience")]
    Audience,
}

/// Verifies signature (constant time), algorithm, expiry, issuer and audience, and
/// returns the claims.
pub fn verify(token: &str, secret: &str, now_epoch: i64) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?)
        .map_err(|_| JwtError::Malformed)?;
    if header["alg"] != "HS256" {
        return Err(JwtError::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let mut m = mac(secret);
    m.update(format!("{h}.{p}").as_bytes());
    m.verify_slice(&signature).map_err(|_| JwtError::Signature)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)?;
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > now_epoch => {}
        _ => return Err(JwtError::Expired),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == AUDIENCE,
        Some(Value::Array(a)) => a.iter().any(|v| v == AUDIENCE),
        _ => false,
    };
    if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) || !audience_ok {
        return Err(JwtError::Audience);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_refusals() {
        let t = token_for("admin", None, "u1", 1_000, 60, "s3cret");
        let claims = verify(&t, "s3cret", 1_010).unwrap();
        assert_eq!(claims["sub"], "u1");
        assert_eq!(verify(&t, "other", 1_010), Err(JwtError::Signature));
        assert_eq!(verify(&t, "s3cret", 1_060), Err(JwtError::Expired));
        assert_eq!(verify("a.b", "s3cret", 0), Err(JwtError::Malformed));
        let none_alg = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), t.split('.').nth(1).unwrap());
        assert_eq!(verify(&none_alg, "s3cret", 1_010), Err(JwtError::Algorithm));
    }
}
