//! `traceql blocks`: list the blocks of a store.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use traceql_format::block::BlockMeta;

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
    // Tempo does not record span counts.
    let spans = |b: &BlockMeta| b.tempo.is_none().then_some(b.spans);
    match args.format {
        Format::Json => {
            let rows: Vec<_> = blocks
                .iter()
                .map(|b| {
                    json!({
                        "id": b.id,
                        "format": b.format,
                        "traces": b.traces,
                        "spans": spans(b),
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
                eprintln!("warning: skipped Tempo block {s}: a version this version does not read");
            }
        }
        Format::Table => {
            let mut table = Table::new();
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Disabled);
            table.set_header([
                "id",
                "format",
                "traces",
                "spans",
                "start",
                "end",
                "bytes",
                "typed columns",
            ]);
            for b in &blocks {
                let typed: Vec<&str> = b.typed_columns.iter().map(|c| c.name.as_str()).collect();
                table.add_row([
                    b.id.clone(),
                    b.format.clone(),
                    b.traces.to_string(),
                    spans(b).map_or("-".to_string(), |n| n.to_string()),
                    crate::time::format_time(b.start_unix_nano),
                    crate::time::format_time(b.end_unix_nano),
                    b.bytes.to_string(),
                    typed.join("\n"),
                ]);
            }
            crate::say(&table);
            crate::say(&format!("{} blocks in {}", blocks.len(), store.display()));
            for s in &skipped {
                crate::say(&format!(
                    "skipped Tempo block {s}: a version this version does not read"
                ));
            }
        }
    }
    ExitCode::SUCCESS
}
