//! `devctl create-table | seed | invoke EVENT.json [FUNCTION] | token ROLE [PARTNER] | reindex-partner-names
//! | reindex-tier-catalog | reindex-invoices | assign-segments [--dry-run]`: local stack chores.
//! `assign-segments` is seed 002's backfill (tiers to segments by price; docs/storefront.md). The reindexes also run against a
//! deployed table (TABLE_NAME, AWS credentials): once for partners written before the name search
//! existed, for tiers archived before archived tiers left the live catalog partition, and for
//! invoices recorded before the staff invoice indexes (and after reps were reassigned, to move
//! their invoices to the new rep's index).

use devtools::{cron, gateway, invoke, jwt, routes, seed, seed_history, seed_invoices};
use std::sync::Arc;
use tierdesk::store::{InvoiceStore, PartnerStore, TierStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let template_path = std::env::var("TIERDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into());
    match args.first().map(String::as_str) {
        Some("token") => {
            let role = args.get(1).ok_or("usage: devctl token ROLE [PARTNER]")?;
            if tierdesk::domain::permissions::Role::parse(role).is_none() {
                return Err(
                    format!("unknown role {role}; use sales_rep, sales_manager, admin, partner or service").into()
                );
            }
            let partner = args.get(2).filter(|p| !p.is_empty());
            let subject = match partner {
                Some(p) => format!("dev-{role}-{p}"),
                None => format!("dev-{role}"),
            };
            let now = chrono::Utc::now().timestamp();
            println!(
                "{}",
                jwt::token_for(role, partner.map(String::as_str), &subject, now, 12 * 3600, &jwt::secret_from_env())
            );
        }
        Some("create-table") => {
            let config = tierdesk::Config::from_env()?;
            let store = tierdesk::store::Store::connect(&config).await;
            let template = std::fs::read_to_string(&template_path)?;
            tierdesk::store::table::create_from_template(store.client(), &template, &config.table_name).await?;
            println!("table {} ready", config.table_name);
        }
        Some("reindex-partner-names") => {
            let config = tierdesk::Config::from_env()?;
            let store = tierdesk::store::Store::connect(&config).await;
            let written = store.reindex_all_partner_names().await?;
            println!("reindexed the names of {written} partners in {}", config.table_name);
        }
        Some("reindex-tier-catalog") => {
            let config = tierdesk::Config::from_env()?;
            let store = tierdesk::store::Store::connect(&config).await;
            let moved = store.reindex_tier_catalog().await?;
            println!("moved {moved} archived tiers out of the live catalog partition of {}", config.table_name);
        }
        Some("assign-segments") => {
            let dry_run = match args.get(1).map(String::as_str) {
                None => false,
                Some("--dry-run") => true,
                Some(other) => return Err(format!("unknown option {other}; usage: devctl assign-segments [--dry-run]").into()),
            };
            let config = tierdesk::Config::from_env()?;
            let store = tierdesk::store::Store::connect(&config).await;
            let done = devtools::segments::assign_segments(&store, dry_run, chrono::Utc::now()).await?;
            for line in &done.lines {
                println!("{line}");
            }
            let verb = if dry_run { "would move" } else { "moved" };
            println!("{verb} {} tiers in {}", done.tiers_moved.len(), config.table_name);
        }
        Some("reindex-invoices") => {
            let config = tierdesk::Config::from_env()?;
            let store = tierdesk::store::Store::connect(&config).await;
            let written = store.reindex_all_invoices().await?;
            println!("reindexed {written} invoices in {}", config.table_name);
        }
        Some("seed") => {
            let config = tierdesk::Config::from_env()?;
            let routes = routes::from_template(&std::fs::read_to_string(&template_path)?)?;
            let handlers = gateway::handlers(&config).await;
            let gw = Arc::new(gateway::Gateway::new(routes, &handlers, jwt::secret_from_env())?);
            for line in seed::seed(&gw, &jwt::secret_from_env()).await? {
                println!("{line}");
            }
            let routes = routes::from_template(&std::fs::read_to_string(&template_path)?)?;
            for line in seed::seed_lapsed(&config, routes, &jwt::secret_from_env()).await? {
                println!("{line}");
            }
            for line in seed::seed_stripe_prices(&config).await {
                println!("{line}");
            }
            let services = gateway::Services::from_env().await;
            let store = tierdesk::store::Store::connect(&config).await;
            for line in seed_invoices::seed_invoices(&store, &services.stripe).await {
                println!("{line}");
            }
            for line in seed_history::seed_history(&store).await? {
                println!("{line}");
            }
            for line in seed::seed_experiment(&gw, &jwt::secret_from_env()).await? {
                println!("{line}");
            }
            // The daily job's intelligence step now, so the forecast, the elasticity
            // and the recommendations are there at once.
            let run = expiry_cron::RunDate::at_instant(chrono::Utc::now());
            match expiry_cron::DailyStep::run(&expiry_cron::intelligence::Intelligence, &store, &run).await {
                Ok(n) => println!("intelligence: {n} series, estimates and recommendations stored (0: inputs unchanged)"),
                Err(e) => return Err(format!("intelligence step: {e}").into()),
            }
            // A running campaign, and today's sends of it (docs/campaigns.md).
            for line in seed::seed_campaign(&gw, &jwt::secret_from_env()).await? {
                println!("{line}");
            }
            let job = cron::from_env(&config).await?;
            let step = job.campaign_step();
            match expiry_cron::DailyStep::run(&step, &store, &run).await {
                Ok(n) => println!("campaigns: {n} sent today"),
                Err(e) => return Err(format!("campaign step: {e}").into()),
            }
        }
        Some("invoke") => {
            // Feeds a payload-2.0 event file straight to the function that owns its
            // routeKey, as Lambda would (no gateway, no token check). An EventBridge
            // scheduled event goes to the template's scheduled function (the cron).
            // An optional FUNCTION (crate name, `make invoke FN=…`) must be the target.
            let path = args.get(1).ok_or("usage: devctl invoke EVENT.json [FUNCTION]")?;
            let raw = std::fs::read_to_string(path)?;
            let event: serde_json::Value = serde_json::from_str(&raw)?;
            let template = std::fs::read_to_string(&template_path)?;
            let route = match invoke::target(&template, &event, args.get(2).map(String::as_str), path)? {
                invoke::Target::Scheduled(function) => {
                    let config = tierdesk::Config::from_env()?;
                    let job = cron::from_env(&config).await?;
                    // As Lambda reports it: the handler's JSON, or its error.
                    match expiry_cron::handle(&job, event).await {
                        Ok(summary) => println!("{function} ok\n{}", serde_json::to_string_pretty(&summary)?),
                        Err(e) => println!("{function} error\n{e}"),
                    }
                    return Ok(());
                }
                invoke::Target::Cognito(function) => {
                    let config = tierdesk::Config::from_env()?;
                    let signup = signup::Signup::new(tierdesk::app::App::connect(config).await);
                    match signup::handle(&signup, event, "devctl-invoke").await {
                        Ok(out) => println!("{function} ok\n{}", serde_json::to_string_pretty(&out)?),
                        Err(e) => println!("{function} error\n{e}"),
                    }
                    return Ok(());
                }
                invoke::Target::Http(route) => route,
            };
            let config = tierdesk::Config::from_env()?;
            let handlers = gateway::handlers(&config).await;
            let handler = handlers.get(&route.function).ok_or("function not hosted locally")?;
            let response = handler(lambda_http::request::from_str(&raw)?).await;
            let body = match response.body() {
                lambda_http::Body::Text(t) => t.clone(),
                _ => String::new(),
            };
            println!("{} {}\n{body}", route.function, response.status());
        }
        _ => {
            return Err("usage: devctl create-table | seed | invoke EVENT.json [FUNCTION] | token ROLE [PARTNER] | reindex-partner-names | reindex-tier-catalog | reindex-invoices | assign-segments [--dry-run]".into())
        }
    }
    Ok(())
}
