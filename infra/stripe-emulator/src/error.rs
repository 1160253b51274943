//! Stripe's error shape: `{"error":{"type":…,"message":…,"param":…,"code":…}}` with the HTTP
//! status Stripe uses for each kind.

use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    pub decline_code: Option<&'static str>,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, message: String) -> Self {
        ApiError { status, kind, message, param: None, code: None, decline_code: None }
    }

    /// 400 for a parameter Stripe would reject.
    pub fn invalid(message: impl Into<String>, param: Option<String>) -> Self {
        ApiError { param, ..Self::new(400, "invalid_request_error", message.into()) }
    }

    /// 400 for a required parameter that is absent.
    pub fn missing_param(param: &str) -> Self {
        ApiError {
            param: Some(param.to_owned()),
            code: Some("parameter_missing"),
            ..Self::new(400, "invalid_request_error", format!("Missing required param: {param}."))
        }
    }

    /// 404 for an object addressed by the URL that does not exist.
    pub fn no_such(resource: &str, id: &str) -> Self {
        ApiError {
            param: Some("id".into()),
            code: Some("resource_missing"),
            ..Self::new(404, "invalid_request_error", format!("No such {resource}: '{id}'"))
        }
    }

    /// 400 for an object named by a parameter that does not exist.
    pub fn no_such_param(resource: &str, id: &str, param: &str) -> Self {
        ApiError {
            param: Some(param.to_owned()),
            code: Some("resource_missing"),
            ..Self::new(400, "invalid_request_error", format!("No such {resource}: '{id}'"))
        }
    }

    /// 400 for an action the object's state does not allow.
    pub fn state(message: impl Into<String>) -> Self {
        ApiError { code: Some("invalid_state"), ..Self::new(400, "invalid_request_error", message.into()) }
    }

    /// 402 when the customer's card is set to fail.
    pub fn card_declined() -> Self {
        ApiError {
            code: Some("card_declined"),
            decline_code: Some("generic_decline"),
            ..Self::new(402, "card_error", "Your card was declined.".into())
        }
    }

    pub fn idempotency_mismatch(key: &str) -> Self {
        Self::new(
            400,
            "idempotency_error",
            format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                 Try using a key other than '{key}' if you meant to execute a different request."
            ),
        )
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(401, "invalid_request_error", format!("Invalid API Key provided: {detail}"))
    }

    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::new(404, "invalid_request_error", format!("Unrecognized request URL ({method}: {path})."))
    }

    pub fn body(&self) -> Value {
        let mut error = json!({ "type": self.kind, "message": self.message });
        if let Some(param) = &self.param {
            error["param"] = json!(param);
        }
        if let Some(code) = self.code {
            error["code"] = json!(code);
        }
        if let Some(decline_code) = self.decline_code {
            error["decline_code"] = json!(decline_code);
        }
        json!({ "error": error })
    }
}
