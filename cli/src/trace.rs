//! `traceql trace`: one whole trace, as a waterfall or as OTLP JSON.

use std::process::ExitCode;

use crate::common::{failure, open};
use crate::render::{self, Format};
use crate::{data, fail};

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
    /// Output format: the waterfall, or the trace as an OTLP/JSON
    /// `ExportTraceServiceRequest`.
    #[arg(long, default_value = "waterfall", value_parser = render::format::parser(Format::TRACE))]
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
    match render::trace(&spans, args.format) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}
