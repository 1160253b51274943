//! Monthly statements (docs/billing.md "Statements"): a partner's usage against
//! its plan and the month's invoices, as JSON, CSV or PDF. The partner reads its
//! own (`GET /api/billing/statement`); managers and admins read any partner's
//! (`GET /api/admin/partners/{partnerId}/statement`).
//!
//! Reads: the partner and its month's usage (one BatchGetItem), its plan's tier
//! (one GetItem) and the month's invoices (one Query of the partner's key range).

use crate::Billing;
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use tierdesk::domain::analytics::{month_distance, parse_month};
use tierdesk::domain::partner::Partner;
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::statement::{self, Statement};
use tierdesk::domain::subscription::SubscriptionError;
use tierdesk::domain::usage;
use tierdesk::domain::validation::ValidationError;
use tierdesk::http::csv::{csv_response, Cell, CsvWriter};
use tierdesk::http::request::query;
use tierdesk::http::{json, Ctx};
use tierdesk::store::{InvoiceStore, PartnerStore, Store, TierStore, UsageStore};
use tierdesk::ApiError;

/// How far back a statement may be asked for.
pub const MAX_MONTHS_BACK: i64 = 24;
/// Invoices read for one month: far more than a month can hold.
const MONTH_INVOICES: usize = 100;

enum Format {
    Json,
    Csv,
    Pdf,
}

fn ask(app: &Billing, req: &Request) -> Result<(String, Format), ApiError> {
    let now = tierdesk::domain::analytics::month_of(app.today());
    let month = match query(req, "month") {
        None => now.clone(),
        Some(raw)
            if raw.len() == 7
                && parse_month(&raw).is_some()
                && raw <= now
                && month_distance(&raw, &now) <= MAX_MONTHS_BACK =>
        {
            raw
        }
        Some(_) => {
            return Err(ValidationError::single(
                "month",
                format!("must be a month (YYYY-MM), not after this one and at most {MAX_MONTHS_BACK} back"),
            )
            .into())
        }
    };
    let format = match query(req, "format").as_deref() {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("pdf") => Format::Pdf,
        Some(_) => return Err(ValidationError::single("format", "must be json, csv or pdf").into()),
    };
    Ok((month, format))
}

async fn build(app: &Billing, partner: &Partner, month: &str) -> Result<Statement, ApiError> {
    let read = app.store.read_usage(&partner.partner_id, month).await?;
    let tier_id = usage::plan_tier_id(partner, app.today(), tierdesk::domain::tier::DEFAULT_TIER_ID);
    let tier = app.store.get_tier(&tier_id).await?.ok_or(SubscriptionError::NotFound)?;
    let plan = usage::plan(partner, &tier, app.today());
    let report = usage::report(&plan, month, &read.counts);
    let (from, to) =
        statement::month_epochs(month).ok_or_else(|| ValidationError::single("month", "is not a month"))?;
    let q = Store::partner_invoices_created(&partner.partner_id, from, to);
    let invoices = app.store.invoice_list_all(&q, MONTH_INVOICES).await?.ok_or_else(|| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_many_invoices", "the month has too many invoices to list")
    })?;
    Ok(statement::statement(&partner.partner_id, &partner.company_name, month, report, &invoices))
}

fn csv(s: &Statement) -> String {
    let mut out = CsvWriter::new(&[
        "section",
        "item",
        "status",
        "quantity",
        "limit",
        "amount",
        "paid",
        "refunded",
        "outstanding",
    ]);
    for m in &s.usage.metrics {
        out.row(vec![
            "usage".into(),
            m.metric.as_str().into(),
            Cell::Empty,
            Cell::Int(i64::try_from(m.used).unwrap_or(i64::MAX)),
            m.limit.map_or(Cell::Empty, |l| Cell::Int(i64::try_from(l).unwrap_or(i64::MAX))),
            Cell::Int(m.overage_amount),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
        ]);
    }
    for i in &s.invoices {
        out.row(vec![
            "invoice".into(),
            i.invoice_number.clone().unwrap_or_else(|| i.invoice_id.clone()).into(),
            i.status.as_str().into(),
            Cell::Empty,
            Cell::Empty,
            Cell::Int(i.amount),
            Cell::Int(i.amount_paid),
            Cell::Int(i.refunded),
            Cell::Int(i.outstanding),
        ]);
    }
    let t = s.totals;
    out.row(vec![
        "total".into(),
        s.month.as_str().into(),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Int(t.billed),
        Cell::Int(t.paid),
        Cell::Int(t.refunded),
        Cell::Int(t.outstanding),
    ]);
    out.finish()
}

fn respond(s: &Statement, format: Format) -> Result<Response<Body>, ApiError> {
    let name = format!("statement-{}-{}", s.partner_id, s.month);
    match format {
        Format::Json => json(StatusCode::OK, s),
        Format::Csv => Ok(csv_response(csv(s), &name, None)),
        Format::Pdf => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/pdf")
            .header("content-disposition", format!("attachment; filename=\"{name}.pdf\""))
            .header("cache-control", "no-store")
            .body(Body::Binary(tierdesk::mail::statement::statement_pdf(s)))
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "response")),
    }
}

/// The partner's own statement.
pub(crate) async fn own(app: &Billing, req: &Request, partner_id: &str) -> Result<Response<Body>, ApiError> {
    let (month, format) = ask(app, req)?;
    let partner = app.store.get_partner(partner_id).await?.ok_or(SubscriptionError::NotFound)?;
    respond(&build(app, &partner, &month).await?, format)
}

/// Any partner's statement, for managers and admins.
pub(crate) async fn staff(
    app: &Billing,
    ctx: &Ctx,
    req: &Request,
    partner_id: &str,
) -> Result<Response<Body>, ApiError> {
    ctx.require(Permission::ViewRevenueMetrics)?;
    let (month, format) = ask(app, req)?;
    let partner = app.store.get_partner(partner_id).await?.ok_or(SubscriptionError::NotFound)?;
    respond(&build(app, &partner, &month).await?, format)
}
