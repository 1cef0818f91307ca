//! `traceql query`: run a TraceQL search and print the matching traces.

use std::process::ExitCode;

use traceql_exec::search::{Engine, EngineError, SearchOptions, SearchResponse, SearchStats};

use crate::data;
use crate::{fail, say};

/// Output formats of `traceql query`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table of traces and their matched spans.
    Table,
    /// Tempo's `/api/search` JSON.
    Json,
}

/// Arguments of `traceql query`.
#[derive(clap::Args)]
pub struct QueryArgs {
    /// The TraceQL query (`{ … }` or `< … >` spansets).
    #[arg(allow_hyphen_values = true)]
    query: String,
    /// The store to search (default `$TRACEQL_DATA`, else the bundled demo store).
    #[arg(long, value_name = "STORE")]
    data: Option<String>,
    /// At most this many traces, newest first.
    #[arg(long, default_value_t = 20, value_name = "N")]
    limit: usize,
    /// At most this many spans shown per spanset.
    #[arg(long, default_value_t = 3, value_name = "N")]
    spss: usize,
    /// Only traces that end at or after this time (RFC 3339, or unix seconds).
    #[arg(long, value_name = "TIME", conflicts_with = "since")]
    start: Option<String>,
    /// Only traces that start at or before this time (RFC 3339, or unix seconds).
    #[arg(long, value_name = "TIME", conflicts_with = "since")]
    end: Option<String>,
    /// Only traces of the last DURATION before now (e.g. 15m, 1h, 2d).
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Also print spans and bytes scanned, row groups pruned and time per stage (to stderr).
    #[arg(long)]
    stats: bool,
}

/// Runs `traceql query`.
pub async fn run(args: &QueryArgs) -> ExitCode {
    let options = match search_options(args) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let engine = match open(args.data.as_deref()).await {
        Ok(engine) => engine,
        Err(e) => return failure(&e),
    };
    let (response, stats) = match engine.search_with_stats(&args.query, &options).await {
        Ok(r) => r,
        Err(e) => return failure(&e),
    };
    match args.format {
        Format::Json => say(&serde_json::to_string_pretty(&response).unwrap_or_default()),
        Format::Table => say(&render_table(&response)),
    }
    if args.stats {
        eprintln!("{}", render_stats(&stats));
    }
    ExitCode::SUCCESS
}

/// Opens the engine over `--data`, `$TRACEQL_DATA` or the demo store.
pub async fn open(data: Option<&str>) -> Result<Engine, EngineError> {
    let store = data::readable(data).await?;
    Engine::with_store(store).await
}

/// Prints an engine error and returns its exit code.
pub fn failure(e: &EngineError) -> ExitCode {
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr());
    eprintln!("{}", e.render(color));
    ExitCode::from(e.exit_code())
}

fn search_options(args: &QueryArgs) -> Result<SearchOptions, String> {
    let mut options = SearchOptions {
        limit: args.limit,
        spans_per_spanset: args.spss,
        ..SearchOptions::default()
    };
    if let Some(since) = &args.since {
        let nanos = crate::time::parse_duration(since)?;
        let now = crate::time::now_unix_nano();
        options.start_unix_nano = Some(now.saturating_sub(nanos));
    }
    if let Some(start) = &args.start {
        options.start_unix_nano = Some(crate::time::parse_time(start)?);
    }
    if let Some(end) = &args.end {
        options.end_unix_nano = Some(crate::time::parse_time(end)?);
    }
    Ok(options)
}

fn render_table(response: &SearchResponse) -> String {
    use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
    if response.traces.is_empty() {
        return "no traces matched".to_string();
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "trace",
        "root service",
        "root name",
        "start",
        "duration",
        "matched spans",
    ]);
    for trace in &response.traces {
        let mut spans = Vec::new();
        for set in &trace.span_sets {
            let attrs: Vec<String> = set
                .attributes
                .iter()
                .map(|a| format!("{}={}", a.key, short(&a.value)))
                .collect();
            if !attrs.is_empty() {
                spans.push(format!("[{}]", attrs.join(" ")));
            }
            for span in &set.spans {
                let attrs: Vec<String> = span
                    .attributes
                    .iter()
                    .map(|a| format!("{}={}", a.key, short(&a.value)))
                    .collect();
                spans.push(format!(
                    "{} {} {}{}",
                    span.span_id,
                    span.name,
                    traceql_planner::eval::display::go_duration(span.duration_nanos as i64),
                    if attrs.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", attrs.join(" "))
                    }
                ));
            }
            if set.matched as usize > set.spans.len() {
                spans.push(format!("… {} matched in all", set.matched));
            }
        }
        table.add_row([
            trace.trace_id.clone(),
            trace.root_service_name.clone(),
            trace.root_trace_name.clone(),
            crate::time::format_time(trace.start_time_unix_nano),
            format!("{}ms", trace.duration_ms),
            spans.join("\n"),
        ]);
    }
    format!("{table}\n{} traces", response.traces.len())
}

/// A JSON `AnyValue` as plain text.
fn short(value: &serde_json::Value) -> String {
    match value.as_object().and_then(|o| o.values().next()) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => value.to_string(),
    }
}

fn render_stats(stats: &SearchStats) -> String {
    format!(
        "blocks: {}\nrounds: {}\nspans scanned: {}\nbytes scanned: {}\nrow groups pruned: {}/{}\nrows pruned in scan: {}\nplanning: {:.1?}\nexecution: {:.1?}",
        stats.blocks,
        stats.rounds,
        stats.spans_scanned,
        stats.bytes_scanned,
        stats.row_groups_pruned,
        stats.row_groups_total,
        stats.rows_pruned_by_pushdown,
        stats.planning,
        stats.execution
    )
}
