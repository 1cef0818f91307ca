//! `traceql trace`: one whole trace, as a tree or as OTLP JSON.

use std::collections::HashMap;
use std::process::ExitCode;

use traceql_exec::model::{Span, hex};
use traceql_exec::otlp::request_from_spans;
use traceql_planner::eval::display::{go_duration, kind_name, status_name};

use crate::query::{failure, open};
use crate::{fail, say};

/// Output formats of `traceql trace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The span tree with service, kind, status, start offset and duration.
    Tree,
    /// The trace as an OTLP/JSON `ExportTraceServiceRequest`.
    Json,
}

/// Arguments of `traceql trace`.
#[derive(clap::Args)]
pub struct TraceArgs {
    /// The trace id (hex; leading zeros may be left out).
    trace_id: String,
    /// The store to read (default `$TRACEQL_DATA`, else the bundled demo store).
    #[arg(long, value_name = "STORE")]
    data: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Tree)]
    format: Format,
}

/// Runs `traceql trace`.
pub async fn run(args: &TraceArgs) -> ExitCode {
    let engine = match open(args.data.as_deref()).await {
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
        Format::Tree => say(&tree(&spans)),
    }
    ExitCode::SUCCESS
}

/// The spans as an indented tree, children in start order; orphans (whose parent is
/// not in the trace) are shown as roots marked `(orphan)`.
fn tree(spans: &[Span]) -> String {
    let ids: HashMap<[u8; 8], usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        let parent = s.parent_span_id.and_then(|p| ids.get(&p).copied());
        children.entry(parent).or_default().push(i);
    }
    for list in children.values_mut() {
        list.sort_by_key(|&i| (spans[i].start_unix_nano, spans[i].span_id));
    }
    let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let mut lines = vec![format!(
        "trace {} · {} spans",
        hex(&spans[0].trace_id),
        spans.len()
    )];
    let mut stack: Vec<(usize, usize)> = children
        .get(&None)
        .map(|r| r.iter().rev().map(|&i| (i, 0)).collect())
        .unwrap_or_default();
    while let Some((i, depth)) = stack.pop() {
        let s = &spans[i];
        let orphan = s.parent_span_id.is_some() && depth == 0;
        lines.push(format!(
            "{}{} {} [{}] {} {} +{} {}{}",
            "  ".repeat(depth),
            hex(&s.span_id),
            s.name,
            s.resource.service_name().unwrap_or("?"),
            kind_name(s.kind),
            status_name(s.status_code),
            go_duration((s.start_unix_nano - start) as i64),
            go_duration(s.duration_nano() as i64),
            if orphan { " (orphan)" } else { "" }
        ));
        if let Some(kids) = children.get(&Some(i)) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    lines.join("\n")
}
