//! What the daily intelligence step stores (docs/intelligence.md). Request paths
//! read these items and never fit a model, so their cost is one GetItem whatever
//! the number of partners.

use super::keys;
use super::{conditional, s, Store, StoreError};
use crate::domain::forecast::StoredForecast;

/// Stored forecasts.
pub trait IntelligenceStore {
    /// Writes the forecast unless a later run's is stored (`asOf` only moves
    /// forward; the same day again overwrites with the same figures). `Ok(false)`:
    /// a newer one was there.
    fn put_forecast(&self, f: &StoredForecast) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// The latest forecast: one GetItem.
    fn forecast(&self) -> impl std::future::Future<Output = Result<Option<StoredForecast>, StoreError>> + Send;
}

impl IntelligenceStore for Store {
    async fn put_forecast(&self, f: &StoredForecast) -> Result<bool, StoreError> {
        let item = Self::item(f, &[("PK", keys::INTEL_PARTITION.into()), ("SK", keys::INTEL_FORECAST_SK.into())])?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR asOf <= :asOf")
            .expression_attribute_values(":asOf", s(&f.as_of))
            .send()
            .await;
        conditional(result.map(|_| ()), "PutItem")
    }

    async fn forecast(&self) -> Result<Option<StoredForecast>, StoreError> {
        match self.get(keys::INTEL_PARTITION.into(), keys::INTEL_FORECAST_SK).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }
}
