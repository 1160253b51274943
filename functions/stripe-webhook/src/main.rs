use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let app = stripe_webhook::StripeWebhook::connect(tierdesk::Config::from_env()?).await?;
    run(service_fn(|req| async { Ok::<_, Error>(stripe_webhook::handle(&app, req).await) })).await
}
