//! Partner access patterns: transitions as one transaction, the index copies, and
//! the paged lists behind the dashboard (keys and their purpose are in `keys`).

use super::keys::{self, GSI1, GSI2, GSI3, META};
use super::{
    build_err, counters_of, cursor_in, cursor_out, n, s, stored_version, ConditionFailed, Item, ListError, Page,
    PageRequest, Store, StoreError, WriteError,
};
use crate::domain::analytics::CurrentFlows;
use crate::domain::audit::AuditEntry;
use crate::domain::partner::{name_search_key, DashboardTab, Partner, SalesNote, SubscriptionStatus};
use crate::domain::renewal::renews_monthly_by_itself;
use crate::domain::subscription::sweepable_trial_end;
use crate::domain::subscription::{TierTransition, Transition};
use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One index to page through: which GSI, which partition, an optional sort-key
/// range, and the direction.
#[derive(Debug, Clone)]
pub struct IndexQuery {
    pub index: Option<&'static str>,
    pub partition: String,
    pub range: SortRange,
    pub newest_first: bool,
    /// Extra equality filters (attribute, value); they narrow a page but never widen
    /// what is read, so list cost still follows the page size.
    pub filters: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone)]
pub enum SortRange {
    All,
    Prefix(String),
    AtLeast(String),
    Between(String, String),
}

/// Where the conditional items of a transition's transaction sit, to name the
/// condition that failed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransitionIndexes {
    pub email: usize,
    pub tier_check: usize,
}

impl TransitionIndexes {
    pub(crate) fn failure(self, failed: ConditionFailed, signup: bool) -> PartnerRefusal {
        match failed {
            ConditionFailed { index, .. } if index == self.email && signup => PartnerRefusal::EmailTaken,
            ConditionFailed { index, .. } if index == self.tier_check => PartnerRefusal::TierInactive,
            other => version_failure(other),
        }
    }
}

/// Why a partner write was refused, by the condition that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerRefusal {
    /// The partner to change is not there.
    Missing,
    /// The partner's stored version is not the one the change was computed from.
    Stale { current: Option<u64> },
    /// Another partner holds the email's unique lookup.
    EmailTaken,
    /// The tier moved to is not active any more.
    TierInactive,
    /// Another partner holds the Stripe customer's unique lookup.
    CustomerLinked,
    /// An item of the change went away underneath it (nothing applied).
    Gone,
}

/// Lists served by the partner indexes.
#[derive(Debug, Clone)]
pub enum PartnerList {
    All,
    Tier(String),
    Rep(String),
    /// Company names starting with a search key (`partner::name_search_key`).
    NamePrefix(String),
}

/// The partner lists kept current by each write of a partner's scores (sparse indexes).
#[derive(Debug, Clone, Copy)]
pub enum SignalList {
    ChurnRisk { min_probability: u32 },
    Upsell { min_score: u32 },
    WinBack { churned_since: NaiveDate },
}

impl IndexQuery {
    /// Narrows a page to one subscription status (a filter: the page's read cost is unchanged).
    pub fn with_status(mut self, status: SubscriptionStatus) -> Self {
        self.filters.push(("subscriptionStatus", status.as_str().to_string()));
        self
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailLookup {
    partner_id: String,
}

/// Everything stored under one partner's partition, for the journey.
#[derive(Debug, Default)]
pub struct PartnerHistory {
    pub partner: Option<Partner>,
    pub transitions: Vec<TierTransition>,
    pub notes: Vec<SalesNote>,
    /// Usage counters by month (`yyyy-mm` → metric → count), from the same Query.
    pub usage: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    /// The partner's invoices, oldest first (the data export).
    pub invoices: Vec<crate::domain::billing::InvoiceRecord>,
}

impl Store {
    /// The partner record and its three index copies, each with its own index keys.
    fn partner_items(p: &Partner) -> Result<[Item; 4], StoreError> {
        let id = &p.partner_id;
        let pk = keys::partner_pk(id);
        let mut meta = vec![
            ("PK", pk.clone()),
            ("SK", META.to_string()),
            ("GSI1PK", keys::tier_members_pk(&p.engagement_tier)),
            ("GSI1SK", id.clone()),
        ];
        if let Some(last_day) = sweepable_trial_end(p) {
            meta.extend([("GSI2PK", keys::trial_end_pk(last_day)), ("GSI2SK", keys::dated_sk(last_day, id))]);
        } else if let Some(end) = p.subscription_end_date {
            // Reminder candidates apart from terms that only the expiry pass reads.
            let pk = if renews_monthly_by_itself(p) { keys::sub_renew_pk(end) } else { keys::sub_end_pk(end) };
            meta.extend([("GSI2PK", pk), ("GSI2SK", keys::dated_sk(end, id))]);
        }
        if let Some(rep) = &p.assigned_sales_rep {
            meta.extend([("GSI3PK", keys::rep_pk(rep)), ("GSI3SK", id.clone())]);
        }
        let mut view = vec![
            ("PK", pk.clone()),
            ("SK", keys::PARTNER_VIEW.to_string()),
            ("GSI1PK", keys::ALL_PARTNERS_PARTITION.to_string()),
            ("GSI1SK", id.clone()),
        ];
        // A partner is on at most two dashboard tabs (a cancellation at period end is
        // both active and cancelled): the first on this copy, the second on the
        // name copy, whose GSI2 and GSI3 are otherwise unused.
        let mut tabs = p.dashboard_tabs().into_iter();
        let tab_keys = |(tab, date): (DashboardTab, NaiveDate)| {
            [
                ("GSI2PK", keys::dashboard_pk(tab.as_str())),
                ("GSI2SK", keys::dated_sk(date, id)),
                ("GSI3PK", keys::dashboard_tier_pk(tab.as_str(), &p.engagement_tier)),
                ("GSI3SK", keys::dated_sk(date, id)),
            ]
        };
        if let Some(tab) = tabs.next() {
            view.extend(tab_keys(tab));
        }
        let mut signals = vec![("PK", pk), ("SK", keys::PARTNER_SIGNALS.to_string())];
        if p.churn_risk.probability > 0 {
            signals.extend([
                ("GSI1PK", keys::CHURN_RISK_PARTITION.to_string()),
                ("GSI1SK", keys::score_sk(p.churn_risk.probability, id)),
            ]);
        }
        if p.upsell.opportunity {
            signals.extend([
                ("GSI2PK", keys::UPSELL_PARTITION.to_string()),
                ("GSI2SK", keys::score_sk(p.upsell.score, id)),
            ]);
        }
        if let (Some(churned), 0) = (p.churned_date, p.mrr) {
            signals.extend([("GSI3PK", keys::WIN_BACK_PARTITION.to_string()), ("GSI3SK", keys::dated_sk(churned, id))]);
        }
        let mut by_name = vec![("PK", keys::partner_pk(id)), ("SK", keys::PARTNER_NAME.to_string())];
        // An erased partner leaves the name search (its placeholder name is no one's).
        if p.erasure.is_none() {
            let name_key = name_search_key(&p.company_name);
            by_name.extend([
                ("GSI1PK", keys::partner_name_pk(&name_key)),
                ("GSI1SK", keys::partner_name_sk(&name_key, id)),
            ]);
        }
        if let Some(tab) = tabs.next() {
            by_name.extend(tab_keys(tab));
        }
        Ok([Self::item(p, &meta)?, Self::item(p, &view)?, Self::item(p, &signals)?, Self::item(p, &by_name)?])
    }

    /// The partner's four items; the record itself conditional on the version the
    /// change was computed from (`None`: it must not exist yet).
    pub(crate) fn partner_writes(
        &self,
        p: &Partner,
        expected: Option<u64>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let [meta, view, signals, by_name] = Self::partner_items(p)?;
        let mut put = Put::builder().table_name(&self.table).set_item(Some(meta));
        put = match expected {
            Some(v) => put
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(v as i64))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld),
            None => put.condition_expression("attribute_not_exists(PK)"),
        };
        Ok(vec![
            TransactWriteItem::builder().put(put.build().map_err(build_err("Put"))?).build(),
            self.put(view, None)?,
            self.put(signals, None)?,
            self.put(by_name, None)?,
        ])
    }

    fn email_claim(&self, email: &str, partner_id: &str) -> Result<TransactWriteItem, StoreError> {
        let item = Self::item(
            &EmailLookup { partner_id: partner_id.to_string() },
            &[("PK", keys::email_pk(email)), ("SK", keys::LOOKUP.to_string())],
        )?;
        self.put(item, Some("attribute_not_exists(PK)"))
    }

    pub(crate) fn email_release(&self, email: &str, partner_id: &str) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("PK", s(keys::email_pk(email)))
            .key("SK", s(keys::LOOKUP))
            .condition_expression("partnerId = :me")
            .expression_attribute_values(":me", s(partner_id))
            .build()
            .map_err(build_err("Delete"))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The items of a transition's transaction, and where the conditional ones sit.
    pub(crate) fn transition_items(
        &self,
        t: &Transition,
        audit: &AuditEntry,
    ) -> Result<(Vec<TransactWriteItem>, TransitionIndexes), StoreError> {
        self.transition_items_with_ops(t, audit, None)
    }

    /// `transition_items`, with more operational counts of the same transaction
    /// (`apply_billing`'s invoice record) added to the day's item: one transaction
    /// may not touch one item twice.
    pub(crate) fn transition_items_with_ops(
        &self,
        t: &Transition,
        audit: &AuditEntry,
        extra_ops: Option<OpsOf<'_>>,
    ) -> Result<(Vec<TransactWriteItem>, TransitionIndexes), StoreError> {
        let p = &t.after;
        let mut items = self.partner_writes(p, t.before.as_ref().map(|b| b.version))?;
        let email_index = items.len();
        if t.before.is_none() {
            items.push(self.email_claim(&p.primary_email, &p.partner_id)?);
        }
        let record = &t.record;
        let event = Self::item(
            record,
            &[
                ("PK", keys::partner_pk(&p.partner_id)),
                ("SK", keys::event_sk(&record.timestamp, &record.transition_id)),
                ("GSI1PK", keys::tier_events_pk(&record.to_tier)),
                ("GSI1SK", keys::audit_sk(&record.timestamp, &record.transition_id)),
                ("GSI2PK", keys::EVENT_LOG_PARTITION.to_string()),
                ("GSI2SK", keys::audit_sk(&record.timestamp, &record.transition_id)),
            ],
        )?;
        items.push(self.put(event, Some("attribute_not_exists(PK)"))?);
        // The live item of each tier carries the all-time funnel and the MRR split by
        // billing period next to its counts; the month items and the cohort item get
        // the transition's analytics deltas (docs/analytics.md).
        let analytics = &t.analytics;
        let extra_of =
            |tier: &str| analytics.tiers.iter().find(|(t, _)| t == tier).map(|(_, f)| f.current()).unwrap_or_default();
        for (tier, delta) in &t.stats {
            items.push(self.stats_update(tier, delta, &extra_of(tier), &record.timestamp)?);
        }
        for (tier, flows) in &analytics.tiers {
            let extra = extra_of(tier);
            if !t.stats.iter().any(|(s, _)| s == tier) && extra != CurrentFlows::default() {
                let zero = crate::domain::revenue::TierCounts::default();
                items.push(self.stats_update(tier, &zero, &extra, &record.timestamp)?);
            }
            items.push(self.add_update(
                keys::tier_stats_pk(tier),
                keys::stats_month_sk(&analytics.month),
                &[("tierId", tier.clone()), ("month", analytics.month.clone())],
                &counters_of(flows)?,
            )?);
        }
        if let Some((cohort, flows)) = &analytics.cohort {
            items.push(self.add_update(
                keys::COHORTS_PARTITION.to_string(),
                keys::cohort_sk(cohort, &analytics.month),
                &[("cohort", cohort.clone()), ("month", analytics.month.clone())],
                &counters_of(flows)?,
            )?);
        }
        let mut ops = vec![OpsOf {
            day: record.timestamp.get(..10).unwrap_or_default(),
            tier: &record.to_tier,
            counts: crate::domain::alerts::transition_counts(t),
        }];
        if let Some(extra) = extra_ops {
            match ops.iter_mut().find(|o| o.day == extra.day && o.tier == extra.tier) {
                Some(same) => same.counts = same.counts.plus(extra.counts),
                None => ops.push(extra),
            }
        }
        for o in ops.iter().filter(|o| !o.counts.is_zero()) {
            items.push(self.ops_add(o)?);
        }
        if let Some(m) = &t.movement {
            let item = Self::item(
                m,
                &[("PK", keys::movements_pk(&m.at)), ("SK", keys::movement_sk(&m.at, &m.partner_id, &m.movement_id))],
            )?;
            items.push(self.put(item, Some("attribute_not_exists(PK)"))?);
        }
        items.push(self.audit_put(audit)?);
        let tier_check_index = items.len();
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("PK", s(keys::tier_pk(&p.engagement_tier)))
            .key("SK", s(META))
            .condition_expression("#status = :active")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active"))
            .build()
            .map_err(build_err("ConditionCheck"))?;
        items.push(TransactWriteItem::builder().condition_check(check).build());
        Ok((items, TransitionIndexes { email: email_index, tier_check: tier_check_index }))
    }

    /// `ADD` of a day's operational counts of a tier (`OPS / DAY#{date}#{tier}`,
    /// docs/alerts.md).
    pub(crate) fn ops_add(&self, o: &OpsOf<'_>) -> Result<TransactWriteItem, StoreError> {
        self.add_update(
            keys::OPS_PARTITION.into(),
            keys::ops_day_sk(o.day, o.tier),
            &[("date", o.day.to_string()), ("tierId", o.tier.to_string())],
            &counters_of(&o.counts)?,
        )
    }

    /// `ADD` of a partner's contribution to a tier's live statistics, with the
    /// analytics counters kept on the same item (`extra`).
    pub(crate) fn stats_update(
        &self,
        tier: &str,
        delta: &crate::domain::revenue::TierCounts,
        extra: &CurrentFlows,
        at: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut expression = String::from("SET tierId = :tier, updatedAt = :at ADD ");
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("PK", s(keys::tier_stats_pk(tier)))
            .key("SK", s(keys::STATS_CURRENT))
            .expression_attribute_values(":tier", s(tier))
            .expression_attribute_values(":at", s(at));
        let extra = counters_of(extra)?.into_iter().filter(|(_, v)| *v != 0);
        for (i, (name, value)) in counters_of(delta)?.into_iter().chain(extra).enumerate() {
            if i > 0 {
                expression.push_str(", ");
            }
            expression.push_str(&format!("{name} :d{i}"));
            update = update.expression_attribute_values(format!(":d{i}"), n(value));
        }
        let update = update.update_expression(expression).build().map_err(build_err("Update"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// An `UpdateItem` inside a transaction: `SET` of the labels, `ADD` of the
    /// non-zero counters (a counter never written reads as 0).
    pub(crate) fn add_update(
        &self,
        pk: String,
        sk: String,
        labels: &[(&'static str, String)],
        counters: &[(String, i64)],
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder().table_name(&self.table).key("PK", s(pk)).key("SK", s(sk));
        let mut set = Vec::new();
        for (i, (name, value)) in labels.iter().enumerate() {
            // Names go through placeholders: `month` is a DynamoDB reserved word.
            set.push(format!("#l{i} = :l{i}"));
            update = update
                .expression_attribute_names(format!("#l{i}"), *name)
                .expression_attribute_values(format!(":l{i}"), s(value.clone()));
        }
        let mut add = Vec::new();
        for (i, (name, value)) in counters.iter().filter(|(_, v)| *v != 0).enumerate() {
            add.push(format!("#d{i} :d{i}"));
            update = update
                .expression_attribute_names(format!("#d{i}"), name)
                .expression_attribute_values(format!(":d{i}"), n(*value));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !add.is_empty() {
            expression.push_str(&format!(" ADD {}", add.join(", ")));
        }
        let update = update.update_expression(expression).build().map_err(build_err("Update"))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub fn partner_list_query(list: &PartnerList) -> IndexQuery {
        let (index, partition) = match list {
            PartnerList::All => (GSI1, keys::ALL_PARTNERS_PARTITION.to_string()),
            PartnerList::Tier(tier) => (GSI1, keys::tier_members_pk(tier)),
            PartnerList::Rep(rep) => (GSI3, keys::rep_pk(rep)),
            PartnerList::NamePrefix(key) => {
                return IndexQuery {
                    index: Some(GSI1),
                    partition: keys::partner_name_pk(key),
                    range: SortRange::Prefix(key.clone()),
                    newest_first: false,
                    filters: Vec::new(),
                };
            }
        };
        IndexQuery { index: Some(index), partition, range: SortRange::All, newest_first: true, filters: Vec::new() }
    }

    /// Every transition, or one tier's (`?view=history`): the event log or the tier's
    /// events index.
    pub fn transition_log_query(tier: Option<&str>, newest_first: bool) -> IndexQuery {
        let (index, partition) = match tier {
            Some(t) => (GSI1, keys::tier_events_pk(t)),
            None => (GSI2, keys::EVENT_LOG_PARTITION.to_string()),
        };
        IndexQuery { index: Some(index), partition, range: SortRange::All, newest_first, filters: Vec::new() }
    }

    /// One dashboard tab, optionally of one tier, in date order; `dated` narrows it to
    /// the dates `from..=to` (the expiring view is the active tab's next days).
    pub fn dashboard_query(
        tab: DashboardTab,
        tier: Option<&str>,
        dated: Option<(NaiveDate, NaiveDate)>,
        newest_first: bool,
    ) -> IndexQuery {
        let (index, partition) = match tier {
            Some(t) => (GSI3, keys::dashboard_tier_pk(tab.as_str(), t)),
            None => (GSI2, keys::dashboard_pk(tab.as_str())),
        };
        let range = match dated {
            Some((from, to)) => SortRange::Between(keys::dated_sk(from, ""), keys::dated_sk(to, "~")),
            None => SortRange::All,
        };
        IndexQuery { index: Some(index), partition, range, newest_first, filters: Vec::new() }
    }

    /// A list kept by the partners' scores, highest (or newest) first from a floor.
    pub fn signal_list_query(list: SignalList) -> IndexQuery {
        let (index, partition, from) = match list {
            SignalList::ChurnRisk { min_probability } => {
                (GSI1, keys::CHURN_RISK_PARTITION, keys::score_sk(min_probability, ""))
            }
            SignalList::Upsell { min_score } => (GSI2, keys::UPSELL_PARTITION, keys::score_sk(min_score, "")),
            SignalList::WinBack { churned_since } => {
                (GSI3, keys::WIN_BACK_PARTITION, keys::dated_sk(churned_since, ""))
            }
        };
        IndexQuery {
            index: Some(index),
            partition: partition.to_string(),
            range: SortRange::AtLeast(from),
            newest_first: true,
            filters: Vec::new(),
        }
    }

    pub fn history_query(partner_id: &str) -> IndexQuery {
        IndexQuery {
            index: None,
            partition: keys::partner_pk(partner_id),
            range: SortRange::Prefix(keys::EVENT_PREFIX.to_string()),
            newest_first: true,
            filters: Vec::new(),
        }
    }
}

/// Partners, their transitions, history, notes and lists.
pub trait PartnerStore {
    /// Writes a planned transition in one transaction: the partner (conditional on
    /// its version, or on not existing for a signup) and its index copies, the
    /// history record, the statistics of every tier it touches, the MRR movement,
    /// the audit entry, a check that the target tier is still active, and for a
    /// signup the unique email claim.
    fn apply_transition(
        &self,
        t: &Transition,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PartnerRefusal>>> + Send;
    /// Saves a change that is not a transition (profile, assignment, scores), with
    /// the audit entry and, when the email changed, the lookup moved atomically.
    fn save_partner(
        &self,
        before: &Partner,
        after: &Partner,
        audit: &AuditEntry,
        note: Option<&SalesNote>,
    ) -> impl std::future::Future<Output = Result<(), WriteError<PartnerRefusal>>> + Send;
    /// Backfills and benchmarks only: writes partners' records and index copies in
    /// batches, without history, statistics or ledger. No request path calls it.
    fn backfill_partners(
        &self,
        partners: &[Partner],
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// A one-off reindex for tables written before the name search existed: puts each
    /// listed partner's `NAME` copy only (the record and its other copies are left
    /// alone, so a concurrent change is never rolled back; a partner written meanwhile
    /// rewrites its copy in its own transaction). Not on a request path.
    fn reindex_partner_names(
        &self,
        partners: &[Partner],
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// Reindexes every partner's name (`reindex_partner_names`), reading them page by
    /// page from the all-partners index (a Query, no Scan). Returns how many it wrote.
    fn reindex_all_partner_names(&self) -> impl std::future::Future<Output = Result<usize, ListError>> + Send;
    fn get_partner(
        &self,
        partner_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<Partner>, StoreError>> + Send;
    /// The partner owning `email` (case-insensitive), through the unique lookup.
    fn partner_id_by_email(
        &self,
        email: &str,
    ) -> impl std::future::Future<Output = Result<Option<String>, StoreError>> + Send;
    /// One page of an index, deserialized. The cursor is checked to belong to the
    /// same index and partition.
    fn query_page<T: DeserializeOwned>(
        &self,
        q: &IndexQuery,
        page: &PageRequest,
    ) -> impl std::future::Future<Output = Result<Page<T>, ListError>> + Send;
    /// Everything in a partner's partition: record, transitions (oldest first),
    /// notes and monthly usage counters. A partner's history is small (tens to hundreds of items), so this is
    /// one Query, rarely two.
    fn partner_history(
        &self,
        partner_id: &str,
    ) -> impl std::future::Future<Output = Result<PartnerHistory, StoreError>> + Send;
}

impl PartnerStore for Store {
    async fn apply_transition(&self, t: &Transition, audit: &AuditEntry) -> Result<(), WriteError<PartnerRefusal>> {
        let (items, at) = self.transition_items(t, audit)?;
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(failed) => Err(WriteError::Refused(at.failure(failed, t.before.is_none()))),
        }
    }
    async fn save_partner(
        &self,
        before: &Partner,
        after: &Partner,
        audit: &AuditEntry,
        note: Option<&SalesNote>,
    ) -> Result<(), WriteError<PartnerRefusal>> {
        let mut items = self.partner_writes(after, Some(before.version))?;
        let email_changed = before.primary_email.to_lowercase() != after.primary_email.to_lowercase();
        let email_index = items.len();
        if email_changed {
            items.push(self.email_claim(&after.primary_email, &after.partner_id)?);
            items.push(self.email_release(&before.primary_email, &before.partner_id)?);
        }
        if let Some(note) = note {
            let item = Self::item(
                note,
                &[("PK", keys::partner_pk(&note.partner_id)), ("SK", keys::note_sk(&note.timestamp, &note.note_id))],
            )?;
            items.push(self.put(item, Some("attribute_not_exists(PK)"))?);
        }
        items.push(self.audit_put(audit)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(ConditionFailed { index, .. }) if email_changed && index == email_index => {
                Err(WriteError::Refused(PartnerRefusal::EmailTaken))
            }
            Err(other) => Err(WriteError::Refused(version_failure(other))),
        }
    }
    async fn backfill_partners(&self, partners: &[Partner]) -> Result<(), StoreError> {
        let mut items = Vec::with_capacity(partners.len() * 4);
        for p in partners {
            items.extend(Self::partner_items(p)?);
        }
        self.batch_put(items).await
    }
    async fn reindex_partner_names(&self, partners: &[Partner]) -> Result<(), StoreError> {
        let mut items = Vec::with_capacity(partners.len());
        for p in partners {
            let [_, _, _, by_name] = Self::partner_items(p)?;
            items.push(by_name);
        }
        self.batch_put(items).await
    }
    async fn reindex_all_partner_names(&self) -> Result<usize, ListError> {
        let query = Self::partner_list_query(&PartnerList::All);
        let mut page = PageRequest { limit: 100, cursor: None };
        let mut written = 0;
        loop {
            let partners: Page<Partner> = self.query_page(&query, &page).await?;
            self.reindex_partner_names(&partners.items).await?;
            written += partners.items.len();
            match partners.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return Ok(written),
            }
        }
    }
    async fn get_partner(&self, partner_id: &str) -> Result<Option<Partner>, StoreError> {
        match self.get(keys::partner_pk(partner_id), META).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }
    async fn partner_id_by_email(&self, email: &str) -> Result<Option<String>, StoreError> {
        match self.get(keys::email_pk(email), keys::LOOKUP).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item::<_, EmailLookup>(item)?.partner_id)),
            None => Ok(None),
        }
    }
    async fn query_page<T: DeserializeOwned>(&self, q: &IndexQuery, page: &PageRequest) -> Result<Page<T>, ListError> {
        let (pk_attr, sk_attr, attrs): (&str, &str, &[&str]) = match q.index {
            None => ("PK", "SK", &["PK", "SK"]),
            Some(GSI1) => ("GSI1PK", "GSI1SK", &["PK", "SK", "GSI1PK", "GSI1SK"]),
            Some(GSI2) => ("GSI2PK", "GSI2SK", &["PK", "SK", "GSI2PK", "GSI2SK"]),
            Some(_) => ("GSI3PK", "GSI3SK", &["PK", "SK", "GSI3PK", "GSI3SK"]),
        };
        let start = cursor_in(page.cursor.as_deref(), attrs, (pk_attr, &q.partition))?;
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.map(str::to_string))
            .limit(page.limit as i32)
            .scan_index_forward(!q.newest_first)
            // Base-table reads (a partner's own history) see the write just made;
            // GSIs only offer eventual consistency.
            .consistent_read(q.index.is_none())
            .set_exclusive_start_key(start)
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", s(q.partition.clone()));
        let condition = match &q.range {
            SortRange::All => "#pk = :pk".to_string(),
            SortRange::Prefix(prefix) => {
                query = query.expression_attribute_values(":prefix", s(prefix.clone()));
                "#pk = :pk AND begins_with(#sk, :prefix)".to_string()
            }
            SortRange::AtLeast(from) => {
                query = query.expression_attribute_values(":from", s(from.clone()));
                "#pk = :pk AND #sk >= :from".to_string()
            }
            SortRange::Between(from, to) => {
                query = query
                    .expression_attribute_values(":from", s(from.clone()))
                    .expression_attribute_values(":to", s(to.clone()));
                "#pk = :pk AND #sk BETWEEN :from AND :to".to_string()
            }
        };
        if !matches!(q.range, SortRange::All) {
            query = query.expression_attribute_names("#sk", sk_attr);
        }
        if !q.filters.is_empty() {
            let mut filter = Vec::new();
            for (i, (attr, value)) in q.filters.iter().enumerate() {
                query = query
                    .expression_attribute_names(format!("#f{i}"), *attr)
                    .expression_attribute_values(format!(":f{i}"), s(value.clone()));
                filter.push(format!("#f{i} = :f{i}"));
            }
            query = query.filter_expression(filter.join(" AND "));
        }
        let out = query.key_condition_expression(condition).send().await.map_err(|e| StoreError::sdk("Query", e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(serde_dynamo::from_item)
            .collect::<Result<Vec<T>, _>>()
            .map_err(StoreError::from)?;
        Ok(Page { items, next_cursor: cursor_out(out.last_evaluated_key.as_ref()) })
    }
    async fn partner_history(&self, partner_id: &str) -> Result<PartnerHistory, StoreError> {
        let mut history = PartnerHistory::default();
        let items = self.partition_items(&keys::partner_pk(partner_id)).await?;
        {
            for item in items {
                let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                if sk == META {
                    history.partner = Some(serde_dynamo::from_item(item)?);
                } else if sk.starts_with(keys::EVENT_PREFIX) {
                    history.transitions.push(serde_dynamo::from_item(item)?);
                } else if sk.starts_with(keys::NOTE_PREFIX) {
                    history.notes.push(serde_dynamo::from_item(item)?);
                } else if sk.starts_with(keys::INVOICE_PREFIX) {
                    history.invoices.push(serde_dynamo::from_item(item)?);
                } else if let Some(period) = sk.strip_prefix(keys::USAGE_PREFIX) {
                    history.usage.insert(period.to_string(), super::usage::counts_of(&item));
                }
            }
        }
        Ok(history)
    }
}

pub(crate) fn version_failure(failed: ConditionFailed) -> PartnerRefusal {
    match failed {
        ConditionFailed { index: 0, old_item: None } => PartnerRefusal::Missing,
        ConditionFailed { index: 0, old_item } => PartnerRefusal::Stale { current: stored_version(old_item.as_ref()) },
        ConditionFailed { .. } => PartnerRefusal::Stale { current: None },
    }
}

/// A day's operational counts of one tier, to be ADDed to `OPS / DAY#{date}#{tier}`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpsOf<'a> {
    pub day: &'a str,
    pub tier: &'a str,
    pub counts: crate::domain::alerts::OpsCounts,
}
