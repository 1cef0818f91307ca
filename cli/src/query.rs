//! `traceql query`: run a TraceQL search and print the matching traces, or a metrics
//! query and print its series.

use std::process::ExitCode;

use traceql_exec::metrics::MetricsOptions;
use traceql_exec::{Engine, EngineError, Order, ParsedQuery, QueryStats, SearchOptions};

use crate::common::{failure, open};
use crate::data;
use crate::fail;
use crate::render::stream::SearchWriter;
use crate::render::{self, Format};

/// Arguments of `traceql query`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql query '< .service.name = \"checkout\" && status = error >'
  traceql query --spans '{ resource.service.name = \"frontend\" } >> { status = error }'
  traceql query --since 1h --limit 50 '{ duration > 500ms } | count() > 2'
  traceql query --since 1h --order slowest '{ resource.service.name = \"checkout\" }'
  traceql query --format csv '{ kind = server } | select(span.http.route)' > slow.csv
  traceql query --format arrow --limit 1000000 '{ status = error }' > errors.arrow
  traceql query '{ status = error } | rate() by (resource.service.name)'
  traceql query --step 5m '{ kind = server } | quantile_over_time(duration, .5, .99)'
  traceql query --instant --format json '({ status = error } | rate()) / ({ } | rate())'")]
pub struct QueryArgs {
    /// The TraceQL query (`{ … }` or `< … >` spansets).
    #[arg(allow_hyphen_values = true)]
    query: String,
    #[command(flatten)]
    store: data::ReadArgs,
    /// At most this many traces, the first in --order (at least 1; a large number gives
    /// every match).
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = positive)]
    limit: usize,
    /// Which traces come first: newest (latest start), oldest, or slowest (longest
    /// duration). Exact over the whole range: `--order slowest --since 1h` gives the
    /// slowest matching traces of the hour.
    #[arg(long, default_value = "newest", value_name = "ORDER", value_parser = parse_order)]
    order: Order,
    /// At most this many spans shown per spanset (at least 1).
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = positive)]
    spss: usize,
    #[command(flatten)]
    range: crate::time::RangeArgs,
    /// Metrics queries: the bucket width (e.g. 30s, 5m; default: about 240 points over the
    /// range, as Tempo chooses).
    #[arg(long, value_name = "DURATION")]
    step: Option<String>,
    /// Metrics queries: one value per series for the whole range.
    #[arg(long, conflicts_with = "step")]
    instant: bool,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = render::format::parser(Format::QUERY))]
    format: Format,
    /// Show the matched spans beneath each trace in the table.
    #[arg(long)]
    spans: bool,
    /// Also print spans and bytes scanned, row groups pruned and time per stage (to stderr).
    #[arg(long)]
    stats: bool,
}

/// Parses `--order`.
fn parse_order(name: &str) -> Result<Order, String> {
    Order::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Order::ALL.iter().map(|o| o.name()).collect();
        format!("`{name}` is not an order; use {}", names.join(", "))
    })
}

fn metrics_options(args: &QueryArgs, search: &SearchOptions) -> Result<MetricsOptions, String> {
    Ok(MetricsOptions {
        start_unix_nano: search.start_unix_nano,
        end_unix_nano: search.end_unix_nano,
        step_nano: match &args.step {
            Some(step) => Some(crate::time::parse_duration(step)?.max(1)),
            None => None,
        },
        instant: args.instant,
    })
}

/// Runs `traceql query`: a search, or a metrics query.
pub async fn run(args: &QueryArgs) -> ExitCode {
    let options = match search_options(args) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let parsed = match ParsedQuery::parse(&args.query) {
        Ok(parsed) => parsed,
        Err(e) => return failure(&e),
    };
    if parsed.is_metrics() && !Format::METRICS.contains(&args.format) {
        return fail(&render::unsupported(
            args.format,
            "metrics queries",
            Format::METRICS,
        ));
    }
    let metrics = if parsed.is_metrics() {
        match metrics_options(args, &options) {
            Ok(o) => Some(o),
            Err(e) => return fail(&e),
        }
    } else {
        None
    };
    let engine = match open(&args.store).await {
        Ok(engine) => engine,
        Err(e) => return failure(&e),
    };
    match metrics {
        Some(metrics) => finish(
            engine.metrics_parsed(&parsed, &metrics).await,
            args.stats,
            |r| render::metrics(r, args.format),
        ),
        None if SearchWriter::FORMATS.contains(&args.format) => {
            stream(&engine, &parsed, &options, args).await
        }
        None => finish(
            engine.search_parsed(&parsed, &options).await,
            args.stats,
            |r| render::search(r, args.format, args.spans),
        ),
    }
}

/// Runs a search whose output is a sequence of traces or spans (JSON lines, CSV, Arrow)
/// and writes its traces as the engine hands them over, a window at a time, so a search
/// for every match holds one window of traces, not all of them.
async fn stream(
    engine: &Engine,
    parsed: &ParsedQuery,
    options: &SearchOptions,
    args: &QueryArgs,
) -> ExitCode {
    if let Err(e) = render::check_binary(args.format) {
        return fail(&e);
    }
    let mut writer = match SearchWriter::new(args.format) {
        Ok(writer) => writer,
        Err(e) => return written(&e),
    };
    let mut write_error = None;
    let searched = engine
        .search_each(parsed, options, |results| {
            writer.write(&results).map_err(|e| {
                let message = e.to_string();
                write_error = Some(e);
                EngineError::Output(message)
            })
        })
        .await;
    if let Some(e) = write_error {
        return written(&e);
    }
    let (_, read) = match searched {
        Ok(searched) => searched,
        Err(e) => return failure(&e),
    };
    if let Err(e) = writer.finish() {
        return written(&e);
    }
    if args.stats {
        eprintln!("{}", render::stats(&read));
    }
    ExitCode::SUCCESS
}

/// The exit of a failed write to standard output (quiet success when the reader went
/// away).
fn written(e: &std::io::Error) -> ExitCode {
    fail(&render::stream::write_failed(e))
}

/// Prints a query's outcome with `print` (and, with `stats`, what it read, to
/// standard error) and returns the exit code.
fn finish<T>(
    result: Result<(T, QueryStats), EngineError>,
    stats: bool,
    print: impl FnOnce(&T) -> Result<(), String>,
) -> ExitCode {
    let (response, read) = match result {
        Ok(r) => r,
        Err(e) => return failure(&e),
    };
    if let Err(e) = print(&response) {
        return fail(&e);
    }
    if stats {
        eprintln!("{}", render::stats(&read));
    }
    // The process ends next: freeing a large result piece by piece would only delay it.
    std::mem::forget(response);
    ExitCode::SUCCESS
}

fn search_options(args: &QueryArgs) -> Result<SearchOptions, String> {
    let range = args.range.range()?;
    Ok(SearchOptions {
        limit: args.limit,
        order: args.order,
        spans_per_spanset: args.spss,
        start_unix_nano: range.start_unix_nano,
        end_unix_nano: range.end_unix_nano,
    })
}

/// A count of at least one.
fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
