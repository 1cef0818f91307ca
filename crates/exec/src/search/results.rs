//! The traces a search found, held compactly until they are written: a span shown is
//! a few numbers, and the strings that repeat across spans (span names, root names,
//! attribute values) are kept once each. A trace becomes a [`TraceResult`] only when it
//! is read or written, one at a time, so writing ten million spans never holds ten
//! million span objects.

mod columns;

pub(super) use columns::attribute_columns;
pub use columns::{Columns, SPAN_COLUMNS};

use std::borrow::Borrow;
use std::hash::Hash;
use std::ops::Range;

use rustc_hash::FxHashMap as HashMap;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use traceql_format::ids::{hex, push_hex, push_trace_id_hex, trace_id_hex};
use traceql_format::value::Value;

use super::response::{Attribute, SearchMetrics, SearchResponse, SpanResult, SpanSet, TraceResult};

/// Marks "no string" where an interned string's number is expected.
pub(super) const NONE: u32 = u32::MAX;

/// How many bytes an interned item takes, its heap included.
pub(super) trait Footprint {
    /// About how many bytes.
    fn footprint(&self) -> usize;
}

impl Footprint for Box<str> {
    fn footprint(&self) -> usize {
        self.len() + 16
    }
}

impl Footprint for Value {
    fn footprint(&self) -> usize {
        self.size()
    }
}

/// Values that repeat across result rows, each stored once and named by its number.
pub(super) struct Interner<T> {
    numbers: HashMap<T, u32>,
    items: Vec<T>,
    /// About how many bytes the items take.
    bytes: usize,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            numbers: HashMap::default(),
            items: Vec::new(),
            bytes: 0,
        }
    }
}

impl Interner<Box<str>> {
    /// The number of the string `text`.
    pub(super) fn intern_str(&mut self, text: &str) -> u32 {
        self.intern(text, |t| Box::from(t))
    }
}

impl<T: Hash + Eq + Clone + Footprint> Interner<T> {
    /// The number of the item `key` stands for, made by `make` the first time.
    pub(super) fn intern<Q>(&mut self, key: &Q, make: impl FnOnce(&Q) -> T) -> u32
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(&n) = self.numbers.get(key) {
            return n;
        }
        let n = self.items.len() as u32;
        let item = make(key);
        // The item twice (the key, the item) and the map's and the list's entries.
        self.bytes += 2 * item.footprint() + 16;
        self.numbers.insert(item.clone(), n);
        self.items.push(item);
        n
    }

    /// About how many bytes the values take.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The items, in order of their numbers.
    pub(super) fn items(&self) -> &[T] {
        &self.items
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
/// (trace by trace) or as JSON lines with [`SearchResults::write_json_line`], take them
/// as Arrow record batches, one row per shown span ([`SearchResults::record_batch`]),
/// or turn them into a [`SearchResponse`].
pub struct SearchResults {
    traces: Vec<FoundTrace>,
    names: Interner<Box<str>>,
    values: Interner<Value>,
    /// The names of the span attributes, by index.
    span_attributes: Vec<String>,
    /// The names of the spanset attributes (`by()` values, aggregates) the plan shows.
    spanset_attributes: Vec<String>,
    /// Each name of `names` and of `span_attributes` as a JSON string, escaped once,
    /// and each value of `values` as OTLP/JSON, written once.
    json_names: Vec<Box<str>>,
    json_values: Vec<Box<str>>,
    json_span_attributes: Vec<Box<str>>,
    /// What the search read.
    pub metrics: SearchMetrics,
}

/// `value` as an OTLP/JSON `AnyValue`.
fn any_value_json(value: &Value) -> Box<str> {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "{}".into())
        .into()
}

/// `text` as a JSON string.
fn json_string(text: &str) -> Box<str> {
    serde_json::to_string(text)
        .unwrap_or_else(|_| "\"\"".into())
        .into()
}

impl SearchResults {
    /// The found `traces`, whose strings are numbers in `names` and `values`, with the
    /// names of the span attributes by index and of the spanset attributes.
    pub(super) fn new(
        traces: Vec<FoundTrace>,
        names: Interner<Box<str>>,
        values: Interner<Value>,
        (span_attributes, spanset_attributes): (Vec<String>, Vec<String>),
        metrics: SearchMetrics,
    ) -> SearchResults {
        SearchResults {
            json_names: names.items.iter().map(|n| json_string(n)).collect(),
            json_values: values.items.iter().map(any_value_json).collect(),
            json_span_attributes: span_attributes.iter().map(|n| json_string(n)).collect(),
            traces,
            names,
            values,
            span_attributes,
            spanset_attributes,
            metrics,
        }
    }

    /// No traces, and `metrics`.
    pub(super) fn empty(metrics: SearchMetrics) -> SearchResults {
        SearchResults::new(
            Vec::new(),
            Interner::default(),
            Interner::default(),
            (Vec::new(), Vec::new()),
            metrics,
        )
    }

    /// Appends the trace at `position` as one line of JSON, and a newline: the text
    /// `serde_json::to_writer` makes of its [`TraceResult`], written straight from the
    /// compact form (nothing is allocated per span, names are escaped once each).
    pub fn write_json_line(&self, position: usize, out: &mut Vec<u8>) {
        let Some(t) = self.traces.get(position) else {
            return;
        };
        out.extend_from_slice(br#"{"traceID":""#);
        push_trace_id_hex(&t.id, out);
        out.push(b'"');
        self.push_name(br#","rootServiceName":"#, t.root_service, out);
        self.push_name(br#","rootTraceName":"#, t.root_name, out);
        out.extend_from_slice(br#","startTimeUnixNano":""#);
        push_number(t.start, out);
        out.extend_from_slice(br#"","durationMs":"#);
        push_number((t.end - t.start) / 1_000_000, out);
        out.extend_from_slice(br#","spanSets":"#);
        push_list(&t.spansets, out, |set, out| {
            out.extend_from_slice(br#"{"spans":"#);
            push_list(&set.spans, out, |span, out| self.push_span(span, out));
            out.extend_from_slice(br#","matched":"#);
            push_number(set.matched, out);
            if !set.attributes.is_empty() {
                out.extend_from_slice(br#","attributes":"#);
                push_list(&set.attributes, out, |a, out| {
                    push_attribute(&json_string(&a.key), &any_value_json(&a.value), out);
                });
            }
            out.push(b'}');
        });
        out.extend_from_slice(b"}\n");
    }

    /// Appends a span as [`Self::write_json_line`] does.
    fn push_span(&self, span: &ShownSpan, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"spanID":""#);
        push_hex(&span.id, out);
        out.push(b'"');
        self.push_name(br#","name":"#, span.name, out);
        out.extend_from_slice(br#","startTimeUnixNano":""#);
        push_number(span.start, out);
        out.extend_from_slice(br#"","durationNanos":""#);
        push_number(span.duration, out);
        out.push(b'"');
        if !span.attributes.is_empty() {
            out.extend_from_slice(br#","attributes":"#);
            push_list(span.attributes.iter(), out, |&(key, value), out| {
                push_attribute(
                    &self.json_span_attributes[key as usize],
                    &self.json_values[value as usize],
                    out,
                );
            });
        }
        out.push(b'}');
    }

    /// Appends `field` and the name numbered `name` as a JSON string, unless there is no
    /// name (a field serde leaves out when empty).
    fn push_name(&self, field: &[u8], name: u32, out: &mut Vec<u8>) {
        if name != NONE {
            out.extend_from_slice(field);
            out.extend_from_slice(self.json_names[name as usize].as_bytes());
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

/// Appends `{"key":<key>,"value":<value>}`, `key` and `value` being JSON already.
fn push_attribute(key: &str, value: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"key":"#);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(br#","value":"#);
    out.extend_from_slice(value.as_bytes());
    out.push(b'}');
}

/// Appends `value` in decimal.
fn push_number(value: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends a JSON array of `items`, each written by `push`.
fn push_list<T>(
    items: impl IntoIterator<Item = T>,
    out: &mut Vec<u8>,
    mut push: impl FnMut(T, &mut Vec<u8>),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push(item, out);
    }
    out.push(b']');
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
            names.intern(text, |t| {
                made += 1;
                t.into()
            })
        };
        let a = number("GET /cart");
        let b = number("db.query");
        assert_eq!(number("GET /cart"), a);
        assert_ne!(a, b);
        assert_eq!(made, 2);
        assert_eq!(&**names.get(b), "db.query");
    }

    /// Two traces: one with a root, a spanset attribute, a span attribute and a name
    /// that needs escaping; one of zeros with no root, a span without a name and an
    /// empty spanset.
    fn sample() -> SearchResults {
        let mut values: Interner<Value> = Interner::default();
        let get = values.intern(&Value::Str("GET".into()), Value::clone);
        let mut names: Interner<Box<str>> = Interner::default();
        let mut name = |text: &str| names.intern_str(text);
        let root = name("checkout");
        let odd = name("say \"hi\"\n\u{1}é/\\");
        let span = |id: u8, name: u32, attributes: Vec<(u16, u32)>| ShownSpan {
            start: 5_000_000_000 + u64::from(id),
            id: [id, 2, 3, 4, 5, 6, 7, 8],
            duration: 1_500,
            name,
            attributes: attributes.into(),
        };
        let traces = vec![
            FoundTrace {
                id: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd],
                root_service: root,
                root_name: odd,
                start: 5_000_000_000,
                end: 5_250_000_000,
                spansets: vec![FoundSpanSet {
                    spans: vec![span(1, root, vec![(0, get)]), span(2, odd, vec![])],
                    matched: 4,
                    attributes: vec![Attribute {
                        key: "by(\"x\")".into(),
                        value: values.get(get).clone(),
                    }],
                }],
            },
            FoundTrace {
                id: [0; 16],
                root_service: NONE,
                root_name: NONE,
                start: 7,
                end: 7,
                spansets: vec![
                    FoundSpanSet {
                        spans: vec![span(3, NONE, vec![])],
                        matched: 1,
                        attributes: Vec::new(),
                    },
                    FoundSpanSet {
                        spans: Vec::new(),
                        matched: 0,
                        attributes: Vec::new(),
                    },
                ],
            },
        ];
        SearchResults::new(
            traces,
            names,
            values,
            (vec!["http.method".into()], Vec::new()),
            SearchMetrics {
                inspected_spans: 10,
                ..SearchMetrics::default()
            },
        )
    }

    #[test]
    fn results_serialise_as_their_response_does() {
        let results = sample();
        let direct = serde_json::to_string_pretty(&results).unwrap();
        let response = results.into_response();
        assert_eq!(response.traces[0].trace_id, "abcd");
        assert_eq!(response.traces[0].duration_ms, 250);
        assert_eq!(
            response.traces[0].span_sets[0].spans[0].span_id,
            "0102030405060708"
        );
        assert_eq!(response.traces[1].trace_id, "0");
        assert_eq!(direct, serde_json::to_string_pretty(&response).unwrap());
    }

    #[test]
    fn json_lines_written_directly_are_those_serde_writes() {
        let results = sample();
        for (position, trace) in results.traces().enumerate() {
            let mut direct = Vec::new();
            results.write_json_line(position, &mut direct);
            let mut want = serde_json::to_vec(&trace).unwrap();
            want.push(b'\n');
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }
}
