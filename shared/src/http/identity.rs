//! Who is calling. The only source is the verified authorizer context
//! (`requestContext.authorizer.jwt.claims`), filled in by API Gateway's JWT
//! authorizer in AWS and by the dev gateway locally. Headers and bodies are never
//! consulted.

use crate::domain::permissions::{Grants, Permission, Role};
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
    /// The table `roles` are judged by (the function's `Config::grants`).
    pub grants: Grants,
}

impl Identity {
    pub fn from_request(req: &Request, grants: Grants) -> Option<Self> {
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            return None;
        };
        let claims = &ctx.authorizer.as_ref()?.jwt.as_ref()?.claims;
        let subject = claims.get("sub").filter(|s| !s.is_empty())?.clone();
        let scopes = ctx.authorizer.as_ref()?.jwt.as_ref()?.scopes.clone().unwrap_or_default();
        let roles = roles_of(
            claims.get("cognito:groups").map(String::as_str),
            claims.get("scope").map(String::as_str),
            &scopes,
        );
        let partner_id = claims.get("custom:partner_id").filter(|s| !s.is_empty()).cloned();
        let email = claims
            .get("email")
            .and_then(|e| crate::domain::partner::fields::email(&serde_json::Value::String(e.clone())).ok());
        Some(Self { subject, roles, partner_id, email, grants })
    }

    /// A partner acting for itself only: no staff role alongside.
    pub fn is_partner_only(&self) -> bool {
        self.roles.contains(&Role::Partner) && self.roles.iter().all(|r| *r == Role::Partner)
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.roles.iter().any(|r| self.grants.allows(*r, permission))
    }

    pub fn require(&self, permission: Permission) -> Result<(), AuthError> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(permission.as_str()))
        }
    }
}

/// The OAuth scope of the `service` role: a product backend's client-credentials
/// access token carries it (resource server `tierdesk`, scope `service`, the
/// `ApiResourceServer` of template.yaml) and no groups; `sub` is its client id.
pub const SERVICE_SCOPE: &str = "tierdesk/service";

/// The caller's roles: its groups, plus `service` when the token carries the
/// service scope (in the `scope` claim, space separated, or the authorizer's
/// `scopes`). Other scopes grant nothing.
pub fn roles_of(groups: Option<&str>, scope_claim: Option<&str>, scopes: &[String]) -> Vec<Role> {
    let mut roles = groups.map(parse_groups).unwrap_or_default();
    let has_service_scope = scope_claim.is_some_and(|s| s.split_whitespace().any(|x| x == SERVICE_SCOPE))
        || scopes.iter().any(|s| s == SERVICE_SCOPE);
    if has_service_scope {
        roles.push(Role::Service);
        roles.sort();
        roles.dedup();
    }
    roles
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

    /// A Cognito client-credentials token (the template's service app client): no
    /// groups, `scope` "tierdesk/service", `client_id`, and `sub` = the client id.
    #[test]
    fn a_client_credentials_token_with_the_service_scope_is_the_service_role() {
        assert_eq!(roles_of(None, Some("tierdesk/service"), &[]), vec![Role::Service]);
        assert_eq!(roles_of(None, Some("openid tierdesk/service email"), &[]), vec![Role::Service]);
        assert_eq!(roles_of(None, None, &["tierdesk/service".to_string()]), vec![Role::Service]);
        // Other scopes (a console access token, another resource server) grant nothing.
        assert_eq!(roles_of(None, Some("openid email profile"), &[]), vec![]);
        assert_eq!(roles_of(None, Some("other/service tierdesk/service-x"), &[]), vec![]);
        // Groups and the scope together; the legacy `service` group still works.
        assert_eq!(roles_of(Some("[partner]"), Some("tierdesk/service"), &[]), vec![Role::Partner, Role::Service]);
        assert_eq!(roles_of(Some("[service]"), Some("tierdesk/service"), &[]), vec![Role::Service]);
    }

    /// The whole path: a payload-2.0 event as API Gateway builds it from a
    /// client-credentials access token.
    #[test]
    fn identity_from_a_client_credentials_event() {
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "POST /api/usage/track", "rawPath": "/api/usage/track",
            "rawQueryString": "", "headers": {},
            "requestContext": {
                "accountId": "1", "apiId": "a", "domainName": "x", "domainPrefix": "x",
                "http": {"method": "POST", "path": "/api/usage/track", "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "t"},
                "requestId": "r", "routeKey": "POST /api/usage/track", "stage": "$default",
                "time": "04/Dec/2026:00:00:00 +0000", "timeEpoch": 0,
                "authorizer": {"jwt": {"claims": {
                    "sub": "5gk3svc0client", "client_id": "5gk3svc0client", "token_use": "access",
                    "scope": "tierdesk/service", "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x"
                }, "scopes": null}}
            },
            "isBase64Encoded": false
        });
        let req = lambda_http::request::from_str(&event.to_string()).expect("event");
        let id = Identity::from_request(&req, Grants::SEED_000).expect("identity");
        assert_eq!(id.subject, "5gk3svc0client");
        assert_eq!(id.roles, vec![Role::Service]);
        assert_eq!(id.partner_id, None);
    }
}
