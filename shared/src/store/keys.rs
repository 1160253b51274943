//! Every key format of the single table, with the access pattern each serves.
//! Nothing outside this module builds a `PK`, `SK` or `GSIn*` string.
//!
//! Ids placed in keys are slugs or ULIDs (validated at the edge), so they never
//! contain the `#` separator.

use crate::domain::tier::TierStatus;

pub const META: &str = "META";

/// Index names as declared in `template.yaml`.
pub const GSI1: &str = "GSI1";

// ---- Tier -------------------------------------------------------------------
// TIER#{id} / META                      get one tier (GetItem), batch for compare
// GSI1 TIERS / {segment}#{level}#{sort}#{id}
//                                       the live catalog (active tiers) ordered by
//                                       segment, tier level, sort order; one Query
//                                       serves every pricing read; begins_with(segment#)
//                                       lists one segment
// GSI1 TIERS#ARCHIVED / {segment}#{level}#{sort}#{id}
//                                       archived tiers, moved here by the archiving
//                                       write so the live catalog does not grow with
//                                       history; analytics and the unfiltered list read
//                                       both partitions (`tier_catalog_partitions`)
// TIER#{id} / PRICE#{v:06}              price history; quotes and grandfathered
//                                       partners read the version they signed at

pub const TIER_CATALOG_PARTITION: &str = "TIERS";
pub const TIER_ARCHIVE_PARTITION: &str = "TIERS#ARCHIVED";

/// The GSI1 partition a tier's META item is indexed under.
pub fn tier_catalog_partition(status: TierStatus) -> &'static str {
    match status {
        TierStatus::Active => TIER_CATALOG_PARTITION,
        TierStatus::Archived => TIER_ARCHIVE_PARTITION,
    }
}

/// The partitions a catalog read with an optional status filter covers, in list
/// order (active tiers first). An archived filter reads the live partition too:
/// a tier archived before the archive partition existed stays there until
/// `devctl reindex-tier-catalog` moves it, and the status filter still finds it.
pub fn tier_catalog_partitions(status: Option<TierStatus>) -> &'static [&'static str] {
    match status {
        Some(TierStatus::Active) => &[TIER_CATALOG_PARTITION],
        _ => &[TIER_CATALOG_PARTITION, TIER_ARCHIVE_PARTITION],
    }
}

pub fn tier_pk(tier_id: &str) -> String {
    format!("TIER#{tier_id}")
}

/// Zero-padded so that text order is numeric order.
pub fn tier_catalog_sk(segment: &str, tier_level: u32, sort_order: u32, tier_id: &str) -> String {
    format!("{segment}#{tier_level:03}#{sort_order:06}#{tier_id}")
}

pub fn tier_segment_prefix(segment: &str) -> String {
    format!("{segment}#")
}

/// The sort-key prefix every price version of a tier shares.
pub const TIER_PRICE_PREFIX: &str = "PRICE#";

pub fn tier_price_sk(price_version: u32) -> String {
    format!("{TIER_PRICE_PREFIX}{price_version:06}")
}

// ---- Segments (docs/storefront.md) ----------------------------------------------
// SEGMENT#{id} / META                   one storefront segment (GetItem); every edit is
//                                       conditional on its `version`
//   GSI1 SEGMENTS / {sortOrder:06}#{id} every segment in storefront order, retired ones
//                                       too (a handful of items): one Query serves the
//                                       public list and the admin list; a reorder
//                                       rewrites every segment in one transaction
// SEGMENT#{seg} / POPULAR               which tier of segment `seg` carries the popular
//                                       badge (`tierId`; absent = none). Written in the
//                                       same transaction as the tier: claiming is a put
//                                       conditional on `attribute_not_exists(tierId) OR
//                                       tierId = :tier`, releasing a put without
//                                       `tierId` under the same condition, so two
//                                       concurrent edits can never make two popular
//                                       tiers. Also kept for segments that are only a
//                                       tier's free-form `segment` value (`standard`)

pub const SEGMENTS_PARTITION: &str = "SEGMENTS";
pub const SEGMENT_POPULAR: &str = "POPULAR";

pub fn segment_pk(segment_id: &str) -> String {
    format!("SEGMENT#{segment_id}")
}

/// Zero-padded so that text order is numeric order.
pub fn segment_list_sk(sort_order: u32, segment_id: &str) -> String {
    format!("{sort_order:06}#{segment_id}")
}

// ---- Pricing rules and constraints (docs/pricing-rules.md) -----------------------
// PRICING / RULE#{ruleId}                one pricing rule; every edit is conditional on
//                                        its `version`, a create on attribute_not_exists
// PRICING / LIMITS#{scope}#{id}          the constraints of one tier or segment (scope
//                                        `tier` or `segment`), versioned the same way
// The whole configuration is one small partition (at most MAX_RULES rules and one
// constraints item per tier and segment): one Query reads everything a priced read
// applies, whatever the number of partners. Priced public reads are served from the
// per-instance cache, so the partition sees a Query per instance per cache period.

pub const PRICING_PARTITION: &str = "PRICING";
pub const PRICING_RULE_PREFIX: &str = "RULE#";
pub const PRICING_LIMITS_PREFIX: &str = "LIMITS#";

pub fn pricing_rule_sk(rule_id: &str) -> String {
    format!("{PRICING_RULE_PREFIX}{rule_id}")
}

pub fn pricing_limits_sk(scope: &str, id: &str) -> String {
    format!("{PRICING_LIMITS_PREFIX}{scope}#{id}")
}

// PRICING / UPSELL#{ruleId}              one upsell rule (docs/storefront.md), versioned
// PRICING / FLAGS                        the storefront feature flags, versioned
// The same Query as the pricing rules reads them: the storefront's whole
// configuration is one partition, one call.
// PRICING / COMPETITOR#{competitor}#{tier}  a competitor's current price point for
//                                        the equivalent of one of our tiers
pub const UPSELL_RULE_PREFIX: &str = "UPSELL#";
pub const COMPETITOR_PREFIX: &str = "COMPETITOR#";
// PRICING / ADDON#{addOnId}              one add-on (issue 21 §2), versioned
pub const ADD_ON_PREFIX: &str = "ADDON#";

pub fn add_on_sk(add_on_id: &str) -> String {
    format!("{ADD_ON_PREFIX}{add_on_id}")
}

pub fn competitor_sk(competitor_id: &str, tier_id: &str) -> String {
    format!("{COMPETITOR_PREFIX}{competitor_id}#{tier_id}")
}
pub const FLAGS_SK: &str = "FLAGS";

pub fn upsell_rule_sk(rule_id: &str) -> String {
    format!("{UPSELL_RULE_PREFIX}{rule_id}")
}

// ---- Commissions (docs/billing.md "Commissions") ------------------------------------
// COMMISSION#{rep} / {yyyy-mm}#{at}#{invoiceId}#{seq}   one ledger line of a rep: an
//                                       accrual or a reversal, written in the same
//                                       transaction as the invoice change that
//                                       caused it; a statement is one Query of the
//                                       month's key range
// COMMISSIONSUM#{yyyy-mm} / REP#{rep}    the month's totals of a rep (ADD, same
//                                       transaction) ...
// COMMISSIONSUM#{yyyy-mm} / SEGMENT#{s}  ... and of a segment
// COMMISSIONSUM#{yyyy-mm} / TARGET#REP#{rep} and TARGET#SEGMENT#{s}   targets
//                                       (`amount`, cents): the month's summary with
//                                       its targets is one Query
// COMMISSIONRATES / {segment}#{effectiveFrom}   a segment's rate from a day on;
//                                       every rate is one Query
pub const COMMISSION_RATES_PARTITION: &str = "COMMISSIONRATES";
pub const COMMISSION_REP_PREFIX: &str = "REP#";
pub const COMMISSION_SEGMENT_PREFIX: &str = "SEGMENT#";
pub const COMMISSION_TARGET_REP_PREFIX: &str = "TARGET#REP#";
pub const COMMISSION_TARGET_SEGMENT_PREFIX: &str = "TARGET#SEGMENT#";

pub fn commission_pk(rep_id: &str) -> String {
    format!("COMMISSION#{rep_id}")
}

pub fn commission_sk(month: &str, at: &str, invoice_id: &str, seq: u32) -> String {
    format!("{month}#{at}#{invoice_id}#{seq:03}")
}

pub fn commission_month_pk(month: &str) -> String {
    format!("COMMISSIONSUM#{month}")
}

pub fn commission_rep_sk(rep_id: &str) -> String {
    format!("{COMMISSION_REP_PREFIX}{rep_id}")
}

pub fn commission_segment_sk(segment: &str) -> String {
    format!("{COMMISSION_SEGMENT_PREFIX}{segment}")
}

pub fn commission_rate_sk(segment: &str, effective_from: chrono::NaiveDate) -> String {
    format!("{segment}#{effective_from}")
}

// ---- Storefront analytics (docs/storefront.md) -------------------------------------
// STOREFRONTSTATS / {yyyy-mm}#FUNNEL#{segment}   the month's funnel counters of one
//                                                segment (ADD, one per event)
// STOREFRONTSTATS / {yyyy-mm}#UPSELL#{ruleId}    the month's shown/accepted of one
//                                                upsell rule
//   Months × (segments + rules) small items: the report is one Query of the
//   key range `{from}#` … `{to}#~`, whatever the number of partners or events.
// STOREFRONTEVT#{eventId} / META                 an event already counted (ttl 2
//                                                days): written in the same
//                                                transaction as the counters,
//                                                conditional on not existing, so a
//                                                resent event counts once
pub const STOREFRONT_STATS_PARTITION: &str = "STOREFRONTSTATS";

pub fn funnel_sk(month: &str, segment: &str) -> String {
    format!("{month}#FUNNEL#{segment}")
}

pub fn upsell_stats_sk(month: &str, rule_id: &str) -> String {
    format!("{month}#UPSELL#{rule_id}")
}

pub fn storefront_event_pk(event_id: &str) -> String {
    format!("STOREFRONTEVT#{event_id}")
}

// ---- Tier statistics ----------------------------------------------------------
// STATS#{tier} / CURRENT                 live member count and MRR of a tier, changed
//                                        in the same transaction as every partner
//                                        transition; archiving a tier is conditional
//                                        on its memberCount being 0 here, which makes
//                                        "no partners on it" a strongly consistent fact

pub fn tier_stats_pk(tier_id: &str) -> String {
    format!("STATS#{tier_id}")
}

pub const STATS_CURRENT: &str = "CURRENT";

// ---- Revenue analytics (docs/analytics.md) ------------------------------------------
// STATS#{tier} / CURRENT                 (above) also holds the all-time funnel counters
//                                        (signups, trialStarts, trialConversions,
//                                        directPaid, firstPayments) and the MRR split by
//                                        billing period (mrrMonthly, mrrYearly), ADDed by
//                                        the same update as the live counts
// STATS#{tier} / MONTH#{yyyy-mm}         one tier's flows in one month (subscriptions
//                                        started and ended, upgrades, downgrades, funnel,
//                                        MRR movements by kind, customer churn) and the
//                                        month's change of the live figures, so any
//                                        month-end value is CURRENT minus the later months'
//                                        changes. ADDed in the transition's transaction.
//                                        The analytics Lambda reads every tier's CURRENT and
//                                        month items with BatchGetItem: tiers × months keys,
//                                        whatever the number of partners
// COHORTS / {signupMonth}#{yyyy-mm}      one signup cohort's change in one month (signups,
//                                        partners subscribed, paying, MRR), ADDed in the
//                                        transition's transaction; a range of cohorts is one
//                                        Query of this partition (cohorts × months items)

pub const COHORTS_PARTITION: &str = "COHORTS";

pub fn stats_month_sk(month: &str) -> String {
    format!("MONTH#{month}")
}

pub fn cohort_sk(cohort: &str, month: &str) -> String {
    format!("{cohort}#{month}")
}

// ---- Partner ------------------------------------------------------------------
// One partition per partner holds the record, its two index copies and its history,
// so the journey is a single Query.
//
// PARTNER#{id} / META                    the partner (GetItem); every write is
//                                        conditional on its `version`
//   GSI1 TIERMEMBERS#{tier} / {id}       partners on a tier (list ?tier=)
//   GSI2 SUBEND#{yyyy-mm} / {yyyy-mm-dd}#{id}
//                                        paid terms ending in a month that may get a
//                                        renewal reminder: the cron's reminder and
//                                        expiry window, never a Scan
//   GSI2 SUBRENEW#{yyyy-mm} / {yyyy-mm-dd}#{id}
//                                        instead of SUBEND#, terms that renew monthly
//                                        by themselves (`renewal::renews_monthly_by_itself`:
//                                        Stripe-billed, monthly, auto-renewing). They
//                                        never get a reminder, so only the cron's expiry
//                                        pass reads them, and only end dates whose grace
//                                        period is over: the reminder window's cost does
//                                        not grow with monthly subscribers. The choice
//                                        depends on the partner record alone (never the
//                                        catalog), and every partner write rewrites it
//   GSI2 TRIALEND#{yyyy-mm} / {yyyy-mm-dd}#{id}
//                                        instead of SUBEND#/SUBRENEW#, a running trial
//                                        the cron ends when it lapses (not Stripe's:
//                                        `subscription::sweepable_trial_end`), by its
//                                        last day: the `trials_ended` step reads the
//                                        months up to yesterday. A trial always ends
//                                        before its term, so the expiry pass never
//                                        needs these; conversion or any other change
//                                        moves the entry back to the term's end
//   GSI3 REP#{salesRep} / {id}           a rep's book (list ?salesRep=)
// PARTNER#{id} / VIEW                    the same record, keyed for the dashboard
//   GSI1 PARTNERS / {id}                 every partner, newest first (ids are ULIDs)
//   GSI2 SUBVIEW#{tab} / {date}#{id}     dashboard tab (active | cancelled | expired)
//                                        in expiration order; `expiring` is the
//                                        active tab's next 30 days as a key range
//   GSI3 SUBVIEW#{tab}#{tier} / {date}#{id}   the same, for one tier
// PARTNER#{id} / SIGNALS                 the same record, keyed by its scores
//   GSI1 CHURNRISK / {probability:03}#{id}    sparse (probability > 0), highest first
//   GSI2 UPSELL / {score:03}#{id}             sparse (upsell opportunity), highest first
//   GSI3 WINBACK / {churnedDate}#{id}         sparse (churned, not paying), newest first
// PARTNER#{id} / NAME                    the same record, keyed by its company name
//   GSI1 PARTNERNAME#{c} / {nameKey}#{id}    the partner search (list ?name=): `c` is
//                                        the first character of the search key
//                                        (`partner::name_search_key`), so a typed
//                                        prefix is one Query of one partition, in
//                                        name order, and the partitions spread writes
// PARTNER#{id} / EVENT#{ts}#{transitionId}    tier transitions, newest first; the
//                                        outbox DynamoDB Streams carries to PCR scoring
//   GSI1 TIEREVENTS#{toTier} / {ts}#{transitionId}   history of one tier
//   GSI2 EVENTLOG / {ts}#{transitionId}             every transition (dashboard history);
//                                        one partition is enough: transitions are
//                                        human- and billing-paced, far below a
//                                        partition's write limit
// PARTNER#{id} / NOTE#{ts}#{noteId}      sales notes
//                                        (the data export reads the whole PARTNER#{id}
//                                        partition with one Query: record, EVENT#, NOTE#,
//                                        INVOICE#, USAGE#; an erasure rewrites those items
//                                        and the AUDIT#partner#{id} / AUDIT#invoice#{id}
//                                        partitions, found the same way: docs/privacy.md.
//                                        An erased partner's NAME copy has no GSI1 keys)
// EMAIL#{lower(email)} / LOOKUP          unique primary email, written with the partner;
//                                        deleted by an erasure, so the address is free
// MOVEMENTS#{yyyy-mm} / {ts}#{partnerId}#{movementId}
//                                        the MRR ledger, a month per partition

pub const GSI2: &str = "GSI2";
pub const GSI3: &str = "GSI3";

pub const PARTNER_VIEW: &str = "VIEW";
pub const PARTNER_SIGNALS: &str = "SIGNALS";
pub const PARTNER_NAME: &str = "NAME";
pub const LOOKUP: &str = "LOOKUP";
pub const EVENT_PREFIX: &str = "EVENT#";
pub const NOTE_PREFIX: &str = "NOTE#";
// OPS / DAY#{yyyy-mm-dd}#{tierId}        a day's operational counts of one tier
//                                        (payments that succeeded or failed,
//                                        cancellations, first payments): ADDed in the
//                                        transaction of each invoice record or
//                                        transition they count. Split by tier so the
//                                        item is no hotter than the tier's STATS item
//                                        the same transitions already write; the
//                                        alerts read 7 days, the KPIs a month (one
//                                        Query of a date range, summed by date)
pub const OPS_PARTITION: &str = "OPS";
pub const OPS_DAY_PREFIX: &str = "DAY#";
pub fn ops_day_sk(date: &str, tier: &str) -> String {
    format!("{OPS_DAY_PREFIX}{date}#{tier}")
}
/// The first and last sort keys of the days `from`..=`to` (every tier).
pub fn ops_days_range(from: &str, to: &str) -> (String, String) {
    // '~' sorts after '#' and after every character of a tier id.
    (format!("{OPS_DAY_PREFIX}{from}"), format!("{OPS_DAY_PREFIX}{to}~"))
}
// ALERTRULES / {ruleId}                  a staff alert rule (docs/alerts.md)
pub const ALERT_RULES_PARTITION: &str = "ALERTRULES";
// ALERTS / {window}#{ruleId}             a fired alert, claimed before its email goes
//                                        out so it fires once per window; listed newest
//                                        first (one Query)
pub const ALERTS_PARTITION: &str = "ALERTS";

// ---- Campaigns (docs/campaigns.md) -------------------------------------------------
// CAMPAIGNS / {campaignId}               a campaign; the list and the daily job read
//                                        the partition (one Query: campaigns are few)
// CAMPAIGN#{id} / STATS                  its counters (sent, emails, in-app, skips by
//                                        reason, conversions, redemptions, revenue),
//                                        ADDed in the transaction of what they count
// CAMPAIGN#{id} / VARIANT#{variantId}    the same counters of one content variant
// CAMPAIGN#{id} / FREQ#{partnerId}       the partner's frequency state for the campaign
//                                        (last send, sends this period), written with
//                                        each send, conditional on the version read
// CAMPAIGN#{id} / SEND#{partnerId}#{occasion}
//                                        one send, claimed before anything goes out
//                                        (attribute_not_exists): the same occasion
//                                        seen again finds it, so nothing goes twice
// CAMPAIGN#{id} / CONV#{movementId}      an attributed conversion, written once
//   (the insights read the campaign's STATS and VARIANT# items: one Query)
// PARTNER#{id} / CAMPTOUCH#{sentOn}#{campaignId}
//                                        a send to the partner, for attribution: the
//                                        partner's touches of the last 90 days are
//                                        one Query of its own partition
// PARTNER#{id} / MSG#{sentAt}#{messageId}    an in-app message; the portal lists the
//                                        partner's, newest first (one Query); an
//                                        erasure blanks their text
// PARTNER#{id} / PREFS                   the partner's marketing preferences
// PARTNER#{id} / MAILCAP#{date}          marketing emails sent to the partner that day,
//                                        ADDed in each send's claim under the cap
// CAMPSIGNALS#{date} / {trigger}#{partnerId}#{source}
//                                        a trigger seen where it happens (a failed
//                                        payment in the invoice record's transaction,
//                                        a usage counter crossing 80% of a limit in
//                                        its own, an upsell offer shown to a signed-in
//                                        partner), read by the daily job by day
pub const CAMPAIGNS_PARTITION: &str = "CAMPAIGNS";
pub fn campaign_pk(campaign_id: &str) -> String {
    format!("CAMPAIGN#{campaign_id}")
}
pub const CAMPAIGN_STATS: &str = "STATS";
pub const CAMPAIGN_VARIANT_PREFIX: &str = "VARIANT#";
pub fn campaign_variant_sk(variant_id: &str) -> String {
    format!("{CAMPAIGN_VARIANT_PREFIX}{variant_id}")
}
pub fn campaign_freq_sk(partner_id: &str) -> String {
    format!("FREQ#{partner_id}")
}
pub fn campaign_send_sk(partner_id: &str, occasion: &str) -> String {
    format!("SEND#{partner_id}#{occasion}")
}
pub fn campaign_conversion_sk(movement_id: &str) -> String {
    format!("CONV#{movement_id}")
}
pub const CAMPAIGN_TOUCH_PREFIX: &str = "CAMPTOUCH#";
pub fn campaign_touch_sk(sent_on: &str, campaign_id: &str) -> String {
    format!("{CAMPAIGN_TOUCH_PREFIX}{sent_on}#{campaign_id}")
}
pub const MESSAGE_PREFIX: &str = "MSG#";
pub fn message_sk(sent_at: &str, message_id: &str) -> String {
    format!("{MESSAGE_PREFIX}{sent_at}#{message_id}")
}
pub const PARTNER_PREFS: &str = "PREFS";
pub fn mail_cap_sk(date: &str) -> String {
    format!("MAILCAP#{date}")
}
pub fn campaign_signals_pk(date: &str) -> String {
    format!("CAMPSIGNALS#{date}")
}
pub fn campaign_signal_sk(trigger: &str, partner_id: &str, source: &str) -> String {
    format!("{trigger}#{partner_id}#{source}")
}

// INTEL / FORECAST                      the latest revenue forecast (one item, written
//                                        by the daily job, read by the forecast routes:
//                                        one GetItem, flat in partners)
pub const INTEL_PARTITION: &str = "INTEL";
pub const INTEL_FORECAST_SK: &str = "FORECAST";
// INTEL / ELASTICITY                    the latest elasticity estimates per tier (same)
pub const INTEL_ELASTICITY_SK: &str = "ELASTICITY";
// RECOMMENDATIONS / {recommendationId}  a pricing recommendation and its decision;
//                                        written once by the daily job (a repeat of
//                                        the same advice keeps its decision), listed
//                                        with one Query of the partition
pub const RECOMMENDATIONS_PARTITION: &str = "RECOMMENDATIONS";

pub const ALL_PARTNERS_PARTITION: &str = "PARTNERS";
pub const CHURN_RISK_PARTITION: &str = "CHURNRISK";
pub const UPSELL_PARTITION: &str = "UPSELL";
pub const WIN_BACK_PARTITION: &str = "WINBACK";
pub const EVENT_LOG_PARTITION: &str = "EVENTLOG";

pub fn partner_pk(partner_id: &str) -> String {
    format!("PARTNER#{partner_id}")
}

pub fn tier_members_pk(tier_id: &str) -> String {
    format!("TIERMEMBERS#{tier_id}")
}

pub fn sub_end_pk(end: chrono::NaiveDate) -> String {
    format!("SUBEND#{}", end.format("%Y-%m"))
}

pub fn sub_renew_pk(end: chrono::NaiveDate) -> String {
    format!("SUBRENEW#{}", end.format("%Y-%m"))
}

pub fn trial_end_pk(last_day: chrono::NaiveDate) -> String {
    format!("TRIALEND#{}", last_day.format("%Y-%m"))
}

pub fn dated_sk(date: chrono::NaiveDate, id: &str) -> String {
    format!("{}#{id}", date.format("%Y-%m-%d"))
}

pub fn rep_pk(rep: &str) -> String {
    format!("REP#{rep}")
}

pub fn dashboard_pk(tab: &str) -> String {
    format!("SUBVIEW#{tab}")
}

pub fn dashboard_tier_pk(tab: &str, tier_id: &str) -> String {
    format!("SUBVIEW#{tab}#{tier_id}")
}

/// Zero-padded so that text order is score order.
pub fn score_sk(score: u32, id: &str) -> String {
    format!("{score:03}#{id}")
}

pub fn event_sk(at: &str, transition_id: &str) -> String {
    format!("{EVENT_PREFIX}{at}#{transition_id}")
}

pub fn tier_events_pk(tier_id: &str) -> String {
    format!("TIEREVENTS#{tier_id}")
}

pub fn note_sk(at: &str, note_id: &str) -> String {
    format!("{NOTE_PREFIX}{at}#{note_id}")
}

/// The partition of the partner search for a search key (never empty: the key of
/// a company name or of a typed prefix has at least one character).
pub fn partner_name_pk(name_key: &str) -> String {
    let first: String = name_key.chars().take(1).collect();
    format!("PARTNERNAME#{first}")
}

pub fn partner_name_sk(name_key: &str, id: &str) -> String {
    format!("{name_key}#{id}")
}

// ---- Self-registered accounts (docs/signup.md) ----------------------------------
// ACCOUNT#{sub} / PARTNER                the partner a self-registered Cognito user
//                                        (`sub`) owns: written once by the sign-up
//                                        trigger, conditional on attribute_not_exists,
//                                        so a retried confirmation links the same
//                                        partner; read (GetItem) by the token trigger
//                                        for users with no group, never for staff
pub const ACCOUNT_PARTNER: &str = "PARTNER";

pub fn account_pk(sub: &str) -> String {
    format!("ACCOUNT#{sub}")
}

pub fn email_pk(email: &str) -> String {
    format!("EMAIL#{}", email.to_lowercase())
}

pub fn movements_pk(at: &str) -> String {
    format!("MOVEMENTS#{}", at.get(..7).unwrap_or(at))
}

pub fn movement_sk(at: &str, partner_id: &str, movement_id: &str) -> String {
    format!("{at}#{partner_id}#{movement_id}")
}

// ---- Cron ---------------------------------------------------------------------
// The daily expiry job (functions/expiry-cron, docs/cron.md). Its windows are the
// partner's GSI2 SUBEND#{yyyy-mm} entries above (and, for expiry only, SUBRENEW#),
// read by month with a date range.
//
// PARTNER#{id} / REMINDER#{endDate}#{kind}
//                                        one notice email (renewal_reminder_30,
//                                        renewal_urgent_7, subscription_expired) of one
//                                        term: claimed with a conditional put (and a
//                                        lease), then marked sent; deleted again when a
//                                        send fails so the next run retries. Keyed by the
//                                        end date, so a renewed term starts afresh.
//                                        The dashboard's "send reminder" (and bulk
//                                        reminders) claim the same item, also over a
//                                        notice `sent` before today, and mark it sent
//                                        with `sentBy`: the cron then sends none that day
//   GSI2 SUBEND#{yyyy-mm} / {endDate}#{id}#{kind}
//                                        sorts right after its partner's own entry, so
//                                        the window query also says which notices went
//                                        out, without a read per partner
//   GSI1 CRONCLAIMS / {leaseUntil}#{id}#{endDate}#{kind}
//                                        only while claimed: each run looks here for
//                                        leases that ran out (a run that crashed between
//                                        claim and send) and finishes them
// STATS#{tier} / DAY#{yyyy-mm-dd}        the day's copy of STATS#{tier}/CURRENT, written
//                                        once (first run of the day)
//   GSI1 STATSDAY#{yyyy-mm-dd} / {tier}  every tier's snapshot of one day

pub const REMINDER_PREFIX: &str = "REMINDER#";
pub const CRON_CLAIMS_PARTITION: &str = "CRONCLAIMS";

pub fn reminder_sk(end: chrono::NaiveDate, kind: &str) -> String {
    format!("{REMINDER_PREFIX}{}#{kind}", end.format("%Y-%m-%d"))
}

pub fn reminder_window_sk(end: chrono::NaiveDate, partner_id: &str, kind: &str) -> String {
    format!("{}#{kind}", dated_sk(end, partner_id))
}

/// The GSI2 sort-key range of the end dates `from..=to` inside one `SUBEND#` month:
/// `{to}~` sorts after every `{to}#…` key (`~` is above `#` and the digits).
pub fn sub_end_range(from: chrono::NaiveDate, to: chrono::NaiveDate) -> (String, String) {
    (from.format("%Y-%m-%d").to_string(), format!("{}~", to.format("%Y-%m-%d")))
}

/// `lease_until` is RFC 3339 UTC (sorts as text), so "leases ended before now" is a
/// `GSI1SK < now` range.
pub fn cron_claim_sk(lease_until: &str, partner_id: &str, end: chrono::NaiveDate, kind: &str) -> String {
    format!("{lease_until}#{partner_id}#{}#{kind}", end.format("%Y-%m-%d"))
}

pub fn stats_day_sk(date: chrono::NaiveDate) -> String {
    format!("DAY#{}", date.format("%Y-%m-%d"))
}

pub fn stats_day_pk(date: chrono::NaiveDate) -> String {
    format!("STATSDAY#{}", date.format("%Y-%m-%d"))
}

// ---- Billing -----------------------------------------------------------------
// STRIPECUS#{cus} / LOOKUP               the partner of a Stripe customer (webhooks);
//                                        written with the partner's stripeCustomerId,
//                                        attribute_not_exists, so one customer never
//                                        names two partners
// PARTNER#{id} / INVOICE#{created:010}#{invoiceId}
//                                        the partner's invoices newest first (GET
//                                        /api/billing/invoices); `created` is Stripe's,
//                                        so every event about one invoice hits one item;
//                                        a partner's invoices in a date range (the staff
//                                        list ?partnerId=) are a BETWEEN on this SK
//   GSI1 INVOICES / {created:010}#{invoiceId}
//                                        every invoice, newest first, a date range as a
//                                        key range (GET /api/admin/invoices); one
//                                        partition is enough: invoices are billing-paced
//   GSI2 INVOICESTATUS#{billingStatus} / {created:010}#{invoiceId}
//                                        invoices in one staff status (?status=), the
//                                        item moving partition when its status changes
//   GSI3 REPINVOICES#{salesRep} / {created:010}#{invoiceId}
//                                        sparse: the invoices of a rep's accounts (a
//                                        rep's list), the partner's rep copied at each
//                                        write; each row is checked against the
//                                        partner's current rep before it is shown
// INVOICE#{invoiceId} / LOOKUP           the partner and `created` of a Stripe invoice
//                                        (staff actions name the invoice only); written
//                                        with the invoice's first record
// STRIPEEVT#{evt} / META                 webhook idempotency: INPROGRESS (claimed, with
//                                        a lease) → APPLIED (state written, in the same
//                                        transaction) → COMPLETED (ttl); or UNPARSEABLE
//                                        with the raw event for a human
// IDEMP#{scope}#{key} / META             a client's Idempotency-Key: the first answer,
//                                        replayed to repeats (ttl)

pub const INVOICE_PREFIX: &str = "INVOICE#";

pub fn stripe_customer_pk(customer_id: &str) -> String {
    format!("STRIPECUS#{customer_id}")
}

pub fn invoice_sk(created: i64, invoice_id: &str) -> String {
    format!("{INVOICE_PREFIX}{}", invoice_list_sk(created, invoice_id))
}

pub const ALL_INVOICES_PARTITION: &str = "INVOICES";

/// The GSI sort key of an invoice: Stripe's `created`, zero-padded, so text order
/// is time order and a date range is a key range.
pub fn invoice_list_sk(created: i64, invoice_id: &str) -> String {
    format!("{:010}#{invoice_id}", created.max(0))
}

/// The key range of `created` in `from..=to` (epoch seconds): `~` sorts after
/// every `#…` suffix.
pub fn invoice_created_range(from: i64, to: i64) -> (String, String) {
    (format!("{:010}", from.max(0)), format!("{:010}~", to.max(0)))
}

pub fn invoice_status_pk(status: &str) -> String {
    format!("INVOICESTATUS#{status}")
}

pub fn rep_invoices_pk(rep: &str) -> String {
    format!("REPINVOICES#{rep}")
}

pub fn invoice_lookup_pk(invoice_id: &str) -> String {
    format!("{INVOICE_PREFIX}{invoice_id}")
}

pub fn stripe_event_pk(event_id: &str) -> String {
    format!("STRIPEEVT#{event_id}")
}

pub fn idempotency_pk(scope: &str, key: &str) -> String {
    format!("IDEMP#{scope}#{key}")
}

// ---- Usage ----------------------------------------------------------------------
// PARTNER#{id} / USAGE#{yyyy-mm}         one partner's counters for one calendar month
//                                        (UTC), one `used_{metric}` number each. A track
//                                        call is one conditional update of this item: for
//                                        a hard limit the condition is `used <= limit −
//                                        count`, so checking and deducting are one atomic
//                                        step. A new month is a new item, so counters
//                                        start at 0 without a reset job; old months stay
//                                        as history for overage billing.
// IDEMP#usage#{partnerId}#{sha256(key)} / META
//                                        a track call's idempotencyKey, put with
//                                        attribute_not_exists in the same transaction as
//                                        the counter update: a replay fails this put and
//                                        counts nothing (ttl 40 days). Hashed: client keys
//                                        may hold any printable character, `#` included.
// USAGESTATS#{yyyy-mm} / SHARD#{n}       feature adoption for analytics, per tier and
//                                        metric: partners using it, units, partners at
//                                        ≥ 80% of its limit. Changed in the track
//                                        transaction, only by the call that crosses the
//                                        boundary, so it is exact; spread over
//                                        USAGE_STATS_SHARDS items by partner so busy
//                                        partners never contend on one item; read with
//                                        one Query of the month, whatever the partner count

// The usage item of a month with a soft (overage-priced) metric also carries
//   GSI2 OVERAGE#{yyyy-mm} / {partnerId}  sparse: the partners who used a priced
//                                        metric that month, set by the track write
//                                        itself, so the overage billing step reads
//                                        them with one key Query (never the others)
// PARTNER#{id} / OVERAGEBILLED#{yyyy-mm} the month's overage went to Stripe as
//                                        invoice items (written after them; Stripe's
//                                        idempotency keys cover a crash in between)

pub fn overage_month_pk(period: &str) -> String {
    format!("OVERAGE#{period}")
}

pub fn overage_billed_sk(period: &str) -> String {
    format!("OVERAGEBILLED#{period}")
}

pub const USAGE_STATS_SHARDS: u32 = 8;

pub const USAGE_PREFIX: &str = "USAGE#";

pub fn usage_sk(period: &str) -> String {
    format!("{USAGE_PREFIX}{period}")
}

pub fn usage_idempotency_pk(partner_id: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    idempotency_pk(&format!("usage#{partner_id}"), &hex)
}

pub fn usage_stats_pk(period: &str) -> String {
    format!("USAGESTATS#{period}")
}

/// The shard of a partner: a stable hash (FNV-1a), so one partner always lands on
/// the same item and its first use and near-limit crossings count once.
pub fn usage_stats_sk(partner_id: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in partner_id.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("SHARD#{}", hash % USAGE_STATS_SHARDS)
}

// ---- Promotions ---------------------------------------------------------------
// PROMO#{id} / META                      the promotion (GetItem); every write is
//                                        conditional on its `version`, a redemption on
//                                        status, dates, cap and `termsVersion`
//   GSI1 PROMOSTATUS#{status} / {startDate}#{id}   list by status (seed StatusIndex)
//   GSI2 PROMOEXPIRY / {endDate}#{id}    sparse: live promotions with autoExpire, so
//                                        the cron completes those past their end date
//                                        with one key-range Query
//   GSI3 PROMOTIONS / {id}               every promotion, newest first (ids are ULIDs)
// PROMO#{id} / VALIDATIONS#{shard}       how often it was validated (conversion rate),
//                                        in VALIDATION_SHARDS items summed on read: kept
//                                        off META so validations never contend with
//                                        redemptions, and spread so a popular code's
//                                        validations do not all write one item
// PROMO#{id} / REDEEMER#{partnerId}      one customer's redemption count, conditional
//                                        on < redemptionsPerUser in the redemption
//                                        transaction
// PROMO#{id} / REDEMPTION#{ts}#{rid}     one redemption (seed PromotionRedemption)
//   GSI2 REDEEMER#{partnerId} / {ts}#{rid}   a customer's redemptions (seed UserIndex)
// CODE#{UPPER(code)} / LOOKUP            a code's promotion, unique across promotions
//                                        (attribute_not_exists, written with it); holds
//                                        a copy of the terms at `termsVersion`, so a
//                                        redemption by code is one read

pub const VALIDATION_SHARDS: u32 = 8;

pub fn validations_sk(shard: u32) -> String {
    format!("VALIDATIONS#{}", shard % VALIDATION_SHARDS)
}
pub const PROMO_EXPIRY_PARTITION: &str = "PROMOEXPIRY";
pub const PROMOTIONS_PARTITION: &str = "PROMOTIONS";
pub const REDEMPTION_PREFIX: &str = "REDEMPTION#";

pub fn promotion_pk(promotion_id: &str) -> String {
    format!("PROMO#{promotion_id}")
}

pub fn promotion_status_pk(status: &str) -> String {
    format!("PROMOSTATUS#{status}")
}

pub fn code_pk(code: &str) -> String {
    format!("CODE#{}", code.to_ascii_uppercase())
}

pub fn redeemer_sk(partner_id: &str) -> String {
    format!("REDEEMER#{partner_id}")
}

pub fn redeemer_pk(partner_id: &str) -> String {
    format!("REDEEMER#{partner_id}")
}

/// `PROMO#{id}` / `ONCE#{key}`: the outside event (a checkout session) that
/// redeemed the promotion, written once in the redemption's transaction.
pub fn redemption_once_sk(key: &str) -> String {
    format!("ONCE#{key}")
}

pub fn redemption_sk(at: &str, redemption_id: &str) -> String {
    format!("{REDEMPTION_PREFIX}{at}#{redemption_id}")
}

// ---- Quotes -------------------------------------------------------------------
// QUOTE#{id} / META                      the quote (GetItem); every write is
//                                        conditional on its `version`, acceptance also
//                                        on `status = sent`
//   GSI1 REPQUOTES#{rep} / {createdAt}#{id}      a rep's quotes, newest first (seed
//                                        SalesRepIndex); `?status=` filters the page
//   GSI2 QUOTESTATUS#{status} / {createdAt}#{id} quotes in one status (seed
//                                        StatusIndex); the daily expiry pass reads the
//                                        open statuses only, which validity (at most
//                                        180 days) keeps bounded
//   GSI3 QUOTES / {createdAt}#{id}       every quote, newest first (managers' list)
// COUNTER#QUOTE#{yyyy} / META            the year's last quote number: one UpdateItem
//                                        `ADD n 1` returning the new value, so two
//                                        creations never share a number
// QUOTETOKEN#{sha256(token)} / LOOKUP    the view link's quote; written in the send's
//                                        transaction (attribute_not_exists), the old
//                                        link's lookup deleted in the same one
// QUOTE#{id} / EVENT#{acceptedAt}#accepted  the CRM hand-off (docs/events.md "Quote
//                                        accepted"): written once (attribute_not_exists)
//                                        in the acceptance's transaction; its stream
//                                        INSERT is what `QuoteHandoffPipe` publishes

pub const QUOTES_PARTITION: &str = "QUOTES";

pub fn quote_pk(quote_id: &str) -> String {
    format!("QUOTE#{quote_id}")
}

pub fn quote_accepted_event_sk(accepted_at: &str) -> String {
    format!("{EVENT_PREFIX}{accepted_at}#accepted")
}

pub fn rep_quotes_pk(rep: &str) -> String {
    format!("REPQUOTES#{rep}")
}

pub fn quote_status_pk(status: &str) -> String {
    format!("QUOTESTATUS#{status}")
}

pub fn quote_list_sk(created_at: &str, quote_id: &str) -> String {
    format!("{created_at}#{quote_id}")
}

pub fn quote_counter_pk(year: i32) -> String {
    format!("COUNTER#QUOTE#{year}")
}

pub fn quote_token_pk(token_hash: &str) -> String {
    format!("QUOTETOKEN#{token_hash}")
}

// ---- Experiments --------------------------------------------------------------
// EXP#{id} / META                        the experiment (GetItem); every write is
//                                        conditional on its `version`
//   GSI1 EXPSTATUS#{status} / {createdAt}#{id}   list by status (seed StatusIndex)
//   GSI3 EXPERIMENTS / {id}              every experiment, newest first (ids are ULIDs)
// EXP#{id} / ASSIGN#{userId}             one participant: variant, phase, the dedupe
//                                        keys already counted, revenue so far and a
//                                        `seq` every tracking write is conditional on.
//                                        Written on first exposure (attribute_not_exists,
//                                        or an older phase), so a participant counts once
// EXP#{id} / VARIANT#{phase:03}#{variantId}#{shard:02}
//                                        a variant's counters in one phase, on
//                                        EXPERIMENT_SHARDS items (by the participant's
//                                        hash) summed on read with one Query: concurrent
//                                        conversions do not all wait on one item
// EXPLIVE / {tierId}                     the experiment holding a tier (active or paused):
//                                        put with attribute_not_exists when it starts, so
//                                        a tier has at most one; the public catalog reads
//                                        the whole partition (one Query, tens of items) to
//                                        price a visitor's variant

pub const EXPERIMENT_SHARDS: u32 = 16;
pub const EXPERIMENTS_PARTITION: &str = "EXPERIMENTS";
pub const EXPERIMENT_LIVE_PARTITION: &str = "EXPLIVE";

pub fn experiment_pk(experiment_id: &str) -> String {
    format!("EXP#{experiment_id}")
}

pub fn experiment_status_pk(status: &str) -> String {
    format!("EXPSTATUS#{status}")
}

pub fn assignment_sk(user_id: &str) -> String {
    format!("ASSIGN#{user_id}")
}

pub fn variant_phase_prefix(phase: u32) -> String {
    format!("VARIANT#{phase:03}#")
}

pub fn variant_shard_sk(phase: u32, variant_id: &str, shard: u32) -> String {
    format!("{}{variant_id}#{:02}", variant_phase_prefix(phase), shard % EXPERIMENT_SHARDS)
}

// ---- Audit --------------------------------------------------------------------
// AUDIT#{type}#{id} / {ts}#{auditId}     an entity's change history, oldest first
// GSI1 AUDITLOG#{yyyy-mm-dd} / {ts}#{auditId}   everything changed on a day
// GSI2 ACTOR#{actor} / {ts}#{auditId}           everything one person changed

pub fn audit_pk(entity_type: &str, entity_id: &str) -> String {
    format!("AUDIT#{entity_type}#{entity_id}")
}

pub fn audit_sk(at: &str, audit_id: &str) -> String {
    format!("{at}#{audit_id}")
}

pub fn audit_day_pk(at: &str) -> String {
    format!("AUDITLOG#{}", at.get(..10).unwrap_or(at))
}

pub fn audit_actor_pk(actor: &str) -> String {
    format!("ACTOR#{actor}")
}

// ---- Mail ---------------------------------------------------------------------
// MAILQUOTA#{sha256(lower(email))} / DAY#{yyyy-mm-dd}
//                                        emails sent to one recipient on one day:
//                                        `sent` is claimed with a conditional ADD
//                                        (`sent < cap`) before every send, so concurrent
//                                        senders never exceed the daily cap; `ttl`
//                                        removes the item a few days later. Keyed by a
//                                        hash so no address is stored or logged.

/// The recipient's identity in keys and logs: hex SHA-256 of the trimmed,
/// lowercased address.
pub fn mail_recipient_hash(email: &str) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

pub fn mail_quota_pk(recipient_hash: &str) -> String {
    format!("MAILQUOTA#{recipient_hash}")
}

pub fn mail_quota_sk(day: chrono::NaiveDate) -> String {
    format!("DAY#{}", day.format("%Y-%m-%d"))
}

// ---- Subscription dashboard jobs (docs/cron.md "Bulk actions from the dashboard") ----
// JOB#{jobId} / META                     a bulk action over a dashboard view: action,
//                                        filter, status, counts, the view's cursor and
//                                        `version` (every progress write is conditional
//                                        on it, so two runners never both count a chunk)
// JOB#{jobId} / ITEM#{partnerId}         one partner's outcome in the job, written with
//                                        `attribute_not_exists` in the same transaction
//                                        as the effect's record (the reminder's claim,
//                                        the renewal's transition): a partner is acted on
//                                        once per job, and a rerun after a crash skips
//                                        the partners already done. `ttl` 30 days.

pub const JOB_ITEM_PREFIX: &str = "ITEM#";

pub fn job_pk(job_id: &str) -> String {
    format!("JOB#{job_id}")
}

pub fn job_item_sk(partner_id: &str) -> String {
    format!("{JOB_ITEM_PREFIX}{partner_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_sort_keys_order_numerically() {
        let a = tier_catalog_sk("standard", 2, 5, "b");
        let b = tier_catalog_sk("standard", 10, 0, "a");
        assert!(a < b);
        assert_eq!(tier_price_sk(3), "PRICE#000003");
        assert_eq!(audit_day_pk("2026-11-21T10:00:00.000Z"), "AUDITLOG#2026-11-21");
    }

    #[test]
    fn cron_markers_sort_right_after_their_partner_and_inside_the_range() {
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let partner = dated_sk(d("2026-12-31"), "prt_a");
        let marker = reminder_window_sk(d("2026-12-31"), "prt_a", "renewal_urgent_7");
        let next = dated_sk(d("2026-12-31"), "prt_b");
        assert!(partner < marker && marker < next);
        let (from, to) = sub_end_range(d("2026-12-01"), d("2026-12-31"));
        assert!(from.as_str() <= partner.as_str() && marker.as_str() <= to.as_str());
        assert!(dated_sk(d("2026-11-30"), "prt_z") < from);
        assert_eq!(reminder_sk(d("2026-12-31"), "renewal_urgent_7"), "REMINDER#2026-12-31#renewal_urgent_7");
        assert_eq!(stats_day_pk(d("2026-12-01")), "STATSDAY#2026-12-01");
    }
}
