//! Who is calling. The only source is the verified authorizer context
//! (`requestContext.authorizer.jwt.claims`), filled in by API Gateway's JWT
//! authorizer in AWS and by the dev gateway locally. Headers and bodies are never
//! consulted.

use crate::domain::permissions::{Permission, Role};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no verified identity")]
    Unauthenticated,
    #[error("missing permission {0}")]
    Forbidden(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The token's `sub`: the stable actor id written to audit entries.
    pub subject: String,
    pub roles: Vec<Role>,
    /// `custom:partner_id`, for a partner acting on its own account.
    pub partner_id: Option<String>,
    /// The `email` claim when it is a plausible address: where notices about the
    /// caller's own work (a promotion's approval outcome) go. Never logged.
    pub email: Option<String>,
}

impl Identity {
    pub fn from_request(req: &Request) -> Option<Self> {
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            return None;
        };
        let claims = &ctx.authorizer.as_ref()?.jwt.as_ref()?.claims;
        let subject = claims.get("sub").filter(|s| !s.is_empty())?.clone();
        let roles = claims.get("cognito:groups").map(|g| parse_groups(g)).unwrap_or_default();
        let partner_id = claims.get("custom:partner_id").filter(|s| !s.is_empty()).cloned();
        let email = claims
            .get("email")
            .and_then(|e| crate::domain::partner::fields::email(&serde_json::Value::String(e.clone())).ok());
        Some(Self { subject, roles, partner_id, email })
    }

    /// A partner acting for itself only: no staff role alongside.
    pub fn is_partner_only(&self) -> bool {
        self.roles.contains(&Role::Partner) && self.roles.iter().all(|r| *r == Role::Partner)
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.roles.iter().any(|r| r.grants(permission))
    }

    pub fn require(&self, permission: Permission) -> Result<(), AuthError> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(permission.as_str()))
        }
    }
}

/// `cognito:groups` reaches a Lambda as a string. API Gateway flattens the token's
/// array to `[a b]`; other issuers (and our own events) send the JSON text
/// `["a","b"]`; a single group may come bare. Unknown group names are ignored.
pub fn parse_groups(raw: &str) -> Vec<Role> {
    let trimmed = raw.trim();
    let names: Vec<String> = match serde_json::from_str::<Vec<String>>(trimmed) {
        Ok(list) => list,
        Err(_) => trimmed
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(|c: char| c.is_whitespace() || c == ',')
            .map(|s| s.trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    };
    let mut roles: Vec<Role> = names.iter().filter_map(|n| Role::parse(n)).collect();
    roles.sort();
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_in_every_shape() {
        assert_eq!(parse_groups("[sales_rep admin]"), vec![Role::SalesRep, Role::Admin]);
        assert_eq!(parse_groups(r#"["sales_manager","partner"]"#), vec![Role::SalesManager, Role::Partner]);
        assert_eq!(parse_groups("sales_rep"), vec![Role::SalesRep]);
        assert_eq!(parse_groups("[]"), vec![]);
        assert_eq!(parse_groups("[root sales_rep]"), vec![Role::SalesRep]);
        assert_eq!(parse_groups("[admin,admin]"), vec![Role::Admin]);
    }
}
