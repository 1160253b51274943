//! What the daily intelligence step stores (docs/intelligence.md). Request paths
//! read these items and never fit a model, so their cost is one GetItem or one
//! Query whatever the number of partners.

use super::keys;
use super::{build_err, conditional, n, s, Store, StoreError, WriteError};
use crate::domain::audit::AuditEntry;
use crate::domain::elasticity::{ElasticityReport, Recommendation};
use crate::domain::experiment::Experiment;
use crate::domain::forecast::StoredForecast;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

/// Why a decision on a recommendation was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecommendationRefusal {
    /// Someone else decided it since it was read.
    Stale,
}

/// Stored forecasts, elasticity estimates and recommendations.
pub trait IntelligenceStore {
    /// Writes the forecast unless a later run's is stored (`asOf` only moves
    /// forward; the same day again overwrites with the same figures). `Ok(false)`:
    /// a newer one was there.
    fn put_forecast(&self, f: &StoredForecast) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// The latest forecast: one GetItem.
    fn forecast(&self) -> impl std::future::Future<Output = Result<Option<StoredForecast>, StoreError>> + Send;
    /// Same rule as `put_forecast`.
    fn put_elasticity(
        &self,
        r: &ElasticityReport,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// The latest estimates: one GetItem.
    fn elasticity(&self) -> impl std::future::Future<Output = Result<Option<ElasticityReport>, StoreError>> + Send;
    /// Stores a recommendation unless one with its id exists (the same advice made
    /// again keeps its status and decision). `Ok(false)`: it existed.
    fn add_recommendation(
        &self,
        r: &Recommendation,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// Every recommendation, newest id order: one Query of their partition.
    fn recommendations(&self) -> impl std::future::Future<Output = Result<Vec<Recommendation>, StoreError>> + Send;
    fn recommendation(
        &self,
        id: &str,
    ) -> impl std::future::Future<Output = Result<Option<Recommendation>, StoreError>> + Send;
    /// A decision, in one transaction: the recommendation (conditional on the
    /// version read), the draft experiment an acceptance creates (conditional on
    /// its id being new) and the audit entry.
    fn decide_recommendation(
        &self,
        after: &Recommendation,
        expected_version: u64,
        experiment: Option<&Experiment>,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<RecommendationRefusal>>> + Send;
}

impl Store {
    async fn put_dated<T: serde::Serialize>(&self, value: &T, sk: &str, as_of: &str) -> Result<bool, StoreError> {
        let item = Self::item(value, &[("PK", keys::INTEL_PARTITION.into()), ("SK", sk.into())])?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR asOf <= :asOf")
            .expression_attribute_values(":asOf", s(as_of))
            .send()
            .await;
        conditional(result.map(|_| ()), "PutItem")
    }

    async fn get_intel<T: serde::de::DeserializeOwned>(&self, sk: &str) -> Result<Option<T>, StoreError> {
        match self.get(keys::INTEL_PARTITION.into(), sk).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }

    fn recommendation_item(r: &Recommendation) -> Result<super::Item, StoreError> {
        Self::item(r, &[("PK", keys::RECOMMENDATIONS_PARTITION.into()), ("SK", r.recommendation_id.clone())])
    }
}

impl IntelligenceStore for Store {
    async fn put_forecast(&self, f: &StoredForecast) -> Result<bool, StoreError> {
        self.put_dated(f, keys::INTEL_FORECAST_SK, &f.as_of).await
    }

    async fn forecast(&self) -> Result<Option<StoredForecast>, StoreError> {
        self.get_intel(keys::INTEL_FORECAST_SK).await
    }

    async fn put_elasticity(&self, r: &ElasticityReport) -> Result<bool, StoreError> {
        self.put_dated(r, keys::INTEL_ELASTICITY_SK, &r.as_of).await
    }

    async fn elasticity(&self) -> Result<Option<ElasticityReport>, StoreError> {
        self.get_intel(keys::INTEL_ELASTICITY_SK).await
    }

    async fn add_recommendation(&self, r: &Recommendation) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::recommendation_item(r)?))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        conditional(result.map(|_| ()), "PutItem")
    }

    async fn recommendations(&self) -> Result<Vec<Recommendation>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(keys::RECOMMENDATIONS_PARTITION))
            })
            .await?;
        items.into_iter().map(|i| serde_dynamo::from_item(i).map_err(StoreError::from)).collect()
    }

    async fn recommendation(&self, id: &str) -> Result<Option<Recommendation>, StoreError> {
        match self.get(keys::RECOMMENDATIONS_PARTITION.into(), id).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }

    async fn decide_recommendation(
        &self,
        after: &Recommendation,
        expected_version: u64,
        experiment: Option<&Experiment>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<RecommendationRefusal>> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::recommendation_item(after)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(expected_version as i64))
            .build()
            .map_err(build_err("Put"))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        if let Some(e) = experiment {
            items.push(self.put(Self::experiment_item(e)?, Some("attribute_not_exists(PK)"))?);
        }
        items.push(self.audit_put(audit)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(WriteError::Refused(RecommendationRefusal::Stale)),
        }
    }
}
