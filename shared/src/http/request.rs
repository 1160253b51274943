//! Reading a request: the per-request context, JSON bodies under a size cap, and
//! page parameters under a page-size cap.

use super::identity::{AuthError, Identity};
use crate::clock::rfc3339;
use crate::domain::actor::Actor;
use crate::domain::permissions::{Grants, Permission};
use crate::domain::validation::ValidationError;
pub use crate::store::PageRequest;
use chrono::{DateTime, Utc};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("no such route")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// What every handler knows about the request besides its body.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub request_id: String,
    pub identity: Option<Identity>,
    /// When the request arrived, by the function's (injectable) clock: the error
    /// body's `timestamp`.
    pub at: DateTime<Utc>,
}

impl Ctx {
    pub fn from_request(req: &Request, grants: Grants, at: DateTime<Utc>) -> Self {
        let request_id = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
            _ => None,
        }
        .unwrap_or_else(|| "unknown".to_string());
        Self { request_id, identity: Identity::from_request(req, grants), at }
    }

    /// The verified caller as the one who acts: its id, email and roles, at the
    /// time the request arrived, in this request.
    pub fn actor(&self, who: &Identity) -> Actor {
        Actor {
            id: who.subject.clone(),
            email: who.email.clone(),
            roles: who.roles.clone(),
            grants: who.grants,
            at: rfc3339(self.at),
            today: self.at.date_naive(),
            request_id: self.request_id.clone(),
        }
    }

    /// The caller, who must hold `permission`.
    pub fn require(&self, permission: Permission) -> Result<&Identity, AuthError> {
        let identity = self.identity.as_ref().ok_or(AuthError::Unauthenticated)?;
        identity.require(permission)?;
        Ok(identity)
    }
}

pub fn json_body(req: &Request, limit: usize) -> Result<Value, RequestError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    if bytes.len() > limit {
        return Err(RequestError::BodyTooLarge { limit });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(RequestError::InvalidJson("a JSON body is required".into()));
    }
    // serde_json's default recursion limit (128) bounds nesting depth.
    serde_json::from_slice(bytes)
        .map_err(|e| RequestError::InvalidJson(format!("line {} column {}", e.line(), e.column())))
}

pub fn query(req: &Request, key: &str) -> Option<String> {
    req.query_string_parameters_ref().and_then(|q| q.first(key)).map(str::to_string)
}

/// The edge's half of paging: `?limit=&cursor=` parsed, with the limit capped.
/// The type and the cursor's meaning belong to the store (`crate::store::page`).
impl PageRequest {
    pub fn from_request(req: &Request, default: u32, max: u32) -> Result<Self, RequestError> {
        let limit = match query(req, "limit") {
            None => default,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    return Err(
                        ValidationError::single("limit", format!("must be an integer between 1 and {max}")).into()
                    )
                }
            },
        };
        Ok(Self { limit, cursor: query(req, "cursor").filter(|c| !c.is_empty()) })
    }
}
