//! What the commands share: opening the engine over the store they are given, reporting
//! an engine failure, and progress bars for long work.

use std::io::IsTerminal;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use traceql_exec::ingest::Progress;
use traceql_exec::{Engine, EngineError, EngineOptions};

use crate::data;

/// How the engines of commands reading `store` run queries (`--memory-limit`).
pub fn engine_options(store: &data::ReadArgs) -> EngineOptions {
    let mut options = EngineOptions::default();
    if let Some(limit) = store.memory_limit {
        options.memory_limit = limit;
    }
    options
}

/// Opens the engine over `--data`, `$TRACEQL_DATA` or the demo store.
pub async fn open(store: &data::ReadArgs) -> Result<Engine, EngineError> {
    open_with(store, engine_options(store)).await
}

/// [`open`] with `options`.
pub async fn open_with(
    store: &data::ReadArgs,
    options: EngineOptions,
) -> Result<Engine, EngineError> {
    let engine = Engine::with_options(store.store().await?, options).await?;
    let engine = match store.cluster() {
        None => engine,
        Some(workers) => on_cluster(engine, &workers)?,
    };
    let skipped = engine.skipped_blocks();
    if !skipped.is_empty() {
        eprintln!(
            "warning: skipped {} Tempo block{} of a version this version does not read \
             (it reads vParquet4 and vParquet5): {}",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" },
            skipped.join(", ")
        );
    }
    Ok(engine)
}

/// `engine` planning its queries over `workers` (`--cluster`).
fn on_cluster(engine: Engine, workers: &str) -> Result<Engine, EngineError> {
    let invalid = |e: traceql_cluster::ClusterError| EngineError::InvalidInput(e.to_string());
    let mut cluster = traceql_cluster::Cluster::parse(workers).map_err(invalid)?;
    if let Ok(text) = std::env::var(traceql_cluster::PARTITION_BYTES_ENV) {
        let bytes = crate::size::parse_size(&text).map_err(|e| {
            EngineError::InvalidInput(format!("{}: {e}", traceql_cluster::PARTITION_BYTES_ENV))
        })?;
        cluster = cluster.with_partition_bytes(bytes);
    }
    if engine.store_name().starts_with("memory:") {
        return Err(EngineError::InvalidInput(
            "--cluster needs a store the workers can read (a directory or a bucket, with \
             --data); the bundled demo data lives in this process only"
                .to_string(),
        ));
    }
    let state = cluster.session(engine.session().state()).map_err(invalid)?;
    Ok(engine.with_session_state(|_| state))
}

/// Prints an engine error and returns its exit code.
pub fn failure(e: &EngineError) -> ExitCode {
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr());
    eprintln!("{}", e.render(color));
    ExitCode::from(e.exit_code())
}

/// A progress bar on a terminal, nothing otherwise.
pub fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} ({per_sec}, {eta}) {prefix}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Shows ingest progress on `bar`.
pub fn show(bar: &ProgressBar, p: Progress) {
    match p {
        Progress::Read { done, total } => {
            bar.set_message("reading");
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        Progress::Write { done, total } => {
            if total > 0 {
                bar.set_message("writing");
                bar.set_length(total);
                bar.set_position(done);
            } else {
                // Written while reading goes on: the bar stays on the input read.
                bar.set_prefix(format!("{done} spans written"));
            }
        }
    }
}
