//! The order of traces and spans in a block: traces by start (then trace id), each
//! trace's spans by start (then span id), as `data.parquet` holds them. Ingest,
//! compaction and conversion put traces in this order before writing them.

use crate::ids::TraceId;
use crate::model::{Span, Trace};

/// Sorts each trace's spans by start time (then span id), and the traces by start
/// (then trace id): the order blocks hold them in.
pub fn in_block_order(traces: &mut [Trace]) {
    traces.iter_mut().for_each(sort_spans);
    traces.sort_by_cached_key(block_key);
}

/// What orders traces in a block: their start, then their id.
pub type BlockKey = (u64, Option<TraceId>);

/// The [`BlockKey`] of `trace`.
pub fn block_key(trace: &Trace) -> BlockKey {
    (trace_start(trace), trace.first().map(|s| s.trace_id))
}

/// Sorts a trace's spans by start time, then span id.
pub fn sort_spans(trace: &mut Trace) {
    trace.sort_by(|a: &Span, b: &Span| {
        (a.start_unix_nano, a.span_id).cmp(&(b.start_unix_nano, b.span_id))
    });
}

/// `traces` cut into blocks of about `spans_per_block` spans, at trace boundaries.
pub fn into_blocks(traces: Vec<Trace>, spans_per_block: usize) -> Vec<Vec<Trace>> {
    let mut blocks = Vec::new();
    let mut block: Vec<Trace> = Vec::new();
    let mut spans = 0;
    for trace in traces {
        spans += trace.len();
        block.push(trace);
        if spans >= spans_per_block {
            blocks.push(std::mem::take(&mut block));
            spans = 0;
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

/// The earliest span start of a trace.
pub fn trace_start(trace: &Trace) -> u64 {
    trace.iter().map(|s| s.start_unix_nano).min().unwrap_or(0)
}
