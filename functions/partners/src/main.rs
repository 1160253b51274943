use lambda_http::{run, service_fn, Error};
use tierdesk::app::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let reminders = partners::reminder_schedule_from_env()?;
    let mail = tierdesk::mail::MailConfig::from_env()?;
    let app = App::connect(tierdesk::Config::from_env()?).await;
    let mailer = app.mailer(&mail).await;
    let app = partners::Partners::new(app).with_mailer(mailer).with_reminders(reminders);
    run(service_fn(|req| async { Ok::<_, Error>(partners::handle(&app, req).await) })).await
}
