//! The Stripe customer of a partner (keys in `keys`): `STRIPECUS#{cus}` names the
//! partner, written in the same transaction as the partner record that holds it.

use super::keys;
use super::partners::version_failure;
use super::{s, ConditionFailed, PartnerRefusal, Store, StoreError, WriteError};
use crate::domain::audit::AuditEntry;
use crate::domain::partner::Partner;
use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerLookup {
    partner_id: String,
}

/// The Stripe customer of each partner.
pub trait CustomerStore {
    fn partner_id_by_stripe_customer(
        &self,
        customer_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Saves the partner with its new Stripe customer id and the lookup naming it.
    fn link_stripe_customer(
        &self,
        before: &Partner,
        after: &Partner,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PartnerRefusal>>> + Send;
}

impl CustomerStore for Store {
    async fn partner_id_by_stripe_customer(&self, customer_id: &str) -> Result<Option<String>, StoreError> {
        match self.get(keys::stripe_customer_pk(customer_id), keys::LOOKUP).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item::<_, CustomerLookup>(item)?.partner_id)),
            None => Ok(None),
        }
    }
    async fn link_stripe_customer(
        &self,
        before: &Partner,
        after: &Partner,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<PartnerRefusal>> {
        let Some(customer) = &after.stripe_customer_id else { return Ok(()) };
        let mut items = self.partner_writes(after, Some(before.version))?;
        let lookup = Self::item(
            &CustomerLookup { partner_id: after.partner_id.clone() },
            &[("PK", keys::stripe_customer_pk(customer)), ("SK", keys::LOOKUP.to_string())],
        )?;
        let lookup_index = items.len();
        items.push(self.put(lookup, Some("attribute_not_exists(PK) OR partnerId = :me"))?);
        if let Some(TransactWriteItem { put: Some(put), .. }) = items.last_mut() {
            put.expression_attribute_values =
                Some([(":me".to_string(), s(after.partner_id.clone()))].into_iter().collect());
        }
        items.push(self.audit_put(audit)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(ConditionFailed { index, .. }) if index == lookup_index => {
                Err(WriteError::Refused(PartnerRefusal::CustomerLinked))
            }
            Err(other) => Err(WriteError::Refused(version_failure(other))),
        }
    }
}
