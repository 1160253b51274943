use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let config = tierdesk::Config::from_env()?;
    let app = partners::Partners::connect(config).await?;
    run(service_fn(|req| async { Ok::<_, Error>(partners::handle(&app, req).await) })).await
}
