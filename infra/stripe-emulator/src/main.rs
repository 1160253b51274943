//! `stripe-emulator [--port N] [--webhook-url URL]`; env STRIPE_EMULATOR_PORT,
//! STRIPE_WEBHOOK_URL, STRIPE_WEBHOOK_SECRET.

use stripe_emulator::{Emulator, EmulatorConfig, DEFAULT_PORT, DEFAULT_WEBHOOK_SECRET};

fn arg(args: &[String], flag: &str) -> Option<String> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned().or_else(|| {
        let prefix = format!("{flag}=");
        args.iter().find_map(|a| a.strip_prefix(&prefix).map(str::to_owned))
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match arg(&args, "--port").or_else(|| std::env::var("STRIPE_EMULATOR_PORT").ok()) {
        Some(p) => p.parse().map_err(|_| std::io::Error::other(format!("invalid port: {p}")))?,
        None => DEFAULT_PORT,
    };
    let config = EmulatorConfig {
        webhook_url: arg(&args, "--webhook-url").or_else(|| std::env::var("STRIPE_WEBHOOK_URL").ok()),
        webhook_secret: std::env::var("STRIPE_WEBHOOK_SECRET").unwrap_or_else(|_| DEFAULT_WEBHOOK_SECRET.to_owned()),
        now: None,
    };
    let webhook = config.webhook_url.clone().unwrap_or_else(|| "none".to_owned());
    let emulator = Emulator::start_on(config, port).await?;
    println!("stripe-emulator listening on {} (webhooks: {webhook})", emulator.base_url());
    tokio::select! {
        _ = emulator.serve_forever() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
