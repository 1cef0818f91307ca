//! Spans waiting to be written, grouped by trace, with their memory counted: ingest
//! cuts blocks from here when it holds as much as the memory budget allows. Each
//! request's spans stay in the arena they were decoded into; traces are lists of
//! references into those arenas, and an arena is let go once none of its spans waits.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use traceql_format::arena::{ArenaTraces, SpanArena, SpanRef};
use traceql_format::ids::TraceId;

/// A trace being gathered: when it first arrived, and its spans.
struct Pending {
    arrived: u64,
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
    arrivals: u64,
}

impl TraceBuffer {
    /// Adds the spans of `request`.
    pub fn push(&mut self, request: SpanArena) {
        if request.spans.is_empty() {
            return;
        }
        let number = self.requests;
        self.requests += 1;
        for (i, span) in request.spans.iter().enumerate() {
            let arrivals = &mut self.arrivals;
            let pending = self.traces.entry(span.trace_id).or_insert_with(|| {
                *arrivals += 1;
                Pending {
                    arrived: *arrivals,
                    spans: Vec::new(),
                }
            });
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

    /// Takes the traces that arrived first, until about `bytes` are taken (reckoned by
    /// their share of their arenas): in a stream of spans (a Collector's export, say)
    /// these are the traces most likely complete. They come in block order.
    pub fn take_oldest(&mut self, bytes: usize) -> ArenaTraces {
        let mut order: Vec<(u64, TraceId)> =
            self.traces.iter().map(|(id, p)| (p.arrived, *id)).collect();
        order.sort_unstable();
        let mut taken = 0;
        let mut chosen = Vec::new();
        for (_, id) in order {
            if taken >= bytes {
                break;
            }
            if let Some(p) = self.traces.remove(&id) {
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
    fn takes_the_traces_that_arrived_first_and_lets_their_arenas_go() {
        let mut buffer = TraceBuffer::default();
        let (first, second) = (
            request(&[(1, 1, 5), (2, 1, 1), (1, 2, 4)]),
            request(&[(3, 1, 0), (2, 2, 2)]),
        );
        let sizes = (first.bytes(), second.bytes());
        buffer.push(first);
        buffer.push(second);
        assert_eq!(buffer.bytes(), sizes.0 + sizes.1);
        let taken = buffer.take_oldest(1);
        // A trace's spans by start.
        assert_eq!(ids(&taken), vec![vec![(1, 2), (1, 1)]]);
        // Trace 2 still waits in both arenas.
        assert_eq!(buffer.bytes(), sizes.0 + sizes.1);
        let rest = buffer.take_oldest(usize::MAX);
        // Traces in block order: by start, not by arrival.
        assert_eq!(ids(&rest), vec![vec![(3, 1)], vec![(2, 1), (2, 2)]]);
        assert_eq!(rest.arenas.len(), 2);
        assert!(buffer.is_empty());
        assert_eq!(buffer.bytes(), 0);
        assert!(buffer.arenas.is_empty());
    }
}
