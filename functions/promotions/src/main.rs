use lambda_http::{run, service_fn, Error};
use tierdesk::app::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let settings = promotions::settings_from_env()?;
    let mail = tierdesk::mail::MailConfig::from_env()?;
    let app = App::connect(tierdesk::Config::from_env()?).await;
    let mailer = app.mailer(&mail).await;
    let app = promotions::Promotions::new(app, settings, mailer);
    run(service_fn(|req| async { Ok::<_, Error>(promotions::handle(&app, req).await) })).await
}
