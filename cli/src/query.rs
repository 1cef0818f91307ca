//! `traceql query`: run a TraceQL search and print the matching traces, or a metrics
//! query and print its series.

use std::process::ExitCode;

use traceql_exec::metrics::{MetricsOptions, MetricsResponse};
use traceql_exec::{
    Engine, EngineError, EngineOptions, Order, QueryStats, SearchOptions, SearchResults,
};
use traceql_parser::ast::QueryBody;

use crate::data;
use crate::render::{self, Look};
use crate::{fail, say};

/// Output formats of `traceql query`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table of traces (with `--spans`, their matched spans beneath).
    Table,
    /// Tempo's `/api/search` JSON.
    Json,
    /// One trace per line as JSON.
    Jsonl,
    /// One row per shown span.
    Csv,
}

/// Arguments of `traceql query`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql query '< .service.name = \"checkout\" && status = error >'
  traceql query --spans '{ resource.service.name = \"frontend\" } >> { status = error }'
  traceql query --since 1h --limit 50 '{ duration > 500ms } | count() > 2'
  traceql query --since 1h --order slowest '{ resource.service.name = \"checkout\" }'
  traceql query --format csv '{ kind = server } | select(span.http.route)' > slow.csv
  traceql query '{ status = error } | rate() by (resource.service.name)'
  traceql query --step 5m '{ kind = server } | quantile_over_time(duration, .5, .99)'
  traceql query --instant --format json '({ status = error } | rate()) / ({ } | rate())'")]
pub struct QueryArgs {
    /// The TraceQL query (`{ … }` or `< … >` spansets).
    #[arg(allow_hyphen_values = true)]
    query: String,
    #[command(flatten)]
    store: data::ReadArgs,
    /// At most this many traces, the first in --order.
    #[arg(long, default_value_t = 20, value_name = "N")]
    limit: usize,
    /// Which traces come first: newest (latest start), oldest, or slowest (longest
    /// duration). Exact over the whole range: `--order slowest --since 1h` gives the
    /// slowest matching traces of the hour.
    #[arg(long, default_value = "newest", value_name = "ORDER", value_parser = parse_order)]
    order: Order,
    /// At most this many spans shown per spanset.
    #[arg(long, default_value_t = 3, value_name = "N")]
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
    #[arg(long, value_enum, default_value_t = Format::Table)]
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

/// Whether `query` is a metrics query (one that does not parse is treated as a search,
/// whose error reporting then explains it).
pub fn is_metrics(query: &str) -> bool {
    traceql_parser::parse(query).is_ok_and(|q| matches!(q.body, QueryBody::Metrics(_)))
}

/// Prints metrics results in `format` to standard output.
pub fn print_metrics(response: &MetricsResponse, format: Format) -> Result<(), String> {
    let text = match format {
        Format::Json => serde_json::to_string_pretty(response).map_err(|e| e.to_string())?,
        Format::Jsonl => render::metrics::json_lines(response),
        Format::Csv => render::metrics::csv(response)?,
        Format::Table => render::metrics::table(response, &Look::stdout()),
    };
    say(&text);
    Ok(())
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
    let metrics = if is_metrics(&args.query) {
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
            engine.metrics(&args.query, &metrics).await,
            args.stats,
            |r| print_metrics(r, args.format),
        ),
        None => finish(
            engine.search_results(&args.query, &options).await,
            args.stats,
            |r| print_results(r, args.format, args.spans),
        ),
    }
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
        eprintln!("{}", render_stats(&read));
    }
    // The process ends next: freeing a large result piece by piece would only delay it.
    std::mem::forget(response);
    ExitCode::SUCCESS
}

/// Prints search results in `format` to standard output; JSON is written trace by
/// trace, not built whole first.
pub fn print_results(results: &SearchResults, format: Format, spans: bool) -> Result<(), String> {
    match format {
        Format::Json => crate::write_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, results)?;
            std::io::Write::write_all(out, b"\n")
        }),
        Format::Jsonl => crate::write_stdout(|out| render::traces::json_lines(results, out)),
        Format::Csv => crate::write_stdout(|out| render::traces::csv(results, out)),
        Format::Table => say(&render::traces::table(results, spans, &Look::stdout())),
    }
    Ok(())
}

/// Opens the engine over `--data`, `$TRACEQL_DATA` or the demo store.
pub async fn open(store: &data::ReadArgs) -> Result<Engine, EngineError> {
    let mut options = EngineOptions::default();
    if let Some(limit) = store.memory_limit {
        options.memory_limit = limit;
    }
    let engine = Engine::with_options(store.store().await?, options).await?;
    let skipped = engine.skipped_blocks();
    if !skipped.is_empty() {
        eprintln!(
            "warning: skipped {} Tempo block{} of a version this version does not read \
             (it reads vParquet4 and vParquet5): {}",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" },
            skipped.join(", ")
        );
    }
    Ok(engine)
}

/// Prints an engine error and returns its exit code.
pub fn failure(e: &EngineError) -> ExitCode {
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr());
    eprintln!("{}", e.render(color));
    ExitCode::from(e.exit_code())
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

/// What a search read and where its time went, one fact per line.
pub fn render_stats(stats: &QueryStats) -> String {
    format!(
        "blocks: {}\nrounds: {}\nspans scanned: {}\nbytes scanned: {}\nstore requests: {}\nbytes fetched: {}\nrow groups pruned: {}/{}\nrows pruned in scan: {}\nplanning: {:.1?}\nexecution: {:.1?}",
        stats.blocks,
        stats.rounds,
        stats.spans_scanned,
        stats.bytes_scanned,
        stats.io.requests,
        stats.io.bytes_fetched,
        stats.row_groups_pruned,
        stats.row_groups_total,
        stats.rows_pruned_by_pushdown,
        stats.planning,
        stats.execution
    )
}
