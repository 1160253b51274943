//! Quote access patterns (keys and their purpose are in `keys`): the yearly
//! number counter, the quote with its index entries, the view-token lookup moved
//! in the same transaction as a send, and acceptance written in one transaction
//! with the subscription change it causes.

use super::keys::{self, GSI1, GSI2, GSI3, LOOKUP, META};
use super::PageRequest;
use super::PartnerRefusal;
use super::PartnerStore;
use super::{
    build_err, n, s, ConditionFailed, IndexQuery, Item, ListError, Page, SortRange, Store, StoreError, WriteError,
};
use crate::domain::audit::AuditEntry;
use crate::domain::quote::{Quote, QuoteStatus};
use crate::domain::subscription::Transition;
use aws_sdk_dynamodb::types::{Delete, ReturnValue, TransactWriteItem};
use serde::{Deserialize, Serialize};

/// `QUOTETOKEN#{hash}` / LOOKUP.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenLookup {
    quote_id: String,
}

/// Which list a caller asked for.
#[derive(Debug, Clone)]
pub enum QuoteList {
    All,
    Rep(String),
    Status(QuoteStatus),
}

/// Why a quote write was refused, by the condition that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteRefusal {
    /// A quote with the id being created is there.
    Exists,
    /// The quote's stored version is not the one the change was computed from
    /// (or the quote is not there: `current` is `None`).
    Stale { current: Option<u64> },
}

/// Why an acceptance transaction did not apply.
#[derive(Debug)]
pub enum AcceptRefusal {
    /// The quote moved on (accepted by a concurrent request, cancelled, edited).
    Quote,
    /// The partner's write was refused (it changed since the change was planned).
    Subscription(PartnerRefusal),
}

/// Attributes only views change.
const VIEW_COUNTERS: [&str; 2] = ["viewCount", "lastViewedAt"];

fn number(item: &Item, attr: &str) -> Option<u64> {
    item.get(attr).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

impl Store {
    fn quote_item(q: &Quote) -> Result<Item, StoreError> {
        let list_sk = keys::quote_list_sk(&q.created_at, &q.quote_id);
        Self::item(
            &q.stored(),
            &[
                ("PK", keys::quote_pk(&q.quote_id)),
                ("SK", META.to_string()),
                ("GSI1PK", keys::rep_quotes_pk(&q.sales_rep)),
                ("GSI1SK", list_sk.clone()),
                ("GSI2PK", keys::quote_status_pk(q.status.as_str())),
                ("GSI2SK", list_sk.clone()),
                ("GSI3PK", keys::QUOTES_PARTITION.to_string()),
                ("GSI3SK", list_sk),
            ],
        )
    }

    /// A new quote, conditional on not existing.
    fn quote_create(&self, q: &Quote) -> Result<TransactWriteItem, StoreError> {
        self.put(Self::quote_item(q)?, Some("attribute_not_exists(PK)"))
    }

    /// The quote's update from `before` to `after`, conditional on `before`'s
    /// version (and, when given, its stored status). Every attribute is set from
    /// `after` except the view counters, which views change without a version
    /// (a view must never fail an edit, nor an edit lose a view); attributes
    /// `after` no longer has are removed.
    fn quote_update(
        &self,
        before: &Quote,
        after: &Quote,
        status: Option<QuoteStatus>,
    ) -> Result<TransactWriteItem, StoreError> {
        self.versioned_update(
            Self::quote_item(before)?,
            Self::quote_item(after)?,
            &VIEW_COUNTERS,
            status.map(|st| st.as_str()),
        )
    }

    fn version_conflict(failed: ConditionFailed) -> WriteError<QuoteRefusal> {
        WriteError::Refused(QuoteRefusal::Stale {
            current: failed.old_item.as_ref().and_then(|i| number(i, "version")),
        })
    }
}

/// Quotes, their numbers, view links and acceptance.
pub trait QuoteStore {
    /// The next number of `year` (1, 2, …): one atomic counter update.
    fn next_quote_number(&self, year: i32) -> impl std::future::Future<Output = Result<u64, StoreError>> + Send;
    fn create_quote(
        &self,
        q: &Quote,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<QuoteRefusal>>> + Send;
    fn get_quote(&self, quote_id: &str) -> impl std::future::Future<Output = Result<Option<Quote>, StoreError>> + Send;
    /// The quote a view token belongs to (two GetItems: the lookup, then the quote).
    /// A token whose link was replaced or never existed finds nothing.
    fn quote_by_token_hash(
        &self,
        token_hash: &str,
    ) -> impl std::future::Future<Output = Result<Option<Quote>, StoreError>> + Send;
    /// An edit or workflow step: the quote conditional on `before`'s version, the
    /// audit entry, and when the view link changes, the new lookup (unique) and
    /// the old one's removal, all together.
    fn save_quote(
        &self,
        before: &Quote,
        after: &Quote,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<QuoteRefusal>>> + Send;
    /// Counts one view of a sent quote: `ADD viewCount 1` and the time, without
    /// touching the version (a view is not an edit and must not fail one).
    fn record_quote_view(
        &self,
        quote_id: &str,
        at: &str,
    ) -> impl std::future::Future<Output = Result<Option<u64>, StoreError>> + Send;
    /// Acceptance: the quote (conditional on its version and `sent`), and the
    /// subscription change with everything a transition writes, in one
    /// transaction. Two accepts race on the quote's condition: one applies.
    fn accept_quote(
        &self,
        before: &Quote,
        after: &Quote,
        transition: Option<(&Transition, &AuditEntry)>,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<Result<(), AcceptRefusal>, StoreError>> + Send;
    fn list_quotes(
        &self,
        list: &QuoteList,
        status_filter: Option<QuoteStatus>,
        page: &PageRequest,
    ) -> impl std::future::Future<Output = Result<Page<Quote>, ListError>> + Send;
    /// Open quotes whose `validUntil` is before `today`, for the expiry pass: one
    /// Query per open status, paged, filtered on the date.
    fn lapsed_quotes(
        &self,
        today: chrono::NaiveDate,
    ) -> impl std::future::Future<Output = Result<Vec<Quote>, StoreError>> + Send;
}

impl QuoteStore for Store {
    async fn next_quote_number(&self, year: i32) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::quote_counter_pk(year)))
            .key("SK", s(META))
            .update_expression("ADD lastNumber :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| StoreError::sdk("UpdateItem", e))?;
        out.attributes
            .as_ref()
            .and_then(|a| number(a, "lastNumber"))
            .ok_or_else(|| StoreError::Sdk { operation: "UpdateItem", source: "counter returned no value".into() })
    }
    async fn create_quote(&self, q: &Quote, audit: &AuditEntry) -> Result<(), WriteError<QuoteRefusal>> {
        let items = vec![self.quote_create(q)?, self.audit_put(audit)?];
        self.transact(items).await?.map_err(|_| WriteError::Refused(QuoteRefusal::Exists))
    }
    async fn get_quote(&self, quote_id: &str) -> Result<Option<Quote>, StoreError> {
        match self.get(keys::quote_pk(quote_id), META).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }
    async fn quote_by_token_hash(&self, token_hash: &str) -> Result<Option<Quote>, StoreError> {
        let Some(item) = self.get(keys::quote_token_pk(token_hash), LOOKUP).await? else {
            return Ok(None);
        };
        let lookup: TokenLookup = serde_dynamo::from_item(item)?;
        Ok(self.get_quote(&lookup.quote_id).await?.filter(|q| q.token_hash.as_deref() == Some(token_hash)))
    }
    async fn save_quote(
        &self,
        before: &Quote,
        after: &Quote,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<QuoteRefusal>> {
        let mut items = vec![self.quote_update(before, after, None)?, self.audit_put(audit)?];
        if after.token_hash != before.token_hash {
            if let Some(new) = &after.token_hash {
                let lookup = Self::item(
                    &TokenLookup { quote_id: after.quote_id.clone() },
                    &[("PK", keys::quote_token_pk(new)), ("SK", LOOKUP.to_string())],
                )?;
                items.push(self.put(lookup, Some("attribute_not_exists(PK)"))?);
            }
            if let Some(old) = &before.token_hash {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .key("PK", s(keys::quote_token_pk(old)))
                    .key("SK", s(LOOKUP))
                    .build()
                    .map_err(build_err("Delete"))?;
                items.push(TransactWriteItem::builder().delete(delete).build());
            }
        }
        self.transact(items).await?.map_err(Self::version_conflict)
    }
    async fn record_quote_view(&self, quote_id: &str, at: &str) -> Result<Option<u64>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::quote_pk(quote_id)))
            .key("SK", s(META))
            .update_expression("ADD viewCount :one SET lastViewedAt = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", s(at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.attributes.as_ref().and_then(|a| number(a, "viewCount"))),
            Err(e)
                if aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e)
                    == Some("ConditionalCheckFailedException") =>
            {
                Ok(None)
            }
            Err(e) => Err(StoreError::sdk("UpdateItem", e)),
        }
    }
    async fn accept_quote(
        &self,
        before: &Quote,
        after: &Quote,
        transition: Option<(&Transition, &AuditEntry)>,
        audit: &AuditEntry,
    ) -> Result<Result<(), AcceptRefusal>, StoreError> {
        let mut items = vec![self.quote_update(before, after, Some(QuoteStatus::Sent))?, self.audit_put(audit)?];
        // The CRM hand-off, once: the stream's INSERT of this item is the event.
        if let Some(handoff) = crate::domain::quote::QuoteAccepted::of(after) {
            let item = Self::item(
                &handoff,
                &[("PK", keys::quote_pk(&after.quote_id)), ("SK", keys::quote_accepted_event_sk(&handoff.accepted_at))],
            )?;
            items.push(self.put(item, Some("attribute_not_exists(PK)"))?);
        }
        let mut at = None;
        if let Some((t, transition_audit)) = transition {
            let offset = items.len();
            let (more, indexes) = self.transition_items(t, transition_audit)?;
            items.extend(more);
            at = Some((offset, indexes, t.before.is_none()));
        }
        Ok(match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(failed) if failed.index == 0 => Err(AcceptRefusal::Quote),
            Err(failed) => match at {
                Some((offset, indexes, signup)) if failed.index >= offset => Err(AcceptRefusal::Subscription(
                    indexes
                        .failure(ConditionFailed { index: failed.index - offset, old_item: failed.old_item }, signup),
                )),
                // The quote, its audit entry or its hand-off: the quote moved.
                _ => Err(AcceptRefusal::Quote),
            },
        })
    }
    async fn list_quotes(
        &self,
        list: &QuoteList,
        status_filter: Option<QuoteStatus>,
        page: &PageRequest,
    ) -> Result<Page<Quote>, ListError> {
        let (index, partition) = match list {
            QuoteList::All => (GSI3, keys::QUOTES_PARTITION.to_string()),
            QuoteList::Rep(rep) => (GSI1, keys::rep_quotes_pk(rep)),
            QuoteList::Status(st) => (GSI2, keys::quote_status_pk(st.as_str())),
        };
        let filters = status_filter.map(|st| vec![("status", st.as_str().to_string())]).unwrap_or_default();
        let q = IndexQuery { index: Some(index), partition, range: SortRange::All, newest_first: true, filters };
        self.query_page(&q, page).await
    }
    async fn lapsed_quotes(&self, today: chrono::NaiveDate) -> Result<Vec<Quote>, StoreError> {
        let mut out = Vec::new();
        for status in QuoteStatus::OPEN {
            let items = self
                .query_all(|q| {
                    q.index_name(GSI2)
                        .key_condition_expression("GSI2PK = :pk")
                        .filter_expression("validUntil < :today")
                        .expression_attribute_values(":pk", s(keys::quote_status_pk(status.as_str())))
                        .expression_attribute_values(":today", s(today.format("%Y-%m-%d").to_string()))
                })
                .await?;
            for item in items {
                out.push(serde_dynamo::from_item(item)?);
            }
        }
        Ok(out)
    }
}
