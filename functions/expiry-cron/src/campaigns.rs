//! The daily campaign step (docs/campaigns.md): each running campaign's trigger
//! names partners; each one the audience, compliance and the frequency rules admit
//! gets the campaign's email and/or in-app message, once per occasion; then the
//! day's conversions are attributed to the latest send inside its window.
//!
//! Reads, never a Scan: the campaigns (one Query), and per trigger the index or
//! day partition that holds what is due — the `TRIALEND#` index for trials ending,
//! the `CHURNRISK` index from the level's floor, the signal partitions of the last
//! days (failed payments, usage near a limit, upsell offers), the MRR ledger's
//! days (downgrades, and conversions for attribution), and for a broadcast its
//! audience's tiers. Then one BatchGetItem per 25 due occasions. So the cost follows
//! what is due, not the number of partners.
//!
//! Exactly once: each (campaign, partner, occasion) is claimed in one transaction
//! with the partner's frequency state (at the version read) and the day's email
//! count (under the cap), before anything goes out. A rerun, a concurrent run or a
//! trigger seen twice finds the claim and sends nothing; a run that crashed between
//! its claim and the email leaves a lease a later run takes over.

use crate::{DailyStep, RunDate, StepFuture};
use chrono::{Duration, NaiveDate};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tierdesk::app::experiment_tracking::{self, Reporter};
use tierdesk::app::Failed;
use tierdesk::clock::rfc3339;
use tierdesk::domain::campaign::{
    self, admit_frequency, channels_for, occasion, render, runs_on, variant_for, Campaign, Channel, Recipient, Skip,
    TokenValues, TriggerKind,
};
use tierdesk::domain::experiment::{Experiment, ExperimentStatus, ExperimentType, Track, TrackMetric};
use tierdesk::domain::partner::Partner;
use tierdesk::domain::promotion::{self, Promotion};
use tierdesk::domain::revenue::{Movement, MovementKind};
use tierdesk::domain::tier::Tier;
use tierdesk::mail::campaign::campaign_email;
use tierdesk::mail::{Mailer, SendOutcome};
use tierdesk::store::{
    message_id, CampaignStore, ClaimOutcome, ExperimentStore, InAppMessage, PageRequest, PartnerList, PartnerStore,
    PromotionStore, RecipientRead, ReminderStore, SendClaim, SendRecord, SignalList, Store, StoreError, TierStore,
};

/// Days of signals and ledger the step reads back over, so a missed run's
/// triggers still fire (the claims keep a second look from sending twice).
pub const LOOKBACK_DAYS: i64 = 3;
/// Days of sends attribution looks back over (the longest window allowed).
pub const ATTRIBUTION_LOOKBACK_DAYS: i64 = 90;
/// Due occasions per BatchGetItem (at most 4 keys each, 100 keys a call).
const RECIPIENTS_PER_READ: usize = 25;
/// Attempts at a send whose frequency state another send changed meanwhile.
const SEND_ATTEMPTS: usize = 3;

pub struct Campaigns {
    pub mailer: Mailer,
    pub clock: Arc<dyn tierdesk::Clock>,
    pub lease_secs: u32,
    /// Marketing emails a partner may get a day, from every campaign together.
    pub daily_cap: u32,
    /// The partner portal (links, and where marketing email is turned off).
    pub portal_url: String,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Partners a trigger names on this run, each with the occasion's source.
type Due = Vec<(String, String)>;

/// One campaign's run: what every send of it needs.
struct CampaignRun<'a> {
    c: &'a Campaign,
    /// The offer's promotion, when the campaign has one it can still give out.
    offer: Option<&'a Promotion>,
    /// The campaign experiment measuring its variants, while it runs (active or
    /// paused; sends are exposures only while it is active).
    experiment: Option<&'a Experiment>,
    tiers: &'a [Tier],
    run: &'a RunDate,
}

/// What became of one partner's occasion.
enum Sent {
    Now,
    /// Claimed by an earlier run (or a concurrent one): nothing more to do.
    Before,
    Skipped(Skip),
}

impl Campaigns {
    async fn due(&self, store: &Store, c: &Campaign, run: &RunDate) -> Result<Due, String> {
        let days: Vec<NaiveDate> = (1..=LOOKBACK_DAYS).map(|n| run.date - Duration::days(n)).collect();
        let t = &c.trigger;
        let mut due = Due::new();
        match t.kind {
            TriggerKind::TrialEnding => {
                // Trials whose last day is `daysBefore` away, or was within the
                // lookback's days before that (a missed run, an email to retry).
                let target = run.date + Duration::days(i64::from(t.days_before.unwrap_or(1)));
                let earliest = (target - Duration::days(LOOKBACK_DAYS - 1)).max(run.date + Duration::days(1));
                let months = tierdesk::domain::renewal::month_ranges(earliest, target);
                let window = store.trial_end_window(&months).await.map_err(err)?;
                due.extend(window.partners.into_iter().filter_map(|p| {
                    let last = p.trial_end_date.filter(|d| *d >= earliest && *d <= target)?;
                    Some((p.partner_id, ymd(last)))
                }));
            }
            TriggerKind::UsageNearLimit | TriggerKind::PaymentFailed => {
                for d in &days {
                    for s in store.campaign_signals(&ymd(*d)).await.map_err(err)? {
                        if s.trigger == t.kind {
                            due.push((s.partner_id, s.source));
                        }
                    }
                }
            }
            TriggerKind::UpsellNotTaken => {
                // Offers shown `afterDays` ago, or up to the lookback's days before
                // that (a missed or postponed run); "not taken" is checked on the
                // partner.
                let shown = run.date - Duration::days(i64::from(t.after_days.unwrap_or(3)));
                for n in 0..LOOKBACK_DAYS {
                    for s in store.campaign_signals(&ymd(shown - Duration::days(n))).await.map_err(err)? {
                        if s.trigger == TriggerKind::UpsellNotTaken {
                            due.push((s.partner_id, s.source));
                        }
                    }
                }
            }
            TriggerKind::Downgrade => {
                for d in &days {
                    for m in store.movements_on(&ymd(*d)).await.map_err(err)? {
                        if matches!(m.kind, MovementKind::Contraction | MovementKind::Churn) {
                            due.push((m.partner_id, m.movement_id));
                        }
                    }
                }
            }
            TriggerKind::ChurnRisk => {
                let level = t.level.unwrap_or(campaign::RiskLevel::High);
                let query = Store::signal_list_query(SignalList::ChurnRisk { min_probability: level.floor() });
                let mut page = PageRequest { limit: 100, cursor: None };
                // One occasion a month while the partner stays at the level;
                // cooldown and frequency limit it further.
                let month = run.date.format("%Y-%m").to_string();
                loop {
                    let found: tierdesk::store::Page<Partner> = store.query_page(&query, &page).await.map_err(err)?;
                    due.extend(
                        found
                            .items
                            .into_iter()
                            .map(|p| (p.partner_id, format!("{}#{month}", tierdesk::domain::wire::wire_name(&level)))),
                    );
                    match found.next_cursor {
                        Some(cursor) => page.cursor = Some(cursor),
                        None => break,
                    }
                }
            }
            TriggerKind::Scheduled => {
                let Some(on) = t.send_on else { return Ok(due) };
                // The broadcast's day, or a missed run's within the lookback.
                if on > run.date || on < run.date - Duration::days(LOOKBACK_DAYS) {
                    return Ok(due);
                }
                let lists: Vec<PartnerList> = if c.audience.tiers.is_empty() {
                    vec![PartnerList::All]
                } else {
                    c.audience.tiers.iter().map(|t| PartnerList::Tier(t.clone())).collect()
                };
                for list in lists {
                    let query = Store::partner_list_query(&list);
                    let mut page = PageRequest { limit: 100, cursor: None };
                    loop {
                        let found: tierdesk::store::Page<Partner> =
                            store.query_page(&query, &page).await.map_err(err)?;
                        due.extend(found.items.into_iter().map(|p| (p.partner_id, ymd(on))));
                        match found.next_cursor {
                            Some(cursor) => page.cursor = Some(cursor),
                            None => break,
                        }
                    }
                }
            }
        }
        // One occasion per partner and source, in a stable order.
        let unique: BTreeSet<(String, String)> = due.into_iter().collect();
        Ok(unique.into_iter().collect())
    }

    /// The offer's promotion, when it can still be given out: active, inside its
    /// dates, code-based and once per customer (so a personal code is single-use).
    async fn offer(&self, store: &Store, c: &Campaign, today: NaiveDate) -> Result<Option<Promotion>, String> {
        let Some(offer) = &c.offer else { return Ok(None) };
        let p = store.get_promotion(&offer.promotion_id).await.map_err(err)?;
        Ok(p.filter(|p| campaign::usable_offer(p, today)))
    }

    fn recipient(&self, read: &RecipientRead, tiers: &[Tier]) -> Recipient {
        let p = &read.partner;
        let tier = tiers.iter().find(|t| t.tier_id == p.engagement_tier);
        let next = p
            .upsell
            .recommended_tier
            .clone()
            .or_else(|| tier.and_then(|t| t.upsell_targets.first().cloned()))
            .and_then(|id| tiers.iter().find(|t| t.tier_id == id))
            .map(|t| t.name.clone());
        Recipient {
            partner_id: p.partner_id.clone(),
            company_name: p.company_name.clone(),
            email: Some(p.primary_email.clone()).filter(|e| !e.is_empty()),
            tier: p.engagement_tier.clone(),
            tier_name: tier.map_or_else(|| p.engagement_tier.clone(), |t| t.name.clone()),
            segment: tier.map(|t| t.segment.clone()).filter(|s| !s.is_empty()),
            next_tier_name: next,
            churn_risk: p.churn_risk.probability,
            upsell_score: p.upsell.score,
            trial_end_date: p.trial_end_date,
            unsubscribed: !read.prefs.marketing_emails,
            erased: p.erasure.is_some(),
        }
    }

    /// One partner's send, from its claim to its email.
    async fn send_one(
        &self,
        store: &Store,
        ctx: &CampaignRun<'_>,
        mut read: RecipientRead,
        source: &str,
    ) -> Result<Sent, String> {
        let CampaignRun { c, offer, tiers, run, .. } = *ctx;
        let occasion = read.occasion.clone();
        for _ in 0..SEND_ATTEMPTS {
            let r = self.recipient(&read, tiers);
            let now = self.clock.now();
            // Claimed before: done, or (a run stopped between its claim and its
            // email, and the lease lapsed) this run finishes it. The occasion's
            // caps were counted with the claim, so they are not asked again.
            if let Some(existing) = read.existing.take() {
                if existing.state != "claimed" || existing.lease_until.as_str() >= rfc3339(now).as_str() {
                    return Ok(Sent::Before);
                }
                let lease = rfc3339(now + Duration::seconds(i64::from(self.lease_secs)));
                if !store.renew_claim(&existing, &lease).await.map_err(err)? {
                    return Ok(Sent::Before);
                }
                return self.deliver(store, ctx, &r, existing).await;
            }
            if r.erased {
                return Ok(Sent::Skipped(Skip::Erased));
            }
            if c.trigger.kind == TriggerKind::UpsellNotTaken
                && source.split('#').next().is_some_and(|offered| offered == r.tier)
            {
                // Taken: the partner is on the offered tier now.
                return Ok(Sent::Skipped(Skip::NotInAudience));
            }
            let channels = match channels_for(c, &r) {
                Ok(ch) => ch,
                Err(skip) => return Ok(Sent::Skipped(skip)),
            };
            let frequency = match admit_frequency(c, &read.frequency, run.date) {
                Ok(f) => f,
                Err(skip) => return Ok(Sent::Skipped(skip)),
            };
            let variant = variant_for(c, &r.partner_id);
            let code = offer.map(|_| personal_code());
            let send = SendRecord {
                campaign_id: c.campaign_id.clone(),
                partner_id: r.partner_id.clone(),
                occasion: occasion.clone(),
                variant_id: variant.variant_id.clone(),
                channels: channels.clone(),
                promo_code: code.clone(),
                sent_on: ymd(run.date),
                claimed_at: rfc3339(now),
                state: "claimed".into(),
                lease_until: rfc3339(now + Duration::seconds(i64::from(self.lease_secs))),
            };
            let values = self.tokens(&r, offer, code.as_deref());
            let subject = render(&variant.subject, &values);
            let body = render(&variant.body, &values);
            let message = channels.contains(&Channel::InApp).then(|| InAppMessage {
                message_id: message_id(&send),
                campaign_id: c.campaign_id.clone(),
                subject: subject.clone(),
                body: body.clone(),
                call_to_action: c.content.call_to_action.clone(),
                promo_code: code.clone(),
                sent_at: run.at.clone(),
                read_at: None,
            });
            let claim = SendClaim {
                send: &send,
                sent_at: &run.at,
                frequency: &frequency,
                daily_cap: channels.contains(&Channel::Email).then_some(self.daily_cap),
                attribution_window_days: c.attribution_window_days,
                message: message.as_ref(),
                code: offer.zip(code.as_deref()),
            };
            let to_send = match store.claim_send(&claim).await.map_err(err)? {
                ClaimOutcome::Claimed => send,
                ClaimOutcome::AlreadyClaimed(None) => return Ok(Sent::Before),
                ClaimOutcome::AlreadyClaimed(Some(lapsed)) => {
                    // Claimed since the read, by a run that stopped before its email.
                    let lease = rfc3339(now + Duration::seconds(i64::from(self.lease_secs)));
                    if !store.renew_claim(&lapsed, &lease).await.map_err(err)? {
                        return Ok(Sent::Before);
                    }
                    *lapsed
                }
                ClaimOutcome::DailyCap => return Ok(Sent::Skipped(Skip::DailyCap)),
                ClaimOutcome::CodeTaken | ClaimOutcome::FrequencyRace => {
                    // Read the partner's state again and plan the send afresh.
                    let due = [(r.partner_id.clone(), occasion.clone())];
                    match store.recipients(&c.campaign_id, &due).await.map_err(err)?.pop() {
                        Some(fresh) => read = fresh,
                        None => return Ok(Sent::Before),
                    }
                    continue;
                }
            };
            return self.deliver(store, ctx, &r, to_send).await;
        }
        Err(format!("campaign {}: the partner's state kept changing", c.campaign_id))
    }

    /// The email of a claimed send (the in-app message was written with the
    /// claim), then the send marked done. Whether email may go is asked again
    /// here: a claim taken over days later must not email a partner who turned
    /// marketing email off, or was erased, in between.
    async fn deliver(
        &self,
        store: &Store,
        ctx: &CampaignRun<'_>,
        r: &Recipient,
        send: SendRecord,
    ) -> Result<Sent, String> {
        let CampaignRun { c, offer, run, .. } = *ctx;
        let email_allowed = channels_for(c, r).is_ok_and(|ch| ch.contains(&Channel::Email));
        let shown =
            send.channels.contains(&Channel::InApp) || (send.channels.contains(&Channel::Email) && email_allowed);
        if shown {
            self.expose(store, ctx, &send).await?;
        }
        if send.channels.contains(&Channel::Email) && email_allowed {
            let values = self.tokens(r, offer, send.promo_code.as_deref());
            let Some(variant) = c.content.variants.iter().find(|v| v.variant_id == send.variant_id) else {
                // Edited away while the claim waited: nothing left to send.
                tracing::warn!(campaign = %c.campaign_id, variant = %send.variant_id, "claimed variant gone; not sent");
                store.mark_send_done(&send).await.map_err(err)?;
                return Ok(Sent::Before);
            };
            let email = campaign_email(
                &render(&variant.subject, &values),
                &render(&variant.body, &values),
                c.content.call_to_action.as_ref(),
                &r.company_name,
                &self.portal_url,
            );
            let to = r.email.clone().unwrap_or_default();
            match self.mailer.deliver("campaign", &to, &email, run.date, true).await {
                Ok(SendOutcome::Sent { .. }) => {}
                // The address's daily cap over all email is full: the claim stays,
                // and a run after its lease (within the lookback) sends it.
                Ok(SendOutcome::Capped) => return Ok(Sent::Skipped(Skip::DailyCap)),
                // The claim stays; its lease lapses and a later run sends it.
                Err(e) => return Err(format!("campaign {} email: {e}", c.campaign_id)),
            }
        }
        store.mark_send_done(&send).await.map_err(err)?;
        Ok(Sent::Now)
    }

    /// A send is an exposure of the campaign experiment running on its
    /// variants: the partner becomes a participant in the variant sent, once
    /// (a retaken claim or a later send finds the assignment). Recorded before
    /// the email, so a send marked done was always counted.
    async fn expose(&self, store: &Store, ctx: &CampaignRun<'_>, send: &SendRecord) -> Result<(), String> {
        let Some(exp) = ctx.experiment.filter(|e| e.status == ExperimentStatus::Active) else { return Ok(()) };
        if exp.variant(&send.variant_id).is_none() {
            return Ok(());
        }
        // The run's instant, the clock the sends' touches and the conversions
        // they are held against are on.
        let at = &ctx.run.at;
        for _ in 0..SEND_ATTEMPTS {
            match store.assign(exp, &send.partner_id, &send.variant_id, at).await {
                // Assigned now or before; or the experiment stopped being active
                // since the step read it, and this send is not an exposure.
                Ok(_) => return Ok(()),
                // The variant's counter shard was busy with another exposure.
                Err(StoreError::TransactionConflict) => experiment_tracking::backoff().await,
                Err(e) => return Err(format!("campaign {} exposure: {e}", ctx.c.campaign_id)),
            }
        }
        Err(format!("campaign {}: the experiment's counters stayed busy", ctx.c.campaign_id))
    }

    fn tokens(&self, r: &Recipient, offer: Option<&Promotion>, code: Option<&str>) -> TokenValues {
        TokenValues {
            company_name: r.company_name.clone(),
            tier_name: r.tier_name.clone(),
            next_tier_name: r.next_tier_name.clone().unwrap_or_default(),
            promo_code: code.unwrap_or_default().to_string(),
            offer_end_date: offer.map(|p| ymd(p.end_date)).unwrap_or_default(),
            trial_end_date: r.trial_end_date.map(ymd).unwrap_or_default(),
            portal_url: self.portal_url.clone(),
        }
    }

    async fn run_campaign(
        &self,
        store: &Store,
        c: &Campaign,
        experiment: Option<&Experiment>,
        tiers: &[Tier],
        run: &RunDate,
    ) -> Result<u64, String> {
        let due = self.due(store, c, run).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let offer = self.offer(store, c, run.date).await?;
        if c.offer.is_some() && offer.is_none() {
            // The promotion ended or was withdrawn: a message promising a code
            // that would not work is not sent.
            tracing::warn!(campaign = %c.campaign_id, "offer's promotion not usable; campaign sends nothing");
            return Ok(0);
        }
        let ctx = CampaignRun { c, offer: offer.as_ref(), experiment, tiers, run };
        let mut sent = 0;
        let mut skips: BTreeMap<Skip, i64> = BTreeMap::new();
        let mut failure = None;
        for chunk in due.chunks(RECIPIENTS_PER_READ) {
            let occasions: Vec<(String, String)> =
                chunk.iter().map(|(p, source)| (p.clone(), occasion(c.trigger.kind, source))).collect();
            let reads = store.recipients(&c.campaign_id, &occasions).await.map_err(err)?;
            for ((partner_id, source), (_, occ)) in chunk.iter().zip(&occasions) {
                let Some(read) =
                    reads.iter().find(|r| &r.partner.partner_id == partner_id && &r.occasion == occ).cloned()
                else {
                    continue;
                };
                match self.send_one(store, &ctx, read, source).await {
                    Ok(Sent::Now) => sent += 1,
                    Ok(Sent::Before) => {}
                    Ok(Sent::Skipped(skip)) => *skips.entry(skip).or_default() += 1,
                    Err(e) => failure = Some(e),
                }
            }
        }
        store.count_skips(&c.campaign_id, &skips).await.map_err(err)?;
        match failure {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }

    /// The last days' conversions, each attributed once to the partner's latest
    /// send inside its campaign's window.
    async fn attribute(&self, store: &Store, run: &RunDate, experiments: &Experiments) -> Result<u64, String> {
        let mut attributed = 0;
        let mut failure = None;
        for n in 1..=LOOKBACK_DAYS {
            let day = run.date - Duration::days(n);
            for m in store.movements_on(&ymd(day)).await.map_err(err)? {
                if !campaign::is_conversion(m.kind) {
                    continue;
                }
                let from = ymd(day - Duration::days(ATTRIBUTION_LOOKBACK_DAYS));
                let mut touches = store.touches(&m.partner_id, &from).await.map_err(err)?;
                // Only sends made before the conversion (same day: by the instant).
                touches.retain(|t| t.sent_at.is_empty() || t.sent_at.as_str() <= m.at.as_str());
                let sends: Vec<(String, NaiveDate, u32)> = touches
                    .iter()
                    .filter_map(|t| {
                        let on = NaiveDate::parse_from_str(&t.sent_on, "%Y-%m-%d").ok()?;
                        Some((t.campaign_id.clone(), on, t.window_days))
                    })
                    .collect();
                let Some((campaign_id, sent_on, _)) = campaign::attribute(&sends, day) else { continue };
                let Some(touch) = touches.iter().find(|t| &t.campaign_id == campaign_id && t.sent_on == ymd(*sent_on))
                else {
                    continue;
                };
                let redeemed = match &touch.promotion_id {
                    Some(offered) => store.conversion_promotion(&m).await.map_err(err)?.as_ref() == Some(offered),
                    None => false,
                };
                if store.record_conversion(touch, &m, redeemed).await.map_err(err)? {
                    attributed += 1;
                }
                // Asked on every run that sees the conversion, not only the one
                // that recorded it: counting is idempotent, so a run stopped in
                // between is finished by the next.
                if let Some(exp) = experiments.get(&touch.campaign_id) {
                    // One experiment's trouble does not stop the others' attribution.
                    if let Err(e) = self.count_conversion(store, exp, &m).await {
                        failure = Some(e);
                    }
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(attributed),
        }
    }
}

/// The campaign experiments running (active or paused), by campaign.
type Experiments = BTreeMap<String, Experiment>;

impl Campaigns {
    async fn experiments(&self, store: &Store, campaigns: &[Campaign]) -> Result<Experiments, String> {
        let mut out = Experiments::new();
        for c in campaigns {
            let Some(id) = &c.experiment_id else { continue };
            if let Some(exp) = store.get_experiment(id).await.map_err(err)? {
                if exp.experiment_type == ExperimentType::Campaign && exp.status.holds_tier() {
                    out.insert(c.campaign_id.clone(), exp);
                }
            }
        }
        Ok(out)
    }

    /// An attributed conversion, as the campaign experiment's participant's
    /// conversion and its MRR gain as their revenue (the movement is the event,
    /// so each counts once).
    async fn count_conversion(&self, store: &Store, exp: &Experiment, m: &Movement) -> Result<(), String> {
        let conversion =
            Track { user_id: m.partner_id.clone(), metric: TrackMetric::Conversion, value: None, event_id: None };
        let mut events = vec![conversion];
        if m.amount > 0 {
            events.push(Track {
                user_id: m.partner_id.clone(),
                metric: TrackMetric::Revenue,
                value: Some(m.amount),
                event_id: Some(m.movement_id.clone()),
            });
        }
        for ask in &events {
            let reporter = Reporter::CampaignAttribution { converted_at: &m.at };
            let tracked =
                experiment_tracking::track(store, self.clock.as_ref(), &exp.experiment_id, ask, reporter).await;
            match tracked {
                Ok(_) => {}
                // Ended since it was read, or the participant's event cap: the
                // campaign's own counters still have the conversion.
                Err(Failed::Refused(e)) => {
                    tracing::warn!(experiment = %exp.experiment_id, error = %e, "conversion not counted");
                }
                Err(Failed::Store(e)) => return Err(format!("experiment {}: {e}", exp.experiment_id)),
            }
        }
        Ok(())
    }
}

/// A personal code: `OFFER-` and 8 characters of the promotions' alphabet.
fn personal_code() -> String {
    let mut bytes: Vec<u8> = Vec::new();
    let mut random = || {
        if bytes.is_empty() {
            bytes = ulid::Ulid::new().random().to_le_bytes()[..10].to_vec();
        }
        bytes.pop().unwrap_or(0)
    };
    promotion::generate_code("OFFER-", 8, &mut random)
}

impl DailyStep for Campaigns {
    fn name(&self) -> &'static str {
        "campaign_sends"
    }

    fn run<'a>(&'a self, store: &'a Store, run: &'a RunDate) -> StepFuture<'a> {
        Box::pin(async move {
            let campaigns = store.campaigns().await.map_err(err)?;
            if campaigns.is_empty() {
                return Ok(0);
            }
            let running: Vec<&Campaign> = campaigns.iter().filter(|c| runs_on(c, run.date)).collect();
            let experiments = self.experiments(store, &campaigns).await?;
            let mut sent = 0;
            let mut failure = None;
            if !running.is_empty() {
                let tiers = store.all_tiers().await.map_err(err)?;
                for c in running {
                    match self.run_campaign(store, c, experiments.get(&c.campaign_id), &tiers, run).await {
                        Ok(n) => sent += n,
                        // The others still run; the step fails for Lambda's retry.
                        Err(e) => failure = Some(e),
                    }
                }
            }
            let attributed = self.attribute(store, run, &experiments).await?;
            tracing::info!(sent, attributed, "campaigns");
            match failure {
                Some(e) => Err(e),
                None => Ok(sent),
            }
        })
    }
}
