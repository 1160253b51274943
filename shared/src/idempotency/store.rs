//! The store half of client idempotency: one record per (scope, key) with the
//! request's hash, a lease while the first request runs, and the stored answer.

use crate::store::keys::{self, META};
use crate::store::ttl::IDEMPOTENCY_RECORD_SECS;
use crate::store::{conditional, n, s, ClaimAttributes, Store, StoreError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

/// The start of a request carrying an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestClaim {
    Fresh,
    Replay {
        status: u16,
        body: String,
    },
    InProgress,
    /// The key was used before with a different request.
    Mismatch,
}

impl Store {
    /// Starts a request carrying an Idempotency-Key: the first one claims it; a
    /// repeat gets the stored answer, or waits while the first is still running.
    /// A record past its `ttl` is absent (DynamoDB deletes expired items only
    /// eventually, sometimes days later): it is claimed afresh.
    pub async fn claim_request(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<RequestClaim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("PK", s(keys::idempotency_pk(scope, key)))
            .item("SK", s(META))
            .item("status", s("INPROGRESS"))
            .item("requestHash", s(request_hash))
            .item("claimExpiresAt", n(now + lease_secs))
            .item("ttl", n(now + IDEMPOTENCY_RECORD_SECS))
            .condition_expression(
                "attribute_not_exists(PK) OR #ttl < :now OR (#status = :inprogress AND claimExpiresAt < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":inprogress", s("INPROGRESS"))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(RequestClaim::Fresh),
            Err(err) => {
                use aws_sdk_dynamodb::operation::put_item::PutItemError;
                if let Some(PutItemError::ConditionalCheckFailedException(e)) = err.as_service_error() {
                    let Some(old) = e.item() else { return Ok(RequestClaim::InProgress) };
                    if ClaimAttributes(old).text("requestHash").as_deref() != Some(request_hash) {
                        return Ok(RequestClaim::Mismatch);
                    }
                    return Ok(
                        match (
                            ClaimAttributes(old).text("status").as_deref(),
                            ClaimAttributes(old).number("responseStatus"),
                        ) {
                            (Some("COMPLETED"), Some(status)) => RequestClaim::Replay {
                                status: u16::try_from(status).unwrap_or(200),
                                body: ClaimAttributes(old).text("responseBody").unwrap_or_default(),
                            },
                            _ => RequestClaim::InProgress,
                        },
                    );
                }
                Err(StoreError::sdk("PutItem", err))
            }
        }
    }

    pub async fn finish_request(&self, scope: &str, key: &str, status: u16, body: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::idempotency_pk(scope, key)))
            .key("SK", s(META))
            .update_expression(
                "SET #status = :completed, responseStatus = :code, responseBody = :body REMOVE claimExpiresAt",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s("COMPLETED"))
            .expression_attribute_values(":code", n(i64::from(status)))
            .expression_attribute_values(":body", s(body))
            .send()
            .await
            .map_err(|e| StoreError::sdk("UpdateItem", e))?;
        Ok(())
    }

    /// Forgets a claimed key whose request failed on our side, so a retry runs.
    pub async fn abandon_request(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(keys::idempotency_pk(scope, key)))
            .key("SK", s(META))
            .condition_expression("#status = :inprogress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":inprogress", AttributeValue::S("INPROGRESS".into()))
            .send()
            .await;
        conditional(result.map(|_| ()), "DeleteItem").map(|_| ())
    }
}
