//! Campaign access patterns (keys and their purpose are in `keys`; docs/campaigns.md):
//! the campaigns, a send's claim with the partner's frequency state, daily email
//! count and personal promotion code in one transaction, attributed conversions,
//! in-app messages, marketing preferences and the day partitions of trigger signals.

use super::keys::{self, META};
use super::{build_err, n, s, Item, Store, StoreError, WriteError};
use crate::domain::audit::AuditEntry;
use crate::domain::campaign::{Campaign, CampaignCounts, Channel, FrequencyState, Skip, TriggerKind, VariantInsight};
use crate::domain::partner::Partner;
use crate::domain::promotion::Promotion;
use crate::domain::revenue::Movement;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A campaign's totals, its skips by reason, and its variants' counters.
pub type CounterRead = (CampaignCounts, BTreeMap<String, i64>, Vec<VariantInsight>);

/// A campaign write was refused: its stored version is not the one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleCampaign;

/// A trigger seen where it happened, for the daily job (`CAMPSIGNALS#{date}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSignal {
    pub trigger: TriggerKind,
    pub partner_id: String,
    /// What makes the occasion unique: the invoice id, `{metric}#{period}`, the
    /// offered tier and day.
    pub source: String,
    pub at: String,
    /// The upsell's offered tier (`upsell_not_taken`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// An in-app message (`PARTNER#{id} / MSG#…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InAppMessage {
    pub message_id: String,
    pub campaign_id: String,
    pub subject: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_to_action: Option<crate::domain::campaign::CallToAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promo_code: Option<String>,
    pub sent_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<String>,
}

/// A partner's marketing preferences (`PARTNER#{id} / PREFS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketingPreferences {
    pub marketing_emails: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl MarketingPreferences {
    /// Marketing email is on until the partner turns it off.
    pub fn default_on() -> Self {
        Self { marketing_emails: true, updated_at: None }
    }
}

/// What the daily job reads of one due (partner, occasion) before a send.
#[derive(Debug, Clone)]
pub struct RecipientRead {
    pub partner: Partner,
    pub prefs: MarketingPreferences,
    pub frequency: FrequencyState,
    pub occasion: String,
    /// The occasion's send, when one was claimed before.
    pub existing: Option<SendRecord>,
}

/// One send, as claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendRecord {
    pub campaign_id: String,
    pub partner_id: String,
    pub occasion: String,
    pub variant_id: String,
    pub channels: Vec<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promo_code: Option<String>,
    pub sent_on: String,
    pub claimed_at: String,
    /// `claimed` until the email went out, then `sent`.
    pub state: String,
    pub lease_until: String,
}

/// Everything one send's claim writes.
pub struct SendClaim<'a> {
    pub send: &'a SendRecord,
    /// The run's instant (attribution compares it with the conversion's).
    pub sent_at: &'a str,
    pub frequency: &'a FrequencyState,
    /// The cap of marketing emails a partner gets a day, when the send has email.
    pub daily_cap: Option<u32>,
    pub attribution_window_days: u32,
    pub message: Option<&'a InAppMessage>,
    /// The personal code's lookup (`bound_to` the partner), when the campaign offers one.
    pub code: Option<(&'a Promotion, &'a str)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Claimed,
    /// This occasion was claimed before: by a run still inside its lease
    /// (`None`), or one whose lease lapsed before its email went out, which
    /// this run may finish (`Some`, the claim as it stands).
    AlreadyClaimed(Option<Box<SendRecord>>),
    /// Another send changed the partner's frequency state since it was read.
    FrequencyRace,
    /// The partner's marketing emails today reached the cap.
    DailyCap,
    /// The generated code is someone else's: draw another.
    CodeTaken,
}

/// Campaigns, sends, attribution, messages and preferences.
pub trait CampaignStore {
    fn put_campaign(
        &self,
        c: &Campaign,
        expected_version: Option<u64>,
        audit: &AuditEntry,
    ) -> impl std::future::Future<Output = Result<(), WriteError<StaleCampaign>>> + Send;
    fn campaign(&self, id: &str) -> impl std::future::Future<Output = Result<Option<Campaign>, StoreError>> + Send;
    /// Every campaign: one Query of the `CAMPAIGNS` partition.
    fn campaigns(&self) -> impl std::future::Future<Output = Result<Vec<Campaign>, StoreError>> + Send;
    /// The campaign's totals, skips by reason and variants: one Query.
    fn campaign_counts(&self, id: &str) -> impl std::future::Future<Output = Result<CounterRead, StoreError>> + Send;
    /// For each due (partner, occasion): the partner's record, preferences and
    /// frequency state for the campaign, and the occasion's send if one was
    /// claimed: BatchGetItem (partners without a record are left out).
    fn recipients(
        &self,
        campaign_id: &str,
        due: &[(String, String)],
    ) -> impl std::future::Future<Output = Result<Vec<RecipientRead>, StoreError>> + Send;
    /// The send's claim, in one transaction: the claim (absent, or a lapsed
    /// lease), the frequency state (at the version read), the day's email count
    /// (under the cap), the partner's touch and in-app message, the personal code,
    /// and the campaign's and variant's counters.
    fn claim_send(
        &self,
        c: &SendClaim<'_>,
    ) -> impl std::future::Future<Output = Result<ClaimOutcome, StoreError>> + Send;
    /// Takes over a claim whose lease lapsed (conditional on that lease).
    fn renew_claim(
        &self,
        send: &SendRecord,
        lease_until: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// The claim's email went out.
    fn mark_send_done(&self, send: &SendRecord) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// Counts a skip by reason (not per occasion: a skip writes nothing else).
    fn count_skips(
        &self,
        campaign_id: &str,
        skips: &BTreeMap<Skip, i64>,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// The day's trigger signals: one Query of `CAMPSIGNALS#{date}`.
    fn campaign_signals(
        &self,
        date: &str,
    ) -> impl std::future::Future<Output = Result<Vec<CampaignSignal>, StoreError>> + Send;
    /// A signal outside another transaction (the upsell offer shown): an
    /// idempotent put.
    fn put_campaign_signal(
        &self,
        date: &str,
        signal: &CampaignSignal,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// The MRR movements of one day (`MOVEMENTS#{yyyy-mm}` by time range).
    fn movements_on(&self, date: &str) -> impl std::future::Future<Output = Result<Vec<Movement>, StoreError>> + Send;
    /// The partner's campaign sends since `from` (campaign, day, window, variant):
    /// one Query of its partition.
    fn touches(
        &self,
        partner_id: &str,
        from: &str,
    ) -> impl std::future::Future<Output = Result<Vec<Touch>, StoreError>> + Send;
    /// An attributed conversion, once per movement: the record and the counters
    /// in one transaction. `false`: already recorded.
    fn record_conversion(
        &self,
        touch: &Touch,
        movement: &Movement,
        redeemed: bool,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    /// The promotion the movement's transition redeemed, if any: one GetItem of
    /// its history record.
    fn conversion_promotion(
        &self,
        movement: &Movement,
    ) -> impl std::future::Future<Output = Result<Option<String>, StoreError>> + Send;
    fn messages(
        &self,
        partner_id: &str,
    ) -> impl std::future::Future<Output = Result<Vec<InAppMessage>, StoreError>> + Send;
    /// Marks a message read; `false` when the partner has no such message.
    fn mark_message_read(
        &self,
        partner_id: &str,
        message_id: &str,
        at: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
    fn marketing_preferences(
        &self,
        partner_id: &str,
    ) -> impl std::future::Future<Output = Result<MarketingPreferences, StoreError>> + Send;
    fn set_marketing_preferences(
        &self,
        partner_id: &str,
        prefs: &MarketingPreferences,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
}

/// A send to a partner, as attribution reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Touch {
    pub campaign_id: String,
    pub sent_on: String,
    /// The run's instant: a conversion earlier the same day is not this send's.
    #[serde(default)]
    pub sent_at: String,
    pub window_days: u32,
    pub variant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_id: Option<String>,
}

/// The message id of a send: stable, so a retried claim writes the same message,
/// and safe in a URL path.
pub fn message_id(send: &SendRecord) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}:{}:{}", send.campaign_id, send.partner_id, send.occasion).as_bytes());
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

impl Store {
    /// A signal's put, for another area's transaction (the invoice record, usage).
    /// `CAMPSIGNALS#{date} / {trigger}#{partnerId}#{source}`: one occasion's signal.
    fn campaign_signal_item(date: &str, signal: &CampaignSignal) -> Result<Item, StoreError> {
        Self::item(
            signal,
            &[
                ("PK", keys::campaign_signals_pk(date)),
                ("SK", keys::campaign_signal_sk(signal.trigger.as_str(), &signal.partner_id, &signal.source)),
            ],
        )
    }

    pub(crate) fn campaign_signal_put(
        &self,
        date: &str,
        signal: &CampaignSignal,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = Self::campaign_signal_item(date, signal)?;
        self.put(item, None)
    }

    /// `ADD` of counters to one of a campaign's counter items (STATS, VARIANT#…).
    fn campaign_add(
        &self,
        campaign_id: &str,
        sk: String,
        counters: &[(&str, i64)],
    ) -> Result<TransactWriteItem, StoreError> {
        let counters: Vec<(String, i64)> = counters.iter().map(|(k, v)| ((*k).to_string(), *v)).collect();
        self.add_update(keys::campaign_pk(campaign_id), sk, &[("campaignId", campaign_id.to_string())], &counters)
    }
}

impl Store {
    /// The campaign's write: new (`None`), or at the version it was read at.
    pub(crate) fn campaign_put(
        &self,
        c: &Campaign,
        expected_version: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = Self::item(c, &[("PK", keys::CAMPAIGNS_PARTITION.into()), ("SK", c.campaign_id.clone())])?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match expected_version {
            Some(v) => put.condition_expression("version = :v").expression_attribute_values(":v", n(v as i64)),
            None => put.condition_expression("attribute_not_exists(PK)"),
        };
        Ok(TransactWriteItem::builder().put(put.build().map_err(build_err("Put"))?).build())
    }
}

fn number(item: &Item, attr: &str) -> i64 {
    item.get(attr).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl CampaignStore for Store {
    async fn put_campaign(
        &self,
        c: &Campaign,
        expected_version: Option<u64>,
        audit: &AuditEntry,
    ) -> Result<(), WriteError<StaleCampaign>> {
        let items = vec![self.campaign_put(c, expected_version)?, self.audit_put(audit)?];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(WriteError::Refused(StaleCampaign)),
        }
    }

    async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        match self.get(keys::CAMPAIGNS_PARTITION.into(), id).await? {
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
            None => Ok(None),
        }
    }

    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk").expression_attribute_values(":pk", s(keys::CAMPAIGNS_PARTITION))
            })
            .await?;
        let mut out: Vec<Campaign> = items
            .into_iter()
            .map(|i| serde_dynamo::from_item(i).map_err(StoreError::from))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.campaign_id.cmp(&b.campaign_id)));
        Ok(out)
    }

    async fn campaign_counts(&self, id: &str) -> Result<CounterRead, StoreError> {
        // STATS and VARIANT#… sort after every CONV#, FREQ# and SEND# item, so one
        // Query from "STATS" reads only the counters.
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk AND SK >= :from")
                    .expression_attribute_values(":pk", s(keys::campaign_pk(id)))
                    .expression_attribute_values(":from", s(keys::CAMPAIGN_STATS))
            })
            .await?;
        let mut totals = CampaignCounts::default();
        let mut skipped = BTreeMap::new();
        let mut variants = Vec::new();
        for item in items {
            let sk = item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if sk == keys::CAMPAIGN_STATS {
                for (name, value) in &item {
                    if let Some(reason) = name.strip_prefix("skip_") {
                        skipped.insert(reason.to_string(), value.as_n().ok().and_then(|v| v.parse().ok()).unwrap_or(0));
                    }
                }
                totals = serde_dynamo::from_item(item)?;
            } else if let Some(variant_id) = sk.strip_prefix(keys::CAMPAIGN_VARIANT_PREFIX) {
                variants.push(VariantInsight::new(
                    variant_id,
                    number(&item, "sent"),
                    number(&item, "conversions"),
                    number(&item, "revenue"),
                ));
            }
        }
        Ok((totals, skipped, variants))
    }

    async fn recipients(&self, campaign_id: &str, due: &[(String, String)]) -> Result<Vec<RecipientRead>, StoreError> {
        let partner_ids: std::collections::BTreeSet<&String> = due.iter().map(|(p, _)| p).collect();
        let mut wanted = Vec::with_capacity(partner_ids.len() * 3 + due.len());
        for id in &partner_ids {
            wanted.push((keys::partner_pk(id), META.to_string()));
            wanted.push((keys::partner_pk(id), keys::PARTNER_PREFS.to_string()));
            wanted.push((keys::campaign_pk(campaign_id), keys::campaign_freq_sk(id)));
        }
        for (id, occasion) in due {
            wanted.push((keys::campaign_pk(campaign_id), keys::campaign_send_sk(id, occasion)));
        }
        let found = self.batch_get(&wanted).await?;
        let mut out = Vec::new();
        for (id, occasion) in due {
            let Some(item) = found.get(&(keys::partner_pk(id), META.to_string())) else { continue };
            let partner: Partner = serde_dynamo::from_item(item.clone())?;
            let prefs = match found.get(&(keys::partner_pk(id), keys::PARTNER_PREFS.to_string())) {
                Some(item) => serde_dynamo::from_item(item.clone())?,
                None => MarketingPreferences::default_on(),
            };
            let frequency = match found.get(&(keys::campaign_pk(campaign_id), keys::campaign_freq_sk(id))) {
                Some(item) => serde_dynamo::from_item(item.clone())?,
                None => FrequencyState::default(),
            };
            let existing = match found.get(&(keys::campaign_pk(campaign_id), keys::campaign_send_sk(id, occasion))) {
                Some(item) => Some(serde_dynamo::from_item(item.clone())?),
                None => None,
            };
            out.push(RecipientRead { partner, prefs, frequency, occasion: occasion.clone(), existing });
        }
        Ok(out)
    }

    async fn claim_send(&self, c: &SendClaim<'_>) -> Result<ClaimOutcome, StoreError> {
        let send = c.send;
        let campaign_pk = keys::campaign_pk(&send.campaign_id);
        let claim = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::item(
                send,
                &[("PK", campaign_pk.clone()), ("SK", keys::campaign_send_sk(&send.partner_id, &send.occasion))],
            )?))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_err("Put"))?;
        let mut items = vec![TransactWriteItem::builder().put(claim).build()];
        let frequency_item =
            Self::item(c.frequency, &[("PK", campaign_pk.clone()), ("SK", keys::campaign_freq_sk(&send.partner_id))])?;
        let frequency = Put::builder().table_name(&self.table).set_item(Some(frequency_item));
        let frequency = if c.frequency.version <= 1 {
            frequency.condition_expression("attribute_not_exists(PK)")
        } else {
            frequency
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(c.frequency.version as i64 - 1))
        };
        items.push(TransactWriteItem::builder().put(frequency.build().map_err(build_err("Put"))?).build());
        let cap_index = items.len();
        if let Some(cap) = c.daily_cap {
            let update = Update::builder()
                .table_name(&self.table)
                .key("PK", s(keys::partner_pk(&send.partner_id)))
                .key("SK", s(keys::mail_cap_sk(&send.sent_on)))
                .update_expression("ADD sent :one")
                .condition_expression("attribute_not_exists(sent) OR sent < :cap")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":cap", n(i64::from(cap)))
                .build()
                .map_err(build_err("Update"))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let code_index = items.len();
        if let Some((promotion, code)) = c.code {
            items.push(self.personal_code_put(promotion, code, &send.partner_id)?);
        }
        let touch = Touch {
            campaign_id: send.campaign_id.clone(),
            sent_on: send.sent_on.clone(),
            sent_at: c.sent_at.to_string(),
            window_days: c.attribution_window_days,
            variant_id: send.variant_id.clone(),
            promotion_id: c.code.map(|(p, _)| p.promotion_id.clone()),
        };
        items.push(self.put(
            Self::item(
                &touch,
                &[
                    ("PK", keys::partner_pk(&send.partner_id)),
                    ("SK", keys::campaign_touch_sk(&send.sent_on, &send.campaign_id)),
                ],
            )?,
            None,
        )?);
        if let Some(m) = c.message {
            items.push(self.put(
                Self::item(
                    m,
                    &[("PK", keys::partner_pk(&send.partner_id)), ("SK", keys::message_sk(&m.sent_at, &m.message_id))],
                )?,
                None,
            )?);
        }
        let email = i64::from(send.channels.contains(&Channel::Email));
        let in_app = i64::from(send.channels.contains(&Channel::InApp));
        items.push(self.campaign_add(
            &send.campaign_id,
            keys::CAMPAIGN_STATS.into(),
            &[("sent", 1), ("emails", email), ("inApp", in_app)],
        )?);
        items.push(self.campaign_add(
            &send.campaign_id,
            keys::campaign_variant_sk(&send.variant_id),
            &[("sent", 1)],
        )?);
        match self.transact(items).await? {
            Ok(()) => Ok(ClaimOutcome::Claimed),
            Err(failed) if failed.index == 0 => {
                let existing: Option<SendRecord> = failed.old_item.map(serde_dynamo::from_item).transpose()?;
                let lapsed =
                    existing.filter(|e| e.state == "claimed" && e.lease_until.as_str() < send.claimed_at.as_str());
                Ok(ClaimOutcome::AlreadyClaimed(lapsed.map(Box::new)))
            }
            Err(failed) if failed.index == 1 => Ok(ClaimOutcome::FrequencyRace),
            Err(failed) if c.daily_cap.is_some() && failed.index == cap_index => Ok(ClaimOutcome::DailyCap),
            Err(failed) if c.code.is_some() && failed.index == code_index => Ok(ClaimOutcome::CodeTaken),
            Err(_) => Ok(ClaimOutcome::FrequencyRace),
        }
    }

    async fn renew_claim(&self, send: &SendRecord, lease_until: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::campaign_pk(&send.campaign_id)))
            .key("SK", s(keys::campaign_send_sk(&send.partner_id, &send.occasion)))
            .update_expression("SET leaseUntil = :new")
            .condition_expression("#state = :claimed AND leaseUntil = :old")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s("claimed"))
            .expression_attribute_values(":old", s(&send.lease_until))
            .expression_attribute_values(":new", s(lease_until))
            .send()
            .await;
        super::conditional(result.map(|_| ()), "UpdateItem")
    }

    async fn mark_send_done(&self, send: &SendRecord) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::campaign_pk(&send.campaign_id)))
            .key("SK", s(keys::campaign_send_sk(&send.partner_id, &send.occasion)))
            .update_expression("SET #state = :sent")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", s("sent"))
            .send()
            .await
            .map_err(|e| StoreError::sdk("UpdateItem", e))?;
        Ok(())
    }

    async fn count_skips(&self, campaign_id: &str, skips: &BTreeMap<Skip, i64>) -> Result<(), StoreError> {
        if skips.values().all(|v| *v == 0) {
            return Ok(());
        }
        let mut expression = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::campaign_pk(campaign_id)))
            .key("SK", s(keys::CAMPAIGN_STATS));
        for (i, (skip, count)) in skips.iter().filter(|(_, c)| **c > 0).enumerate() {
            expression.push(format!("#k{i} :k{i}"));
            update = update
                .expression_attribute_names(format!("#k{i}"), format!("skip_{}", skip.as_str()))
                .expression_attribute_values(format!(":k{i}"), n(*count));
        }
        expression.push("skipped :all".to_string());
        update = update.expression_attribute_values(":all", n(skips.values().sum()));
        update
            .update_expression(format!("ADD {}", expression.join(", ")))
            .send()
            .await
            .map_err(|e| StoreError::sdk("UpdateItem", e))?;
        Ok(())
    }

    async fn campaign_signals(&self, date: &str) -> Result<Vec<CampaignSignal>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(keys::campaign_signals_pk(date)))
            })
            .await?;
        items.into_iter().map(|i| serde_dynamo::from_item(i).map_err(StoreError::from)).collect()
    }

    async fn put_campaign_signal(&self, date: &str, signal: &CampaignSignal) -> Result<(), StoreError> {
        let item = Self::campaign_signal_item(date, signal)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::sdk("PutItem", e))?;
        Ok(())
    }

    async fn movements_on(&self, date: &str) -> Result<Vec<Movement>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(keys::movements_pk(date)))
                    .expression_attribute_values(":from", s(date))
                    .expression_attribute_values(":to", s(format!("{date}~")))
            })
            .await?;
        items.into_iter().map(|i| serde_dynamo::from_item(i).map_err(StoreError::from)).collect()
    }

    async fn touches(&self, partner_id: &str, from: &str) -> Result<Vec<Touch>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(keys::partner_pk(partner_id)))
                    .expression_attribute_values(":from", s(keys::campaign_touch_sk(from, "")))
                    .expression_attribute_values(":to", s(format!("{}~", keys::CAMPAIGN_TOUCH_PREFIX)))
            })
            .await?;
        items.into_iter().map(|i| serde_dynamo::from_item(i).map_err(StoreError::from)).collect()
    }

    async fn record_conversion(&self, touch: &Touch, movement: &Movement, redeemed: bool) -> Result<bool, StoreError> {
        let campaign_pk = keys::campaign_pk(&touch.campaign_id);
        let record: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = HashMap::from([
            ("PK".to_string(), s(campaign_pk)),
            ("SK".to_string(), s(keys::campaign_conversion_sk(&movement.movement_id))),
            ("partnerId".to_string(), s(&movement.partner_id)),
            ("movementId".to_string(), s(&movement.movement_id)),
            ("kind".to_string(), s(movement.kind.as_str())),
            ("amount".to_string(), n(movement.amount)),
            ("at".to_string(), s(&movement.at)),
            ("variantId".to_string(), s(&touch.variant_id)),
            ("redeemed".to_string(), aws_sdk_dynamodb::types::AttributeValue::Bool(redeemed)),
        ]);
        let revenue = movement.amount.max(0);
        let items = vec![
            self.put(record, Some("attribute_not_exists(PK)"))?,
            self.campaign_add(
                &touch.campaign_id,
                keys::CAMPAIGN_STATS.into(),
                &[("conversions", 1), ("redemptions", i64::from(redeemed)), ("revenue", revenue)],
            )?,
            self.campaign_add(
                &touch.campaign_id,
                keys::campaign_variant_sk(&touch.variant_id),
                &[("conversions", 1), ("revenue", revenue)],
            )?,
        ];
        Ok(self.transact(items).await?.is_ok())
    }

    async fn conversion_promotion(&self, movement: &Movement) -> Result<Option<String>, StoreError> {
        let record = self
            .get(keys::partner_pk(&movement.partner_id), &keys::event_sk(&movement.at, &movement.transition_id))
            .await?;
        Ok(record.and_then(|r| {
            let t: crate::domain::subscription::TierTransition = serde_dynamo::from_item(r).ok()?;
            t.trigger.promotion_id
        }))
    }

    async fn messages(&self, partner_id: &str) -> Result<Vec<InAppMessage>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(keys::partner_pk(partner_id)))
            .expression_attribute_values(":prefix", s(keys::MESSAGE_PREFIX))
            .scan_index_forward(false)
            .limit(50)
            .send()
            .await
            .map_err(|e| StoreError::sdk("Query", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| serde_dynamo::from_item(i).map_err(StoreError::from))
            .collect()
    }

    async fn mark_message_read(&self, partner_id: &str, message_id: &str, at: &str) -> Result<bool, StoreError> {
        // The key needs the message's send time, so the partner's messages are
        // read first (one Query, at most 50).
        let Some(found) = self.messages(partner_id).await?.into_iter().find(|m| m.message_id == message_id) else {
            return Ok(false);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(keys::partner_pk(partner_id)))
            .key("SK", s(keys::message_sk(&found.sent_at, &found.message_id)))
            .update_expression("SET readAt = if_not_exists(readAt, :at)")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":at", s(at))
            .send()
            .await;
        super::conditional(result.map(|_| ()), "UpdateItem")
    }

    async fn marketing_preferences(&self, partner_id: &str) -> Result<MarketingPreferences, StoreError> {
        match self.get(keys::partner_pk(partner_id), keys::PARTNER_PREFS).await? {
            Some(item) => Ok(serde_dynamo::from_item(item)?),
            None => Ok(MarketingPreferences::default_on()),
        }
    }

    async fn set_marketing_preferences(
        &self,
        partner_id: &str,
        prefs: &MarketingPreferences,
    ) -> Result<(), StoreError> {
        let item = Self::item(prefs, &[("PK", keys::partner_pk(partner_id)), ("SK", keys::PARTNER_PREFS.to_string())])?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::sdk("PutItem", e))?;
        Ok(())
    }
}
