//! Notices to staff about their own work: a promotion waiting for approval, and
//! the outcome. Pure: the facts in, subject + HTML + text out. The billing
//! templates' layout speaks to partners about their subscription, so staff
//! notices have their own short one here.

use super::templates::{escape, format_amount, format_date, Locale, RenderedEmail};
use crate::domain::promotion::{DiscountSpec, Promotion};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotionNoticeKind {
    ApprovalRequested,
    Approved,
    Rejected,
}

impl PromotionNoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApprovalRequested => "promotion_approval_requested",
            Self::Approved => "promotion_approved",
            Self::Rejected => "promotion_rejected",
        }
    }
}

/// "25% off", "$500.00 off", "a 14-day free trial", "14 more trial days".
pub fn discount_label(discount: DiscountSpec, currency: &str) -> String {
    match discount {
        DiscountSpec::Percentage(p) => {
            let n = serde_json::to_value(p).map(|v| v.to_string()).unwrap_or_default();
            format!("{n}% off")
        }
        DiscountSpec::FixedAmount(c) => format!("{} off", format_amount(c, currency)),
        DiscountSpec::FreeTrial(d) => format!("a {d}-day free trial"),
        DiscountSpec::ExtendedTrial(d) => format!("{d} more trial days"),
    }
}

/// A notice to staff: the subject as heading, a lead sentence, a table of facts,
/// the next step when there is one, and the signature (with why the reader gets it).
pub(crate) fn staff_notice(
    subject: String,
    lead: &str,
    facts: &[(&str, String)],
    action: Option<&str>,
    signature: &str,
    why: Option<&str>,
) -> RenderedEmail {
    let mut text =
        format!("{lead}\n\n{}\n\n", facts.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n"));
    if let Some(action) = action {
        text.push_str(&format!("{action}\n\n"));
    }
    text.push_str(&format!("--\n{signature}\n"));
    if let Some(why) = why {
        text.push_str(&format!("{why}\n"));
    }
    let rows: String = facts
        .iter()
        .map(|(k, v)| {
            format!(
                "<tr><td style=\"padding:6px 12px;color:#627d98;\">{}</td><td style=\"padding:6px 12px;\">{}</td></tr>",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let action = action.map(|a| format!("<p>{}</p>", escape(a))).unwrap_or_default();
    let html = format!(
        "<!doctype html><html><body style=\"font-family:Arial,sans-serif;color:#102a43;\">\
         <h1 style=\"font-size:20px;\">{}</h1><p>{}</p><table role=\"presentation\">{rows}</table>\
         {action}<p style=\"color:#627d98;font-size:12px;\">{}</p></body></html>",
        escape(&subject),
        escape(lead),
        escape(signature)
    );
    RenderedEmail { subject, html, text }
}

/// The notice about `promotion` after `actor` did `kind`.
pub fn promotion_notice(
    kind: PromotionNoticeKind,
    promotion: &Promotion,
    actor: &str,
    reason: Option<&str>,
) -> RenderedEmail {
    // Subjects are one line whatever the name holds.
    let name: String = promotion.name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let subject = match kind {
        PromotionNoticeKind::ApprovalRequested => format!("Approval needed: promotion \"{name}\""),
        PromotionNoticeKind::Approved => format!("Approved: promotion \"{name}\" is live"),
        PromotionNoticeKind::Rejected => format!("Not approved: promotion \"{name}\""),
    };
    let lead = match kind {
        PromotionNoticeKind::ApprovalRequested => {
            format!("{actor} submitted a promotion that needs a second person's approval.")
        }
        PromotionNoticeKind::Approved => format!("{actor} approved your promotion; it is now active."),
        PromotionNoticeKind::Rejected => format!("{actor} sent your promotion back to draft."),
    };
    let mut facts: Vec<(&str, String)> = vec![
        ("Promotion", name.clone()),
        ("Id", promotion.promotion_id.clone()),
        ("Discount", discount_label(promotion.discount, &promotion.currency)),
        (
            "Runs",
            format!(
                "{} to {}",
                format_date(promotion.start_date, Locale::EnUs),
                format_date(promotion.end_date, Locale::EnUs)
            ),
        ),
        ("Created by", promotion.created_by.clone()),
    ];
    if let Some(max) = promotion.max_redemptions {
        facts.push(("Redemption cap", max.to_string()));
    }
    if let Some(reason) = reason.filter(|r| !r.trim().is_empty()) {
        facts.push(("Reason", reason.trim().to_string()));
    }
    let action = match kind {
        PromotionNoticeKind::ApprovalRequested => {
            "Approve or reject it in Tierdesk (POST …/approve or …/reject); its creator cannot approve it."
        }
        PromotionNoticeKind::Approved => "Customers can redeem it from its start date.",
        PromotionNoticeKind::Rejected => "Edit it and submit it again, or cancel it.",
    };
    staff_notice(
        subject,
        &lead,
        &facts,
        Some(action),
        "Tierdesk Pricing",
        Some("You get this because of your role in promotion approvals."),
    )
}

/// A staff alert (docs/alerts.md): what crossed which threshold, in which window.
pub fn alert_notice(alert: &crate::domain::alerts::Alert, console_url: &str) -> RenderedEmail {
    let subject = format!("Tierdesk alert: {}", alert.name);
    let facts = [
        ("Metric", alert.metric.as_str().replace('_', " ")),
        ("Window", alert.window.clone()),
        ("Value", alert.value.to_string()),
        ("Threshold", format!("{} ({})", alert.threshold, alert.metric.unit())),
    ];
    let action = format!("Open the console: {console_url}");
    staff_notice(
        subject,
        &alert.message,
        &facts,
        Some(&action),
        "Tierdesk",
        Some("You get this because you are a recipient of this alert rule."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Percent;
    use crate::domain::promotion::{new_promotion_id, Actor, NewPromotion};
    use serde_json::json;

    fn promotion(name: &str) -> Promotion {
        let actor = Actor::fixture("user-rep", "2026-11-01T00:00:00.000Z");
        NewPromotion::parse(&json!({
            "name": name, "discountType": "percentage", "discountValue": 12.5, "appliesTo": "both",
            "startDate": "2026-11-01", "endDate": "2026-12-31", "maxRedemptions": 50
        }))
        .unwrap()
        .into_promotion(new_promotion_id("01jc0000000000000000000000"), &actor)
        .unwrap()
    }

    #[test]
    fn notices_name_the_promotion_and_escape_it() {
        let p = promotion("<b>Winter</b> & co");
        let n = promotion_notice(PromotionNoticeKind::Rejected, &p, "user-boss", Some("too deep"));
        assert_eq!(n.subject, "Not approved: promotion \"<b>Winter</b> & co\"");
        assert!(n.html.contains("&lt;b&gt;Winter&lt;/b&gt; &amp; co"));
        assert!(!n.html.contains("<b>Winter"));
        assert!(n.text.contains("Discount: 12.5% off"));
        assert!(n.text.contains("Reason: too deep"));
        assert!(n.text.contains("Runs: November 1, 2026 to December 31, 2026"));
        let n = promotion_notice(PromotionNoticeKind::ApprovalRequested, &p, "user-rep", None);
        assert!(n.subject.starts_with("Approval needed"));
        assert!(!n.text.contains("Reason:"));
    }

    #[test]
    fn a_staff_notice_has_the_facts_then_the_next_step_then_the_signature() {
        let facts = [("Quote", "Q-2026-001".to_string()), ("Note", "a < b".to_string())];
        let with_step = staff_notice("Subject".into(), "Lead.", &facts, Some("Do this."), "Team", Some("Why."));
        assert_eq!(with_step.text, "Lead.\n\nQuote: Q-2026-001\nNote: a < b\n\nDo this.\n\n--\nTeam\nWhy.\n");
        assert!(with_step.html.contains("<td style=\"padding:6px 12px;\">a &lt; b</td>"));
        assert!(with_step.html.contains("</table><p>Do this.</p><p style="));
        let plain = staff_notice("Subject".into(), "Lead.", &facts, None, "Team", None);
        assert_eq!(plain.text, "Lead.\n\nQuote: Q-2026-001\nNote: a < b\n\n--\nTeam\n");
        assert!(plain.html.contains("</table><p style="), "no empty next-step paragraph");
        assert_eq!(plain.subject, "Subject");
    }

    #[test]
    fn discount_labels() {
        let pct = DiscountSpec::Percentage(Percent::from_basis_points(2_500).unwrap());
        assert_eq!(discount_label(pct, "usd"), "25% off");
        assert_eq!(discount_label(DiscountSpec::FixedAmount(50_000), "usd"), "$500.00 off");
        assert_eq!(discount_label(DiscountSpec::FreeTrial(14), "usd"), "a 14-day free trial");
        assert_eq!(discount_label(DiscountSpec::ExtendedTrial(7), "usd"), "7 more trial days");
    }
}
