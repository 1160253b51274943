//! The cost model of `bench cost`: public prices, the traffic a partner brings in a
//! month, and the arithmetic that turns measured per-request figures into a
//! monthly bill. Pure: no I/O, no clock; `bench cost` feeds it measurements.
//! `docs/costs.md` explains the inputs and the limits.

use std::collections::BTreeMap;
use std::ops::{Add, Mul};

/// Public on-demand list prices, US East (N. Virginia, us-east-1), in US dollars,
/// as published by AWS and known to the author in 2025 (DynamoDB's after its
/// 1 November 2024 on-demand reduction). Not re-read from the live pricing pages on
/// 2026-12-05, when this file was written: check them before quoting a figure.
pub mod prices {
    pub const REGION: &str = "us-east-1";
    pub const AS_OF: &str = "AWS list prices known in 2025, written down 2026-12-05 (not re-checked live)";
    /// Lambda, arm64, per GB-second of billed duration (first 7.5 billion GB-s a month).
    pub const LAMBDA_ARM64_GB_SECOND: f64 = 0.000_013_333_4;
    /// Lambda, per request (invocation): $0.20 per million.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// DynamoDB on-demand: $0.125 per million read request units.
    pub const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
    /// DynamoDB on-demand: $0.625 per million write request units.
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// API Gateway HTTP API: $1.00 per million requests (first 300 million a month,
    /// each request metered in 512 KB increments).
    pub const API_GATEWAY_REQUEST: f64 = 1.00 / 1e6;
    /// SES outbound email: $0.10 per 1,000 (attachment data, $0.12 per GB, left out).
    pub const SES_EMAIL: f64 = 0.10 / 1e3;
    /// CloudWatch Logs ingestion (Standard class, and Lambda's first tier): $0.50 per GB.
    pub const LOGS_GB: f64 = 0.50;
}

/// Assumptions that turn a measurement on this machine into Lambda billed duration.
pub mod assumptions {
    /// A Lambda function gets one full vCPU at 1,769 MB and a proportional share below
    /// it; CPU-bound time measured on one core of this machine is stretched by
    /// 1769 / memory. Assumes one core here ≈ one Graviton vCPU.
    pub const FULL_VCPU_MB: f64 = 1769.0;
    /// In-region latency of one DynamoDB call seen from Lambda (GetItem/Query are a
    /// few ms, transactions more): one figure for all calls.
    pub const DYNAMODB_CALL_MS: f64 = 5.0;
    /// One SES `SendEmail` from Lambda.
    pub const SES_CALL_MS: f64 = 40.0;
    /// One Stripe API call from us-east-1 (a network round trip and Stripe's own work).
    pub const STRIPE_CALL_MS: f64 = 300.0;
    /// Lambda's own lines per invocation (START, END, REPORT and the X-Ray line that
    /// `Tracing: Active` adds), in bytes.
    pub const PLATFORM_LOG_BYTES: f64 = 400.0;
}

/// Dollars by service.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bill {
    pub lambda_requests: f64,
    pub lambda_duration: f64,
    pub api_gateway: f64,
    pub dynamodb_reads: f64,
    pub dynamodb_writes: f64,
    pub ses: f64,
    pub logs: f64,
}

impl Bill {
    pub fn total(&self) -> f64 {
        self.lambda_requests
            + self.lambda_duration
            + self.api_gateway
            + self.dynamodb_reads
            + self.dynamodb_writes
            + self.ses
            + self.logs
    }

    /// (service, dollars), in a fixed order for tables.
    pub fn lines(&self) -> [(&'static str, f64); 7] {
        [
            ("Lambda requests", self.lambda_requests),
            ("Lambda duration", self.lambda_duration),
            ("API Gateway", self.api_gateway),
            ("DynamoDB reads", self.dynamodb_reads),
            ("DynamoDB writes", self.dynamodb_writes),
            ("SES", self.ses),
            ("CloudWatch Logs", self.logs),
        ]
    }
}

impl Add for Bill {
    type Output = Bill;
    fn add(self, o: Bill) -> Bill {
        Bill {
            lambda_requests: self.lambda_requests + o.lambda_requests,
            lambda_duration: self.lambda_duration + o.lambda_duration,
            api_gateway: self.api_gateway + o.api_gateway,
            dynamodb_reads: self.dynamodb_reads + o.dynamodb_reads,
            dynamodb_writes: self.dynamodb_writes + o.dynamodb_writes,
            ses: self.ses + o.ses,
            logs: self.logs + o.logs,
        }
    }
}

impl Mul<f64> for Bill {
    type Output = Bill;
    fn mul(self, k: f64) -> Bill {
        Bill {
            lambda_requests: self.lambda_requests * k,
            lambda_duration: self.lambda_duration * k,
            api_gateway: self.api_gateway * k,
            dynamodb_reads: self.dynamodb_reads * k,
            dynamodb_writes: self.dynamodb_writes * k,
            ses: self.ses * k,
            logs: self.logs * k,
        }
    }
}

/// What one invocation of a route does, on average (means over the measured requests).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Invocation {
    /// Tierdesk's own time on this machine's core, ms.
    pub own_ms: f64,
    pub dynamodb_calls: f64,
    pub ses_calls: f64,
    pub stripe_calls: f64,
    pub read_units: f64,
    pub write_units: f64,
    /// The function's own log bytes (Lambda's lines are added by the model).
    pub log_bytes: f64,
    /// Whether the call comes through API Gateway (everything but the cron).
    pub via_api_gateway: bool,
}

/// The unit prices the model uses (a struct so tests can use round numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub lambda_gb_second: f64,
    pub lambda_request: f64,
    pub dynamodb_read_unit: f64,
    pub dynamodb_write_unit: f64,
    pub api_gateway_request: f64,
    pub ses_email: f64,
    pub logs_gb: f64,
}

impl Prices {
    pub const LIST: Prices = Prices {
        lambda_gb_second: prices::LAMBDA_ARM64_GB_SECOND,
        lambda_request: prices::LAMBDA_REQUEST,
        dynamodb_read_unit: prices::DYNAMODB_READ_UNIT,
        dynamodb_write_unit: prices::DYNAMODB_WRITE_UNIT,
        api_gateway_request: prices::API_GATEWAY_REQUEST,
        ses_email: prices::SES_EMAIL,
        logs_gb: prices::LOGS_GB,
    };
}

/// How measured time becomes billed time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Runtime {
    /// The function's configured memory (`MemorySize` in `template.yaml`).
    pub memory_mb: f64,
    pub full_vcpu_mb: f64,
    pub dynamodb_call_ms: f64,
    pub ses_call_ms: f64,
    pub stripe_call_ms: f64,
    pub platform_log_bytes: f64,
}

impl Runtime {
    pub fn at_memory(memory_mb: f64) -> Runtime {
        Runtime {
            memory_mb,
            full_vcpu_mb: assumptions::FULL_VCPU_MB,
            dynamodb_call_ms: assumptions::DYNAMODB_CALL_MS,
            ses_call_ms: assumptions::SES_CALL_MS,
            stripe_call_ms: assumptions::STRIPE_CALL_MS,
            platform_log_bytes: assumptions::PLATFORM_LOG_BYTES,
        }
    }

    /// How much slower CPU-bound work runs at this memory than on a full vCPU.
    pub fn cpu_stretch(&self) -> f64 {
        (self.full_vcpu_mb / self.memory_mb).max(1.0)
    }

    /// Lambda's billed duration of one invocation, ms: own time stretched to the
    /// memory's CPU share, plus the assumed in-region waits, rounded up to 1 ms as
    /// Lambda bills.
    pub fn billed_ms(&self, i: &Invocation) -> f64 {
        let ms = i.own_ms * self.cpu_stretch()
            + i.dynamodb_calls * self.dynamodb_call_ms
            + i.ses_calls * self.ses_call_ms
            + i.stripe_calls * self.stripe_call_ms;
        ms.ceil().max(1.0)
    }
}

/// The bill of one invocation.
pub fn invocation_bill(i: &Invocation, rt: &Runtime, p: &Prices) -> Bill {
    let gb_seconds = rt.billed_ms(i) / 1000.0 * (rt.memory_mb / 1024.0);
    Bill {
        lambda_requests: p.lambda_request,
        lambda_duration: gb_seconds * p.lambda_gb_second,
        api_gateway: if i.via_api_gateway { p.api_gateway_request } else { 0.0 },
        dynamodb_reads: i.read_units * p.dynamodb_read_unit,
        dynamodb_writes: i.write_units * p.dynamodb_write_unit,
        ses: i.ses_calls * p.ses_email,
        logs: (i.log_bytes + rt.platform_log_bytes) / 1e9 * p.logs_gb,
    }
}

/// How often a route is called in a month: per partner, plus a fixed number that
/// does not grow with partners (staff dashboards, the daily cron).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    pub route: &'static str,
    pub per_partner: f64,
    pub fixed: f64,
}

/// Calls in a month at `partners` partners.
pub fn monthly_calls(t: &Traffic, partners: f64) -> f64 {
    t.per_partner * partners + t.fixed
}

/// The month's bill at `partners` partners, by route (routes without a measurement
/// are skipped and returned as missing).
pub fn monthly_by_route<'a>(
    traffic: &'a [Traffic],
    measured: &BTreeMap<String, Invocation>,
    partners: f64,
    rt: &Runtime,
    p: &Prices,
) -> (Vec<(&'a str, Bill)>, Vec<&'a str>) {
    let mut bills = Vec::new();
    let mut missing = Vec::new();
    for t in traffic {
        match measured.get(t.route) {
            Some(i) => bills.push((t.route, invocation_bill(i, rt, p) * monthly_calls(t, partners))),
            None => missing.push(t.route),
        }
    }
    (bills, missing)
}

pub fn sum(bills: &[(&str, Bill)]) -> Bill {
    bills.iter().fold(Bill::default(), |acc, (_, b)| acc + *b)
}

/// The traffic model: what one partner brings in a month, and the fixed monthly
/// work. Route names are the API's route keys as `template.yaml` spells them;
/// `cron run` and `cron reminder` are the expiry cron's daily run and its work per
/// reminder sent. Each figure is an assumption, explained in `docs/costs.md`.
pub const TRAFFIC: &[Traffic] = &[
    // The partner's own product: metered usage and feature gates.
    Traffic { route: "POST /api/usage/track", per_partner: 300.0, fixed: 0.0 },
    Traffic { route: "POST /api/features/check", per_partner: 900.0, fixed: 0.0 },
    Traffic { route: "GET /api/usage/current", per_partner: 20.0, fixed: 0.0 },
    Traffic { route: "GET /api/usage/limits", per_partner: 10.0, fixed: 0.0 },
    Traffic { route: "GET /api/features/available", per_partner: 20.0, fixed: 0.0 },
    // The partner's billing screens, and the Stripe events of a monthly renewal.
    Traffic { route: "GET /api/billing/subscription", per_partner: 4.0, fixed: 0.0 },
    Traffic { route: "GET /api/billing/invoices", per_partner: 1.0, fixed: 0.0 },
    Traffic { route: "POST /api/billing/subscribe", per_partner: 0.03, fixed: 0.0 },
    Traffic { route: "PUT /api/billing/upgrade", per_partner: 0.02, fixed: 0.0 },
    Traffic { route: "PUT /api/billing/downgrade", per_partner: 0.01, fixed: 0.0 },
    Traffic { route: "DELETE /api/billing/cancel", per_partner: 0.01, fixed: 0.0 },
    Traffic { route: "POST /api/webhooks/stripe", per_partner: 4.0, fixed: 0.0 },
    // Public pages, attributed per partner listed (pricing page, comparisons,
    // price tests, promotion codes).
    Traffic { route: "GET /api/tiers", per_partner: 30.0, fixed: 0.0 },
    Traffic { route: "GET /api/tiers/compare", per_partner: 5.0, fixed: 0.0 },
    Traffic { route: "POST /api/tiers/upgrade-price", per_partner: 3.0, fixed: 0.0 },
    Traffic { route: "POST /api/experiments/{experimentId}/assign", per_partner: 20.0, fixed: 0.0 },
    Traffic { route: "POST /api/experiments/{experimentId}/track", per_partner: 1.0, fixed: 0.0 },
    Traffic { route: "POST /api/promotions/validate", per_partner: 2.0, fixed: 0.0 },
    Traffic { route: "POST /api/promotions/redeem", per_partner: 0.05, fixed: 0.0 },
    // Staff work per partner: account views, notes, tier changes, sign-ups, quotes.
    Traffic { route: "GET /api/admin/partners/{partnerId}", per_partner: 3.0, fixed: 0.0 },
    Traffic { route: "GET /api/admin/partners/{partnerId}/history", per_partner: 0.5, fixed: 0.0 },
    Traffic { route: "GET /api/admin/partners/{partnerId}/journey", per_partner: 0.5, fixed: 0.0 },
    Traffic { route: "POST /api/admin/partners/{partnerId}/notes", per_partner: 0.3, fixed: 0.0 },
    Traffic { route: "PATCH /api/admin/partners/{partnerId}", per_partner: 0.2, fixed: 0.0 },
    Traffic { route: "PATCH /api/admin/partners/{partnerId}/engagement-tier", per_partner: 0.1, fixed: 0.0 },
    Traffic { route: "POST /api/admin/partners/{partnerId}/assign", per_partner: 0.05, fixed: 0.0 },
    Traffic { route: "POST /api/admin/partners/{partnerId}/cancel", per_partner: 0.01, fixed: 0.0 },
    Traffic { route: "POST /api/admin/partners", per_partner: 0.03, fixed: 0.0 },
    Traffic { route: "GET /api/admin/partners", per_partner: 0.5, fixed: 0.0 },
    Traffic { route: "GET /api/admin/subscriptions", per_partner: 0.2, fixed: 0.0 },
    Traffic { route: "POST /api/admin/quotes", per_partner: 0.05, fixed: 0.0 },
    Traffic { route: "GET /api/admin/quotes/{quoteId}", per_partner: 0.1, fixed: 0.0 },
    Traffic { route: "GET /api/admin/quotes/{quoteId}/pdf", per_partner: 0.05, fixed: 0.0 },
    Traffic { route: "POST /api/admin/quotes/{quoteId}/send", per_partner: 0.05, fixed: 0.0 },
    Traffic { route: "GET /api/quotes/view/{token}", per_partner: 0.1, fixed: 0.0 },
    Traffic { route: "POST /api/quotes/view/{token}/accept", per_partner: 0.02, fixed: 0.0 },
    // The expiry cron: one run a day, and a reminder or expiry for a quarter of the
    // partners each month (yearly terms: a 30-day and a 7-day notice, then the end).
    Traffic { route: "cron run", per_partner: 0.0, fixed: 30.0 },
    Traffic { route: "cron reminder", per_partner: 0.25, fixed: 0.0 },
    // Staff dashboards and catalog work: a team's, whatever the number of partners.
    Traffic { route: "GET /api/admin/tiers/analytics", per_partner: 0.0, fixed: 600.0 },
    Traffic { route: "GET /api/admin/tiers/revenue", per_partner: 0.0, fixed: 300.0 },
    Traffic { route: "GET /api/admin/tiers/funnel", per_partner: 0.0, fixed: 300.0 },
    Traffic { route: "GET /api/admin/analytics/movements", per_partner: 0.0, fixed: 300.0 },
    Traffic { route: "GET /api/admin/analytics/cohorts", per_partner: 0.0, fixed: 100.0 },
    Traffic { route: "GET /api/admin/tiers/{tierId}/metrics", per_partner: 0.0, fixed: 100.0 },
    Traffic { route: "GET /api/admin/tiers", per_partner: 0.0, fixed: 300.0 },
    Traffic { route: "GET /api/admin/tiers/{tierId}", per_partner: 0.0, fixed: 100.0 },
    Traffic { route: "PUT /api/admin/tiers/{tierId}", per_partner: 0.0, fixed: 20.0 },
    Traffic { route: "POST /api/admin/promotions", per_partner: 0.0, fixed: 10.0 },
    Traffic { route: "GET /api/admin/experiments/{experimentId}/results", per_partner: 0.0, fixed: 100.0 },
];

/// What a route's own time grows with, fitted over the measured routes.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnTimeFit {
    /// ms: fixed, per read unit, per write unit, per Stripe call, per SES call.
    pub coefficients: [f64; 5],
    pub r_squared: f64,
    pub routes: usize,
}

impl Invocation {
    fn drivers(&self) -> [f64; 5] {
        [1.0, self.read_units, self.write_units, self.stripe_calls, self.ses_calls]
    }
}

/// Ordinary least squares of each route's own-time median on what it did (read and
/// write units, Stripe and SES calls), over the routes that reach DynamoDB: the
/// answer to "why is this route above the aim" in one line. None when the routes
/// cannot separate the drivers (fewer routes than drivers, or collinear ones).
pub fn explain_own_time(routes: &[(f64, Invocation)]) -> Option<OwnTimeFit> {
    const K: usize = 5;
    let rows: Vec<(f64, [f64; K])> =
        routes.iter().filter(|(_, i)| i.dynamodb_calls >= 1.0).map(|(own, i)| (*own, i.drivers())).collect();
    if rows.len() <= K {
        return None;
    }
    // Normal equations (XᵀX) b = Xᵀy, solved by Gaussian elimination with pivoting.
    let mut a = [[0.0f64; K + 1]; K];
    for (y, x) in &rows {
        for i in 0..K {
            for j in 0..K {
                a[i][j] += x[i] * x[j];
            }
            a[i][K] += x[i] * y;
        }
    }
    for col in 0..K {
        let pivot = (col..K).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[pivot][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (x, p) in row.iter_mut().zip(pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    let coefficients: [f64; K] = std::array::from_fn(|i| a[i][K] / a[i][i]);
    let predict = |x: &[f64; K]| x.iter().zip(&coefficients).map(|(x, c)| x * c).sum::<f64>();
    let mean = rows.iter().map(|(y, _)| y).sum::<f64>() / rows.len() as f64;
    let total: f64 = rows.iter().map(|(y, _)| (y - mean).powi(2)).sum();
    let residual: f64 = rows.iter().map(|(y, x)| (y - predict(x)).powi(2)).sum();
    let r_squared = if total > 0.0 { 1.0 - residual / total } else { 1.0 };
    Some(OwnTimeFit { coefficients, r_squared, routes: rows.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(read_units: f64, write_units: f64, stripe_calls: f64, ses_calls: f64) -> Invocation {
        Invocation {
            own_ms: 0.0,
            dynamodb_calls: 1.0,
            ses_calls,
            stripe_calls,
            read_units,
            write_units,
            log_bytes: 0.0,
            via_api_gateway: true,
        }
    }

    #[test]
    fn own_time_fit_recovers_the_costs_that_made_the_times() {
        // own = 0.05 + 0.3 per read unit + 0.02 per write unit + 0.4 per Stripe call + 0.25 per SES call
        let truth = |i: &Invocation| {
            0.05 + 0.3 * i.read_units + 0.02 * i.write_units + 0.4 * i.stripe_calls + 0.25 * i.ses_calls
        };
        let shapes = [
            invocation(1.0, 0.0, 0.0, 0.0),
            invocation(9.0, 0.0, 0.0, 0.0),
            invocation(1.0, 4.0, 0.0, 0.0),
            invocation(2.5, 20.0, 0.0, 1.0),
            invocation(2.0, 8.0, 2.0, 0.0),
            invocation(4.0, 12.0, 3.0, 1.0),
            invocation(14.0, 0.0, 0.0, 0.0),
            invocation(1.0, 16.0, 0.0, 1.0),
        ];
        let routes: Vec<(f64, Invocation)> = shapes.iter().map(|i| (truth(i), *i)).collect();
        let fit = explain_own_time(&routes).expect("enough routes");
        for (got, want) in fit.coefficients.iter().zip([0.05, 0.3, 0.02, 0.4, 0.25]) {
            assert!((got - want).abs() < 1e-9, "{:?}", fit.coefficients);
        }
        assert!((fit.r_squared - 1.0).abs() < 1e-9);
        assert_eq!(fit.routes, 8);
    }

    #[test]
    fn own_time_fit_declines_what_the_routes_cannot_separate() {
        // Every route reads 1 unit and does nothing else: the drivers are collinear.
        let routes: Vec<(f64, Invocation)> =
            (0..8).map(|n| (0.3 + n as f64 * 0.01, invocation(1.0, 0.0, 0.0, 0.0))).collect();
        assert_eq!(explain_own_time(&routes), None);
        // Cached reads that reach no table are left out of the fit.
        let cached: Vec<(f64, Invocation)> =
            (0..8).map(|_| (0.02, Invocation { dynamodb_calls: 0.3, ..invocation(0.5, 0.0, 0.0, 0.0) })).collect();
        assert_eq!(explain_own_time(&cached), None);
    }

    fn round_prices() -> Prices {
        Prices {
            lambda_gb_second: 0.00001,
            lambda_request: 0.0000002,
            dynamodb_read_unit: 0.0000001,
            dynamodb_write_unit: 0.0000005,
            api_gateway_request: 0.000001,
            ses_email: 0.0001,
            logs_gb: 0.5,
        }
    }

    fn runtime() -> Runtime {
        Runtime {
            memory_mb: 256.0,
            full_vcpu_mb: 1024.0,
            dynamodb_call_ms: 5.0,
            ses_call_ms: 40.0,
            stripe_call_ms: 300.0,
            platform_log_bytes: 400.0,
        }
    }

    #[test]
    fn billed_duration_stretches_cpu_adds_waits_and_rounds_up_to_a_millisecond() {
        let i = Invocation { own_ms: 0.3, dynamodb_calls: 2.0, ses_calls: 1.0, ..Invocation::default() };
        // 0.3 ms × 1024/256 = 1.2 ms, + 2 × 5 + 40 = 51.2 → 52 ms.
        assert_eq!(runtime().billed_ms(&i), 52.0);
        // Nothing at all still bills 1 ms.
        assert_eq!(runtime().billed_ms(&Invocation::default()), 1.0);
        // Above a full vCPU, CPU time is not shortened.
        let big = Runtime { memory_mb: 4096.0, ..runtime() };
        assert_eq!(big.cpu_stretch(), 1.0);
    }

    #[test]
    fn one_invocation_bills_each_service() {
        let i = Invocation {
            own_ms: 0.5,
            dynamodb_calls: 1.0,
            read_units: 2.0,
            write_units: 4.0,
            ses_calls: 0.0,
            log_bytes: 600.0,
            via_api_gateway: true,
            ..Invocation::default()
        };
        let b = invocation_bill(&i, &runtime(), &round_prices());
        // 0.5 × 4 + 5 = 7 ms; 0.007 s × 0.25 GB = 0.00175 GB-s × 0.00001 = 1.75e-8.
        assert!((b.lambda_duration - 1.75e-8).abs() < 1e-15, "{}", b.lambda_duration);
        assert_eq!(b.lambda_requests, 0.0000002);
        assert_eq!(b.api_gateway, 0.000001);
        assert!((b.dynamodb_reads - 2e-7).abs() < 1e-15);
        assert!((b.dynamodb_writes - 2e-6).abs() < 1e-15);
        // 600 + 400 bytes = 1e-6 GB × $0.5.
        assert!((b.logs - 5e-7).abs() < 1e-15);
        assert_eq!(b.ses, 0.0);
        let cron = invocation_bill(&Invocation { via_api_gateway: false, ..i }, &runtime(), &round_prices());
        assert_eq!(cron.api_gateway, 0.0);
    }

    #[test]
    fn a_month_is_linear_in_partners_plus_the_fixed_work() {
        let traffic = [
            Traffic { route: "a", per_partner: 10.0, fixed: 0.0 },
            Traffic { route: "b", per_partner: 0.0, fixed: 100.0 },
            Traffic { route: "unmeasured", per_partner: 1.0, fixed: 0.0 },
        ];
        let only_ses = |n: f64| Invocation { ses_calls: n, ..Invocation::default() };
        let measured = BTreeMap::from([("a".to_string(), only_ses(1.0)), ("b".to_string(), only_ses(2.0))]);
        let p = round_prices();
        let rt = runtime();
        let (bills, missing) = monthly_by_route(&traffic, &measured, 1000.0, &rt, &p);
        assert_eq!(missing, vec!["unmeasured"]);
        // a: 10 × 1,000 = 10,000 calls, one email each = $1; b: 100 calls × 2 emails = $0.02.
        let total = sum(&bills);
        assert!((total.ses - 1.02).abs() < 1e-9, "{}", total.ses);
        // 10,100 invocations, 1 ms each (nothing measured), at 0.25 GB: $0.02 in requests.
        assert!((total.lambda_requests - 10_100.0 * 0.0000002).abs() < 1e-12);
        let (ten_x, _) = monthly_by_route(&traffic, &measured, 10_000.0, &rt, &p);
        // Ten times the partners: route a ×10, the fixed route unchanged.
        assert!((ten_x[0].1.ses - 10.0).abs() < 1e-9);
        assert!((ten_x[1].1.ses - 0.02).abs() < 1e-9);
    }

    #[test]
    fn every_traffic_route_is_named_once() {
        let mut seen = std::collections::HashSet::new();
        for t in TRAFFIC {
            assert!(seen.insert(t.route), "{} twice", t.route);
            assert!(t.per_partner >= 0.0 && t.fixed >= 0.0);
        }
    }
}
