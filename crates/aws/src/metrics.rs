//! The Lambdas' CloudWatch metrics. `slipway_core::metrics` builds each line in the embedded
//! metric format (EMF); this module stamps it with the stack and the time and hands it to the
//! logger under [`TARGET`], which writes the JSON object alone on its own line of standard
//! output (`crate::logging`): Lambda sends that line to the function's log group, where
//! CloudWatch Logs extracts the metrics. No API call and no IAM action beyond writing logs.

use std::sync::OnceLock;

use slipway_core::metrics::{Line, Scope};

/// The CloudFormation stack's name, the `Stack` dimension of every metric (the template sets
/// it); `slipway` when unset.
pub const ENV_STACK_NAME: &str = "SLIPWAY_STACK_NAME";
pub const DEFAULT_STACK_NAME: &str = "slipway";

/// The tracing target of metric lines: the logger writes their message as it is, unwrapped,
/// whatever `RUST_LOG` says.
pub use crate::logging::METRICS_TARGET as TARGET;

fn stack() -> &'static str {
    static STACK: OnceLock<String> = OnceLock::new();
    STACK.get_or_init(|| {
        std::env::var(ENV_STACK_NAME)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_STACK_NAME.to_string())
    })
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Writes the line `build` makes for this stack and now (`Scope`), if it makes one.
pub fn emit<L: Into<Option<Line>>>(build: impl FnOnce(Scope<'_>) -> L) {
    let line = build(Scope {
        stack: stack(),
        timestamp_ms: now_ms(),
    });
    if let Some(line) = line.into() {
        tracing::info!(target: TARGET, "{line}");
    }
}
