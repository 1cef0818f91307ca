//! Search a store with TraceQL from Rust.
//!
//! ```sh
//! cargo run -p traceql-exec --example search -- testdata/demo '{ status = error } | count() > 1'
//! ```
//!
//! Prints the matching traces as Tempo's `/api/search` JSON, then the first matched
//! spans as a DataFusion DataFrame.

use traceql_exec::{Engine, SearchOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let store = args.next().unwrap_or_else(|| "testdata/demo".to_string());
    let query = args
        .next()
        .unwrap_or_else(|| "{ status = error }".to_string());

    let engine = Engine::open(&store).await?;
    let options = SearchOptions {
        limit: 3,
        ..SearchOptions::default()
    };
    match engine.search(&query, &options).await {
        Ok(response) => println!("{}", serde_json::to_string_pretty(&response)?),
        Err(e) => {
            // Query errors come with the position, the source line and a hint.
            eprintln!("{}", e.render(false));
            std::process::exit(i32::from(e.exit_code()));
        }
    }

    // The same query as a DataFrame, for further processing with DataFusion.
    let df = engine.dataframe(&query).await?;
    df.limit(0, Some(5))?.show().await?;
    Ok(())
}
