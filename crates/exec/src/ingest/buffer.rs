//! Spans waiting to be written, grouped by trace, with their memory counted: ingest
//! cuts blocks from here when it holds as much as the memory budget allows.

use rustc_hash::FxHashMap as HashMap;

use traceql_format::ids::TraceId;
use traceql_format::model::{Event, Link, Span, Trace};
use traceql_format::value::{KeyValue, Value};

/// A trace being gathered: when it first arrived, its spans, their size.
struct Pending {
    arrived: u64,
    spans: Vec<Span>,
    bytes: usize,
}

/// Spans grouped by trace, in memory.
#[derive(Default)]
pub struct TraceBuffer {
    traces: HashMap<TraceId, Pending>,
    bytes: usize,
    arrivals: u64,
}

impl TraceBuffer {
    /// Adds a span.
    pub fn push(&mut self, span: Span) {
        let size = span_bytes(&span);
        self.bytes += size;
        let arrivals = &mut self.arrivals;
        let pending = self.traces.entry(span.trace_id).or_insert_with(|| {
            *arrivals += 1;
            Pending {
                arrived: *arrivals,
                spans: Vec::new(),
                bytes: 0,
            }
        });
        pending.bytes += size;
        pending.spans.push(span);
    }

    /// About how many bytes the buffered spans take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Takes the traces that arrived first, until about `bytes` are taken: in a stream
    /// of spans (a Collector's export, say) these are the traces most likely complete.
    pub fn take_oldest(&mut self, bytes: usize) -> Vec<Trace> {
        let mut order: Vec<(u64, TraceId)> =
            self.traces.iter().map(|(id, p)| (p.arrived, *id)).collect();
        order.sort_unstable();
        let mut taken = 0;
        let mut out = Vec::new();
        for (_, id) in order {
            if taken >= bytes {
                break;
            }
            if let Some(p) = self.traces.remove(&id) {
                taken += p.bytes;
                self.bytes -= p.bytes;
                out.push(p.spans);
            }
        }
        out
    }
}

/// About how many bytes of memory `span` takes, counting what its strings and lists
/// have allocated (its resource and scope are shared between spans and not counted).
pub fn span_bytes(span: &Span) -> usize {
    std::mem::size_of::<Span>()
        + span.name.capacity()
        + span.trace_state.capacity()
        + span.status_message.capacity()
        + attributes_bytes(&span.attributes)
        + span.events.capacity() * std::mem::size_of::<Event>()
        + span
            .events
            .iter()
            .map(|e| e.name.capacity() + attributes_bytes(&e.attributes))
            .sum::<usize>()
        + span.links.capacity() * std::mem::size_of::<Link>()
        + span
            .links
            .iter()
            .map(|l| l.trace_state.capacity() + attributes_bytes(&l.attributes))
            .sum::<usize>()
}

// A `Vec`, not a slice: what it has allocated counts, not only what it holds.
#[allow(clippy::ptr_arg)]
fn attributes_bytes(attributes: &Vec<KeyValue>) -> usize {
    attributes.capacity() * std::mem::size_of::<KeyValue>()
        + attributes
            .iter()
            .map(|kv| kv.key.capacity() + value_bytes(&kv.value))
            .sum::<usize>()
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Str(s) => s.capacity(),
        Value::StrArray(a) => {
            a.capacity() * std::mem::size_of::<String>()
                + a.iter().map(String::capacity).sum::<usize>()
        }
        Value::IntArray(a) => a.capacity() * 8,
        Value::FloatArray(a) => a.capacity() * 8,
        Value::BoolArray(a) => a.capacity(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: u8, id: u8) -> Span {
        Span::bare([trace; 16], [id; 8], "work", 0, 0)
    }

    #[test]
    fn takes_the_traces_that_arrived_first_and_counts_what_is_left() {
        let mut buffer = TraceBuffer::default();
        for (trace, id) in [(1, 1), (2, 1), (1, 2), (3, 1), (2, 2)] {
            buffer.push(span(trace, id));
        }
        let per_span = span_bytes(&span(0, 0));
        assert_eq!(buffer.bytes(), 5 * per_span);
        let first = buffer.take_oldest(1);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].len(), 2);
        assert_eq!(first[0][0].trace_id, [1; 16]);
        assert_eq!(buffer.bytes(), 3 * per_span);
        let rest = buffer.take_oldest(3 * per_span);
        let ids: Vec<_> = rest.iter().map(|t| t[0].trace_id[0]).collect();
        assert_eq!(ids, vec![2, 3]);
        assert!(buffer.is_empty());
        assert_eq!(buffer.bytes(), 0);
    }
}
