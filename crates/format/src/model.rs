//! The in-memory span model: what ingest produces, blocks store and readers return.
//!
//! It keeps every OTLP field, so OTLP → block → spans is lossless. Resources and
//! instrumentation scopes are shared between the spans that reference them.

use std::sync::Arc;

use crate::ids::{SpanId, TraceId};
use crate::value::{KeyValue, Value};

/// The entity that produced spans: a service instance with its attributes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    /// Resource attributes (`service.name`, `k8s.pod.name`, …).
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Schema URL of the resource.
    pub schema_url: String,
}

impl Resource {
    /// The first string `service.name`, if any.
    pub fn service_name(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find_map(|kv| match (&kv.value, kv.key.as_str()) {
                (Value::Str(s), "service.name") => Some(s.as_str()),
                _ => None,
            })
    }
}

/// The instrumentation library that created spans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    /// Library name.
    pub name: String,
    /// Library version.
    pub version: String,
    /// Scope attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Schema URL of the scope.
    pub schema_url: String,
}

/// A timestamped annotation on a span.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When, unix nanoseconds.
    pub time_unix_nano: u64,
    /// Event name, e.g. `exception`.
    pub name: String,
    /// Event attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
}

/// A reference from a span to another span, possibly in another trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The linked trace.
    pub trace_id: TraceId,
    /// The linked span.
    pub span_id: SpanId,
    /// W3C trace state of the link.
    pub trace_state: String,
    /// W3C trace flags and OTLP flag bits.
    pub flags: u32,
    /// Link attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
}

/// One span with everything OTLP says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its id.
    pub span_id: SpanId,
    /// Its parent's id; `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// W3C trace state.
    pub trace_state: String,
    /// W3C trace flags and OTLP flag bits.
    pub flags: u32,
    /// Operation name.
    pub name: String,
    /// OTLP span kind code (see [`crate::codes::kind`]).
    pub kind: i8,
    /// Start, unix nanoseconds.
    pub start_unix_nano: u64,
    /// End, unix nanoseconds.
    pub end_unix_nano: u64,
    /// Span attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Events, in the order given.
    pub events: Vec<Event>,
    /// Events the producer dropped.
    pub dropped_events_count: u32,
    /// Links, in the order given.
    pub links: Vec<Link>,
    /// Links the producer dropped.
    pub dropped_links_count: u32,
    /// OTLP status code (see [`crate::codes::status`]).
    pub status_code: i8,
    /// Status message.
    pub status_message: String,
    /// The producing resource.
    pub resource: Arc<Resource>,
    /// The instrumentation scope.
    pub scope: Arc<Scope>,
}

impl Span {
    /// A span of trace `trace_id` with id `span_id`, named `name`, from `start` to
    /// `end` (unix nanoseconds), and nothing else: no parent, attributes, events or
    /// links, kind and status unset, an empty resource and scope.
    pub fn bare(trace_id: TraceId, span_id: SpanId, name: &str, start: u64, end: u64) -> Span {
        Span {
            trace_id,
            span_id,
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: name.to_string(),
            kind: 0,
            start_unix_nano: start,
            end_unix_nano: end,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status_code: 0,
            status_message: String::new(),
            resource: Default::default(),
            scope: Default::default(),
        }
    }

    /// Duration in nanoseconds (0 when the end precedes the start).
    pub fn duration_nano(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

/// One trace's spans, sorted by start time.
pub type Trace = Vec<Span>;
