//! Self-registered accounts (keys in `keys`): `ACCOUNT#{sub}` names the partner a
//! Cognito user who signed up on the pricing page owns (docs/signup.md).

use super::{keys, Store, StoreError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountLink {
    partner_id: String,
    linked_at: String,
}

/// Which partner each self-registered user owns.
pub trait AccountStore {
    /// The partner `sub` owns, if the sign-up trigger linked one (one GetItem).
    fn partner_of_account(
        &self,
        sub: &str,
    ) -> impl std::future::Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Links `sub` to `partner_id` unless it is linked already; answers the partner
    /// it is linked to afterwards (the first link wins, so a retry changes nothing).
    fn link_account(
        &self,
        sub: &str,
        partner_id: &str,
        at: &str,
    ) -> impl std::future::Future<Output = Result<String, StoreError>> + Send;
}

impl AccountStore for Store {
    async fn partner_of_account(&self, sub: &str) -> Result<Option<String>, StoreError> {
        match self.get(keys::account_pk(sub), keys::ACCOUNT_PARTNER).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item::<_, AccountLink>(item)?.partner_id)),
            None => Ok(None),
        }
    }
    async fn link_account(&self, sub: &str, partner_id: &str, at: &str) -> Result<String, StoreError> {
        let link = AccountLink { partner_id: partner_id.to_string(), linked_at: at.to_string() };
        let item = Self::item(&link, &[("PK", keys::account_pk(sub)), ("SK", keys::ACCOUNT_PARTNER.to_string())])?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(partner_id.to_string()),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    let kept = failed.item().and_then(|i| i.get("partnerId")).and_then(|v| v.as_s().ok()).cloned();
                    Ok(kept.unwrap_or_else(|| partner_id.to_string()))
                }
                other => Err(StoreError::Sdk { operation: "PutItem", source: Box::new(other) }),
            },
        }
    }
}
