//! `traceql insights`: N+1 queries and calls, slow database queries and where the time
//! went, across the traces of a window.

use std::process::ExitCode;

use traceql_exec::ParsedQuery;
use traceql_exec::insights::{InsightsOptions, Thresholds};

use crate::common::{failure, open};
use crate::render::{self, Format};
use crate::time::parse_duration;
use crate::{data, fail};

/// When a pattern is a finding: `--min-repeats`, `--n-plus-one-db`, `--n-plus-one-calls`,
/// `--slow-db`.
#[derive(clap::Args, Clone, Debug)]
pub struct ThresholdArgs {
    /// The fewest sequential sibling repeats that make an N+1 run.
    #[arg(long, default_value_t = 5, value_name = "N")]
    min_repeats: u64,
    /// The least time an N+1 run of database queries takes.
    #[arg(long, default_value = "50ms", value_name = "DURATION")]
    n_plus_one_db: String,
    /// The least time an N+1 run of calls takes.
    #[arg(long, default_value = "300ms", value_name = "DURATION")]
    n_plus_one_calls: String,
    /// The least time of a slow database query.
    #[arg(long, default_value = "500ms", value_name = "DURATION")]
    slow_db: String,
}

impl ThresholdArgs {
    /// The thresholds these flags give.
    pub fn thresholds(&self) -> Result<Thresholds, String> {
        Ok(Thresholds {
            min_repeats: self.min_repeats.max(2),
            database_run: parse_duration(&self.n_plus_one_db)?,
            call_run: parse_duration(&self.n_plus_one_calls)?,
            slow_database: parse_duration(&self.slow_db)?,
        })
    }
}

/// Arguments of `traceql insights`.
#[derive(clap::Args)]
#[command(
    after_help = "Findings: N+1 database queries (5+ sequential sibling queries with the \
same statement, literals and IN lists made parameters, together 50ms+), N+1 calls (5+ \
sequential sibling calls to the same method and route, together 300ms+) and slow database \
queries (500ms+), grouped by kind, service, parent operation and pattern and ranked by the \
time they took; and each service's own time on the traces' critical paths. `traceql trace \
ID` shows the findings of one trace under its waterfall.

Examples:
  traceql insights
  traceql insights --since 1h '{ resource.service.name = \"checkout\" }'
  traceql insights --format json --slow-db 200ms"
)]
pub struct InsightsArgs {
    /// Only the traces this TraceQL search matches (every trace without one).
    #[arg(allow_hyphen_values = true)]
    query: Option<String>,
    #[command(flatten)]
    store: data::ReadArgs,
    #[command(flatten)]
    range: crate::time::RangeArgs,
    #[command(flatten)]
    thresholds: ThresholdArgs,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = render::format::parser(Format::INSIGHTS))]
    format: Format,
    /// Also print spans and bytes scanned and time per stage (to stderr).
    #[arg(long)]
    stats: bool,
}

/// Runs `traceql insights`.
pub async fn run(args: &InsightsArgs) -> ExitCode {
    let (range, thresholds) = match (args.range.range(), args.thresholds.thresholds()) {
        (Ok(range), Ok(thresholds)) => (range, thresholds),
        (Err(e), _) | (_, Err(e)) => return fail(&e),
    };
    let query = match args.query.as_deref().map(ParsedQuery::parse).transpose() {
        Ok(query) => query,
        Err(e) => return failure(&e),
    };
    let engine = match open(&args.store).await {
        Ok(engine) => engine,
        Err(e) => return failure(&e),
    };
    let options = InsightsOptions {
        start_unix_nano: range.start_unix_nano,
        end_unix_nano: range.end_unix_nano,
        query,
        thresholds,
    };
    let (insights, stats) = match engine.insights(&options).await {
        Ok(answer) => answer,
        Err(e) => return failure(&e),
    };
    if args.stats {
        eprintln!("{}", render::stats(&stats));
    }
    match render::insights(&insights, args.format) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}
