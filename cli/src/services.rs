//! `traceql services`: the service graph of stored spans.

use std::process::ExitCode;

use traceql_exec::ParsedQuery;
use traceql_exec::services::ServicesOptions;

use crate::common::{failure, open};
use crate::render::{self, Format};
use crate::{data, fail};

/// Arguments of `traceql services`.
#[derive(clap::Args)]
#[command(
    after_help = "Which service calls which, as Grafana Tempo's service graph counts \
requests: client and server span pairs, producers and consumers, database calls, and \
virtual nodes (`user` for root spans, `peer.service` for uninstrumented servers). A request \
counts in the window (--since, --start, --end) its client span starts in (a `user` request: \
its server span). See docs/services.md.

Examples:
  traceql services
  traceql services --since 1h '{ resource.deployment.environment = \"prod\" }'
  traceql services --format dot | dot -Tsvg > services.svg
  traceql services --format mermaid"
)]
pub struct ServicesArgs {
    /// Only the traces this TraceQL search matches (every trace without one).
    #[arg(allow_hyphen_values = true)]
    query: Option<String>,
    #[command(flatten)]
    store: data::ReadArgs,
    #[command(flatten)]
    range: crate::time::RangeArgs,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = render::format::parser(Format::SERVICES))]
    format: Format,
    /// Also print spans and bytes scanned and time per stage (to stderr).
    #[arg(long)]
    stats: bool,
}

/// Runs `traceql services`.
pub async fn run(args: &ServicesArgs) -> ExitCode {
    let range = match args.range.range() {
        Ok(range) => range,
        Err(e) => return fail(&e),
    };
    let query = match args.query.as_deref().map(ParsedQuery::parse).transpose() {
        Ok(query) => query,
        Err(e) => return failure(&e),
    };
    let engine = match open(&args.store).await {
        Ok(engine) => engine,
        Err(e) => return failure(&e),
    };
    let options = ServicesOptions {
        start_unix_nano: range.start_unix_nano,
        end_unix_nano: range.end_unix_nano,
        query,
    };
    let (graph, stats) = match engine.services(&options).await {
        Ok(answer) => answer,
        Err(e) => return failure(&e),
    };
    if args.stats {
        eprintln!("{}", render::stats(&stats));
    }
    match render::services(&graph, args.format) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}
