//! Ingest throughput and storage cost over generated data of realistic shape.
//!
//! `cargo bench -p traceql-benches --bench ingest -- [TRACES]` (default 72,000 traces,
//! about a million spans). Prints, for each stage, wall time, spans/s and bytes/span:
//! generating traces, encoding and writing blocks (what `traceql gen` does), and the whole
//! OTLP/protobuf ingest path (read, decode, group by trace, encode, write).

use std::path::PathBuf;
use std::time::Instant;

use prost::Message;
use traceql_benches::{runtime, traces_arg};
use traceql_exec::ingest::{IngestOptions, ingest_files, write_traces};
use traceql_exec::otlp::request_from_spans;
use traceql_exec::store::Store;
use traceql_format::block::BlockOptions;
use traceql_format::model::Trace;
use traceql_gen::Generator;

fn row(stage: &str, spans: usize, seconds: f64, bytes: Option<u64>) {
    let per_span = bytes.map_or(String::from("-"), |b| {
        format!("{:.1}", b as f64 / spans as f64)
    });
    println!(
        "{stage:<34} {spans:>10} {seconds:>9.3} {:>14.0} {per_span:>12}",
        spans as f64 / seconds
    );
}

fn main() {
    let traces = traces_arg();
    let runtime = runtime();
    let dir = std::env::temp_dir().join(format!("traceql-bench-ingest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "{:<34} {:>10} {:>9} {:>14} {:>12}",
        "stage", "spans", "seconds", "spans/s", "bytes/span"
    );

    let started = Instant::now();
    let mut generator = Generator::new(
        1,
        traceql_gen::EPOCH_UNIX_NANO,
        3_600_000_000_000 / traces as u64,
    );
    let mut generated: Vec<Trace> = (0..traces).map(|_| generator.next_trace()).collect();
    generated.sort_by_key(|t| t[0].trace_id);
    let spans: usize = generated.iter().map(Vec::len).sum();
    row("generate", spans, started.elapsed().as_secs_f64(), None);

    let store = Store::local(&dir.join("gen"), true).expect("store");
    let options = BlockOptions::default();
    let started = Instant::now();
    let mut n = 0;
    let report = runtime
        .block_on(write_traces(
            &store,
            generated.clone(),
            &options,
            || {
                n += 1;
                format!("block-{n}")
            },
            &|_| {},
        ))
        .expect("write");
    row(
        "encode + write blocks",
        spans,
        started.elapsed().as_secs_f64(),
        Some(report.bytes),
    );

    // OTLP/protobuf files of 10,000 spans each, as an exporter would send them.
    let input = dir.join("otlp");
    std::fs::create_dir_all(&input).expect("input dir");
    let all: Vec<_> = generated.into_iter().flatten().collect();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut otlp_bytes = 0u64;
    for (i, chunk) in all.chunks(10_000).enumerate() {
        let body = request_from_spans(chunk).encode_to_vec();
        otlp_bytes += body.len() as u64;
        let path = input.join(format!("{i:05}.binpb"));
        std::fs::write(&path, body).expect("write input");
        files.push(path);
    }
    println!(
        "{:<34} {:>10} {:>9} {:>14} {:>12.1}",
        "(OTLP/protobuf input)",
        spans,
        "",
        "",
        otlp_bytes as f64 / spans as f64
    );
    let store = Store::local(&dir.join("ingest"), true).expect("store");
    let started = Instant::now();
    let report = runtime
        .block_on(ingest_files(
            &store,
            &files,
            &IngestOptions {
                block: options.clone(),
                ..IngestOptions::default()
            },
            &|_| {},
        ))
        .expect("ingest");
    row(
        "ingest OTLP/protobuf",
        report.spans as usize,
        started.elapsed().as_secs_f64(),
        Some(report.bytes),
    );
    println!(
        "{} traces, {} blocks; machine: {} cores",
        report.traces,
        report.blocks,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
