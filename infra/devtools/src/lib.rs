//! Local-only tooling: dev tokens, API Gateway v2 event building, the dev gateway
//! that serves every route of `template.yaml`, table bootstrap and demo seeding.
//! Nothing here ships in a Lambda.

pub mod analytics_bench;
pub mod billing_bench;
pub mod cost;
pub mod cost_bench;
pub mod cron;
pub mod event;
pub mod experiments_bench;
pub mod gateway;
pub mod invoke;
pub mod jwt;
pub mod promotions_bench;
pub mod quotes_bench;
pub mod routes;
pub mod seed;
pub mod seed_history;
pub mod seed_invoices;
pub mod segments;
pub mod usage_bench;
pub mod web;
