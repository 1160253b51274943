use lambda_http::{run, service_fn, Error};
use tierdesk::app::App;
use tierdesk::stripe_adapter::StripeGateway;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let settings = quotes::settings_from_env()?;
    let mail = tierdesk::mail::MailConfig::from_env()?;
    let app = App::connect(tierdesk::Config::from_env()?).await;
    let mailer = app.mailer(&mail).await;
    let mut app = quotes::Quotes::new(app, settings, mailer);
    match StripeGateway::from_env().await {
        Ok(stripe) => app = app.with_stripe(stripe),
        Err(_) => tracing::error!("stripe configuration invalid: accepted quotes stay billing-pending"),
    }
    run(service_fn(|req| async { Ok::<_, Error>(quotes::handle(&app, req).await) })).await
}
