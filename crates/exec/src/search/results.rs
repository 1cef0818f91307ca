//! The traces a search found, held compactly until they are written: a span shown is
//! a few numbers, and the strings that repeat across spans (span names, root names,
//! attribute values) are kept once each. A trace becomes a [`TraceResult`] only when it
//! is read or written, one at a time, so writing ten million spans never holds ten
//! million span objects.

use std::ops::Range;

use rustc_hash::FxHashMap as HashMap;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use traceql_format::ids::{hex, trace_id_hex};

use super::response::{
    AnyValueJson, Attribute, SearchMetrics, SearchResponse, SpanResult, SpanSet, TraceResult,
};

/// Marks "no string" where an interned string's number is expected.
pub(super) const NONE: u32 = u32::MAX;

/// Values that repeat across result rows, each stored once and named by its number.
pub(super) struct Interner<T> {
    numbers: HashMap<Box<str>, u32>,
    items: Vec<T>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            numbers: HashMap::default(),
            items: Vec::new(),
        }
    }
}

impl<T> Interner<T> {
    /// The number of the value whose text is `text`, made by `make` the first time.
    pub(super) fn intern<E>(
        &mut self,
        text: &str,
        make: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<u32, E> {
        if let Some(&n) = self.numbers.get(text) {
            return Ok(n);
        }
        let n = self.items.len() as u32;
        self.items.push(make(text)?);
        self.numbers.insert(text.into(), n);
        Ok(n)
    }

    /// The value numbered `n`.
    pub(super) fn get(&self, n: u32) -> &T {
        &self.items[n as usize]
    }
}

/// One span shown in a spanset.
pub(super) struct ShownSpan {
    /// Start, unix nanoseconds; with `id`, the span's place in its spanset.
    pub(super) start: u64,
    pub(super) id: [u8; 8],
    pub(super) duration: u64,
    /// The name's number in [`SearchResults::names`], or [`NONE`].
    pub(super) name: u32,
    /// (index in the search's span attributes, value's number in
    /// [`SearchResults::values`]) of each attribute that is not nil.
    pub(super) attributes: Box<[(u16, u32)]>,
}

impl ShownSpan {
    /// The span's place in its spanset: by start time, then span id.
    pub(super) fn key(&self) -> (u64, [u8; 8]) {
        (self.start, self.id)
    }
}

/// One spanset of a found trace.
pub(super) struct FoundSpanSet {
    /// The spans shown, in order.
    pub(super) spans: Vec<ShownSpan>,
    /// How many spans the spanset has.
    pub(super) matched: u64,
    /// Its `by()` values and aggregate results.
    pub(super) attributes: Vec<Attribute>,
}

/// One found trace.
pub(super) struct FoundTrace {
    pub(super) id: [u8; 16],
    /// Numbers in [`SearchResults::names`], or [`NONE`].
    pub(super) root_service: u32,
    pub(super) root_name: u32,
    pub(super) start: u64,
    pub(super) end: u64,
    /// Its spansets, in order.
    pub(super) spansets: Vec<FoundSpanSet>,
}

/// The traces a search found, in the search's order, and what it read. Read them with
/// [`SearchResults::traces`], write them as Tempo's `/api/search` JSON with `serde`
/// (trace by trace), or turn them into a [`SearchResponse`].
pub struct SearchResults {
    pub(super) traces: Vec<FoundTrace>,
    pub(super) names: Interner<Box<str>>,
    pub(super) values: Interner<AnyValueJson>,
    /// The names of the span attributes, by index.
    pub(super) span_attributes: Vec<String>,
    /// What the search read.
    pub metrics: SearchMetrics,
}

impl SearchResults {
    /// No traces, and `metrics`.
    pub(super) fn empty(metrics: SearchMetrics) -> SearchResults {
        SearchResults {
            traces: Vec::new(),
            names: Interner::default(),
            values: Interner::default(),
            span_attributes: Vec::new(),
            metrics,
        }
    }

    /// How many traces were found.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// Whether no trace was found.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The found traces in order, each made when it is reached.
    pub fn traces(&self) -> impl ExactSizeIterator<Item = TraceResult> + '_ {
        self.traces.iter().map(|t| self.trace(t))
    }

    /// The found traces at positions `range` in order (as many as there are).
    pub fn traces_in(
        &self,
        range: Range<usize>,
    ) -> impl ExactSizeIterator<Item = TraceResult> + '_ {
        let end = range.end.min(self.traces.len());
        let start = range.start.min(end);
        self.traces[start..end].iter().map(|t| self.trace(t))
    }

    /// All of it as a [`SearchResponse`].
    pub fn into_response(self) -> SearchResponse {
        SearchResponse {
            traces: self.traces().collect(),
            metrics: self.metrics,
        }
    }

    fn name(&self, n: u32) -> String {
        if n == NONE {
            String::new()
        } else {
            self.names.get(n).to_string()
        }
    }

    fn trace(&self, t: &FoundTrace) -> TraceResult {
        TraceResult {
            trace_id: trace_id_hex(&t.id),
            root_service_name: self.name(t.root_service),
            root_trace_name: self.name(t.root_name),
            start_time_unix_nano: t.start,
            duration_ms: (t.end - t.start) / 1_000_000,
            span_sets: t
                .spansets
                .iter()
                .map(|s| SpanSet {
                    spans: s.spans.iter().map(|span| self.span(span)).collect(),
                    matched: s.matched,
                    attributes: s.attributes.clone(),
                })
                .collect(),
        }
    }

    fn span(&self, span: &ShownSpan) -> SpanResult {
        SpanResult {
            span_id: hex(&span.id),
            name: self.name(span.name),
            start_time_unix_nano: span.start,
            duration_nanos: span.duration,
            attributes: span
                .attributes
                .iter()
                .map(|&(key, value)| Attribute {
                    key: self.span_attributes[key as usize].clone(),
                    value: self.values.get(value).clone(),
                })
                .collect(),
        }
    }
}

/// Serialises the traces one at a time.
struct Traces<'a>(&'a SearchResults);

impl Serialize for Traces<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.traces())
    }
}

/// The same JSON as the [`SearchResponse`] of the same results.
impl Serialize for SearchResults {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("SearchResponse", 2)?;
        s.serialize_field("traces", &Traces(self))?;
        s.serialize_field("metrics", &self.metrics)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_keeps_one_copy_and_makes_each_value_once() {
        let mut names: Interner<Box<str>> = Interner::default();
        let mut made = 0;
        let mut number = |text: &str| {
            names
                .intern(text, |t| {
                    made += 1;
                    Ok::<_, ()>(t.into())
                })
                .unwrap()
        };
        let a = number("GET /cart");
        let b = number("db.query");
        assert_eq!(number("GET /cart"), a);
        assert_ne!(a, b);
        assert_eq!(made, 2);
        assert_eq!(&**names.get(b), "db.query");
    }

    #[test]
    fn results_serialise_as_their_response_does() {
        let mut values: Interner<AnyValueJson> = Interner::default();
        let get = values
            .intern(r#"{"stringValue":"GET"}"#, |t| {
                AnyValueJson::from_text(t.into())
            })
            .unwrap();
        let mut names: Interner<Box<str>> = Interner::default();
        let root = names.intern("checkout", |t| Ok::<_, ()>(t.into())).unwrap();
        let results = SearchResults {
            traces: vec![FoundTrace {
                id: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd],
                root_service: root,
                root_name: NONE,
                start: 5_000_000_000,
                end: 5_250_000_000,
                spansets: vec![FoundSpanSet {
                    spans: vec![ShownSpan {
                        start: 5_000_000_000,
                        id: [1, 2, 3, 4, 5, 6, 7, 8],
                        duration: 1_500,
                        name: root,
                        attributes: vec![(0, get)].into(),
                    }],
                    matched: 4,
                    attributes: Vec::new(),
                }],
            }],
            names,
            values,
            span_attributes: vec!["http.method".into()],
            metrics: SearchMetrics {
                inspected_spans: 10,
                ..SearchMetrics::default()
            },
        };
        let direct = serde_json::to_string_pretty(&results).unwrap();
        let response = results.into_response();
        assert_eq!(response.traces[0].trace_id, "abcd");
        assert_eq!(response.traces[0].duration_ms, 250);
        assert_eq!(
            response.traces[0].span_sets[0].spans[0].span_id,
            "0102030405060708"
        );
        assert_eq!(direct, serde_json::to_string_pretty(&response).unwrap());
    }
}
