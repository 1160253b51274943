use lambda_http::{run, service_fn, Error};
use tierdesk::app::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let config = tierdesk::Config::from_env()?;
    let app = usage::Usage::new(App::connect(config).await);
    run(service_fn(|req| async { Ok::<_, Error>(usage::handle(&app, req).await) })).await
}
