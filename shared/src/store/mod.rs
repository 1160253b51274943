//! The one DynamoDB adapter. Key formats live in `keys`; this module holds the
//! client, the call counter, error mapping, transactions and paging; each area
//! (`tiers`, …) adds its access patterns on `Store`.

mod accounts;
mod alerts;
mod analytics;
mod campaigns;
mod commissions;
mod customers;
mod experiments;
mod intelligence;
mod invoices;
mod jobs;
pub mod keys;
mod mail;
pub mod outbox;
pub mod page;
mod partners;
mod pricing;
mod privacy;
mod promotions;
mod quotes;
mod reminders;
mod segments;
mod snapshots;
mod stripe_events;
pub mod table;
mod tiers;
pub(crate) mod ttl;
mod usage;

pub use accounts::AccountStore;
pub use alerts::{AlertStore, StaleRule};
pub use analytics::TierAggregates;
pub use campaigns::{
    message_id, CampaignSignal, CampaignStore, ClaimOutcome, InAppMessage, MarketingPreferences, RecipientRead,
    SendClaim, SendRecord, StaleCampaign, Touch,
};
// The store's capabilities by area: a caller imports the traits of what it
// touches (`use tierdesk::store::{PartnerStore, TierStore}`), so its imports say
// which items it reads and writes.
pub use analytics::AnalyticsStore;
pub use commissions::{CommissionMonth, CommissionStore, MAX_TARGETS};
pub use customers::CustomerStore;
pub use experiments::ExperimentStore;
pub use intelligence::{IntelligenceStore, RecommendationRefusal};
pub use invoices::InvoiceStore;
pub use jobs::JobStore;
pub use mail::MailQuotaStore;
pub use partners::PartnerStore;
pub use pricing::{PricingRefusal, PricingStore, StorefrontCounts};
pub use privacy::PrivacyStore;
pub use promotions::PromotionStore;
pub use quotes::QuoteStore;
pub use reminders::ReminderStore;
pub use segments::SegmentStore;
pub use snapshots::SnapshotStore;
pub use stripe_events::StripeEventStore;
pub use tiers::TierStore;
pub use usage::UsageStore;

/// Conditional items a caller adds to a store transaction (built by `Store` methods).
pub use aws_sdk_dynamodb::types::TransactWriteItem;
pub use experiments::{shard_of, Assignment, ExperimentRefusal, LinkedWrite};
pub use invoices::{BillingWrite, BillingWriteError, InvoiceList};
pub use page::{BadCursor, ListError, Page, PageRequest};
pub use partners::{IndexQuery, PartnerHistory, PartnerList, PartnerRefusal, SignalList, SortRange};
pub use promotions::{ApplicationRead, CodeLookup, PromotionRefusal, RedeemRefusal, Redemption, RedemptionLine};
pub use quotes::{AcceptRefusal, QuoteList, QuoteRefusal};
pub use reminders::{Claim, Marker, MarkerClaim, MarkerState, WindowRead};
pub use segments::SegmentRefusal;
pub use snapshots::DailySnapshot;
pub use stripe_events::EventClaim;
pub use tiers::{PriceVersion, TierFilter, TierRefusal};
pub use usage::{OverageClaim, TrackOutcome, UsageRead, UsageStats, UsageTrack};

use crate::config::Config;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, Update};
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::ConfigBag;
use page::CursorKey;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub type Item = HashMap<String, AttributeValue>;

/// Attempts at a transaction that keeps meeting `TransactionConflict`.
const TRANSACT_ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("dynamodb {operation} failed: {source}")]
    Sdk {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("dynamodb throttled the request")]
    Throttled,
    #[error("another transaction touched the same items")]
    TransactionConflict,
    #[error("item mapping failed: {0}")]
    Mapping(#[from] serde_dynamo::Error),
}

impl StoreError {
    pub(crate) fn sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        match err.code() {
            Some("ThrottlingException" | "ProvisionedThroughputExceededException" | "RequestLimitExceeded") => {
                Self::Throttled
            }
            _ => Self::Sdk { operation, source: Box::new(err) },
        }
    }
}

/// A conditional write that did not happen: refused by one of its conditions, in
/// the store's words (`R`, the area's refusal: the item is missing, its version is
/// stale, a named guard failed), or failed in DynamoDB. What a refusal means for the
/// domain is said once, in the application layer (`crate::app`).
#[derive(Debug, thiserror::Error)]
pub enum WriteError<R: std::fmt::Debug> {
    #[error("the write's condition failed: {0:?}")]
    Refused(R),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The numeric attributes of `value` under its serde names, sorted by name: the
/// counters of an `ADD` update. The names are written once, on the type.
pub(crate) fn counters_of<T: Serialize>(value: &T) -> Result<Vec<(String, i64)>, StoreError> {
    let item: Item = serde_dynamo::to_item(value)?;
    let mut counters: Vec<(String, i64)> = item
        .into_iter()
        .filter_map(|(name, v)| v.as_n().ok().and_then(|n| n.parse().ok()).map(|n| (name, n)))
        .collect();
    counters.sort();
    Ok(counters)
}

/// The stored `version` of an item a failed condition returned.
pub(crate) fn stored_version(old_item: Option<&Item>) -> Option<u64> {
    old_item.and_then(|i| i.get("version")).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

/// Which item of a transaction failed its condition, with its old image when
/// DynamoDB returned one (missing image = the item did not exist).
#[derive(Debug)]
pub struct ConditionFailed {
    pub index: usize,
    pub old_item: Option<Item>,
}

tokio::task_local! {
    static REQUEST_CALLS: Arc<AtomicU64>;
}

static TOTAL_CALLS: AtomicU64 = AtomicU64::new(0);

/// Counts every DynamoDB operation (not retry attempts): per request, through a
/// task-local scope set by `count_calls`, and in total for the process.
#[derive(Debug, Default)]
struct CallCounter;

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "tierdesk.CallCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        TOTAL_CALLS.fetch_add(1, Ordering::Relaxed);
        let _ = REQUEST_CALLS.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
        Ok(())
    }

    /// Once per operation, after the operation's configuration (its `Metadata`) is in
    /// the bag and before the input is serialized away.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        record_actions(context, cfg);
        Ok(())
    }

    /// While metered (`crate::meter`), asks DynamoDB for the capacity each operation
    /// consumed; otherwise the input is left as the caller built it.
    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if crate::meter::active() {
            request_capacity(context.input_mut());
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if crate::meter::active() {
            if let Some(Ok(output)) = context.output_or_error() {
                let (read, write) = consumed_capacity(output);
                crate::meter::add_capacity(read, write);
            }
        }
        Ok(())
    }
}

/// Sets `ReturnConsumedCapacity=TOTAL` on every operation that takes it.
fn request_capacity(input: &mut aws_smithy_runtime_api::client::interceptors::context::Input) {
    use aws_sdk_dynamodb::operation::{
        batch_get_item::BatchGetItemInput, batch_write_item::BatchWriteItemInput, delete_item::DeleteItemInput,
        get_item::GetItemInput, put_item::PutItemInput, query::QueryInput, scan::ScanInput,
        transact_get_items::TransactGetItemsInput, transact_write_items::TransactWriteItemsInput,
        update_item::UpdateItemInput,
    };
    use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
    macro_rules! total {
        ($($t:ty),*) => {
            $(if let Some(i) = input.downcast_mut::<$t>() {
                i.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
                return;
            })*
        };
    }
    total!(
        GetItemInput,
        QueryInput,
        ScanInput,
        BatchGetItemInput,
        TransactGetItemsInput,
        PutItemInput,
        UpdateItemInput,
        DeleteItemInput,
        BatchWriteItemInput,
        TransactWriteItemsInput
    );
}

/// The (read, write) capacity units an operation's output reports. DynamoDB says
/// `ReadCapacityUnits`/`WriteCapacityUnits` when it splits them, else only
/// `CapacityUnits`, which belongs to the operation's kind.
fn consumed_capacity(output: &aws_smithy_runtime_api::client::interceptors::context::Output) -> (f64, f64) {
    use aws_sdk_dynamodb::operation::{
        batch_get_item::BatchGetItemOutput, batch_write_item::BatchWriteItemOutput, delete_item::DeleteItemOutput,
        get_item::GetItemOutput, put_item::PutItemOutput, query::QueryOutput, scan::ScanOutput,
        transact_get_items::TransactGetItemsOutput, transact_write_items::TransactWriteItemsOutput,
        update_item::UpdateItemOutput,
    };
    use aws_sdk_dynamodb::types::ConsumedCapacity;
    fn split(c: &ConsumedCapacity, reads: bool) -> (f64, f64) {
        match (c.read_capacity_units, c.write_capacity_units) {
            (None, None) => {
                let units = c.capacity_units.unwrap_or(0.0);
                if reads {
                    (units, 0.0)
                } else {
                    (0.0, units)
                }
            }
            (r, w) => (r.unwrap_or(0.0), w.unwrap_or(0.0)),
        }
    }
    fn sum<'a>(all: impl IntoIterator<Item = &'a ConsumedCapacity>, reads: bool) -> (f64, f64) {
        all.into_iter().map(|c| split(c, reads)).fold((0.0, 0.0), |(a, b), (r, w)| (a + r, b + w))
    }
    macro_rules! one {
        ($reads:expr; $($t:ty),*) => {
            $(if let Some(o) = output.downcast_ref::<$t>() {
                return sum(o.consumed_capacity.as_ref(), $reads);
            })*
        };
    }
    macro_rules! many {
        ($reads:expr; $($t:ty),*) => {
            $(if let Some(o) = output.downcast_ref::<$t>() {
                return sum(o.consumed_capacity.iter().flatten(), $reads);
            })*
        };
    }
    one!(true; GetItemOutput, QueryOutput, ScanOutput);
    one!(false; PutItemOutput, UpdateItemOutput, DeleteItemOutput);
    many!(true; BatchGetItemOutput, TransactGetItemsOutput);
    many!(false; BatchWriteItemOutput, TransactWriteItemsOutput);
    (0.0, 0.0)
}

/// Records (`crate::calls`) the IAM actions an operation needs and the resource it
/// touches: a Query or Scan on an index is `index/<name>`; a `TransactWriteItems` is
/// authorised by the actions of the items inside it (`PutItem`, `UpdateItem`,
/// `DeleteItem`, `ConditionCheckItem`), and a `TransactGetItems` by `GetItem`.
fn record_actions(context: &BeforeSerializationInterceptorContextRef<'_>, cfg: &ConfigBag) {
    use aws_sdk_dynamodb::operation::{
        query::QueryInput, scan::ScanInput, transact_get_items::TransactGetItemsInput,
        transact_write_items::TransactWriteItemsInput,
    };
    if crate::calls::current_function().is_none() {
        return;
    }
    let Some(operation) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>().map(|m| m.name()) else {
        return;
    };
    let input = context.input();
    let on = |index: Option<&str>| index.map_or_else(|| "table".to_string(), |i| format!("index/{i}"));
    if let Some(q) = input.downcast_ref::<QueryInput>() {
        crate::calls::record("dynamodb:Query", &on(q.index_name()));
    } else if let Some(q) = input.downcast_ref::<ScanInput>() {
        crate::calls::record("dynamodb:Scan", &on(q.index_name()));
    } else if let Some(t) = input.downcast_ref::<TransactWriteItemsInput>() {
        for item in t.transact_items() {
            let action = if item.put().is_some() {
                "dynamodb:PutItem"
            } else if item.update().is_some() {
                "dynamodb:UpdateItem"
            } else if item.delete().is_some() {
                "dynamodb:DeleteItem"
            } else {
                "dynamodb:ConditionCheckItem"
            };
            crate::calls::record(action, "table");
        }
    } else if input.downcast_ref::<TransactGetItemsInput>().is_some() {
        crate::calls::record("dynamodb:GetItem", "table");
    } else {
        crate::calls::record(&format!("dynamodb:{operation}"), "table");
    }
}

/// Runs `f` and returns how many DynamoDB operations it made.
pub async fn count_calls<F: Future>(f: F) -> (F::Output, u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let out = REQUEST_CALLS.scope(counter.clone(), f).await;
    let calls = counter.load(Ordering::Relaxed);
    // A count inside another (a handler inside a measuring harness) adds to it.
    let _ = REQUEST_CALLS.try_with(|outer| outer.fetch_add(calls, Ordering::Relaxed));
    (out, calls)
}

/// DynamoDB operations made by this process so far.
pub fn total_calls() -> u64 {
    TOTAL_CALLS.load(Ordering::Relaxed)
}

#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) client: Client,
    pub(crate) table: String,
}

impl Store {
    /// Builds the client once, at init. With `DYNAMODB_ENDPOINT` set (local stack,
    /// tests) it uses fixed dummy credentials and skips the AWS credential chain,
    /// whose instance-metadata probes would add seconds to every cold start.
    pub async fn connect(config: &Config) -> Self {
        let client = Client::from_conf(Self::sdk_config(config).await.build());
        Self { client, table: config.table_name.clone() }
    }

    /// As `connect`, with one more interceptor: tests use it to inject the faults
    /// DynamoDB Local never produces (throttling, transaction conflicts).
    pub async fn connect_with_interceptor(config: &Config, extra: impl Intercept + 'static) -> Self {
        let client = Client::from_conf(Self::sdk_config(config).await.interceptor(extra).build());
        Self { client, table: config.table_name.clone() }
    }

    async fn sdk_config(config: &Config) -> aws_sdk_dynamodb::config::Builder {
        let builder = match &config.dynamodb_endpoint {
            Some(endpoint) => aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                .credentials_provider(aws_credential_types::Credentials::new("local", "local", None, None, "local"))
                .endpoint_url(endpoint),
            None => {
                let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                aws_sdk_dynamodb::config::Builder::from(&shared)
            }
        };
        builder.interceptor(CallCounter).interceptor(crate::meter::WaitTimer(crate::meter::Service::DynamoDb))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(pk))
            .key("SK", AttributeValue::S(sk.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::sdk("GetItem", e))?;
        Ok(out.item)
    }

    /// Several items by key in one BatchGetItem (strongly consistent), keyed by
    /// (PK, SK). Callers pass at most a few dozen keys.
    pub(crate) async fn batch_get(
        &self,
        wanted: &[(String, String)],
    ) -> Result<HashMap<(String, String), Item>, StoreError> {
        let mut found = HashMap::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let mut unique: Vec<&(String, String)> = Vec::with_capacity(wanted.len());
        for k in wanted {
            if !unique.contains(&k) {
                unique.push(k);
            }
        }
        let mut request = KeysAndAttributes::builder().consistent_read(true);
        for (pk, sk) in unique {
            request =
                request.keys(HashMap::from([("PK".to_string(), s(pk.clone())), ("SK".to_string(), s(sk.clone()))]));
        }
        let mut pending = HashMap::from([(self.table.clone(), request.build().map_err(build_err("BatchGetItem"))?)]);
        // UnprocessedKeys only appear under throttling; retry them a bounded number of times.
        for _ in 0..3 {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(|e| StoreError::sdk("BatchGetItem", e))?;
            for item in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                let key = (
                    item.get("PK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
                    item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
                );
                found.insert(key, item);
            }
            match out.unprocessed_keys.filter(|u| !u.is_empty()) {
                Some(rest) => pending = rest,
                None => return Ok(found),
            }
        }
        Err(StoreError::Throttled)
    }

    /// One `TransactWriteItems`. `Ok(Err(..))` is a business outcome (a condition
    /// did not hold); `Err` is infrastructure.
    ///
    /// A `TransactionConflict` means nothing was applied and another transaction held
    /// one of the items (the tier statistics items are shared by every transition of a
    /// tier); it is retried a bounded number of times, which is safe because every
    /// condition is evaluated again.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), ConditionFailed>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.transact_once(items.clone()).await {
                Err(StoreError::TransactionConflict) if attempt < TRANSACT_ATTEMPTS => {
                    // Jitter only spreads retries apart; it is not business time.
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos());
                    let jitter = u64::from(nanos % 20);
                    tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt) + jitter)).await;
                }
                other => return other,
            }
        }
    }

    async fn transact_once(&self, items: Vec<TransactWriteItem>) -> Result<Result<(), ConditionFailed>, StoreError> {
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(err) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) = err.as_service_error() {
                    let reasons = canceled.cancellation_reasons();
                    if let Some(index) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
                        return Ok(Err(ConditionFailed { index, old_item: reasons[index].item().cloned() }));
                    }
                    if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
                        return Err(StoreError::TransactionConflict);
                    }
                }
                // A 500 on a transaction applied nothing and is retryable (AWS advises
                // retrying it). DynamoDB Local answers contention on a hot item this
                // way ("timed out … waiting for a lock") where DynamoDB would not.
                if err.code() == Some("InternalServerError") {
                    return Err(StoreError::TransactionConflict);
                }
                Err(StoreError::sdk("TransactWriteItems", err))
            }
        }
    }

    /// A Put inside a transaction, with an optional condition.
    pub(crate) fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(build_err("Put"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// An edit of a versioned item inside a transaction: every attribute of `after`
    /// is set except its keys and `untouched` (fields other writers change without a
    /// version, such as counters), and the attributes only `before` has are removed,
    /// conditional on `before`'s `version` and, when given, on its stored `status`.
    pub(crate) fn versioned_update(
        &self,
        before: Item,
        mut after: Item,
        untouched: &[&str],
        status: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let attribute = |item: &Item, name: &str| {
            item.get(name).cloned().ok_or(StoreError::Sdk { operation: "Update", source: format!("no {name}").into() })
        };
        let (pk, sk, version) = (attribute(&after, "PK")?, attribute(&after, "SK")?, attribute(&before, "version")?);
        for key in ["PK", "SK"].iter().chain(untouched) {
            after.remove(*key);
        }
        let gone: Vec<String> = before
            .into_keys()
            .filter(|k| !after.contains_key(k) && k != "PK" && k != "SK" && !untouched.contains(&k.as_str()))
            .collect();
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("PK", pk)
            .key("SK", sk)
            .expression_attribute_values(":expected", version)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        update = match status {
            None => update.condition_expression("version = :expected"),
            Some(st) => update
                .condition_expression("version = :expected AND #st = :st")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":st", s(st)),
        };
        let mut sets = Vec::with_capacity(after.len());
        for (i, (name, value)) in after.into_iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
            sets.push(format!("#a{i} = :a{i}"));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !gone.is_empty() {
            let mut removes = Vec::with_capacity(gone.len());
            for (i, name) in gone.into_iter().enumerate() {
                update = update.expression_attribute_names(format!("#r{i}"), name);
                removes.push(format!("#r{i}"));
            }
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let update = update.update_expression(expression).build().map_err(build_err("Update"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Every item one Query matches, page after page. For partitions that are small by
    /// design (the catalog, one range of aggregates); `shape` adds the index and key
    /// condition to the table's query.
    pub(crate) async fn query_all(
        &self,
        shape: impl Fn(
            aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        Ok(self.query_all_pages(shape).await?.0)
    }

    /// As `query_all`, with the number of pages (Query calls) it took.
    pub(crate) async fn query_all_pages(
        &self,
        shape: impl Fn(
            aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<(Vec<Item>, usize), StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        let mut pages = 0;
        loop {
            let query = shape(self.client.query().table_name(&self.table));
            let out = query.set_exclusive_start_key(start).send().await.map_err(|e| StoreError::sdk("Query", e))?;
            pages += 1;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok((items, pages)),
            }
        }
    }

    /// Backfills and benchmarks only: writes `items` with BatchWriteItem, 25 at a
    /// time, retrying what DynamoDB leaves unprocessed. An error when items are still
    /// unprocessed after the retries: a backfill never drops rows silently.
    pub(crate) async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        const ATTEMPTS: usize = 10;
        let mut requests = Vec::with_capacity(items.len());
        for item in items {
            let put = PutRequest::builder().set_item(Some(item)).build().map_err(build_err("PutRequest"))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        for chunk in requests.chunks(25) {
            let mut pending = HashMap::from([(self.table.clone(), chunk.to_vec())]);
            let mut attempt = 0;
            loop {
                let out = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(pending))
                    .send()
                    .await
                    .map_err(|e| StoreError::sdk("BatchWriteItem", e))?;
                match out.unprocessed_items.filter(|u| !u.is_empty()) {
                    None => break,
                    Some(_) if attempt + 1 >= ATTEMPTS => {
                        return Err(StoreError::Sdk {
                            operation: "BatchWriteItem",
                            source: format!("items still unprocessed after {ATTEMPTS} attempts").into(),
                        })
                    }
                    Some(rest) => {
                        attempt += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(6))).await;
                        pending = rest;
                    }
                }
            }
        }
        Ok(())
    }

    /// The item to write for `value` with its key attributes added.
    pub(crate) fn item<T: Serialize>(value: &T, keys: &[(&str, String)]) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(value)?;
        for (name, v) in keys {
            item.insert((*name).to_string(), AttributeValue::S(v.clone()));
        }
        Ok(item)
    }
}

/// The attributes of a claim record as a failed condition returned it (its old
/// image): a claim's status, hash and timers are read this way.
pub(crate) struct ClaimAttributes<'a>(pub(crate) &'a Item);

impl ClaimAttributes<'_> {
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| v.as_s().ok()).cloned()
    }

    pub(crate) fn number(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A conditional write's result: `Ok(true)` applied, `Ok(false)` its condition failed.
pub(crate) fn conditional<E>(
    result: Result<(), aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
    operation: &'static str,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(StoreError::sdk(operation, e)),
    }
}

/// Maps a request-builder error (a missing required field: a bug, not bad input).
pub(crate) fn build_err(operation: &'static str) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> StoreError {
    move |e| StoreError::Sdk { operation, source: Box::new(e) }
}

/// LastEvaluatedKey → opaque cursor. Only string key attributes exist in this table.
pub(crate) fn cursor_out(last: Option<&Item>) -> Option<String> {
    let last = last?;
    let key: CursorKey = last.iter().filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone()))).collect();
    Some(page::encode(&key))
}

pub(crate) fn cursor_in(raw: Option<&str>, attrs: &[&str], partition: (&str, &str)) -> Result<Option<Item>, BadCursor> {
    let Some(raw) = raw else { return Ok(None) };
    let key = page::decode(raw, attrs, partition)?;
    Ok(Some(key.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::analytics::{CurrentFlows, TierFlows};
    use crate::domain::revenue::TierCounts;

    #[test]
    fn counters_are_named_by_the_type_once_and_keep_zeros() {
        let counts = TierCounts { member_count: 1, mrr: -360_000, ..TierCounts::default() };
        let got = counters_of(&counts).unwrap();
        assert_eq!(got.len(), 9, "every live counter, zeros included: {got:?}");
        assert!(got.contains(&("memberCount".to_string(), 1)));
        assert!(got.contains(&("mrr".to_string(), -360_000)));
        assert!(got.contains(&("pastDueCount".to_string(), 0)));
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "sorted, so the expression text is stable");
        let flows = TierFlows { d_mrr_monthly: 5, conversions: 2, ..TierFlows::default() };
        let month = counters_of(&flows).unwrap();
        assert_eq!(month.len(), 27);
        assert!(month.contains(&("dMrrMonthly".to_string(), 5)));
        let current = counters_of(&flows.current()).unwrap();
        assert_eq!(current.len(), 7);
        assert!(
            current.contains(&("firstPayments".to_string(), 2)) && current.contains(&("mrrMonthly".to_string(), 5))
        );
    }

    #[test]
    fn one_stats_item_reads_as_live_counts_and_all_time_counters() {
        let live = TierCounts { active_count: 3, mrr: 900, ..TierCounts::default() };
        let flows = CurrentFlows { signups: 7, ..CurrentFlows::default() };
        let mut item: Item = serde_dynamo::to_item(live).unwrap();
        item.extend(serde_dynamo::to_item::<_, Item>(flows).unwrap());
        item.insert("tierId".into(), s("gold"));
        assert_eq!(serde_dynamo::from_item::<_, TierCounts>(item.clone()).unwrap(), live);
        assert_eq!(serde_dynamo::from_item::<_, CurrentFlows>(item).unwrap(), flows);
        // A counter never written reads as 0.
        let sparse: Item = HashMap::from([("mrr".to_string(), n(5))]);
        assert_eq!(serde_dynamo::from_item::<_, TierCounts>(sparse).unwrap().mrr, 5);
    }
}
