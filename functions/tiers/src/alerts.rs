//! Staff alert rules (docs/alerts.md): listed for managers, set by admins, each
//! change audited and conditional on the version read.

use crate::{Op, Tiers};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tierdesk::domain::alerts::AlertRuleInput;
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::validation::{parse, ValidationError};
use tierdesk::http::request::json_body;
use tierdesk::http::{json, Ctx, PathParams};
use tierdesk::store::{AlertStore, WriteError};
use tierdesk::ApiError;

pub(crate) async fn alert_rules(
    app: &Tiers,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    op: Op,
) -> Result<Response<Body>, ApiError> {
    if op == Op::ListAlertRules {
        ctx.require(Permission::ViewRevenueMetrics)?;
        let mut rules = app.store.alert_rules().await?;
        rules.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        return json(StatusCode::OK, &json!({ "rules": rules }));
    }
    let who = ctx.require(Permission::SystemConfig)?;
    let id = params.get("ruleId");
    if !parse::is_slug(id) {
        return Err(ValidationError::single("ruleId", "must be a lowercase slug (letters, digits, - and _)").into());
    }
    let input = AlertRuleInput::parse(&json_body(req, app.config.max_body_bytes)?)?;
    let before = app.store.alert_rule(id).await?;
    let stale = || ApiError::new(StatusCode::CONFLICT, "version_conflict", "the rule changed since it was read");
    let expected = match (&before, input.version) {
        (Some(b), Some(v)) if b.version == v => Some(v),
        (None, None) => None,
        (Some(b), _) => return Err(stale().with_details(json!({ "currentVersion": b.version }))),
        (None, Some(_)) => return Err(ApiError::not_found("alert rule")),
    };
    let by = ctx.actor(who);
    let after = input.into_rule(id, before.as_ref(), &by.id, &by.at);
    let audit = app.audit("alert_rule.put", &by, before.as_ref(), &after);
    app.store.put_alert_rule(&after, expected, &audit).await.map_err(|e| match e {
        WriteError::Refused(_) => stale(),
        WriteError::Store(e) => e.into(),
    })?;
    let status = if before.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    json(status, &after)
}
