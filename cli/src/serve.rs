//! `traceql serve`: Grafana Tempo's query API over a store, for Grafana and every
//! Tempo client.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use crate::common::{failure, open};
use crate::{data, fail};

#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql serve --data ./traces                        # http://127.0.0.1:3200
  traceql serve --data s3://bucket/tempo --listen 0.0.0.0:3200
  curl 'http://127.0.0.1:3200/api/search?q=%7B%20status%20%3D%20error%20%7D&limit=5'

Point Grafana's Tempo data source at the address; see README \"Use traceql from Grafana\".")]
pub struct ServeArgs {
    #[command(flatten)]
    store: data::ReadArgs,
    /// The address to listen on (loopback unless told otherwise).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3200")]
    listen: SocketAddr,
}

pub async fn run(args: &ServeArgs) -> ExitCode {
    let engine = match open(&args.store).await {
        Ok(engine) => Arc::new(engine),
        Err(e) => return failure(&e),
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("cannot listen on {}: {e}", args.listen)),
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    eprintln!(
        "traceql serve: Tempo's API for {} on http://{address} (Ctrl-C stops)",
        engine.store_name()
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match traceql_server::serve(listener, engine, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("the server stopped: {e}")),
    }
}
