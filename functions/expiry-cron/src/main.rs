//! The expiry-cron Lambda: EventBridge's daily scheduled event in, the run summary out.
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use tierdesk::app::App;
use tierdesk::stripe_adapter::StripeGateway;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let cron_config = expiry_cron::CronConfig::from_env()?;
    let mail = tierdesk::mail::MailConfig::from_env()?;
    let stripe = StripeGateway::from_env().await?;
    let app = App::connect(tierdesk::Config::from_env()?).await;
    let mailer = app.mailer(&mail).await;
    let cron = expiry_cron::ExpiryCron::new(app, mailer, cron_config).with_stripe(stripe);
    run(service_fn(|event: LambdaEvent<Value>| expiry_cron::handle(&cron, event.payload))).await
}
