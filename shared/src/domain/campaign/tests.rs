use super::*;
use serde_json::json;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn body() -> Value {
    json!({
        "name": "Trial ending",
        "type": "onboarding",
        "trigger": {"type": "trial_ending", "daysBefore": 3},
        "content": {"subject": "{{companyName}}, your trial ends {{trialEndDate}}", "body": "Keep {{tierName}} with {{promoCode}}."},
        "offer": {"promotionId": "promo_01hzzzzzzzzzzzzzzzzzzzzzzz"},
        "channels": ["email", "in_app"],
        "cooldownDays": 7,
        "maxFrequency": {"count": 2, "periodDays": 30},
        "startDate": "2026-01-01"
    })
}

fn campaign(v: Value) -> Campaign {
    CampaignInput::parse(&v).unwrap().into_campaign("cmp_01hzzzzzzzzzzzzzzzzzzzzzzz", None, "admin", "t").unwrap()
}

fn recipient() -> Recipient {
    Recipient {
        partner_id: "prt_1".into(),
        company_name: "Acme".into(),
        email: Some("ops@acme.test".into()),
        tier: "gold".into(),
        tier_name: "Gold".into(),
        segment: Some("signature".into()),
        next_tier_name: Some("Platinum".into()),
        churn_risk: 70,
        upsell_score: 20,
        trial_end_date: None,
        unsubscribed: false,
        erased: false,
    }
}

#[test]
fn a_whole_campaign_parses_with_defaults_and_one_control_variant() {
    let c = campaign(body());
    assert_eq!(c.status, CampaignStatus::Draft);
    assert_eq!(c.version, 1);
    assert_eq!(c.content.variants.len(), 1);
    assert_eq!((c.content.variants[0].variant_id.as_str(), c.content.variants[0].allocation), ("control", 100));
    assert_eq!(c.attribution_window_days, 14);
    assert_eq!(c.channels, vec![Channel::Email, Channel::InApp]);
    assert_eq!(c.trigger.days_before, Some(3));
}

#[test]
fn bad_input_names_each_field() {
    let mut b = body();
    b["trigger"] = json!({"type": "trial_ending", "level": "high"});
    b["channels"] = json!(["sms"]);
    b["content"]["body"] = json!("Hi {{firstName}}");
    b["maxFrequency"] = json!({"count": 0, "periodDays": 30});
    b["endDate"] = json!("2025-12-31");
    b["status"] = json!("active");
    let err = CampaignInput::parse(&b).unwrap_err().fields;
    assert!(err["trigger.daysBefore"].contains("required"), "{err:?}");
    assert!(err["trigger.level"].contains("does not apply"), "{err:?}");
    assert!(err["channels"].contains("sms is not supported"), "{err:?}");
    assert!(err["content.body"].contains("firstName"), "{err:?}");
    assert!(err.contains_key("maxFrequency.count"), "{err:?}");
    assert!(err["endDate"].contains("before startDate"), "{err:?}");
    assert_eq!(err["status"], "is not a known field");
}

#[test]
fn a_promo_code_token_needs_an_offer_and_variants_must_sum_to_100() {
    let mut b = body();
    b.as_object_mut().unwrap().remove("offer");
    let err = CampaignInput::parse(&b).unwrap_err().fields;
    assert!(err["offer"].contains("promoCode"), "{err:?}");
    // Spaces inside the braces are the same token.
    b["content"]["body"] = json!("Use {{ promoCode }} today.");
    b["content"]["subject"] = json!("Hello");
    let err = CampaignInput::parse(&b).unwrap_err().fields;
    assert!(err["offer"].contains("promoCode"), "{err:?}");

    let mut b = body();
    b["content"] = json!({"variants": [
        {"variantId": "a", "subject": "A", "body": "a", "allocation": 50},
        {"variantId": "b", "subject": "B", "body": "b", "allocation": 40}
    ]});
    let err = CampaignInput::parse(&b).unwrap_err().fields;
    assert_eq!(err["content.variants"], "allocations must sum to 100");

    let mut b = body();
    b["content"]["variants"] = json!([{"variantId": "a", "subject": "A", "body": "a", "allocation": 100}]);
    let err = CampaignInput::parse(&b).unwrap_err().fields;
    assert!(err["content.variants"].contains("not both"), "{err:?}");
}

#[test]
fn a_scheduled_send_day_must_fall_within_the_campaign_dates() {
    let mut b = body();
    b["trigger"] = json!({"type": "scheduled", "sendOn": "2025-06-01"});
    let err = CampaignInput::parse(&b).unwrap_err().fields;
    assert!(err["trigger"].contains("sendOn"), "{err:?}");
}

#[test]
fn the_lifecycle_allows_only_its_documented_moves() {
    let c = campaign(body());
    let active = apply_action(&c, LifecycleAction::Launch, "a", "t1").unwrap();
    assert_eq!((active.status, active.version), (CampaignStatus::Active, 2));
    let paused = apply_action(&active, LifecycleAction::Pause, "a", "t2").unwrap();
    assert_eq!(apply_action(&paused, LifecycleAction::Resume, "a", "t3").unwrap().status, CampaignStatus::Active);
    let done = apply_action(&paused, LifecycleAction::Complete, "a", "t4").unwrap();
    for action in LifecycleAction::ALL {
        assert!(apply_action(&done, action, "a", "t5").is_err(), "{action:?} after completion");
    }
    assert_eq!(
        apply_action(&c, LifecycleAction::Pause, "a", "t"),
        Err(CampaignError::InvalidTransition { status: "draft", action: "pause" })
    );
}

#[test]
fn an_active_campaign_cannot_be_edited_and_an_edit_needs_the_version_read() {
    let c = campaign(body());
    let active = apply_action(&c, LifecycleAction::Launch, "a", "t1").unwrap();
    let input = CampaignInput::parse(&body()).unwrap();
    assert_eq!(input.clone().into_campaign(&c.campaign_id, Some(&active), "a", "t"), Err(CampaignError::NotEditable));
    assert_eq!(input.clone().into_campaign(&c.campaign_id, Some(&c), "a", "t"), Err(CampaignError::VersionConflict(0)));
    let mut b = body();
    b["version"] = json!(1);
    b["name"] = json!("Renamed");
    let edited = CampaignInput::parse(&b).unwrap().into_campaign(&c.campaign_id, Some(&c), "b", "t2").unwrap();
    assert_eq!((edited.name.as_str(), edited.version, edited.created_by.as_str()), ("Renamed", 2, "admin"));
}

#[test]
fn runs_only_while_active_and_within_its_dates() {
    let mut b = body();
    b["endDate"] = json!("2026-01-31");
    let c = apply_action(&campaign(b), LifecycleAction::Launch, "a", "t").unwrap();
    assert!(!runs_on(&c, day("2025-12-31")));
    assert!(runs_on(&c, day("2026-01-01")));
    assert!(runs_on(&c, day("2026-01-31")));
    assert!(!runs_on(&c, day("2026-02-01")));
    let paused = apply_action(&c, LifecycleAction::Pause, "a", "t").unwrap();
    assert!(!runs_on(&paused, day("2026-01-15")));
}

#[test]
fn cooldown_and_max_frequency_hold_over_a_run_of_days() {
    // Cooldown 7 days, at most 2 sends in 30 days: a trigger every day for 90 days.
    let c = campaign(body());
    let mut state = FrequencyState::default();
    let mut sent = Vec::new();
    let first = day("2026-01-01");
    for n in 0..90 {
        let today = first + Duration::days(n);
        if let Ok(next) = admit_frequency(&c, &state, today) {
            state = next;
            sent.push(n);
        }
    }
    // Days 0 and 7 fill the period starting day 0; the next period starts day 30.
    assert_eq!(sent, vec![0, 7, 30, 37, 60, 67]);
    // Brute force: no two sends closer than 7 days, no 30-day window from a
    // period start holds more than 2.
    assert!(sent.windows(2).all(|w| w[1] - w[0] >= 7));
    assert_eq!(state.version, 6);
}

#[test]
fn a_zero_cooldown_still_obeys_the_frequency_cap() {
    let mut b = body();
    b["cooldownDays"] = json!(0);
    b["maxFrequency"] = json!({"count": 3, "periodDays": 7});
    let c = campaign(b);
    let mut state = FrequencyState::default();
    let today = day("2026-03-02");
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        match admit_frequency(&c, &state, today) {
            Ok(next) => {
                state = next;
                outcomes.push("sent");
            }
            Err(skip) => outcomes.push(skip.as_str()),
        }
    }
    assert_eq!(outcomes, ["sent", "sent", "sent", "max_frequency", "max_frequency"]);
}

#[test]
fn compliance_keeps_email_from_unsubscribed_partners_and_in_app_still_reaches_them() {
    let c = campaign(body());
    let mut r = recipient();
    assert_eq!(channels_for(&c, &r), Ok(vec![Channel::Email, Channel::InApp]));
    r.unsubscribed = true;
    assert_eq!(channels_for(&c, &r), Ok(vec![Channel::InApp]));
    let mut email_only = body();
    email_only["channels"] = json!(["email"]);
    let c = campaign(email_only);
    assert_eq!(channels_for(&c, &r), Err(Skip::Unsubscribed));
    r.unsubscribed = false;
    r.email = None;
    assert_eq!(channels_for(&c, &r), Err(Skip::NoAddress));
    // An erased partner gets nothing, in-app included.
    let both = campaign(body());
    assert_eq!(channels_for(&both, &Recipient { erased: true, ..recipient() }), Err(Skip::Erased));
}

#[test]
fn the_audience_filters_by_tier_segment_and_scores() {
    let mut b = body();
    b["audience"] = json!({"tiers": ["gold"], "segments": ["signature"], "minChurnRisk": 60});
    let c = campaign(b);
    let r = recipient();
    assert!(in_audience(&c.audience, &r));
    assert!(!in_audience(&c.audience, &Recipient { churn_risk: 59, ..r.clone() }));
    assert!(!in_audience(&c.audience, &Recipient { tier: "silver".into(), ..r.clone() }));
    assert!(!in_audience(&c.audience, &Recipient { segment: None, ..r.clone() }));
    assert_eq!(channels_for(&c, &Recipient { churn_risk: 10, ..r }), Err(Skip::NotInAudience));
}

#[test]
fn variants_split_by_their_allocation_and_stay_put_for_a_partner() {
    let mut b = body();
    b["content"] = json!({"variants": [
        {"variantId": "short", "subject": "A", "body": "a", "allocation": 70},
        {"variantId": "long", "subject": "B", "body": "b", "allocation": 30}
    ]});
    let c = campaign(b);
    let n = 4_000;
    let short = (0..n).filter(|i| variant_for(&c, &format!("prt_{i}")).variant_id == "short").count();
    // 70% of 4,000 = 2,800; binomial sd ≈ 29, so ±150 is over 5 sd.
    assert!((2_650..=2_950).contains(&short), "{short}");
    assert_eq!(variant_for(&c, "prt_7").variant_id, variant_for(&c, "prt_7").variant_id);
}

#[test]
fn tokens_render_with_their_values_and_text_around_them_is_kept() {
    let values = TokenValues {
        company_name: "Acme".into(),
        tier_name: "Gold".into(),
        promo_code: "STAY-7QK2".into(),
        trial_end_date: "2026-03-05".into(),
        ..TokenValues::default()
    };
    assert_eq!(
        render("{{companyName}}, your trial ends {{ trialEndDate }}: use {{promoCode}}!", &values),
        "Acme, your trial ends 2026-03-05: use STAY-7QK2!"
    );
    assert_eq!(render("no tokens", &values), "no tokens");
    assert_eq!(render("half {{open", &values), "half {{open");
}

#[test]
fn attribution_takes_the_latest_send_inside_its_window() {
    let sends = vec![
        ("cmp_a".to_string(), day("2026-01-01"), 14),
        ("cmp_b".to_string(), day("2026-01-10"), 3),
        ("cmp_c".to_string(), day("2026-01-20"), 14),
    ];
    assert_eq!(attribute(&sends, day("2026-01-12")).map(|s| s.0.as_str()), Some("cmp_b"));
    // cmp_b's window (3 days) is over on the 14th; cmp_a's (14 days) still runs.
    assert_eq!(attribute(&sends, day("2026-01-14")).map(|s| s.0.as_str()), Some("cmp_a"));
    assert_eq!(attribute(&sends, day("2026-01-16")).map(|s| s.0.as_str()), None);
    assert_eq!(attribute(&sends, day("2025-12-31")), None);
    assert_eq!(rate_bp(1, 3), 3_333);
    assert_eq!(rate_bp(2, 3), 6_667);
    assert_eq!(rate_bp(1, 0), 0);
}

#[test]
fn variants_are_compared_with_the_experiments_statistics() {
    // 10/100 against 20/100: pooled p = 0.15, se = √(0.15·0.85·0.02) = 0.050498,
    // z = 1.9803, two-sided p = 0.04767 (scipy.stats.norm.sf(1.9803) · 2);
    // Wilson 95% of 10/100: 0.0552–0.1744.
    let mut v = vec![VariantInsight::new("a", 100, 10, 0), VariantInsight::new("b", 100, 20, 0)];
    compare_variants(&mut v);
    assert_eq!(v[0].p_value_vs_first, None);
    let p = v[1].p_value_vs_first.unwrap();
    assert!((p - 0.04767).abs() < 5e-4, "{p}");
    let w = v[0].conversion_rate_interval.unwrap();
    assert!((w.lower - 0.0552).abs() < 5e-4 && (w.upper - 0.1744).abs() < 5e-4, "{w:?}");
    assert_eq!((v[0].conversion_rate_bp, v[1].conversion_rate_bp), (1_000, 2_000));
    // No sends yet: no test.
    let mut empty = vec![VariantInsight::new("a", 0, 0, 0), VariantInsight::new("b", 5, 1, 0)];
    compare_variants(&mut empty);
    assert_eq!(empty[1].p_value_vs_first, None);
}

#[test]
fn an_experiment_locks_the_variants_and_a_rollout_sends_the_winner_to_everyone() {
    let mut b = body();
    b["content"] = json!({"variants": [
        {"variantId": "a", "subject": "A", "body": "Use {{promoCode}}.", "allocation": 50},
        {"variantId": "b", "subject": "B", "body": "Use {{promoCode}}.", "allocation": 50}
    ]});
    let c = campaign(b.clone());
    let attached = attach_experiment(&c, "exp_01jf0000000000000000000001", "mgr", "t2").unwrap();
    assert_eq!((attached.experiment_id.as_deref(), attached.version), (Some("exp_01jf0000000000000000000001"), 2));
    // An edit carries the experiment over; changing a variant is a change of who
    // gets what, renaming the campaign is not.
    b["version"] = json!(2);
    b["name"] = json!("Renamed");
    let renamed =
        CampaignInput::parse(&b).unwrap().into_campaign(&c.campaign_id, Some(&attached), "mgr", "t3").unwrap();
    assert_eq!(renamed.experiment_id, attached.experiment_id);
    assert!(!variants_change(&attached, &renamed));
    b["content"]["variants"][1]["subject"] = json!("B2");
    let edited = CampaignInput::parse(&b).unwrap().into_campaign(&c.campaign_id, Some(&attached), "mgr", "t3").unwrap();
    assert!(variants_change(&attached, &edited));

    let rolled = roll_out(&attached, "b", "mgr", "t4").unwrap();
    let split: Vec<(&str, u32)> =
        rolled.content.variants.iter().map(|v| (v.variant_id.as_str(), v.allocation)).collect();
    assert_eq!(split, vec![("a", 0), ("b", 100)]);
    assert_eq!(rolled.version, 3);
    // Everyone gets the winner now.
    for n in 0..200 {
        assert_eq!(variant_for(&rolled, &format!("prt_{n}")).variant_id, "b");
    }
    assert!(matches!(roll_out(&attached, "zzz", "mgr", "t4"), Err(CampaignError::NotFound(_))));
    let ended = apply_action(
        &apply_action(&attached, LifecycleAction::Launch, "m", "t").unwrap(),
        LifecycleAction::Complete,
        "m",
        "t",
    )
    .unwrap();
    assert!(matches!(roll_out(&ended, "b", "mgr", "t4"), Err(CampaignError::InvalidTransition { .. })));
    assert!(attach_experiment(&ended, "exp_x", "mgr", "t4").is_err());
    // Allocation 0 parses (a variant kept, not sent); the sum must still be 100.
    b["content"]["variants"][0]["allocation"] = json!(0);
    assert!(CampaignInput::parse(&b).is_err());
    b["content"]["variants"][1]["allocation"] = json!(100);
    assert!(CampaignInput::parse(&b).is_ok());
}

/// Campaign variants as an experiment of type `campaign`: the experiments'
/// rules seen from a campaign (the experiment module knows nothing of campaigns).
mod as_experiment {
    use super::super::*;
    use crate::domain::experiment::*;
    use serde_json::{json, Value};

    fn actor() -> Actor {
        Actor::fixture("mgr", "2026-11-30T10:00:00.000Z")
    }

    /// A pricing experiment, to hold the campaign one against.
    fn experiment() -> Experiment {
        NewExperiment::parse(&body())
            .unwrap()
            .into_experiment(new_experiment_id("01jf0000000000000000000000"), &actor())
    }

    /// A draft campaign experiment over `a_campaign_with_two_subjects`.
    fn campaign_experiment() -> Experiment {
        let new = NewExperiment::parse(&json!({"experimentType": "campaign",
                "campaignId": "cmp_01hzzzzzzzzzzzzzzzzzzzzzzz", "name": "x"}))
        .unwrap();
        NewExperiment { variants: experiment_variants(&a_campaign_with_two_subjects()).unwrap(), ..new }
            .into_experiment(new_experiment_id("01jf0000000000000000000001"), &actor())
    }

    fn body() -> Value {
        json!({
            "name": "Gold price test", "targetTier": "gold",
            "variants": [
                {"variantId": "control", "name": "Control", "isControl": true, "allocation": 50},
                {"variantId": "higher", "name": "Higher", "allocation": 50, "pricing": {"monthly": 390000}}
            ]
        })
    }

    fn a_campaign_with_two_subjects() -> Campaign {
        let body = json!({
            "name": "Keep your plan", "type": "retention", "trigger": {"type": "payment_failed"},
            "content": {"variants": [
                {"variantId": "plain", "subject": "Your payment", "body": "Update your card.", "allocation": 60},
                {"variantId": "urgent", "subject": "Action needed today", "body": "Update your card.", "allocation": 40},
                {"variantId": "retired", "subject": "Old", "body": "Old.", "allocation": 0}
            ], "callToAction": {"label": "Update card", "url": "/billing"}},
            "startDate": "2026-01-01"
        });
        crate::domain::campaign::CampaignInput::parse(&body)
            .unwrap()
            .into_campaign("cmp_01hzzzzzzzzzzzzzzzzzzzzzzz", None, "mgr", "t")
            .unwrap()
    }

    #[test]
    fn a_campaign_experiment_takes_the_campaigns_sent_variants_and_holds_no_tier() {
        let body = json!({"experimentType": "campaign", "campaignId": "cmp_01hzzzzzzzzzzzzzzzzzzzzzzz",
                          "name": "Subject test", "sequential": true});
        let new = NewExperiment::parse(&body).unwrap();
        assert_eq!(new.experiment_type, ExperimentType::Campaign);
        let e = NewExperiment { variants: experiment_variants(&a_campaign_with_two_subjects()).unwrap(), ..new }
            .into_experiment(new_experiment_id("01jf0000000000000000000001"), &actor());
        // The retired variant (allocation 0) is not tested; the first is the control.
        let got: Vec<(&str, bool, u32)> =
            e.variants.iter().map(|v| (v.variant_id.as_str(), v.is_control, v.allocation)).collect();
        assert_eq!(got, vec![("plain", true, 60), ("urgent", false, 40)]);
        assert_eq!(e.variants[1].messaging.as_ref().unwrap().headline.as_deref(), Some("Action needed today"));
        assert_eq!(e.campaign_id.as_deref(), Some("cmp_01hzzzzzzzzzzzzzzzzzzzzzzz"));
        assert_eq!(e.target_tier, "");
        let wire = serde_json::to_value(&e).unwrap();
        assert_eq!(wire["experimentType"], "campaign");
        assert!(wire.get("targetTier").is_none(), "{wire}");
        // Running, it never takes a tier's slot; a pricing experiment does.
        let started = e.transition(Action::Start, &actor()).unwrap();
        assert!(started.status.holds_tier() && !started.holds_tier());
        assert!(experiment().transition(Action::Start, &actor()).unwrap().holds_tier());
        // A stored experiment from before the type existed reads as pricing.
        let mut old = serde_json::to_value(experiment()).unwrap();
        old.as_object_mut().unwrap().remove("experimentType");
        assert_eq!(serde_json::from_value::<Experiment>(old).unwrap().experiment_type, ExperimentType::Pricing);
        // One variant left to send is nothing to test.
        let mut single = a_campaign_with_two_subjects();
        single.content.variants[1].allocation = 0;
        single.content.variants[0].allocation = 100;
        let err = experiment_variants(&single).unwrap_err();
        assert!(err.fields.contains_key("campaignId"), "{err:?}");
    }

    #[test]
    fn a_campaign_experiment_refuses_a_tier_variants_and_visitor_metrics() {
        let bad = json!({"experimentType": "campaign", "campaignId": 42, "name": "x", "targetTier": "gold",
                          "variants": [], "primaryMetric": "signups", "secondaryMetrics": ["retention"]});
        let err = NewExperiment::parse(&bad).unwrap_err();
        for field in ["campaignId", "targetTier", "variants", "primaryMetric", "secondaryMetrics"] {
            assert!(err.fields.contains_key(field), "{field}: {err:?}");
        }
        // A pricing experiment names no campaign; a bad type is named.
        let mut priced = body();
        priced["campaignId"] = json!("cmp_01hzzzzzzzzzzzzzzzzzzzzzzz");
        assert!(NewExperiment::parse(&priced).unwrap_err().fields.contains_key("campaignId"));
        priced["experimentType"] = json!("email");
        assert!(NewExperiment::parse(&priced).unwrap_err().fields.contains_key("experimentType"));
        // Edits: the type and campaign are fixed, and so are the variants.
        let e = campaign_experiment();
        assert!(ExperimentPatch::parse(&json!({"version": 1, "experimentType": "pricing"})).is_err());
        let patch = |b: Value| ExperimentPatch::parse(&b).unwrap();
        for (b, field) in [
            (json!({"version": 1, "targetTier": "gold"}), "targetTier"),
            (json!({"version": 1, "primaryMetric": "retention"}), "primaryMetric"),
        ] {
            match e.apply(patch(b), &actor()) {
                Err(ExperimentError::Invalid(v)) => assert!(v.fields.contains_key(field), "{v:?}"),
                other => panic!("{field}: {other:?}"),
            }
        }
        let renamed = e.apply(patch(json!({"version": 1, "name": "Subjects", "primaryMetric": "revenue"})), &actor());
        assert_eq!(renamed.unwrap().primary_metric, Metric::Revenue);
    }

    #[test]
    fn a_campaign_winner_is_recommended_for_every_recipient() {
        let e = campaign_experiment();
        let c = |participants, conversions| Counts { participants, conversions, ..Default::default() };
        // 60/40 as allocated, and "urgent" converts better.
        let r = results(&e, &[("plain".into(), c(6_000, 300)), ("urgent".into(), c(4_000, 320))]);
        assert!(!r.srm.mismatch, "{r:?}");
        assert_eq!(r.winner.as_deref(), Some("urgent"));
        assert!(r.recommendation.contains("send it to every recipient"), "{}", r.recommendation);
        // 50/50 against a 60/40 allocation is a sample-ratio mismatch.
        let r = results(&e, &[("plain".into(), c(5_000, 250)), ("urgent".into(), c(5_000, 400))]);
        assert!(r.srm.mismatch && r.winner.is_none(), "{r:?}");
        let done = e.transition(Action::Start, &actor()).unwrap();
        let rollout = Rollout { price_version: None, campaign_version: Some(3) };
        let implemented = done.implement("urgent", rollout, false, None, &actor()).unwrap();
        assert_eq!(implemented.status, ExperimentStatus::Completed);
        assert_eq!(implemented.implementation.unwrap().campaign_version, Some(3));
    }
}
