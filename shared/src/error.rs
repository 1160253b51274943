//! The one place where every area's error becomes an HTTP status and the JSON shape
//! `{"error":{"code","message","details","timestamp","requestId","severity"}}`
//! (DESIGN §2 with seed 004's `timestamp` and `severity`).

use crate::app::{Failed, Meaning};
use crate::clock::rfc3339;
use crate::domain::subscription::SubscriptionError;
use crate::domain::tier::TierError;
use crate::domain::validation::ValidationError;
use crate::http::identity::AuthError;
use crate::http::request::RequestError;
use crate::store::{BadCursor, ListError, StoreError, WriteError};
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde_json::{json, Value};

/// Seed 004 `severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// Seed 004's `severity`, one rule for every code: a refused request is the
    /// caller's to fix (`low`); a business rule or state that refused it (409, 422)
    /// is `medium`; a dependency that failed or is busy (the payment or mail
    /// provider, throttling) is `high`; an internal error is `critical`.
    pub fn severity(&self) -> Severity {
        match self.status.as_u16() {
            409 | 422 => Severity::Medium,
            502..=504 => Severity::High,
            500..=599 => Severity::Critical,
            _ => Severity::Low,
        }
    }

    /// `{"error":{"code","message","details"?,"timestamp","requestId","severity"}}`
    /// (DESIGN §2, seed 004's error format); `at` is the request's time.
    pub fn body(&self, request_id: &str, at: DateTime<Utc>) -> Value {
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "timestamp": rfc3339(at),
            "requestId": request_id,
            "severity": self.severity().as_str(),
        });
        if let Some(details) = &self.details {
            error["details"] = details.clone();
        }
        json!({ "error": error })
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        let fields: serde_json::Map<String, Value> = e.fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", "the request has invalid fields")
            .with_details(json!({ "fields": fields }))
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::BodyTooLarge { limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is larger than {limit} bytes"),
            ),
            RequestError::InvalidJson(reason) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", "the request body is not valid JSON")
                    .with_details(json!({ "fields": { "body": reason } }))
            }
            RequestError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route"),
            RequestError::MethodNotAllowed => {
                ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
            }
            RequestError::Invalid(v) => v.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "a valid token is required")
            }
            AuthError::Forbidden(permission) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this action needs the {permission} permission"),
            )
            .with_details(json!({ "permission": permission })),
        }
    }
}

impl From<TierError> for ApiError {
    fn from(e: TierError) -> Self {
        let message = e.to_string();
        let (status, code) = match &e {
            TierError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            TierError::FeatureNotFound => (StatusCode::NOT_FOUND, "feature_not_found"),
            TierError::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
            TierError::FeatureExists => (StatusCode::CONFLICT, "feature_exists"),
            TierError::VersionConflict { .. } => (StatusCode::CONFLICT, "version_conflict"),
            TierError::HasPartners => (StatusCode::CONFLICT, "tier_has_partners"),
            TierError::DefaultTier => (StatusCode::CONFLICT, "default_tier"),
            TierError::Archived => (StatusCode::CONFLICT, "tier_archived"),
            TierError::NotAnUpgrade => (StatusCode::UNPROCESSABLE_ENTITY, "not_an_upgrade"),
            TierError::TooManyFeatures => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_features"),
            TierError::CurrencyMismatch => (StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch"),
            TierError::PopularTaken { .. } => (StatusCode::CONFLICT, "popular_taken"),
        };
        let mut api = ApiError::new(status, code, message);
        match e {
            TierError::VersionConflict { current } => api = api.with_details(json!({ "currentVersion": current })),
            TierError::PopularTaken { segment, current } => {
                api = api.with_details(json!({
                    "fields": { "popular": "another tier of this segment is already popular" },
                    "segment": segment,
                    "popularTierId": current,
                }))
            }
            _ => {}
        }
        api
    }
}

impl From<crate::domain::pricing_rules::PricingRuleError> for ApiError {
    fn from(e: crate::domain::pricing_rules::PricingRuleError) -> Self {
        use crate::domain::pricing_rules::PricingRuleError as E;
        let message = e.to_string();
        match e {
            E::NotFound => ApiError::not_found("pricing rule"),
            E::AlreadyExists => ApiError::new(StatusCode::CONFLICT, "already_exists", message),
            E::VersionConflict { current } => ApiError::new(StatusCode::CONFLICT, "version_conflict", message)
                .with_details(json!({ "currentVersion": current })),
            // Seed 004's PricingConstraintViolation.
            E::ConstraintViolation { violation, tier_id, period } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "pricing_constraint_violation", message).with_details(
                    json!({
                        "constraint": violation.constraint,
                        "limit": violation.limit,
                        "proposed": violation.proposed,
                        "tierId": tier_id,
                        "billingPeriod": period.as_str(),
                    }),
                )
            }
            E::TooMany => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many_rules", message),
            E::CustomerImpactTooHigh { affected_customers, revenue_impact, exceeds } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "customer_impact_too_high",
                message,
            )
            .with_details(
                json!({ "affectedCustomers": affected_customers, "revenueImpact": revenue_impact, "exceeds": exceeds }),
            ),
        }
    }
}

impl From<crate::domain::pricing_rules::PricingRuleErrorOr> for ApiError {
    fn from(e: crate::domain::pricing_rules::PricingRuleErrorOr) -> Self {
        match e {
            crate::domain::pricing_rules::PricingRuleErrorOr::Invalid(v) => v.into(),
            crate::domain::pricing_rules::PricingRuleErrorOr::Rule(r) => r.into(),
        }
    }
}

impl From<crate::domain::addon::AddOnError> for ApiError {
    fn from(e: crate::domain::addon::AddOnError) -> Self {
        use crate::domain::addon::AddOnError as E;
        let message = e.to_string();
        match e {
            E::NotFound => ApiError::not_found("add-on"),
            E::AlreadyExists => ApiError::new(StatusCode::CONFLICT, "already_exists", message),
            E::VersionConflict { current } => ApiError::new(StatusCode::CONFLICT, "version_conflict", message)
                .with_details(json!({ "currentVersion": current })),
            E::TooMany => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many_add_ons", message),
            E::Unavailable(ids) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "add_on_unavailable", message)
                .with_details(
                    json!({ "fields": { "addOns": format!("not available for this tier: {ids:?}") }, "addOnIds": ids }),
                ),
        }
    }
}

impl From<crate::domain::upsell::UpsellError> for ApiError {
    fn from(e: crate::domain::upsell::UpsellError) -> Self {
        use crate::domain::upsell::UpsellError as E;
        let message = e.to_string();
        match e {
            E::NotFound => ApiError::not_found("upsell rule"),
            E::TierNotFound => ApiError::not_found("tier"),
            E::AlreadyExists => ApiError::new(StatusCode::CONFLICT, "already_exists", message),
            E::VersionConflict { current } => ApiError::new(StatusCode::CONFLICT, "version_conflict", message)
                .with_details(json!({ "currentVersion": current })),
            E::TooMany => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many_rules", message),
        }
    }
}

impl From<crate::domain::segment::SegmentError> for ApiError {
    fn from(e: crate::domain::segment::SegmentError) -> Self {
        use crate::domain::segment::SegmentError;
        let message = e.to_string();
        let (status, code) = match &e {
            SegmentError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            SegmentError::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
            SegmentError::VersionConflict { .. } => (StatusCode::CONFLICT, "version_conflict"),
            SegmentError::Retired => (StatusCode::CONFLICT, "segment_retired"),
            SegmentError::TooMany => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_segments"),
        };
        let api = ApiError::new(status, code, message);
        match e {
            SegmentError::VersionConflict { current } => api.with_details(json!({ "currentVersion": current })),
            SegmentError::Retired => api.with_details(json!({ "fields": { "segment": "is retired" } })),
            _ => api,
        }
    }
}

impl From<crate::domain::analytics::AnalyticsError> for ApiError {
    fn from(e: crate::domain::analytics::AnalyticsError) -> Self {
        match e {
            crate::domain::analytics::AnalyticsError::TierNotFound => ApiError::not_found("tier"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::from_store(&e)
    }
}

impl ApiError {
    fn from_store(e: &StoreError) -> Self {
        // The cause chain goes to the log (ids only); the client gets a generic answer.
        tracing::error!(error = %e, "store failure");
        match e {
            StoreError::Throttled => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the service is busy, retry shortly",
            ),
            StoreError::TransactionConflict => ApiError::new(
                StatusCode::CONFLICT,
                "concurrent_update",
                "another change to the same data was in progress; retry",
            ),
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"),
        }
    }
}

impl<R> From<WriteError<R>> for ApiError
where
    R: Meaning,
    ApiError: From<R::Domain>,
{
    fn from(e: WriteError<R>) -> Self {
        match e {
            WriteError::Refused(r) => r.meaning().into(),
            WriteError::Store(s) => s.into(),
        }
    }
}

impl<E> From<Failed<E>> for ApiError
where
    ApiError: From<E>,
{
    fn from(e: Failed<E>) -> Self {
        match e {
            Failed::Refused(r) => r.into(),
            Failed::Store(s) => s.into(),
        }
    }
}

impl From<BadCursor> for ApiError {
    fn from(_: BadCursor) -> Self {
        ValidationError::single("cursor", "is not a valid cursor").into()
    }
}

impl From<ListError> for ApiError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::BadCursor(c) => c.into(),
            ListError::Store(s) => s.into(),
        }
    }
}

impl From<SubscriptionError> for ApiError {
    fn from(e: SubscriptionError) -> Self {
        let message = e.to_string();
        let (status, code) = match &e {
            SubscriptionError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            SubscriptionError::VersionConflict { current } => {
                return ApiError::new(StatusCode::CONFLICT, "version_conflict", message)
                    .with_details(json!({ "currentVersion": current }))
            }
            SubscriptionError::Invalid(v) => return v.clone().into(),
            SubscriptionError::NoChange => (StatusCode::UNPROCESSABLE_ENTITY, "no_change"),
            SubscriptionError::NoPaidSubscription => (StatusCode::UNPROCESSABLE_ENTITY, "no_paid_subscription"),
            SubscriptionError::AlreadyEnded(_) => (StatusCode::CONFLICT, "subscription_ended"),
            SubscriptionError::Cancelled => (StatusCode::CONFLICT, "subscription_cancelled"),
            SubscriptionError::DefaultTierMissing => (StatusCode::CONFLICT, "default_tier_missing"),
            SubscriptionError::DuplicateEmail => {
                return ApiError::new(StatusCode::CONFLICT, "duplicate_email", message)
                    .with_details(json!({ "fields": { "primaryEmail": "is already used by another partner" } }))
            }
        };
        ApiError::new(status, code, message)
    }
}

impl From<crate::domain::billing::BillingError> for ApiError {
    fn from(e: crate::domain::billing::BillingError) -> Self {
        use crate::domain::billing::BillingError as B;
        let e = match e {
            B::Invalid(v) => return v.into(),
            B::Subscription(s) => return s.into(),
            other => other,
        };
        let message = e.to_string();
        let (status, code) = match &e {
            B::Invalid(_) | B::Subscription(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            B::AlreadySubscribed => (StatusCode::CONFLICT, "already_subscribed"),
            B::NoStripeSubscription => (StatusCode::CONFLICT, "no_stripe_subscription"),
            B::WrongDirection(_) => {
                return ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "wrong_direction", message)
                    .with_details(json!({ "fields": { "tierId": "does not rank in this direction" } }))
            }
            B::OtherSegment(_) => {
                return ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "other_segment", message)
                    .with_details(json!({ "fields": { "tierId": "is in another segment than the current tier" } }))
            }
            B::PriceNotConfigured { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "price_not_configured"),
            B::InvalidPromotionCode(reasons) => {
                return ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_promotion_code", message).with_details(
                    json!({
                        "fields": { "promotionCode": "does not apply to this purchase" },
                        "reasons": reasons
                    }),
                )
            }
            B::Provider(_) => {
                return ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "payment_provider_error",
                    "the payment provider failed; retry",
                )
            }
            B::NotAPartner => (StatusCode::FORBIDDEN, "not_a_partner"),
        };
        ApiError::new(status, code, message)
    }
}

impl From<crate::domain::privacy::PrivacyError> for ApiError {
    fn from(e: crate::domain::privacy::PrivacyError) -> Self {
        use crate::domain::privacy::PrivacyError as P;
        let message = e.to_string();
        match e {
            P::Erased => ApiError::new(StatusCode::CONFLICT, "partner_erased", message),
            P::SubscriptionInForce(end) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "erasure_blocked", message)
                .with_details(json!({ "reason": "subscription_in_force", "subscriptionEndDate": end })),
            P::NotAPartner => ApiError::new(StatusCode::FORBIDDEN, "not_a_partner", message),
        }
    }
}

impl From<crate::domain::invoice::InvoiceError> for ApiError {
    fn from(e: crate::domain::invoice::InvoiceError) -> Self {
        use crate::domain::invoice::InvoiceError as I;
        match e {
            I::Invalid(v) => v.into(),
            I::Billing(b) => b.into(),
            I::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "invoice not found")
                .with_details(json!({ "fields": { "invoiceId": "no invoice with this id" } })),
            I::WrongState { status, action, needs } => ApiError::new(
                StatusCode::CONFLICT,
                "invoice_state",
                format!("the invoice is {}; {action} needs {needs}", status.as_str()),
            )
            .with_details(json!({
                "fields": { "invoiceId": format!("is {}; {action} needs {needs}", status.as_str()) },
                "status": status.as_str(),
            })),
        }
    }
}

impl From<crate::domain::renewal::ReminderError> for ApiError {
    fn from(e: crate::domain::renewal::ReminderError) -> Self {
        use crate::domain::renewal::ReminderError as R;
        match e {
            R::NotRemindable(why) => ApiError::new(StatusCode::CONFLICT, "not_remindable", e.to_string())
                .with_details(json!({ "reason": why.code() })),
            R::AlreadySentToday => ApiError::new(StatusCode::CONFLICT, "reminder_already_sent", e.to_string()),
            R::InProgress => ApiError::new(StatusCode::CONFLICT, "reminder_in_progress", e.to_string()),
            R::PartnerChanged => ApiError::new(StatusCode::CONFLICT, "version_conflict", e.to_string()),
            R::Capped => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "mail_capped", e.to_string()),
            R::Mail(_) => ApiError::new(StatusCode::BAD_GATEWAY, "mail_provider_error", "the email was not sent"),
        }
    }
}

impl From<crate::domain::promotion::PromotionError> for ApiError {
    fn from(e: crate::domain::promotion::PromotionError) -> Self {
        use crate::domain::promotion::PromotionError as P;
        let message = e.to_string();
        let (status, code) = match e {
            P::Invalid(v) => return v.into(),
            P::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            P::VersionConflict { current } => {
                let api = ApiError::new(StatusCode::CONFLICT, "version_conflict", message);
                return match current {
                    Some(v) => api.with_details(json!({ "currentVersion": v })),
                    None => api,
                };
            }
            P::IllegalTransition { from, action } => {
                return ApiError::new(StatusCode::CONFLICT, "illegal_transition", message)
                    .with_details(json!({ "status": from, "action": action }))
            }
            P::NotEditable { status, field } => {
                return ApiError::new(StatusCode::CONFLICT, "not_editable", message)
                    .with_details(json!({ "status": status, "fields": { field: "cannot change in this status" } }))
            }
            P::SelfApproval => (StatusCode::FORBIDDEN, "self_approval"),
            P::CodeTaken(code) => {
                return ApiError::new(StatusCode::CONFLICT, "code_taken", message)
                    .with_details(json!({ "code": code, "fields": { "promotionCodes": "a code is already used" } }))
            }
            P::CodesRequired => (StatusCode::UNPROCESSABLE_ENTITY, "codes_required"),
            P::TooManyCodes => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_codes"),
            P::NotDeletable => (StatusCode::CONFLICT, "not_deletable"),
            P::Ended => (StatusCode::CONFLICT, "promotion_ended"),
            P::PartnerNotFound => (StatusCode::NOT_FOUND, "not_found"),
            P::AlreadyRedeemed => (StatusCode::CONFLICT, "already_redeemed"),
            P::KeptChanging => (StatusCode::CONFLICT, "concurrent_update"),
            P::MaxRedemptionsReached => (StatusCode::CONFLICT, "max_redemptions_reached"),
            P::PerUserLimitReached => (StatusCode::CONFLICT, "per_user_limit_reached"),
            P::NotEligible(reasons) => {
                return ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "promotion_not_applicable", message)
                    .with_details(json!({ "reasons": reasons }))
            }
        };
        ApiError::new(status, code, message)
    }
}

impl From<crate::domain::quote::QuoteError> for ApiError {
    fn from(e: crate::domain::quote::QuoteError) -> Self {
        use crate::domain::quote::QuoteError as Q;
        let message = e.to_string();
        let (status, code) = match e {
            Q::Invalid(v) => return v.into(),
            Q::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Q::VersionConflict { current } => {
                let api = ApiError::new(StatusCode::CONFLICT, "version_conflict", message);
                return match current {
                    Some(v) => api.with_details(json!({ "currentVersion": v })),
                    None => api,
                };
            }
            Q::IllegalTransition { from, action } => {
                return ApiError::new(StatusCode::CONFLICT, "illegal_transition", message)
                    .with_details(json!({ "status": from, "action": action }))
            }
            Q::ApprovalRequired => (StatusCode::UNPROCESSABLE_ENTITY, "approval_required"),
            Q::ApprovalNotRequired => (StatusCode::UNPROCESSABLE_ENTITY, "approval_not_required"),
            Q::SelfApproval => (StatusCode::FORBIDDEN, "self_approval"),
            Q::AboveApproverAuthority { .. } => (StatusCode::FORBIDDEN, "above_approval_authority"),
            Q::Expired(date) => {
                return ApiError::new(StatusCode::CONFLICT, "quote_expired", message)
                    .with_details(json!({ "validUntil": date }))
            }
            Q::TierUnavailable => (StatusCode::UNPROCESSABLE_ENTITY, "tier_unavailable"),
            Q::CustomerMismatch => (StatusCode::UNPROCESSABLE_ENTITY, "customer_mismatch"),
        };
        ApiError::new(status, code, message)
    }
}

impl From<crate::domain::usage::UsageError> for ApiError {
    fn from(e: crate::domain::usage::UsageError) -> Self {
        use crate::domain::usage::UsageError as U;
        let message = e.to_string();
        match e {
            U::Invalid(v) => v.into(),
            U::PartnerNotFound => ApiError::not_found("partner"),
            U::TierMissing => ApiError::new(StatusCode::CONFLICT, "tier_missing", message),
            U::LimitExceeded { metric, limit, used, requested } => {
                ApiError::new(StatusCode::CONFLICT, "limit_exceeded", message)
                    .with_details(json!({ "metric": metric, "limit": limit, "used": used, "requested": requested }))
            }
        }
    }
}

impl From<crate::domain::elasticity::RecommendationError> for ApiError {
    fn from(e: crate::domain::elasticity::RecommendationError) -> Self {
        use crate::domain::elasticity::RecommendationError as X;
        match e {
            X::NotFound => ApiError::not_found("recommendation"),
            X::AlreadyDecided(status) => ApiError::new(StatusCode::CONFLICT, "recommendation_decided", e.to_string())
                .with_details(json!({ "status": status })),
        }
    }
}

impl From<crate::domain::campaign::CampaignError> for ApiError {
    fn from(e: crate::domain::campaign::CampaignError) -> Self {
        use crate::domain::campaign::CampaignError as X;
        let message = e.to_string();
        match e {
            X::NotFound(_) => ApiError::not_found("campaign"),
            X::InvalidTransition { status, action } => {
                ApiError::new(StatusCode::CONFLICT, "illegal_transition", message)
                    .with_details(json!({ "status": status, "action": action }))
            }
            X::NotEditable => ApiError::new(StatusCode::CONFLICT, "campaign_not_editable", message),
            X::VersionConflict(_) => ApiError::new(StatusCode::CONFLICT, "version_conflict", message),
            // The offer names a promotion that cannot give personal codes: the
            // field is the client's to fix.
            X::OfferNotUsable(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "offer_not_usable", message.clone())
                    .with_details(json!({ "fields": { "offer.promotionId": message } }))
            }
            X::UnderExperiment(experiment_id) => {
                ApiError::new(StatusCode::CONFLICT, "campaign_under_experiment", message)
                    .with_details(json!({ "experimentId": experiment_id }))
            }
        }
    }
}

impl From<crate::domain::experiment::ExperimentError> for ApiError {
    fn from(e: crate::domain::experiment::ExperimentError) -> Self {
        use crate::domain::experiment::ExperimentError as X;
        let message = e.to_string();
        let (status, code) = match e {
            X::Invalid(v) => return v.into(),
            X::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            X::VersionConflict { current } => {
                let api = ApiError::new(StatusCode::CONFLICT, "version_conflict", message);
                return match current {
                    Some(v) => api.with_details(json!({ "currentVersion": v })),
                    None => api,
                };
            }
            X::IllegalTransition { from, action } => {
                return ApiError::new(StatusCode::CONFLICT, "illegal_transition", message)
                    .with_details(json!({ "status": from, "action": action }))
            }
            X::NotEditable { status, field } => {
                return ApiError::new(StatusCode::CONFLICT, "not_editable", message)
                    .with_details(json!({ "status": status, "fields": { field: "cannot change in this status" } }))
            }
            X::TierBusy { experiment_id } => {
                return ApiError::new(StatusCode::CONFLICT, "tier_has_active_experiment", message)
                    .with_details(json!({ "experimentId": experiment_id }))
            }
            X::NotRunning { status } => {
                return ApiError::new(StatusCode::CONFLICT, "experiment_not_running", message)
                    .with_details(json!({ "status": status }))
            }
            X::TooManyEvents => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_events"),
            X::NoWinner => (StatusCode::UNPROCESSABLE_ENTITY, "no_significant_winner"),
            X::TierGone => (StatusCode::CONFLICT, "tier_changed"),
            X::KeptChanging => (StatusCode::CONFLICT, "concurrent_update"),
            X::CampaignChanged => (StatusCode::CONFLICT, "campaign_changed"),
        };
        ApiError::new(status, code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_seed_004s_fields_and_severity_follows_the_status() {
        let at = DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z").unwrap().with_timezone(&Utc);
        let body = ApiError::not_found("tier").body("req-1", at);
        assert_eq!(body["error"]["timestamp"], "2026-11-20T12:00:00.000Z");
        assert_eq!(body["error"]["requestId"], "req-1");
        assert_eq!(body["error"]["severity"], "low");
        let severity = |status: StatusCode| ApiError::new(status, "x", "x").severity().as_str();
        assert_eq!(severity(StatusCode::BAD_REQUEST), "low");
        assert_eq!(severity(StatusCode::FORBIDDEN), "low");
        assert_eq!(severity(StatusCode::TOO_MANY_REQUESTS), "low");
        assert_eq!(severity(StatusCode::CONFLICT), "medium");
        assert_eq!(severity(StatusCode::UNPROCESSABLE_ENTITY), "medium");
        assert_eq!(severity(StatusCode::BAD_GATEWAY), "high");
        assert_eq!(severity(StatusCode::SERVICE_UNAVAILABLE), "high");
        assert_eq!(severity(StatusCode::INTERNAL_SERVER_ERROR), "critical");
    }
}
