//! `traceql blocks`: list the blocks of a store.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use traceql_exec::engine::human_bytes;
use traceql_exec::source::Block;

use crate::data;

/// Output formats.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// A JSON array of objects.
    Json,
}

/// Arguments of `traceql blocks`.
#[derive(Args)]
pub struct BlocksArgs {
    #[command(flatten)]
    store: data::ReadArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// List each block's typed attribute columns too.
    #[arg(long, short)]
    verbose: bool,
}

/// Runs `traceql blocks`.
pub async fn run(args: &BlocksArgs) -> ExitCode {
    let store = match args.store.store().await {
        Ok(store) => store,
        Err(e) => return crate::fail(&e),
    };
    let (blocks, skipped) = match store.list().await {
        Ok(listing) => (listing.blocks, listing.skipped),
        Err(e) => return crate::fail(&e),
    };
    // Some kinds (Tempo's) do not record span counts.
    let spans = |b: &Block| b.layout().counts_spans.then_some(b.meta().spans);
    match args.format {
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
            for s in &skipped {
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
            if args.verbose {
                header.push("typed columns");
            }
            table.set_header(header);
            for column in [2, 3, 6, 7] {
                if let Some(c) = table.column_mut(column) {
                    c.set_cell_alignment(CellAlignment::Right);
                }
            }
            for block in &blocks {
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
                if args.verbose {
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
                "{} blocks, {traces} traces, {} in {}",
                blocks.len(),
                human_bytes(bytes as usize),
                store.display()
            );
            if !args.verbose && blocks.iter().any(|b| !b.meta().typed_columns.is_empty()) {
                summary.push_str(" (--verbose lists the typed columns)");
            }
            crate::say(&summary);
            for s in &skipped {
                crate::say(&format!(
                    "skipped block {s}: a version this version does not read"
                ));
            }
        }
    }
    ExitCode::SUCCESS
}
