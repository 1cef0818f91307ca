//! The blocks of a store: a line per block for people, or a JSON array.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;
use traceql_exec::engine::human_bytes;
use traceql_exec::source::Block;

use super::Format;

/// Prints `blocks` of `store` (and the `skipped` ones) in `format`; `verbose` lists each
/// block's typed columns in the table.
pub fn print(
    blocks: &[Block],
    skipped: &[String],
    format: Format,
    verbose: bool,
    store: &str,
) -> Result<(), String> {
    // Some kinds (Tempo's) do not record span counts.
    let spans = |b: &Block| b.layout().counts_spans.then_some(b.meta().spans);
    match format {
        Format::Json => {
            let rows: Vec<_> = blocks
                .iter()
                .map(|block| {
                    let b = block.meta();
                    json!({
                        "id": b.id,
                        "format": b.format,
                        "traces": b.traces,
                        "spans": spans(block),
                        "start": crate::time::format_time(b.start_unix_nano),
                        "end": crate::time::format_time(b.end_unix_nano),
                        "bytes": b.bytes,
                        "row_groups": b.row_groups,
                        "typed_columns": b.typed_columns,
                    })
                })
                .collect();
            crate::say(&serde_json::to_string_pretty(&rows).expect("JSON"));
            for s in skipped {
                eprintln!("warning: skipped block {s}: a version this version does not read");
            }
        }
        Format::Table => {
            let mut table = Table::new();
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Disabled);
            let mut header = vec![
                "id", "format", "traces", "spans", "start", "end", "size", "typed",
            ];
            if verbose {
                header.push("typed columns");
            }
            table.set_header(header);
            for column in [2, 3, 6, 7] {
                if let Some(c) = table.column_mut(column) {
                    c.set_cell_alignment(CellAlignment::Right);
                }
            }
            for block in blocks {
                let b = block.meta();
                let mut row = vec![
                    b.id.clone(),
                    b.format.clone(),
                    b.traces.to_string(),
                    spans(block).map_or("-".to_string(), |n| n.to_string()),
                    crate::time::format_time(b.start_unix_nano),
                    crate::time::format_time(b.end_unix_nano),
                    human_bytes(b.bytes as usize),
                    b.typed_columns.len().to_string(),
                ];
                if verbose {
                    let typed: Vec<&str> =
                        b.typed_columns.iter().map(|c| c.name.as_str()).collect();
                    row.push(typed.join("\n"));
                }
                table.add_row(row);
            }
            crate::say(&table);
            let traces: u64 = blocks.iter().map(|b| b.meta().traces).sum();
            let bytes: u64 = blocks.iter().map(|b| b.meta().bytes).sum();
            let mut summary = format!(
                "{} block{}, {traces} traces, {} in {}",
                blocks.len(),
                if blocks.len() == 1 { "" } else { "s" },
                human_bytes(bytes as usize),
                store
            );
            if !verbose && blocks.iter().any(|b| !b.meta().typed_columns.is_empty()) {
                summary.push_str(" (--verbose lists the typed columns)");
            }
            crate::say(&summary);
            for s in skipped {
                crate::say(&format!(
                    "skipped block {s}: a version this version does not read"
                ));
            }
        }
        other => {
            return Err(format!(
                "--format {} is not supported yet for blocks; use {}",
                other.name(),
                Format::names(Format::BLOCKS)
            ));
        }
    }
    Ok(())
}
