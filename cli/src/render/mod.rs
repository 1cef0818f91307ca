//! Every output of every command, chosen by one [`Format`]: search results (table,
//! Tempo's JSON, JSON lines, CSV, Arrow IPC), metrics series, a trace (waterfall,
//! OTLP/JSON), the blocks of a store, query statistics; and for the terminal, whether to
//! use colour and how wide to be.

pub mod arrow;
pub mod blocks;
pub mod chunks;
pub mod format;
pub mod insights;
pub mod metrics;
pub mod services;
pub mod stream;
pub mod traces;
pub mod waterfall;

pub use format::Format;

use console::Style;
use std::io::IsTerminal;
use traceql_exec::insights::Insights;
use traceql_exec::metrics::MetricsResponse;
use traceql_exec::otlp::request_from_spans;
use traceql_exec::services::ServiceGraph;
use traceql_exec::{QueryStats, SearchResults};
use traceql_format::model::Span;

use crate::say;

/// Refuses a binary `format` when standard output is a terminal.
pub fn check_binary(format: Format) -> Result<(), String> {
    if format.is_binary() && std::io::stdout().is_terminal() {
        return Err(format!(
            "--format {} writes binary data; send it to a file or a pipe \
             (`> results.arrow`, `| python3 read.py`)",
            format.name()
        ));
    }
    Ok(())
}

/// Prints insights in `format` to standard output.
pub fn insights(insights: &Insights, format: Format) -> Result<(), String> {
    let text = match format {
        Format::Table => insights::across_traces(insights, &Look::stdout()),
        Format::Json => serde_json::to_string_pretty(insights).map_err(|e| e.to_string())?,
        other => return Err(unsupported(other, "insights", Format::INSIGHTS)),
    };
    say(&text);
    Ok(())
}

/// Prints a service graph in `format` to standard output.
pub fn services(graph: &ServiceGraph, format: Format) -> Result<(), String> {
    let text = match format {
        Format::Table => services::table(graph, &Look::stdout()),
        Format::Json => serde_json::to_string_pretty(graph).map_err(|e| e.to_string())?,
        Format::Dot => graph.dot().trim_end().to_string(),
        Format::Mermaid => graph.mermaid().trim_end().to_string(),
        other => return Err(unsupported(other, "a service graph", Format::SERVICES)),
    };
    say(&text);
    Ok(())
}

/// Prints search results in `format` to standard output (with `spans`, the table shows
/// the matched spans beneath each trace). Long outputs are written trace by trace.
pub fn search(results: &SearchResults, format: Format, spans: bool) -> Result<(), String> {
    check_binary(format)?;
    match format {
        Format::Json => crate::write_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, results)?;
            std::io::Write::write_all(out, b"\n")
        }),
        Format::Table => say(&traces::table(results, spans, &Look::stdout())),
        format if stream::SearchWriter::FORMATS.contains(&format) => {
            let written = stream::SearchWriter::new(format).and_then(|mut writer| {
                writer.write(results)?;
                writer.finish()
            });
            return written.map_err(|e| stream::write_failed(&e));
        }
        other => return Err(unsupported(other, "search results", Format::QUERY)),
    }
    Ok(())
}

/// Prints metrics series in `format` to standard output.
pub fn metrics(response: &MetricsResponse, format: Format) -> Result<(), String> {
    let text = match format {
        Format::Json => serde_json::to_string_pretty(response).map_err(|e| e.to_string())?,
        Format::Jsonl => metrics::json_lines(response),
        Format::Csv => metrics::csv(response)?,
        Format::Table => metrics::table(response, &Look::stdout()),
        other => return Err(unsupported(other, "metrics queries", Format::METRICS)),
    };
    say(&text);
    Ok(())
}

/// Prints one trace's `spans` in `format` to standard output.
pub fn trace(spans: &[Span], format: Format) -> Result<(), String> {
    match format {
        Format::Json => {
            let request = request_from_spans(spans);
            say(&serde_json::to_string_pretty(&request).map_err(|e| e.to_string())?);
        }
        Format::Waterfall => say(&waterfall::waterfall(spans, &Look::stdout())),
        other => return Err(unsupported(other, "a trace", Format::TRACE)),
    }
    Ok(())
}

/// The error for `format` where only `formats` apply to `what`.
pub fn unsupported(format: Format, what: &str, formats: &[Format]) -> String {
    format!(
        "--format {} is not supported yet for {what}; use {}",
        format.name(),
        Format::names(formats)
    )
}

/// What a query read and where its time went, one fact per line.
pub fn stats(stats: &QueryStats) -> String {
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
    ) + &shares(stats)
}

/// What each worker's task of a query shared out over a cluster read, one line each
/// (nothing on one machine).
fn shares(stats: &QueryStats) -> String {
    stats
        .shares
        .iter()
        .map(|(task, s)| {
            format!(
                "\ntask {task}: {} spans, {} bytes, {} row groups, scan {:.1?}",
                s.spans, s.bytes, s.row_groups, s.time
            )
        })
        .collect()
}

/// A table for people with `header`, fitted to `look`'s width.
pub fn table(header: Vec<&str>, look: &Look) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_width(look.width as u16)
        .set_header(header);
    table
}

/// Aligns `columns` of `table` to the right (numbers).
pub fn align_right(table: &mut comfy_table::Table, columns: &[usize]) {
    for &c in columns {
        if let Some(c) = table.column_mut(c) {
            c.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
}

/// How output should look on this terminal.
#[derive(Clone, Copy, Debug)]
pub struct Look {
    /// ANSI colours and bold.
    pub color: bool,
    /// Columns available.
    pub width: usize,
}

impl Look {
    /// The look of standard output: colour only on a terminal and without `NO_COLOR`,
    /// the terminal's width (or `$COLUMNS`, else 120).
    pub fn stdout() -> Look {
        let term = console::Term::stdout();
        let color = term.is_term() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let width = term
            .size_checked()
            .map(|(_, w)| w as usize)
            .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
            .unwrap_or(120);
        Look {
            color,
            width: width.max(40),
        }
    }

    /// `text` in `style` when colour is on.
    pub fn paint(&self, text: &str, style: &Style) -> String {
        if self.color {
            style.clone().force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }
}

/// `text` cut to at most `width` columns, with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if console::measure_text_width(text) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` padded with spaces to `width` columns.
pub fn pad(text: &str, width: usize) -> String {
    let w = console::measure_text_width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(w)))
}

/// A duration for people, as trace viewers show it: three significant digits in the
/// largest unit that keeps the number at least 1 (`237ms`, `1.00ms`, `502µs`, `12.3s`),
/// whole nanoseconds below a microsecond, and minutes and seconds or hours and minutes
/// from a minute up (`4m05s`, `1h02m`).
pub fn human_duration(nanos: u64) -> String {
    const MINUTE: u64 = 60_000_000_000;
    const HOUR: u64 = 60 * MINUTE;
    if nanos >= HOUR {
        let minutes = (nanos + MINUTE / 2) / MINUTE;
        return format!("{}h{:02}m", minutes / 60, minutes % 60);
    }
    if nanos >= MINUTE {
        let seconds = (nanos + 500_000_000) / 1_000_000_000;
        return format!("{}m{:02}s", seconds / 60, seconds % 60);
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "µs")];
    let mut unit = UNITS
        .iter()
        .position(|&(size, _)| nanos >= size)
        .unwrap_or(UNITS.len() - 1);
    loop {
        let (size, name) = UNITS[unit];
        let value = nanos as f64 / size as f64;
        let decimals = if value >= 99.95 {
            0
        } else if value >= 9.995 {
            1
        } else {
            2
        };
        let text = format!("{value:.decimals$}");
        // 999.7ms rounds to 1000ms: say 1.00s instead.
        if text.parse::<f64>().is_ok_and(|v| v >= 1000.0) && unit > 0 {
            unit -= 1;
            continue;
        }
        return format!("{text}{name}");
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_at_a_glance() {
        let cases = [
            (0, "0ns"),
            (999, "999ns"),
            (1_000, "1.00µs"),
            (502_400, "502µs"),
            (1_001_929, "1.00ms"),
            (12_345_678, "12.3ms"),
            (237_271_456, "237ms"),
            (999_700_000, "1.00s"),
            (1_500_000_000, "1.50s"),
            (59_400_000_000, "59.4s"),
            (245_000_000_000, "4m05s"),
            (3_720_000_000_000, "1h02m"),
        ];
        for (nanos, text) in cases {
            assert_eq!(human_duration(nanos), text, "{nanos} ns");
        }
    }
}
