//! Structured logs: JSON lines in Lambda (CloudWatch parses them), compact text on a
//! terminal. Handlers log ids, routes, statuses and counts, never request bodies,
//! emails or names.

use tracing_subscriber::{fmt, EnvFilter};

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = if in_lambda {
        // Lambda adds its own timestamp; ANSI colours would be noise in CloudWatch.
        builder.json().without_time().with_current_span(false).try_init()
    } else {
        builder.compact().try_init()
    };
    // A second init (tests, dev gateway hosting several functions) is harmless.
    let _ = result;
}
