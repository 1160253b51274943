//! A partner's monthly usage summary and billing statement (seed 001
//! "Reporting"; docs/billing.md "Statements"): the month's usage against the
//! plan's limits with overage in money, and the invoices created in the month
//! with what was paid, refunded and is still owed. Pure: the facts in, the
//! statement out; the CSV and PDF renderings are the function's and `mail::pdf`'s.

use crate::domain::billing::InvoiceRecord;
use crate::domain::usage::UsageReport;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementInvoice {
    pub invoice_id: String,
    pub invoice_number: Option<String>,
    /// The day Stripe created it (UTC).
    pub created: String,
    pub status: String,
    pub amount: i64,
    pub amount_paid: i64,
    pub refunded: i64,
    /// Due and not paid: open invoices' amount due.
    pub outstanding: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementTotals {
    pub billed: i64,
    pub paid: i64,
    pub refunded: i64,
    pub outstanding: i64,
    /// This month's overage so far: billed on the invoice after the month ends.
    pub overage: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    pub partner_id: String,
    pub company_name: String,
    pub month: String,
    pub tier_id: String,
    pub currency: String,
    pub usage: UsageReport,
    pub invoices: Vec<StatementInvoice>,
    pub totals: StatementTotals,
}

/// Void and uncollectible invoices bill nothing; a failed or pending one is
/// still owed.
fn owed(r: &InvoiceRecord) -> i64 {
    match r.status.as_str() {
        "failed" | "pending" => (r.amount - r.amount_paid).max(0),
        _ => 0,
    }
}

fn billed(r: &InvoiceRecord) -> i64 {
    match r.status.as_str() {
        "void" | "uncollectible" => 0,
        _ => r.amount,
    }
}

pub fn statement(
    partner_id: &str,
    company_name: &str,
    month: &str,
    usage: UsageReport,
    invoices: &[InvoiceRecord],
) -> Statement {
    let mut rows: Vec<StatementInvoice> = invoices
        .iter()
        .map(|r| StatementInvoice {
            invoice_id: r.invoice_id.clone(),
            invoice_number: r.invoice_number.clone(),
            created: chrono::DateTime::from_timestamp(r.stripe_created, 0)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            status: r.status.clone(),
            amount: billed(r),
            amount_paid: r.amount_paid,
            refunded: r.refunded_amount,
            outstanding: owed(r),
        })
        .collect();
    rows.sort_by(|a, b| a.created.cmp(&b.created).then(a.invoice_id.cmp(&b.invoice_id)));
    let totals = StatementTotals {
        billed: rows.iter().map(|r| r.amount).sum(),
        paid: rows.iter().map(|r| r.amount_paid).sum(),
        refunded: rows.iter().map(|r| r.refunded).sum(),
        outstanding: rows.iter().map(|r| r.outstanding).sum(),
        overage: usage.overage_total,
    };
    Statement {
        partner_id: partner_id.to_string(),
        company_name: company_name.to_string(),
        month: month.to_string(),
        tier_id: usage.tier_id.clone(),
        currency: usage.currency.clone(),
        usage,
        invoices: rows,
        totals,
    }
}

/// The month's range of Stripe `created` (epoch seconds, UTC), for the invoice
/// key range.
pub fn month_epochs(month: &str) -> Option<(i64, i64)> {
    let start = crate::domain::analytics::parse_month(month)?;
    let next = start.checked_add_months(chrono::Months::new(1))?;
    let at = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
    Some((at(start)?, at(next)? - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::usage::MetricUsage;

    fn record(id: &str, created: i64, status: &str, amount: i64, paid: i64, refunded: i64) -> InvoiceRecord {
        serde_json::from_value(serde_json::json!({
            "invoiceId": id, "partnerId": "p", "invoiceNumber": null, "amount": amount, "amountPaid": paid,
            "currency": "usd", "tier": "gold", "billingReason": null, "periodStart": null, "periodEnd": null,
            "status": status, "paidAt": null, "invoiceUrl": null, "pdfUrl": null, "attemptCount": 1,
            "stripeSubscriptionId": null, "stripeCreated": created, "createdAt": "t", "updatedAt": "t",
            "refundedAmount": refunded
        }))
        .unwrap()
    }

    fn usage() -> UsageReport {
        UsageReport {
            partner_id: "p".into(),
            tier_id: "gold".into(),
            period: "2026-11".into(),
            currency: "usd".into(),
            metrics: vec![MetricUsage {
                metric: "listings".into(),
                used: 120,
                limit: Some(100),
                remaining: Some(0),
                hard: false,
                overage: 20,
                overage_price: Some(150),
                overage_amount: 3_000,
            }],
            overage_total: 3_000,
            trial: None,
        }
    }

    #[test]
    fn totals_count_what_was_billed_paid_refunded_and_is_owed() {
        let (from, to) = month_epochs("2026-11").unwrap();
        assert_eq!((from, to), (1_793_491_200, 1_796_083_199));
        let invoices = [
            record("in_b", from + 86_400 * 10, "failed", 360_000, 0, 0),
            record("in_a", from + 60, "paid", 360_000, 360_000, 100_001),
            record("in_c", from + 86_400 * 20, "void", 50_000, 0, 0),
        ];
        let s = statement("p", "Acme", "2026-11", usage(), &invoices);
        assert_eq!(s.invoices.iter().map(|i| i.invoice_id.as_str()).collect::<Vec<_>>(), ["in_a", "in_b", "in_c"]);
        assert_eq!(s.invoices[0].created, "2026-11-01");
        assert_eq!(
            s.totals,
            StatementTotals { billed: 720_000, paid: 360_000, refunded: 100_001, outstanding: 360_000, overage: 3_000 }
        );
    }
}
