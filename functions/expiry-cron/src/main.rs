//! The expiry-cron Lambda: EventBridge's daily scheduled event in, the run summary out.
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let config = tierdesk::Config::from_env()?;
    let cron_config = expiry_cron::CronConfig::from_env()?;
    let mail = tierdesk::mail::MailConfig::from_env()?;
    let stripe = tierdesk::billing::StripeGateway::new(tierdesk::billing::StripeConfig::from_env().await?)
        .map_err(|e| e.to_string())?;
    let cron = expiry_cron::ExpiryCron::connect(config, cron_config, &mail)
        .await
        .with_step(Box::new(expiry_cron::overage::BillOverage { stripe }));
    run(service_fn(|event: LambdaEvent<Value>| expiry_cron::handle(&cron, event.payload))).await
}
