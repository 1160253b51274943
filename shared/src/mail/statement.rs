//! A partner's monthly statement as a PDF (docs/billing.md "Statements"), laid out
//! with the same flow as the quote PDF.

use super::pdf::{self, Flow};
use super::templates::format_amount;
use crate::domain::statement::Statement;

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn statement_pdf(s: &Statement) -> Vec<u8> {
    let money = |c: i64| format_amount(c, &s.currency);
    let mut f = Flow::default();
    f.line("Tierdesk", 10.0, true);
    f.gap(6.0);
    f.line(&format!("Statement for {}", s.month), 20.0, true);
    f.gap(4.0);
    f.line(&one_line(&s.company_name), 11.0, false);
    f.line(&format!("Plan: {}", s.tier_id), 11.0, false);
    f.gap(12.0);
    f.line("Usage", 13.0, true);
    f.rule();
    for m in &s.usage.metrics {
        let limit = m.limit.map_or("unlimited".to_string(), |l| l.to_string());
        f.row(&format!("{}: {} of {}", m.metric, m.used, limit), &money(m.overage_amount), 11.0, false);
    }
    if s.usage.metrics.is_empty() {
        f.line("No metered usage on this plan.", 11.0, false);
    }
    f.row("Overage this month (billed after the month ends)", &money(s.totals.overage), 11.0, true);
    f.gap(12.0);
    f.line("Invoices", 13.0, true);
    f.rule();
    for i in &s.invoices {
        let number = i.invoice_number.clone().unwrap_or_else(|| i.invoice_id.clone());
        f.row(&format!("{} {} ({})", i.created, one_line(&number), i.status), &money(i.amount), 11.0, false);
        if i.refunded > 0 {
            f.row("    refunded", &money(-i.refunded), 10.0, false);
        }
    }
    if s.invoices.is_empty() {
        f.line("No invoice was created this month.", 11.0, false);
    }
    f.rule();
    f.row("Billed", &money(s.totals.billed), 11.0, false);
    f.row("Paid", &money(s.totals.paid), 11.0, false);
    f.row("Refunded", &money(s.totals.refunded), 11.0, false);
    f.row("Outstanding", &money(s.totals.outstanding), 11.0, true);
    pdf::render(&format!("Statement {} {}", s.partner_id, s.month), &f.finish())
}
