//! Spans waiting to be written, grouped by trace, with their memory counted: ingest
//! cuts blocks from here when it holds as much as the memory budget allows. Each
//! request's spans stay in the arena they were decoded into; traces are lists of
//! references into those arenas, and an arena is let go once none of its spans waits.
//!
//! The buffer also remembers which traces it has handed on, so that it can tell whether
//! a trace came to be written in parts: one whose spans arrive after it was taken.

use std::sync::Arc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use traceql_format::arena::{ArenaTraces, SpanArena, SpanRef};
use traceql_format::ids::TraceId;

/// A trace being gathered: the earliest start of its spans so far, and its spans.
struct Pending {
    start: u64,
    spans: Vec<(u64, u32)>,
}

/// A request's arena, and how many of its spans still wait.
struct Held {
    arena: Arc<SpanArena>,
    waiting: usize,
    bytes: usize,
}

/// Spans grouped by trace, in memory.
#[derive(Default)]
pub struct TraceBuffer {
    /// The arenas holding waiting spans, by the number of their request.
    arenas: HashMap<u64, Held>,
    requests: u64,
    traces: HashMap<TraceId, Pending>,
    /// What the held arenas take.
    bytes: usize,
    /// Fingerprints of the traces taken so far (see [`fingerprint`]), while there are
    /// at most `remember` of them.
    taken: HashSet<u64>,
    /// How many taken traces the buffer remembers; past that it assumes the worst.
    remember: usize,
    /// A trace taken before has had more spans since, or too many traces were taken
    /// to remember them all.
    split: bool,
}

/// A trace id's fingerprint: its two halves folded. Two traces that share one are
/// taken for the same, which at worst reports a split that did not happen.
fn fingerprint(id: &TraceId) -> u64 {
    let (high, low) = id.split_at(8);
    let half = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
    half(high) ^ half(low).rotate_left(29)
}

impl TraceBuffer {
    /// An empty buffer that remembers up to `remember` taken traces to tell whether
    /// any trace was written in parts ([`Self::split`]); beyond that it reports that
    /// one may have been. Each costs about 16 bytes.
    pub fn new(remember: usize) -> Self {
        TraceBuffer {
            remember,
            ..TraceBuffer::default()
        }
    }

    /// Whether some trace was written in parts: spans of it arrived after it was taken
    /// (or, past the traces the buffer remembers, whether one may have been).
    pub fn split(&self) -> bool {
        self.split
    }

    /// Adds the spans of `request`.
    pub fn push(&mut self, request: SpanArena) {
        if request.spans.is_empty() {
            return;
        }
        let number = self.requests;
        self.requests += 1;
        for (i, span) in request.spans.iter().enumerate() {
            let (taken, split) = (&self.taken, &mut self.split);
            let pending = self.traces.entry(span.trace_id).or_insert_with(|| {
                *split |= !taken.is_empty() && taken.contains(&fingerprint(&span.trace_id));
                Pending {
                    start: u64::MAX,
                    spans: Vec::new(),
                }
            });
            pending.start = pending.start.min(span.start_unix_nano);
            pending.spans.push((number, i as u32));
        }
        let bytes = request.bytes();
        self.bytes += bytes;
        self.arenas.insert(
            number,
            Held {
                waiting: request.spans.len(),
                arena: Arc::new(request),
                bytes,
            },
        );
    }

    /// About how many bytes the arenas of the waiting spans take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Takes the traces that start first, in block order, until about `bytes` are
    /// taken (reckoned by their share of their arenas). In a stream of spans (a
    /// Collector's export, say) these are the traces most likely complete; and as the
    /// buffer holds more than is taken at a time, traces that arrive a little out of
    /// order are put back in order, so that the blocks written one after another
    /// follow one another in block order.
    pub fn take_first(&mut self, bytes: usize) -> ArenaTraces {
        let mut order: Vec<(u64, TraceId)> =
            self.traces.iter().map(|(id, p)| (p.start, *id)).collect();
        order.sort_unstable();
        let mut taken = 0;
        let mut chosen = Vec::new();
        for (_, id) in order {
            if taken >= bytes {
                break;
            }
            if let Some(p) = self.traces.remove(&id) {
                if self.taken.len() < self.remember {
                    self.taken.insert(fingerprint(&id));
                } else {
                    self.split = true;
                }
                for (number, _) in &p.spans {
                    let held = &self.arenas[number];
                    taken += held.bytes / held.arena.spans.len();
                }
                chosen.push(p.spans);
            }
        }
        // The arenas the chosen spans are in, numbered for the traces' references.
        let mut numbers: HashMap<u64, u32> = HashMap::default();
        let mut arenas = Vec::new();
        let traces = chosen
            .into_iter()
            .map(|spans| {
                spans
                    .into_iter()
                    .map(|(number, span)| {
                        let arena = *numbers.entry(number).or_insert_with(|| {
                            arenas.push(Arc::clone(&self.arenas[&number].arena));
                            arenas.len() as u32 - 1
                        });
                        let held = self.arenas.get_mut(&number).expect("held");
                        held.waiting -= 1;
                        if held.waiting == 0 {
                            self.bytes -= held.bytes;
                            self.arenas.remove(&number);
                        }
                        SpanRef { arena, span }
                    })
                    .collect()
            })
            .collect();
        ArenaTraces::new(arenas, traces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(spans: &[(u8, u8, u64)]) -> SpanArena {
        let mut arena = SpanArena::default();
        arena.resources.push(Default::default());
        arena.scopes.push(Default::default());
        for &(trace, id, start) in spans {
            let name = arena.push_str("work");
            arena.spans.push(traceql_format::arena::ArenaSpan {
                trace_id: [trace; 16],
                span_id: [id; 8],
                name,
                start_unix_nano: start,
                ..Default::default()
            });
        }
        arena
    }

    /// Each trace's (trace, span) ids, in order.
    fn ids(traces: &ArenaTraces) -> Vec<Vec<(u8, u8)>> {
        traces
            .traces
            .iter()
            .map(|t| {
                t.iter()
                    .map(|r| {
                        let span = &traces.arenas[r.arena as usize].spans[r.span as usize];
                        (span.trace_id[0], span.span_id[0])
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn takes_the_traces_that_start_first_and_lets_their_arenas_go() {
        let mut buffer = TraceBuffer::new(10);
        let (first, second) = (
            request(&[(1, 1, 5), (2, 1, 3), (1, 2, 4)]),
            request(&[(3, 1, 0), (2, 2, 2)]),
        );
        let sizes = (first.bytes(), second.bytes());
        buffer.push(first);
        buffer.push(second);
        assert_eq!(buffer.bytes(), sizes.0 + sizes.1);
        // Trace 3 arrived last and starts first.
        let taken = buffer.take_first(1);
        assert_eq!(ids(&taken), vec![vec![(3, 1)]]);
        // Traces 1 and 2 still wait in both arenas.
        assert_eq!(buffer.bytes(), sizes.0 + sizes.1);
        let rest = buffer.take_first(usize::MAX);
        // Traces in block order (trace 2 starts with its second span), each trace's
        // spans by start.
        assert_eq!(ids(&rest), vec![vec![(2, 2), (2, 1)], vec![(1, 2), (1, 1)]]);
        assert_eq!(rest.arenas.len(), 2);
        assert!(buffer.is_empty());
        assert_eq!(buffer.bytes(), 0);
        assert!(buffer.arenas.is_empty());
        assert!(!buffer.split(), "no trace had spans after it was taken");
    }

    #[test]
    fn tells_a_trace_written_in_parts() {
        let mut buffer = TraceBuffer::new(10);
        buffer.push(request(&[(1, 1, 5), (2, 1, 1)]));
        let _ = buffer.take_first(usize::MAX);
        buffer.push(request(&[(3, 1, 9)]));
        assert!(!buffer.split());
        buffer.push(request(&[(2, 2, 2)]));
        assert!(
            buffer.split(),
            "trace 2 was taken before its second span came"
        );
    }

    #[test]
    fn assumes_a_split_past_the_traces_it_remembers() {
        let mut buffer = TraceBuffer::new(1);
        buffer.push(request(&[(1, 1, 5), (2, 1, 1)]));
        let _ = buffer.take_first(usize::MAX);
        assert!(buffer.split(), "two traces taken, one remembered");
    }
}
