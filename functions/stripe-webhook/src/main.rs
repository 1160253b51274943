use lambda_http::{run, service_fn, Error};
use tierdesk::app::App;
use tierdesk::stripe_adapter::StripeGateway;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let stripe = StripeGateway::from_env().await?;
    let mail = tierdesk::mail::MailConfig::from_env()?;
    let app = App::connect(tierdesk::Config::from_env()?).await;
    let mailer = app.mailer(&mail).await;
    let app = stripe_webhook::StripeWebhook::new(app, stripe, mailer);
    run(service_fn(|req| async { Ok::<_, Error>(stripe_webhook::handle(&app, req).await) })).await
}
