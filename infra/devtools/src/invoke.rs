//! `devctl invoke EVENT.json [FUNCTION]` (`make invoke`): which function of
//! `template.yaml` an event file goes to, as Lambda would route it. An EventBridge
//! scheduled event goes to the template's scheduled function (the cron); a Cognito
//! trigger event to the user pool's trigger function; an HTTP API payload-2.0 event
//! to the function that owns its `routeKey`.

use crate::{cron, routes};
use serde_json::Value;

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The scheduled function (its logical id).
    Scheduled(String),
    /// The user pool's trigger function (its logical id).
    Cognito(String),
    /// The HTTP function owning the event's route.
    Http(routes::TemplateRoute),
}

impl Target {
    pub fn function(&self) -> &str {
        match self {
            Self::Scheduled(f) | Self::Cognito(f) => f,
            Self::Http(r) => &r.function,
        }
    }
}

/// `expiry-cron` → `ExpiryCronFunction`: a crate's logical id in `template.yaml`.
pub fn logical_id(crate_name: &str) -> String {
    let mut id: String = crate_name
        .split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    id.push_str("Function");
    id
}

/// The function `event` goes to. `expected` (a crate name, `make invoke FN=…`), when
/// given, must be that function; `path` only names the event file in errors.
pub fn target(template: &str, event: &Value, expected: Option<&str>, path: &str) -> Result<Target, String> {
    let target = if cron::is_scheduled_event(event) {
        let function = cron::scheduled_functions(template)
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|f| f == cron::CRON_FUNCTION)
            .ok_or("no scheduled function in the template")?;
        Target::Scheduled(function)
    } else if event["triggerSource"].is_string() && event["userPoolId"].is_string() {
        Target::Cognito(signup::LOGICAL_ID.to_string())
    } else {
        let route_key = event["routeKey"].as_str().ok_or("event has no routeKey")?;
        let route = routes::from_template(template)
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|r| format!("{} {}", r.method, r.path) == route_key)
            .ok_or_else(|| format!("no function in the template serves {route_key}"))?;
        Target::Http(route)
    };
    match expected.filter(|f| !f.is_empty()).map(logical_id) {
        Some(e) if e != target.function() => Err(format!("{path} goes to {}, not {e}", target.function())),
        _ => Ok(target),
    }
}
