//! Sales commissions (docs/billing.md "Commissions"): rates, statements, the
//! month's attainment and targets. Accrual happens where invoices change
//! (`tierdesk::app::commission`), in the same transaction.

use crate::{Billing, Op};
use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use tierdesk::domain::analytics::{month_of, parse_month};
use tierdesk::domain::commission::{Attainment, CommissionRate, CommissionTotals, Targets};
use tierdesk::domain::permissions::Permission;
use tierdesk::domain::validation::{parse, ValidationError};
use tierdesk::http::csv::{csv_response, Cell, CsvWriter};
use tierdesk::http::request::{json_body, query};
use tierdesk::http::{json, Ctx, PathParams};
use tierdesk::store::{CommissionStore, SegmentStore, TierStore};
use tierdesk::ApiError;

fn month(app: &Billing, raw: Option<String>, field: &str) -> Result<String, ApiError> {
    match raw {
        None => Ok(month_of(app.clock.now().date_naive())),
        Some(raw) => parse_month(&raw)
            .map(month_of)
            .ok_or_else(|| ValidationError::single(field, "must be a month as YYYY-MM").into()),
    }
}

pub(crate) async fn dispatch(
    app: &Billing,
    ctx: &Ctx,
    req: &Request,
    params: &PathParams,
    op: Op,
) -> Result<Response<Body>, ApiError> {
    match op {
        Op::CommissionRates => {
            ctx.require(Permission::TierView)?;
            json(StatusCode::OK, &json!({ "items": app.store.commission_rates().await? }))
        }
        Op::SetCommissionRate => {
            let who = ctx.require(Permission::SystemConfig)?;
            let segment = params.get("segmentId");
            let body = json_body(req, app.config.max_body_bytes)?;
            let by = ctx.actor(who);
            let rate = CommissionRate::parse(segment, &body, &by)?;
            let known = parse::is_slug(segment)
                && (app.store.get_segment(segment).await?.is_some()
                    || app.store.active_catalog().await?.iter().any(|t| t.segment == segment));
            if !known {
                return Err(ApiError::not_found("segment"));
            }
            app.store.put_commission_rate(&rate, &app.audit("commission.rate", &by, None, &rate)).await?;
            json(StatusCode::OK, &rate)
        }
        Op::CommissionStatement => statement(app, ctx, req).await,
        Op::CommissionSummary => {
            ctx.require(Permission::ViewRevenueMetrics)?;
            let month = month(app, query(req, "month"), "month")?;
            let m = app.store.commission_month(&month).await?;
            let mut reps: Vec<&String> = m.reps.keys().chain(m.rep_targets.keys()).collect();
            reps.sort();
            reps.dedup();
            let mut segments: Vec<&String> = m.segments.keys().chain(m.segment_targets.keys()).collect();
            segments.sort();
            segments.dedup();
            let line = |id: &String, totals: Option<&CommissionTotals>, target: Option<&i64>| {
                Attainment::new(id, totals.copied().unwrap_or_default(), target.copied())
            };
            json(
                StatusCode::OK,
                &json!({
                    "month": month,
                    "reps": reps.iter().map(|r| line(r, m.reps.get(*r), m.rep_targets.get(*r))).collect::<Vec<_>>(),
                    "segments": segments
                        .iter()
                        .map(|s| line(s, m.segments.get(*s), m.segment_targets.get(*s)))
                        .collect::<Vec<_>>(),
                }),
            )
        }
        _ => {
            let who = ctx.require(Permission::ViewRevenueMetrics)?;
            let month = month(app, Some(params.get("month").to_string()), "month")?;
            let mut targets = Targets::parse(&json_body(req, app.config.max_body_bytes)?)?;
            if targets.reps.len() + targets.segments.len() > tierdesk::store::MAX_TARGETS {
                return Err(ValidationError::single("reps", "at most 98 targets in one write").into());
            }
            targets.month = month;
            let by = ctx.actor(who);
            app.store
                .put_targets(&targets.month, &targets, &app.audit("commission.targets", &by, None, &targets))
                .await?;
            json(StatusCode::OK, &targets)
        }
    }
}

/// A rep's statement for a month: every ledger line, the totals, the target and
/// the attainment. A rep reads their own (`repId` absent or their own id); another
/// rep's needs `view_revenue_metrics` (sales managers and admins).
async fn statement(app: &Billing, ctx: &Ctx, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = ctx.require(Permission::TierView)?;
    let rep = query(req, "repId").unwrap_or_else(|| who.subject.clone());
    if rep != who.subject {
        who.require(Permission::ViewRevenueMetrics)?;
    }
    let month = month(app, query(req, "month"), "month")?;
    let csv = match query(req, "format").as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ValidationError::single("format", "must be json or csv").into()),
    };
    let (lines, m) =
        tokio::try_join!(app.store.commission_statement(&rep, &month), app.store.commission_month(&month))?;
    let totals = m.reps.get(&rep).copied().unwrap_or_default();
    if csv {
        let mut w = CsvWriter::new(&[
            "at",
            "kind",
            "invoiceId",
            "partnerId",
            "segment",
            "basisPoints",
            "revenue",
            "commission",
        ]);
        for l in &lines {
            w.row(vec![
                Cell::Text(l.at.clone()),
                Cell::Text(l.kind.clone()),
                Cell::Text(l.invoice_id.clone()),
                Cell::Text(l.partner_id.clone()),
                Cell::Text(l.segment.clone()),
                Cell::Int(i64::from(l.basis_points)),
                Cell::Int(l.revenue),
                Cell::Int(l.amount),
            ]);
        }
        return Ok(csv_response(w.finish(), &format!("commissions-{month}"), None));
    }
    let attainment = Attainment::new(&rep, totals, m.rep_targets.get(&rep).copied());
    json(
        StatusCode::OK,
        &json!({
            "repId": rep,
            "month": month,
            "lines": lines,
            "commission": totals.commission,
            "revenue": totals.revenue,
            "target": attainment.target,
            "attainmentBasisPoints": attainment.attainment_basis_points,
        }),
    )
}
