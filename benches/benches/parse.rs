//! Parse throughput over the mixed corpus, in queries per second.
//!
//! `cargo bench -p traceql-benches --bench parse`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use traceql_benches::query_corpus;

fn parse(c: &mut Criterion) {
    let corpus = query_corpus();
    let bytes: usize = corpus.iter().map(|q| q.len()).sum();
    let asts: Vec<_> = corpus
        .iter()
        .map(|q| traceql_parser::parse(q).expect("the corpus parses"))
        .collect();

    let mut group = c.benchmark_group("corpus");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for q in &corpus {
                black_box(traceql_parser::parse(black_box(q)).unwrap());
            }
        })
    });
    group.bench_function("parse_and_validate", |b| {
        b.iter(|| {
            for q in &corpus {
                black_box(traceql_parser::parse_and_validate(black_box(q)).unwrap());
            }
        })
    });
    group.bench_function("print", |b| {
        b.iter(|| {
            for ast in &asts {
                black_box(ast.to_string());
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("corpus_bytes");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for q in &corpus {
                black_box(traceql_parser::parse(black_box(q)).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
