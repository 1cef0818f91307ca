//! Spans as decoded from OTLP, owned in arenas: every string of a request in one
//! buffer, and its spans, resources, scopes, events, links and attributes in vectors
//! that point at one another by index. It is the owned twin of
//! [`SpanRows`](crate::block::span_rows::SpanRows): decoders write a request's spans
//! into an arena of its own without an allocation per string or list, ingest groups
//! them by trace by reference ([`ArenaTraces`], never copying a span), and the row
//! builder borrows them. The span model ([`crate::model`]) is never built on this path.

use std::ops::Range;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::block::span_rows::{EventRow, LinkRow, ResourceRow, ScopeRow, SpanRow, SpanRows};
use crate::ids::{SpanId, TraceId};
use crate::value::{ValueRef, ValueType};

/// A run of an arena's vector (or of its bytes, for a string): `start..end`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// First index.
    pub start: usize,
    /// One past the last index.
    pub end: usize,
}

impl Slot {
    /// The run as a range.
    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }

    /// How many items the run holds.
    pub fn len(self) -> usize {
        self.end - self.start
    }

    /// Whether the run is empty.
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }

    /// Appends `items` to `vec`; the run they take there.
    pub fn append<T>(vec: &mut Vec<T>, items: impl IntoIterator<Item = T>) -> Slot {
        let start = vec.len();
        vec.extend(items);
        Slot {
            start,
            end: vec.len(),
        }
    }
}

/// An attribute value; strings and arrays are runs of the arena.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArenaValue {
    /// A string (bytes).
    Str(Slot),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A non-empty array of strings (in [`SpanArena::texts`]).
    StrArray(Slot),
    /// A non-empty array of integers (in [`SpanArena::ints`]).
    IntArray(Slot),
    /// A non-empty array of floats (in [`SpanArena::floats`]).
    FloatArray(Slot),
    /// A non-empty array of booleans (in [`SpanArena::bools`]).
    BoolArray(Slot),
    /// A value TraceQL cannot query, as its OTLP/JSON `AnyValue` text (bytes).
    Opaque(Slot),
}

/// A key (bytes) and its value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArenaAttribute {
    /// The key.
    pub key: Slot,
    /// The value.
    pub value: ArenaValue,
}

/// A resource.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArenaResource {
    /// Its attributes.
    pub attributes: Slot,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Schema URL (bytes).
    pub schema_url: Slot,
}

/// An instrumentation scope.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArenaScope {
    /// Name (bytes).
    pub name: Slot,
    /// Version (bytes).
    pub version: Slot,
    /// Its attributes.
    pub attributes: Slot,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Schema URL (bytes).
    pub schema_url: Slot,
}

/// A span event.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArenaEvent {
    /// Time, unix nanoseconds.
    pub time_unix_nano: u64,
    /// Name (bytes).
    pub name: Slot,
    /// Its attributes.
    pub attributes: Slot,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
}

/// A span link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArenaLink {
    /// Linked trace.
    pub trace_id: TraceId,
    /// Linked span.
    pub span_id: SpanId,
    /// W3C trace state (bytes).
    pub trace_state: Slot,
    /// W3C trace flags.
    pub flags: u32,
    /// Its attributes.
    pub attributes: Slot,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
}

/// A span; its runs index the arena's vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArenaSpan {
    /// Trace id.
    pub trace_id: TraceId,
    /// Span id.
    pub span_id: SpanId,
    /// Parent span id; `None` for a root.
    pub parent_span_id: Option<SpanId>,
    /// W3C trace state (bytes).
    pub trace_state: Slot,
    /// W3C trace flags.
    pub flags: u32,
    /// Name (bytes).
    pub name: Slot,
    /// OTLP span kind.
    pub kind: i8,
    /// Start, unix nanoseconds.
    pub start_unix_nano: u64,
    /// End, unix nanoseconds.
    pub end_unix_nano: u64,
    /// Its attributes.
    pub attributes: Slot,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Its events.
    pub events: Slot,
    /// Events the producer dropped.
    pub dropped_events_count: u32,
    /// Its links.
    pub links: Slot,
    /// Links the producer dropped.
    pub dropped_links_count: u32,
    /// OTLP status code.
    pub status_code: i8,
    /// Status message (bytes).
    pub status_message: Slot,
    /// Its resource in [`SpanArena::resources`].
    pub resource: usize,
    /// Its scope in [`SpanArena::scopes`].
    pub scope: usize,
}

/// Spans and everything they point at, owned. Strings are written only through
/// [`SpanArena::push_str`].
#[derive(Clone, Debug, Default)]
pub struct SpanArena {
    bytes: String,
    /// The strings of string arrays.
    pub texts: Vec<Slot>,
    /// The items of integer arrays.
    pub ints: Vec<i64>,
    /// The items of float arrays.
    pub floats: Vec<f64>,
    /// The items of boolean arrays.
    pub bools: Vec<bool>,
    /// Attributes of spans, resources, scopes, events and links.
    pub attributes: Vec<ArenaAttribute>,
    /// Resources.
    pub resources: Vec<ArenaResource>,
    /// Instrumentation scopes.
    pub scopes: Vec<ArenaScope>,
    /// Events.
    pub events: Vec<ArenaEvent>,
    /// Links.
    pub links: Vec<ArenaLink>,
    /// Spans.
    pub spans: Vec<ArenaSpan>,
}

/// How far an arena was filled, to go back to with [`SpanArena::truncate`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Mark {
    bytes: usize,
    texts: usize,
    ints: usize,
    floats: usize,
    bools: usize,
    attributes: usize,
    resources: usize,
    scopes: usize,
    events: usize,
    links: usize,
    spans: usize,
}

impl SpanArena {
    /// Appends a string; its run.
    pub fn push_str(&mut self, s: &str) -> Slot {
        let start = self.bytes.len();
        self.bytes.push_str(s);
        Slot {
            start,
            end: self.bytes.len(),
        }
    }

    /// The string at `slot` (a run [`SpanArena::push_str`] gave; any other run is the
    /// empty string).
    pub fn str(&self, slot: Slot) -> &str {
        self.bytes.get(slot.range()).unwrap_or_default()
    }

    /// An empty arena with room for as much as `like` (the [`SpanArena::mark`] of a
    /// full one) says: requests of one source are much alike, and an arena sized
    /// beforehand is not copied as it grows.
    pub fn with_capacity(like: Mark) -> SpanArena {
        SpanArena {
            bytes: String::with_capacity(like.bytes),
            texts: Vec::with_capacity(like.texts),
            ints: Vec::with_capacity(like.ints),
            floats: Vec::with_capacity(like.floats),
            bools: Vec::with_capacity(like.bools),
            attributes: Vec::with_capacity(like.attributes),
            resources: Vec::with_capacity(like.resources),
            scopes: Vec::with_capacity(like.scopes),
            events: Vec::with_capacity(like.events),
            links: Vec::with_capacity(like.links),
            spans: Vec::with_capacity(like.spans),
        }
    }

    /// How full the arena is.
    pub fn mark(&self) -> Mark {
        Mark {
            bytes: self.bytes.len(),
            texts: self.texts.len(),
            ints: self.ints.len(),
            floats: self.floats.len(),
            bools: self.bools.len(),
            attributes: self.attributes.len(),
            resources: self.resources.len(),
            scopes: self.scopes.len(),
            events: self.events.len(),
            links: self.links.len(),
            spans: self.spans.len(),
        }
    }

    /// Forgets everything appended since `mark` (a span that proved invalid).
    pub fn truncate(&mut self, mark: Mark) {
        self.bytes.truncate(mark.bytes);
        self.texts.truncate(mark.texts);
        self.ints.truncate(mark.ints);
        self.floats.truncate(mark.floats);
        self.bools.truncate(mark.bools);
        self.attributes.truncate(mark.attributes);
        self.resources.truncate(mark.resources);
        self.scopes.truncate(mark.scopes);
        self.events.truncate(mark.events);
        self.links.truncate(mark.links);
        self.spans.truncate(mark.spans);
    }

    /// About how many bytes the arena holds (what it has in use, not its capacity).
    pub fn bytes(&self) -> usize {
        use std::mem::size_of;
        self.bytes.len()
            + self.texts.len() * size_of::<Slot>()
            + self.ints.len() * 8
            + self.floats.len() * 8
            + self.bools.len()
            + self.attributes.len() * size_of::<ArenaAttribute>()
            + self.resources.len() * size_of::<ArenaResource>()
            + self.scopes.len() * size_of::<ArenaScope>()
            + self.events.len() * size_of::<ArenaEvent>()
            + self.links.len() * size_of::<ArenaLink>()
            + self.spans.len() * size_of::<ArenaSpan>()
    }

    /// The value `value` borrowed, as the row builder takes it.
    pub fn value(&self, value: &ArenaValue) -> ValueRef<'_> {
        match *value {
            ArenaValue::Str(s) => ValueRef::Str(self.str(s)),
            ArenaValue::Int(v) => ValueRef::Int(v),
            ArenaValue::Float(v) => ValueRef::Float(v),
            ArenaValue::Bool(v) => ValueRef::Bool(v),
            ArenaValue::StrArray(a) => {
                ValueRef::StrArray(self.texts[a.range()].iter().map(|t| self.str(*t)).collect())
            }
            ArenaValue::IntArray(a) => ValueRef::IntArray(self.ints[a.range()].to_vec()),
            ArenaValue::FloatArray(a) => ValueRef::FloatArray(self.floats[a.range()].to_vec()),
            ArenaValue::BoolArray(a) => ValueRef::BoolArray(self.bools[a.range()].to_vec()),
            ArenaValue::Opaque(s) => ValueRef::Opaque(self.str(s)),
        }
    }
}

/// A span of one of the arenas of an [`ArenaTraces`]: which arena, which span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRef {
    /// Index of the arena.
    pub arena: u32,
    /// Index of the span in it.
    pub span: u32,
}

/// Whole traces whose spans sit in arenas shared with others (each request's arena
/// stays as it was decoded), in block order: traces by start (then trace id), each
/// trace's spans by start (then span id).
#[derive(Clone, Debug, Default)]
pub struct ArenaTraces {
    /// The arenas the spans are in.
    pub arenas: Vec<Arc<SpanArena>>,
    /// Each trace's spans.
    pub traces: Vec<Vec<SpanRef>>,
}

impl ArenaTraces {
    /// The traces `traces` (each its spans, any order, all of one trace id) of the
    /// arenas `arenas`, put in block order.
    pub fn new(arenas: Vec<Arc<SpanArena>>, mut traces: Vec<Vec<SpanRef>>) -> ArenaTraces {
        traces.retain(|t| !t.is_empty());
        let span = |r: &SpanRef| &arenas[r.arena as usize].spans[r.span as usize];
        for trace in &mut traces {
            trace.sort_by_key(|r| (span(r).start_unix_nano, span(r).span_id));
        }
        traces.sort_by_cached_key(|t| (span(&t[0]).start_unix_nano, span(&t[0]).trace_id));
        ArenaTraces { arenas, traces }
    }

    /// The span `r` refers to.
    pub fn span(&self, r: SpanRef) -> &ArenaSpan {
        &self.arenas[r.arena as usize].spans[r.span as usize]
    }

    /// Spans.
    pub fn spans(&self) -> usize {
        self.traces.iter().map(Vec::len).sum()
    }

    /// The traces cut into runs of about `spans_per_block` spans, at trace boundaries
    /// (as [`crate::block::order::into_blocks`] cuts the span model).
    pub fn blocks(&self, spans_per_block: usize) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let (mut start, mut spans) = (0, 0);
        for (i, t) in self.traces.iter().enumerate() {
            spans += t.len();
            if spans >= spans_per_block {
                out.push(start..i + 1);
                start = i + 1;
                spans = 0;
            }
        }
        if start < self.traces.len() {
            out.push(start..self.traces.len());
        }
        out
    }

    /// The traces `which` (indices of [`Self::traces`]) lent as rows.
    pub fn rows(&self, which: Range<usize>) -> SpanRows<'_> {
        let mut rows = SpanRows::default();
        for trace in &self.traces[which] {
            self.push_trace(&mut rows, trace);
        }
        rows
    }

    /// Appends trace `trace` to `rows`, its spans in their order.
    fn push_trace<'a>(&'a self, rows: &mut SpanRows<'a>, trace: &[SpanRef]) {
        push_spans(
            rows,
            trace.iter().map(|r| {
                let arena = &*self.arenas[r.arena as usize];
                (r.arena, arena, &arena.spans[r.span as usize])
            }),
        );
    }

    /// How many spans have each (scope, key, type) of span and resource attributes
    /// TraceQL can query, for the traces `which`: what typed columns are chosen from.
    pub fn attribute_counts(
        &self,
        which: Range<usize>,
    ) -> HashMap<(&'static str, &str, ValueType), usize> {
        let mut counts: HashMap<(&'static str, &str, ValueType), usize> = HashMap::default();
        // A resource is counted once for all its spans.
        let mut sharing: HashMap<(u32, usize), usize> = HashMap::default();
        for r in self.traces[which].iter().flatten() {
            let arena = &*self.arenas[r.arena as usize];
            let span = &arena.spans[r.span as usize];
            arena.count_attributes(&mut counts, "span", span.attributes, 1);
            *sharing.entry((r.arena, span.resource)).or_default() += 1;
        }
        for ((a, resource), n) in sharing {
            let arena = &*self.arenas[a as usize];
            arena.count_attributes(
                &mut counts,
                "resource",
                arena.resources[resource].attributes,
                n,
            );
        }
        counts
    }
}

impl SpanArena {
    /// Appends `span` (with its events and links) to `rows`, pointing at the resource
    /// and scope rows last pushed.
    fn push_span<'a>(&'a self, rows: &mut SpanRows<'a>, span: &ArenaSpan) {
        let attributes = self.lend_attributes(rows, span.attributes);
        let events_from = rows.events.len();
        for e in &self.events[span.events.range()] {
            let attributes = self.lend_attributes(rows, e.attributes);
            rows.events.push(EventRow {
                time_unix_nano: e.time_unix_nano,
                name: self.str(e.name),
                attributes,
                dropped_attributes_count: e.dropped_attributes_count,
            });
        }
        let links_from = rows.links.len();
        for l in &self.links[span.links.range()] {
            let attributes = self.lend_attributes(rows, l.attributes);
            rows.links.push(LinkRow {
                trace_id: l.trace_id,
                span_id: l.span_id,
                trace_state: self.str(l.trace_state),
                flags: l.flags,
                attributes,
                dropped_attributes_count: l.dropped_attributes_count,
            });
        }
        rows.spans.push(SpanRow {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_span_id: span.parent_span_id,
            trace_state: self.str(span.trace_state),
            flags: span.flags,
            name: self.str(span.name),
            kind: span.kind,
            start_unix_nano: span.start_unix_nano,
            end_unix_nano: span.end_unix_nano,
            attributes,
            dropped_attributes_count: span.dropped_attributes_count,
            events: events_from..rows.events.len(),
            dropped_events_count: span.dropped_events_count,
            links: links_from..rows.links.len(),
            dropped_links_count: span.dropped_links_count,
            status_code: span.status_code,
            status_message: self.str(span.status_message),
            resource: rows.resources.len() - 1,
            scope: rows.scopes.len() - 1,
        });
    }

    /// Appends every span of this arena, in its order, to `rows` as one trace.
    pub fn push_all<'a>(&'a self, rows: &mut SpanRows<'a>) {
        push_spans(rows, self.spans.iter().map(|span| (0, self, span)));
    }

    fn lend_attributes<'a>(&'a self, rows: &mut SpanRows<'a>, slot: Slot) -> Range<usize> {
        let from = rows.attributes.len();
        rows.attributes.extend(
            self.attributes[slot.range()]
                .iter()
                .map(|a| (self.str(a.key), self.value(&a.value))),
        );
        from..rows.attributes.len()
    }

    fn count_attributes<'a>(
        &'a self,
        counts: &mut HashMap<(&'static str, &'a str, ValueType), usize>,
        scope: &'static str,
        slot: Slot,
        n: usize,
    ) {
        for a in &self.attributes[slot.range()] {
            let t = self.value_type(&a.value);
            if t != ValueType::Opaque {
                *counts.entry((scope, self.str(a.key), t)).or_default() += n;
            }
        }
    }

    fn value_type(&self, value: &ArenaValue) -> ValueType {
        match value {
            ArenaValue::Str(_) => ValueType::Str,
            ArenaValue::Int(_) => ValueType::Int,
            ArenaValue::Float(_) => ValueType::Float,
            ArenaValue::Bool(_) => ValueType::Bool,
            ArenaValue::StrArray(_) => ValueType::StrArray,
            ArenaValue::IntArray(_) => ValueType::IntArray,
            ArenaValue::FloatArray(_) => ValueType::FloatArray,
            ArenaValue::BoolArray(_) => ValueType::BoolArray,
            ArenaValue::Opaque(_) => ValueType::Opaque,
        }
    }
}

/// Appends spans (each with the number and the arena it is in) to `rows` as one trace,
/// in their order; a run of spans of one resource and scope shares one resource and
/// scope row.
fn push_spans<'a>(
    rows: &mut SpanRows<'a>,
    spans: impl Iterator<Item = (u32, &'a SpanArena, &'a ArenaSpan)>,
) {
    let first = rows.spans.len();
    let mut last: Option<(u32, usize, usize)> = None;
    for (number, arena, span) in spans {
        if last.is_none_or(|(a, r, _)| (a, r) != (number, span.resource)) {
            let resource = &arena.resources[span.resource];
            let attributes = arena.lend_attributes(rows, resource.attributes);
            rows.resources.push(ResourceRow {
                attributes,
                dropped_attributes_count: resource.dropped_attributes_count,
                schema_url: arena.str(resource.schema_url),
            });
        }
        if last.is_none_or(|(a, _, s)| (a, s) != (number, span.scope)) {
            let scope = &arena.scopes[span.scope];
            let attributes = arena.lend_attributes(rows, scope.attributes);
            rows.scopes.push(ScopeRow {
                name: arena.str(scope.name),
                version: arena.str(scope.version),
                attributes,
                dropped_attributes_count: scope.dropped_attributes_count,
                schema_url: arena.str(scope.schema_url),
            });
        }
        last = Some((number, span.resource, span.scope));
        arena.push_span(rows, span);
    }
    rows.traces.push(first..rows.spans.len());
}
