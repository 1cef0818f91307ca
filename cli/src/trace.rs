//! `traceql trace`: one whole trace, as a waterfall followed by its insights (N+1
//! runs, slow queries, where its time went), or as OTLP JSON.

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
    #[command(flatten)]
    thresholds: crate::insights::ThresholdArgs,
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
    if let Err(e) = render::trace(&spans, args.format) {
        return fail(&e);
    }
    if args.format != Format::Waterfall {
        return ExitCode::SUCCESS;
    }
    // The waterfall is followed by what is wrong with the trace.
    let thresholds = match args.thresholds.thresholds() {
        Ok(thresholds) => thresholds,
        Err(e) => return fail(&e),
    };
    match engine.trace_insights(&args.trace_id, thresholds).await {
        Ok(Some(insights)) => {
            crate::say(&render::insights::one_trace(
                &insights,
                &render::Look::stdout(),
            ));
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => failure(&e),
    }
}
