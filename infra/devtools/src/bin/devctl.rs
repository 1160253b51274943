//! `devctl create-table | seed | token ROLE [PARTNER]`: local stack chores.

use devtools::{gateway, jwt, routes, seed};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let template_path = std::env::var("TIERDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into());
    match args.first().map(String::as_str) {
        Some("token") => {
            let role = args.get(1).ok_or("usage: devctl token ROLE [PARTNER]")?;
            if tierdesk::domain::permissions::Role::parse(role).is_none() {
                return Err(format!("unknown role {role}; use sales_rep, sales_manager, admin or partner").into());
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
        Some("seed") => {
            let config = tierdesk::Config::from_env()?;
            let routes = routes::from_template(&std::fs::read_to_string(&template_path)?)?;
            let handlers = gateway::handlers(&config).await;
            let gw = Arc::new(gateway::Gateway::new(routes, &handlers, jwt::secret_from_env())?);
            for line in seed::seed(&gw, &jwt::secret_from_env()).await? {
                println!("{line}");
            }
        }
        _ => return Err("usage: devctl create-table | seed | token ROLE [PARTNER]".into()),
    }
    Ok(())
}
