//! `traceql blocks`: list the blocks of a store.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

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
    /// The store (default `$TRACEQL_DATA`, else the bundled demo store).
    #[arg(long, value_name = "STORE")]
    data: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// Unix nanoseconds as RFC 3339 UTC.
pub fn rfc3339(unix_nano: u64) -> String {
    let secs = (unix_nano / 1_000_000_000) as i64;
    let nanos = (unix_nano % 1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        nanos / 1_000_000
    )
}

/// Runs `traceql blocks`.
pub async fn run(args: &BlocksArgs) -> ExitCode {
    let store = match data::readable(args.data.as_deref()).await {
        Ok(store) => store,
        Err(e) => return crate::fail(&e),
    };
    let blocks = match store.list_blocks().await {
        Ok(blocks) => blocks,
        Err(e) => return crate::fail(&e),
    };
    match args.format {
        Format::Json => {
            let rows: Vec<_> = blocks
                .iter()
                .map(|b| {
                    json!({
                        "id": b.id,
                        "traces": b.traces,
                        "spans": b.spans,
                        "start": rfc3339(b.start_unix_nano),
                        "end": rfc3339(b.end_unix_nano),
                        "bytes": b.bytes,
                        "row_groups": b.row_groups,
                        "typed_columns": b.typed_columns,
                    })
                })
                .collect();
            crate::say(&serde_json::to_string_pretty(&rows).expect("JSON"));
        }
        Format::Table => {
            let mut table = Table::new();
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Disabled);
            table.set_header([
                "id",
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
                    b.traces.to_string(),
                    b.spans.to_string(),
                    rfc3339(b.start_unix_nano),
                    rfc3339(b.end_unix_nano),
                    b.bytes.to_string(),
                    typed.join("\n"),
                ]);
            }
            crate::say(&table);
            crate::say(&format!("{} blocks in {}", blocks.len(), store.display()));
        }
    }
    ExitCode::SUCCESS
}
