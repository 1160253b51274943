use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let app = billing::Billing::connect(tierdesk::Config::from_env()?).await?;
    run(service_fn(|req| async { Ok::<_, Error>(billing::handle(&app, req).await) })).await
}
