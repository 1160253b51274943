//! A quote as a document: the PDF the prospect receives, the email that carries
//! it with the view link, and the notices to staff about approvals and the
//! prospect's answer. Pure: the quote in, bytes and text out.

use super::pdf::{self, Flow};
use super::staff::staff_notice;
use super::templates::{escape, format_amount, format_date, Locale, RenderedEmail};
use crate::domain::money::BillingPeriod;
use crate::domain::quote::{DiscountTerms, Quote};

/// One line for subjects and PDF rows, whatever a name holds.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn period_word(p: BillingPeriod) -> &'static str {
    match p {
        BillingPeriod::Monthly => "month",
        BillingPeriod::Yearly => "year",
    }
}

/// "15% (volume)" / "$500.00 (loyalty)".
pub fn discount_label(terms: DiscountTerms, currency: &str) -> String {
    match terms {
        DiscountTerms::Percentage(p) => {
            let n = serde_json::to_value(p).map(|v| v.to_string()).unwrap_or_default();
            format!("{n}% off")
        }
        DiscountTerms::FixedAmount(c) => format!("{} off", format_amount(c, currency)),
    }
}

/// The quote as a PDF: number, prospect, lines, discounts, totals, terms, validity.
pub fn quote_pdf(q: &Quote) -> Vec<u8> {
    let money = |c: i64| format_amount(c, &q.currency);
    let per = period_word(q.billing_period);
    let mut f = Flow::default();
    f.line("Tierdesk", 10.0, true);
    f.gap(6.0);
    f.line(&format!("Quote {}", q.quote_number), 20.0, true);
    f.gap(4.0);
    let prepared = match &q.prospect_company {
        Some(company) => format!("Prepared for {}, {}", one_line(&q.prospect_name), one_line(company)),
        None => format!("Prepared for {}", one_line(&q.prospect_name)),
    };
    f.line(&prepared, 11.0, false);
    f.line(&one_line(&q.prospect_email), 11.0, false);
    f.line(&format!("Issued {}", q.created_at.get(..10).unwrap_or(&q.created_at)), 11.0, false);
    f.line(&format!("Valid until {}", format_date(q.valid_until, Locale::EnUs)), 11.0, true);
    f.gap(12.0);
    f.rule();
    f.row(&format!("{} plan, billed per {per}", one_line(&q.base_tier_name)), &money(q.base_price), 11.0, false);
    if let Some(l) = q.customizations.additional_listings {
        f.row(
            &format!("Additional listings: {} x {}", l.quantity, money(l.price_per_unit)),
            &money(l.total),
            11.0,
            false,
        );
    }
    if let Some(l) = q.customizations.additional_images {
        f.row(
            &format!("Additional images per listing: {} x {}", l.quantity, money(l.price_per_unit)),
            &money(l.total),
            11.0,
            false,
        );
    }
    for cf in &q.customizations.custom_features {
        f.row(&format!("Custom feature: {}", one_line(&cf.name)), &money(cf.price), 11.0, false);
    }
    f.rule();
    f.row("Subtotal", &money(q.subtotal), 11.0, true);
    for d in &q.discounts {
        f.row(
            &format!("Discount: {} ({})", discount_label(d.terms, &q.currency), one_line(&d.reason)),
            &format!("-{}", money(d.amount)),
            11.0,
            false,
        );
    }
    f.rule();
    f.row(&format!("Total per {per}"), &money(q.final_price), 14.0, true);
    if q.billing_period == BillingPeriod::Yearly {
        f.row("Per month", &money(q.price_per_month), 10.0, false);
    }
    f.gap(10.0);
    if let Some(months) = q.commitment_months {
        f.line(&format!("Commitment: {months} months from acceptance"), 11.0, false);
    }
    if !q.customizations.custom_limits.is_empty() {
        let limits: Vec<String> =
            q.customizations.custom_limits.iter().map(|(name, value)| format!("{name} {value}")).collect();
        f.line(&format!("Limits: {}", limits.join(", ")), 11.0, false);
    }
    f.gap(10.0);
    f.line("Terms and conditions", 11.0, true);
    f.paragraph(&q.terms_and_conditions, 9.5);
    if let Some(notes) = &q.notes {
        f.gap(6.0);
        f.line("Notes", 11.0, true);
        f.paragraph(notes, 9.5);
    }
    f.gap(10.0);
    f.line(
        &format!(
            "This offer is valid until {} (end of day UTC). Accept it from the link in the email that came with it.",
            format_date(q.valid_until, Locale::EnUs)
        ),
        9.0,
        false,
    );
    pdf::render(&format!("Quote {}", q.quote_number), &f.finish())
}

/// The file name of the attachment.
pub fn pdf_file_name(q: &Quote) -> String {
    format!("{}.pdf", q.quote_number)
}

/// The email to the prospect: the offer in short, the link, the PDF attached.
pub fn quote_email(q: &Quote, view_url: &str) -> RenderedEmail {
    let money = |c: i64| format_amount(c, &q.currency);
    let subject = format!("Your quote {} from Tierdesk", q.quote_number);
    let per = period_word(q.billing_period);
    let valid = format_date(q.valid_until, Locale::EnUs);
    let name = one_line(&q.prospect_name);
    let text = format!(
        "Hello {name},\n\nHere is your quote {} for the {} plan: {} per {per}.\n\n\
         View and accept it here: {view_url}\n\nThe quote is attached as a PDF and is valid until {valid}.\n\n\
         --\nTierdesk Sales\n",
        q.quote_number,
        one_line(&q.base_tier_name),
        money(q.final_price),
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:Arial,sans-serif;color:#102a43;\">\
         <p>Hello {},</p><p>Here is your quote <strong>{}</strong> for the {} plan: <strong>{}</strong> per {per}.</p>\
         <p><a href=\"{}\" style=\"background:#2f80ed;color:#fff;padding:10px 16px;border-radius:4px;\
         text-decoration:none;\">View and accept the quote</a></p>\
         <p>The quote is attached as a PDF and is valid until {}.</p>\
         <p style=\"color:#627d98;font-size:12px;\">Tierdesk Sales</p></body></html>",
        escape(&name),
        escape(&q.quote_number),
        escape(&one_line(&q.base_tier_name)),
        escape(&money(q.final_price)),
        escape(view_url),
        escape(&valid),
    );
    RenderedEmail { subject, html, text }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteNoticeKind {
    ApprovalRequested,
    Approved,
    ApprovalRejected,
    AcceptedByProspect,
    RejectedByProspect,
}

impl QuoteNoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApprovalRequested => "quote_approval_requested",
            Self::Approved => "quote_approved",
            Self::ApprovalRejected => "quote_approval_rejected",
            Self::AcceptedByProspect => "quote_accepted",
            Self::RejectedByProspect => "quote_rejected",
        }
    }
}

/// A notice to staff about `q` after `actor` did `kind`.
pub fn quote_notice(kind: QuoteNoticeKind, q: &Quote, actor: &str, reason: Option<&str>) -> RenderedEmail {
    let number = &q.quote_number;
    let prospect = one_line(&q.prospect_name);
    let subject = match kind {
        QuoteNoticeKind::ApprovalRequested => format!("Approval needed: quote {number} for {prospect}"),
        QuoteNoticeKind::Approved => format!("Approved: quote {number} may be sent"),
        QuoteNoticeKind::ApprovalRejected => format!("Not approved: quote {number}"),
        QuoteNoticeKind::AcceptedByProspect => format!("Accepted: {prospect} accepted quote {number}"),
        QuoteNoticeKind::RejectedByProspect => format!("Declined: {prospect} declined quote {number}"),
    };
    let lead = match kind {
        QuoteNoticeKind::ApprovalRequested => {
            format!("{actor} wrote a quote whose discount is above their authority; it needs a manager's approval.")
        }
        QuoteNoticeKind::Approved => format!("{actor} approved the quote's pricing. You can send it now."),
        QuoteNoticeKind::ApprovalRejected => {
            format!("{actor} did not approve the quote's pricing; it is back in draft.")
        }
        QuoteNoticeKind::AcceptedByProspect => {
            "The prospect accepted the quote; their subscription now runs at the quoted price.".to_string()
        }
        QuoteNoticeKind::RejectedByProspect => "The prospect declined the quote.".to_string(),
    };
    let money = |c: i64| format_amount(c, &q.currency);
    let mut facts: Vec<(&str, String)> = vec![
        ("Quote", number.clone()),
        ("Prospect", prospect.clone()),
        ("Plan", format!("{} ({})", one_line(&q.base_tier_name), q.billing_period.as_str())),
        ("Subtotal", money(q.subtotal)),
        ("Discount", format!("{} ({}%)", money(q.total_discount), q.total_discount_percent)),
        ("Final price", money(q.final_price)),
        ("Sales rep", q.sales_rep.clone()),
    ];
    if let Some(c) = &q.conversion {
        facts.push(("Partner", c.partner_id.clone()));
    }
    if let Some(reason) = reason.filter(|r| !r.trim().is_empty()) {
        facts.push(("Reason", one_line(reason.trim())));
    }
    staff_notice(subject, &lead, &facts, None, "Tierdesk Sales", None)
}
