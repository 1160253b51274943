//! The signup Lambda: Cognito's post-confirmation and pre-token-generation triggers
//! in, the event back (with the partner's claims on a token request).
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use tierdesk::app::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tierdesk::telemetry::init();
    let signup = &signup::Signup::new(App::connect(tierdesk::Config::from_env()?).await);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        signup::handle(signup, event.payload, &event.context.request_id).await.map_err(Error::from)
    }))
    .await
}
