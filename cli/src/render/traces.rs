//! Search results as text: a table of traces (optionally with their matched spans),
//! JSON lines, or CSV of matched spans.

use std::ops::Range;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use traceql_exec::search::{Attribute, SearchResults, TraceResult};

use super::Look;
use super::chunks::write_in_order;
use crate::time::format_time;

fn pairs(attributes: &[Attribute]) -> String {
    attributes
        .iter()
        .map(|a| format!("{}={}", a.key, a.value))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One row per trace; with `spans`, the matched spans (and spanset attributes) beneath.
pub fn table(results: &SearchResults, spans: bool, look: &Look) -> String {
    if results.is_empty() {
        return "no traces matched".to_string();
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(look.width as u16);
    let mut header = vec![
        "trace",
        "root service",
        "root name",
        "start",
        "duration",
        "matched",
    ];
    if spans {
        header.push("spans");
    }
    table.set_header(header);
    for trace in results.traces() {
        let matched: u64 = trace.span_sets.iter().map(|s| s.matched).sum();
        let mut row = vec![
            trace.trace_id.clone(),
            trace.root_service_name.clone(),
            trace.root_trace_name.clone(),
            format_time(trace.start_time_unix_nano),
            format!("{}ms", trace.duration_ms),
            matched.to_string(),
        ];
        if spans {
            let mut lines = Vec::new();
            for set in &trace.span_sets {
                if !set.attributes.is_empty() {
                    lines.push(format!("[{}]", pairs(&set.attributes)));
                }
                for span in &set.spans {
                    let attrs = pairs(&span.attributes);
                    lines.push(format!(
                        "{} {} {}{}{attrs}",
                        span.span_id,
                        span.name,
                        super::human_duration(span.duration_nanos),
                        if attrs.is_empty() { "" } else { " " }
                    ));
                }
                if set.matched as usize > set.spans.len() {
                    lines.push(format!("… {} more", set.matched as usize - set.spans.len()));
                }
            }
            row.push(lines.join("\n"));
        }
        table.add_row(row);
    }
    let n = results.len();
    format!("{table}\n{n} trace{}", if n == 1 { "" } else { "s" })
}

/// Traces encoded together when output is written on every core.
const TRACES_PER_PIECE: usize = 1024;

/// The traces of `results` in pieces of [`TRACES_PER_PIECE`], each piece's positions
/// encoded by `encode`, written to `out` in order (see [`write_in_order`]).
fn by_pieces(
    results: &SearchResults,
    encode: impl Fn(&mut Vec<u8>, Range<usize>) -> std::io::Result<()> + Sync,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    write_in_order(
        results.len().div_ceil(TRACES_PER_PIECE),
        |piece, buffer| {
            let first = piece * TRACES_PER_PIECE;
            encode(buffer, first..(first + TRACES_PER_PIECE).min(results.len()))
        },
        out,
    )
}

/// One JSON object per trace, one per line.
pub fn json_lines(results: &SearchResults, out: &mut impl std::io::Write) -> std::io::Result<()> {
    by_pieces(
        results,
        |buffer, positions| {
            for position in positions {
                results.write_json_line(position, buffer);
            }
            Ok(())
        },
        out,
    )
}

/// The header of the CSV of search results: a row per shown span (see [`csv_rows`]).
pub fn csv_header(out: &mut impl std::io::Write) -> std::io::Result<()> {
    let header = [
        "trace_id",
        "root_service",
        "root_name",
        "trace_start",
        "trace_duration_ms",
        "spanset",
        "span_id",
        "name",
        "start",
        "duration_ns",
        "attributes",
        "spanset_attributes",
    ];
    let mut writer = ::csv::Writer::from_writer(&mut *out);
    writer.write_record(header)?;
    writer.flush()
}

/// One CSV row per shown span, with its trace and spanset, without the header.
pub fn csv_rows(results: &SearchResults, out: &mut impl std::io::Write) -> std::io::Result<()> {
    by_pieces(
        results,
        |buffer, positions| {
            let mut writer = ::csv::Writer::from_writer(buffer);
            for trace in results.traces_in(positions) {
                write_csv_rows(&mut writer, &trace)?;
            }
            writer.flush()
        },
        out,
    )
}

/// The CSV rows of the shown spans of `trace`.
fn write_csv_rows(
    writer: &mut ::csv::Writer<&mut Vec<u8>>,
    trace: &TraceResult,
) -> std::io::Result<()> {
    for (index, set) in trace.span_sets.iter().enumerate() {
        for span in &set.spans {
            writer.write_record([
                trace.trace_id.as_str(),
                &trace.root_service_name,
                &trace.root_trace_name,
                &format_time(trace.start_time_unix_nano),
                &trace.duration_ms.to_string(),
                &index.to_string(),
                &span.span_id,
                &span.name,
                &format_time(span.start_time_unix_nano),
                &span.duration_nanos.to_string(),
                &pairs(&span.attributes),
                &pairs(&set.attributes),
            ])?;
        }
    }
    Ok(())
}
