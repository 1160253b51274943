//! The integration tests: one binary, one module per area. Each test builds its
//! own `TestApp` (private table, gateway and secret) against the local stack that
//! `make test` starts.

mod addons;
mod alerts;
mod analytics;
mod architecture;
mod billing;
mod campaigns;
mod commissions;
mod concurrency;
mod contract;
mod cron;
mod dashboard_actions;
mod events;
mod experiments;
mod faults;
mod gateway_http;
mod history_fields;
mod iam;
mod intelligence;
mod invoices;
mod mail;
mod malformed;
mod partners;
mod partners_permissions;
mod permissions;
mod prices;
mod pricing_rules;
mod privacy;
mod promotions;
mod quotes;
mod segments;
mod self_service;
mod signup;
mod storefront;
mod stripe_webhook;
mod template;
mod tiers_admin;
mod tiers_public;
mod usage;
