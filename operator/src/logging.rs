//! The `logbook` binary's log output: `--log-format text|json` and
//! `--log-level`, one line per event on stderr.
//!
//! Each line carries the fields of every span it was emitted in, flattened
//! beside its own (an event's field wins over a span's of the same name):
//! the operator runs each cluster's work in a `cluster` span, so a line
//! about a cluster names its `namespace`, its `name` and the journal `seq`
//! it concerns. In JSON each line is one object with `timestamp`, `level`,
//! `target` and `message` first; in text the same fields follow the
//! message as `key=value`.
//!
//! The filter is `--log-level` when given (a level or any `EnvFilter`
//! directive, e.g. `info,logbook=debug`), else `RUST_LOG` when set, else
//! `info`: the command line wins over the environment, as for every other
//! option.
//!
//! This module formats what it is given; keeping secrets out of log lines
//! is the business of every call site (no spec, Secret, password or
//! connection string is ever a field).

use std::io::Write;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter when neither `--log-level` nor `RUST_LOG` says.
pub const DEFAULT_LEVEL: &str = "info";

/// Keys every line has, written first; a field of the same name is dropped.
const RESERVED: [&str; 4] = ["timestamp", "level", "target", "message"];

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The filter is not a level nor an `EnvFilter` directive.
    #[error("invalid log level {given:?} (from {from}): {reason}")]
    Filter {
        /// What was given.
        given: String,
        /// `--log-level` or `RUST_LOG`.
        from: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// A global subscriber was set already (only in tests).
    #[error("cannot install the log subscriber: {0}")]
    Install(String),
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// `timestamp LEVEL target: message key=value ...`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The global log options of `logbook`.
#[derive(Debug, Clone, Default, Args)]
pub struct LogArgs {
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Which lines to log: a level (`error`, `warn`, `info`, `debug`,
    /// `trace`) or `EnvFilter` directives (`info,logbook=debug`). Wins over
    /// `RUST_LOG`; default: `RUST_LOG`, else `info`.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

impl LogArgs {
    /// The filter these options select, with `rust_log` the environment's
    /// `RUST_LOG`.
    ///
    /// # Errors
    /// [`Error::Filter`] when the chosen text does not parse.
    pub fn filter(&self, rust_log: Option<&str>) -> Result<EnvFilter, Error> {
        let (given, from) = match (&self.log_level, rust_log) {
            (Some(level), _) => (level.as_str(), "--log-level"),
            (None, Some(env)) if !env.trim().is_empty() => (env, "RUST_LOG"),
            (None, _) => (DEFAULT_LEVEL, "the default"),
        };
        EnvFilter::try_new(given).map_err(|e| Error::Filter {
            given: given.to_owned(),
            from,
            reason: e.to_string(),
        })
    }
}

/// Installs the global subscriber: `args`' filter and format, on stderr.
///
/// # Errors
/// A filter that does not parse; a subscriber already installed.
pub fn init(args: &LogArgs) -> Result<(), Error> {
    let filter = args.filter(std::env::var("RUST_LOG").ok().as_deref())?;
    tracing_subscriber::registry()
        .with(filter)
        .with(Lines::new(args.log_format, std::io::stderr))
        .try_init()
        .map_err(|e| Error::Install(e.to_string()))
}

/// A span's fields, kept in its extensions.
#[derive(Debug, Default)]
struct SpanFields(Map<String, Value>);

/// Collects fields as JSON values.
struct Collect<'a>(&'a mut Map<String, Value>);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%x` fields arrive here too, with a Debug that is their Display.
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// The layer writing one line per event.
pub struct Lines<W> {
    format: LogFormat,
    writer: W,
}

impl<W> Lines<W> {
    /// Lines in `format`, each written through one writer `writer` makes.
    pub const fn new(format: LogFormat, writer: W) -> Self {
        Self { format, writer }
    }
}

impl<S, W> Layer<S> for Lines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = SpanFields::default();
        attrs.record(&mut Collect(&mut fields.0));
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(&mut Collect(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(own) = span.extensions().get::<SpanFields>() {
                    fields.extend(own.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut own = Map::new();
        event.record(&mut Collect(&mut own));
        let message = own.remove("message").unwrap_or(Value::Null);
        fields.extend(own);
        let meta = event.metadata();
        let line = render(
            self.format,
            &k8s_openapi::jiff::Timestamp::now().to_string(),
            meta.level().as_str(),
            meta.target(),
            &message,
            &fields,
        );
        // A log line that cannot be written has nowhere else to go.
        let _ = self.writer.make_writer().write_all(line.as_bytes());
    }
}

/// One line, with its newline.
fn render(
    format: LogFormat,
    timestamp: &str,
    level: &str,
    target: &str,
    message: &Value,
    fields: &Map<String, Value>,
) -> String {
    let rest = fields
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()));
    match format {
        LogFormat::Json => {
            // Written by hand so the fixed keys come first (a `Map` sorts).
            let mut text = format!(
                "{{\"timestamp\":{},\"level\":{},\"target\":{},\"message\":{}",
                Value::from(timestamp),
                Value::from(level),
                Value::from(target),
                message
            );
            for (k, v) in rest {
                text.push_str(&format!(",{}:{v}", Value::from(k.as_str())));
            }
            text.push_str("}\n");
            text
        }
        LogFormat::Text => {
            let message = match message {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut text = format!("{timestamp} {level:>5} {target}: {message}");
            for (k, v) in rest {
                match v {
                    Value::String(s) => text.push_str(&format!(" {k}={s}")),
                    other => text.push_str(&format!(" {k}={other}")),
                }
            }
            text.push('\n');
            text
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn lines_of(format: LogFormat, emit: impl FnOnce()) -> Vec<String> {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new("debug"))
            .with(Lines::new(format, buffer.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn json_lines_carry_the_span_fields_and_the_seq_recorded_since() {
        let lines = lines_of(LogFormat::Json, || {
            let span = tracing::info_span!(
                "cluster",
                namespace = "default",
                name = "demo",
                seq = tracing::field::Empty
            );
            let _entered = span.enter();
            tracing::info!("before any event");
            span.record("seq", 7_u64);
            tracing::warn!(pod = "demo-1", failures = 3, "probe failed");
            span.record("seq", 9_u64);
            tracing::info!(name = "override", "an event's field wins");
        });
        let objects: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(objects.len(), 3);
        assert_eq!(objects[0]["namespace"], "default");
        assert_eq!(objects[0]["name"], "demo");
        assert!(objects[0].get("seq").is_none());
        assert_eq!(objects[1]["seq"], 7);
        assert_eq!(objects[1]["level"], "WARN");
        assert_eq!(objects[1]["message"], "probe failed");
        assert_eq!(objects[1]["pod"], "demo-1");
        assert_eq!(objects[1]["failures"], 3);
        assert_eq!(objects[2]["seq"], 9);
        assert_eq!(objects[2]["name"], "override");
        assert!(objects[2]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(lines[0].starts_with("{\"timestamp\":"), "{}", lines[0]);
        assert_eq!(objects[2]["target"], module_path!());
    }

    #[test]
    fn text_lines_follow_the_message_with_the_fields() {
        let lines = lines_of(LogFormat::Text, || {
            let span =
                tracing::info_span!("cluster", namespace = "default", name = "demo", seq = 3_u64);
            let _entered = span.enter();
            tracing::info!(epoch = 2, "taking the journal over");
        });
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].ends_with(
                "INFO logbook_operator::logging::tests: taking the journal over epoch=2 name=demo namespace=default seq=3"
            ),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn the_command_line_wins_over_rust_log_which_wins_over_the_default() {
        let given = LogArgs {
            log_format: LogFormat::Json,
            log_level: Some("warn".to_owned()),
        };
        assert_eq!(given.filter(Some("debug")).unwrap().to_string(), "warn");
        let unset = LogArgs::default();
        assert_eq!(unset.filter(Some("debug")).unwrap().to_string(), "debug");
        assert_eq!(unset.filter(Some(" ")).unwrap().to_string(), "info");
        assert_eq!(unset.filter(None).unwrap().to_string(), "info");
        let bad = LogArgs {
            log_format: LogFormat::Text,
            log_level: Some("logbook=loud".to_owned()),
        };
        assert!(matches!(
            bad.filter(None),
            Err(Error::Filter {
                from: "--log-level",
                ..
            })
        ));
    }
}
