//! Pure domain logic: no I/O, no clock, no id generation. Everything here is
//! unit-tested without the table.

pub mod actor;
pub mod addon;
pub mod analytics;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod commission;
pub mod dashboard_job;
pub mod defaults;
pub mod experiment;
pub mod invoice;
pub mod journey;
pub mod locale;
pub mod money;
pub mod partner;
pub mod permissions;
pub mod pricing;
pub mod pricing_rules;
pub mod privacy;
pub mod promotion;
pub mod quote;
pub mod renewal;
pub mod revenue;
pub mod scoring;
pub mod segment;
pub mod self_service;
pub mod stats;
pub mod storefront;
pub mod subscription;
pub mod tier;
pub mod transition;
pub mod upsell;
pub mod usage;
pub mod validation;
pub mod wire;
