//! Structured JSON logs for the Lambdas: one object per line, level from `RUST_LOG` (default
//! info). Metric lines (`crate::metrics`, target [`METRICS_TARGET`]) are written as they
//! are, not wrapped in a log object: CloudWatch reads an embedded-metric-format document only
//! when it is the whole log event, and they are kept whatever `RUST_LOG` says.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{
    FmtContext, FormatEvent, FormatFields, MakeWriter, SubscriberBuilder,
};
use tracing_subscriber::registry::LookupSpan;

/// The tracing target of metric lines (`crate::metrics`): written as they are, unwrapped,
/// whatever `RUST_LOG` says. Defined here, not in `metrics`: `crates/stack` follows a function's
/// `crate::` paths through `slipway_aws`, and a Lambda that only logs (tasks) reads no
/// `SLIPWAY_STACK_NAME`.
pub const METRICS_TARGET: &str = "slipway_emf";
const TARGET: &str = METRICS_TARGET;

/// Installs the logger on standard output (where Lambda reads a function's logs), filtered by
/// `RUST_LOG`.
pub fn init() {
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = builder(std::io::stdout, &directives).try_init();
}

/// The same logger writing to `writer` and filtered by `directives` (`RUST_LOG`'s syntax), for
/// tests that read what a handler logs.
pub fn subscriber<W>(writer: W, directives: &str) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    builder(writer, directives).finish()
}

fn builder<W>(writer: W, directives: &str) -> SubscriberBuilder<JsonFields, Lines, EnvFilter, W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // Unset or unreadable: info. Metric lines pass whatever the directives say.
    let filter = match directives.trim() {
        "" => EnvFilter::new("info"),
        d => EnvFilter::try_new(d).unwrap_or_else(|_| EnvFilter::new("info")),
    }
    .add_directive(
        format!("{TARGET}=info")
            .parse()
            .expect("the metrics directive parses"),
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(JsonFields::new())
        .event_format(Lines {
            json: tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_target(false),
        })
        .with_writer(writer)
}

/// Log events as JSON objects; metric events as their message alone.
pub struct Lines {
    json: Format<Json>,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() != TARGET {
            return self.json.format_event(ctx, writer, event);
        }
        let mut message = Message {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut message);
        message.result?;
        writeln!(writer)
    }
}

/// Writes an event's message straight to the log line.
struct Message<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Visit for Message<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            // `format_args!`'s Debug is its Display: the line as built.
            self.result = write!(self.writer, "{value:?}");
        }
    }
}
