//! `traceql trace`: one whole trace, as a waterfall or as OTLP JSON.

use std::process::ExitCode;

use traceql_exec::otlp::request_from_spans;

use crate::query::{failure, open};
use crate::render::Look;
use crate::render::waterfall::waterfall;
use crate::{data, fail, say};

/// Output formats of `traceql trace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The span tree with a time bar per span, services, durations, errors and the
    /// critical path.
    Waterfall,
    /// The trace as an OTLP/JSON `ExportTraceServiceRequest`.
    Json,
}

/// Arguments of `traceql trace`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql trace 9cd3aded5780380407a67f88147d4b87
  traceql trace --format json 9cd3aded5780380407a67f88147d4b87 > trace.json")]
pub struct TraceArgs {
    /// The trace id (hex; leading zeros may be left out).
    trace_id: String,
    #[command(flatten)]
    store: data::ReadArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Waterfall)]
    format: Format,
}

/// Runs `traceql trace`.
pub async fn run(args: &TraceArgs) -> ExitCode {
    let engine = match open(&args.store).await {
        Ok(engine) => engine,
        Err(e) => return failure(&e),
    };
    let spans = match engine.trace(&args.trace_id).await {
        Ok(spans) => spans,
        Err(e) => return failure(&e),
    };
    if spans.is_empty() {
        return fail(&format!("trace {} not found", args.trace_id));
    }
    match args.format {
        Format::Json => {
            let request = request_from_spans(&spans);
            say(&serde_json::to_string_pretty(&request).unwrap_or_default());
        }
        Format::Waterfall => say(&waterfall(&spans, &Look::stdout())),
    }
    ExitCode::SUCCESS
}
