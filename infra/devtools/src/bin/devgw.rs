//! `devgw`: serves every HTTP route of template.yaml on 127.0.0.1, and runs the
//! expiry cron daily and on demand (`devtools::cron`), and serves the console
//! (`web/dist`) with its dev sign-in (`devtools::web`).

use devtools::{cron, gateway, jwt, routes, web};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tierdesk::telemetry::init();
    let config = tierdesk::Config::from_env()?;
    let template_path = std::env::var("TIERDESK_TEMPLATE").unwrap_or_else(|_| "template.yaml".into());
    let port: u16 = std::env::var("TIERDESK_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let routes = routes::from_template(&std::fs::read_to_string(&template_path)?)?;
    let handlers = gateway::handlers(&config).await;
    let secret = jwt::secret_from_env();
    let gw = Arc::new(gateway::Gateway::new(routes, &handlers, secret.clone())?);
    // The expiry cron: on demand at `POST /_local/cron/expiry-cron`, and once a day.
    let expiry_cron = Arc::new(cron::from_env(&config).await?);
    if let Some(at) = cron::daily_at_from_env()? {
        cron::spawn_daily(expiry_cron.clone(), at);
        tracing::info!(at = %at, "expiry cron runs daily (UTC)");
    }
    // Cognito's sign-up triggers, which the dev sign-up page feeds (`devtools::web`).
    let signup = Arc::new(signup::Signup::new(tierdesk::app::App::connect(config.clone()).await));
    let app = cron::router(expiry_cron).merge(web::router(gw, web::dir_from_env(), secret, signup));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(port, "dev gateway listening on 127.0.0.1");
    axum::serve(listener, app).await?;
    Ok(())
}
