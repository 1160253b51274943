use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let config = tierdesk::Config::from_env()?;
    let settings = quotes::settings_from_env()?;
    let mail = tierdesk::mail::MailConfig::from_env()?;
    let app = quotes::Quotes::connect(config, settings, &mail).await;
    run(service_fn(|req| async { Ok::<_, Error>(quotes::handle(&app, req).await) })).await
}
