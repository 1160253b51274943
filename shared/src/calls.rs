//! Which AWS actions each function makes, recorded for the IAM test
//! (`tests/tests/api/iam.rs`), so the policies in `template.yaml` can be checked
//! against what the code really calls.
//!
//! Whoever runs a function's code labels it with the function's logical id in
//! `template.yaml` (`as_function`): the dev gateway around every handler call, the
//! expiry cron around its run. When `TIERDESK_RECORD_CALLS=<file>` is set, each
//! action made under a label is appended to that file once per process as a line
//! `<function> <action> <resource>`, e.g. `TiersFunction dynamodb:Query index/GSI1`.
//! Without the variable (always, in Lambda) nothing is written.

use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// The environment variable naming the file the actions are appended to.
pub const RECORD_ENV: &str = "TIERDESK_RECORD_CALLS";

tokio::task_local! {
    static FUNCTION: Arc<str>;
}

/// Runs `f` as the function `name` (its logical id in `template.yaml`).
pub async fn as_function<F: Future>(name: impl Into<Arc<str>>, f: F) -> F::Output {
    FUNCTION.scope(name.into(), f).await
}

/// The function the current task runs as, if any.
pub fn current_function() -> Option<Arc<str>> {
    FUNCTION.try_with(Arc::clone).ok()
}

fn record_file() -> Option<&'static PathBuf> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| std::env::var_os(RECORD_ENV).filter(|v| !v.is_empty()).map(PathBuf::from)).as_ref()
}

/// Notes that the current function made `action` (an IAM action name, e.g.
/// `dynamodb:PutItem`) on `resource` (`table`, `index/GSI1`, `identity`).
pub fn record(action: &str, resource: &str) {
    let Some(path) = record_file() else { return };
    let Some(function) = current_function() else { return };
    let line = format!("{function} {action} {resource}\n");
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    {
        let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        if !seen.insert(line.clone()) {
            return;
        }
    }
    // One short append per line: concurrent writers (other test processes) never
    // interleave within a line.
    let written =
        std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("{RECORD_ENV}: cannot append to {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_label_holds_inside_its_scope_only() {
        assert_eq!(current_function(), None);
        let inside = as_function("TiersFunction", async { current_function() }).await;
        assert_eq!(inside.as_deref(), Some("TiersFunction"));
        assert_eq!(current_function(), None);
    }
}
