//! Spans borrowed from where they are read, laid out flat for the row builder: each
//! trace a run of spans, and the resources, scopes, events, links and attributes they
//! point at in arenas of their own. Both the span model (ingest, compaction) and
//! batches of Grafana Tempo's rows become rows of the span table through this one
//! shape, so neither copies a string before the columns do, and a Tempo row is never
//! turned into the span model to be read.

use std::ops::Range;
use std::sync::Arc;

use crate::ids::{SpanId, TraceId};
use crate::model::{Event, Link, Resource, Scope, Span, Trace};
use crate::value::{KeyValue, ValueRef};

/// One span; its ranges index the arenas of its [`SpanRows`].
#[derive(Clone, Debug)]
pub struct SpanRow<'a> {
    /// Trace id.
    pub trace_id: TraceId,
    /// Span id.
    pub span_id: SpanId,
    /// Parent span id; `None` for a root.
    pub parent_span_id: Option<SpanId>,
    /// W3C trace state.
    pub trace_state: &'a str,
    /// W3C trace flags.
    pub flags: u32,
    /// Span name.
    pub name: &'a str,
    /// OTLP span kind.
    pub kind: i8,
    /// Start, unix nanoseconds.
    pub start_unix_nano: u64,
    /// End, unix nanoseconds.
    pub end_unix_nano: u64,
    /// Its attributes in [`SpanRows::attributes`].
    pub attributes: Range<usize>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Its events in [`SpanRows::events`].
    pub events: Range<usize>,
    /// Events the producer dropped.
    pub dropped_events_count: u32,
    /// Its links in [`SpanRows::links`].
    pub links: Range<usize>,
    /// Links the producer dropped.
    pub dropped_links_count: u32,
    /// OTLP status code.
    pub status_code: i8,
    /// Status message.
    pub status_message: &'a str,
    /// Its resource in [`SpanRows::resources`].
    pub resource: usize,
    /// Its instrumentation scope in [`SpanRows::scopes`].
    pub scope: usize,
}

impl SpanRow<'_> {
    /// Duration in nanoseconds (0 when the end precedes the start).
    pub fn duration_nano(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

/// A resource.
#[derive(Clone, Debug)]
pub struct ResourceRow<'a> {
    /// Its attributes in [`SpanRows::attributes`].
    pub attributes: Range<usize>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Schema URL.
    pub schema_url: &'a str,
}

/// An instrumentation scope.
#[derive(Clone, Debug)]
pub struct ScopeRow<'a> {
    /// Scope name.
    pub name: &'a str,
    /// Scope version.
    pub version: &'a str,
    /// Its attributes in [`SpanRows::attributes`].
    pub attributes: Range<usize>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Schema URL.
    pub schema_url: &'a str,
}

/// A span event.
#[derive(Clone, Debug)]
pub struct EventRow<'a> {
    /// Time, unix nanoseconds.
    pub time_unix_nano: u64,
    /// Event name.
    pub name: &'a str,
    /// Its attributes in [`SpanRows::attributes`].
    pub attributes: Range<usize>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
}

/// A span link.
#[derive(Clone, Debug)]
pub struct LinkRow<'a> {
    /// Linked trace id.
    pub trace_id: TraceId,
    /// Linked span id.
    pub span_id: SpanId,
    /// W3C trace state.
    pub trace_state: &'a str,
    /// W3C trace flags.
    pub flags: u32,
    /// Its attributes in [`SpanRows::attributes`].
    pub attributes: Range<usize>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
}

/// Whole traces, borrowed: each trace a run of [`Self::spans`], in the order its rows
/// take.
#[derive(Clone, Debug, Default)]
pub struct SpanRows<'a> {
    /// The runs of spans of each trace.
    pub traces: Vec<Range<usize>>,
    /// The spans.
    pub spans: Vec<SpanRow<'a>>,
    /// The resources spans point at.
    pub resources: Vec<ResourceRow<'a>>,
    /// The instrumentation scopes spans point at.
    pub scopes: Vec<ScopeRow<'a>>,
    /// The events of the spans.
    pub events: Vec<EventRow<'a>>,
    /// The links of the spans.
    pub links: Vec<LinkRow<'a>>,
    /// Every attribute of spans, resources, scopes, events and links.
    pub attributes: Vec<(&'a str, ValueRef<'a>)>,
}

impl<'a> SpanRows<'a> {
    /// Empties the rows, keeping their memory for the next traces.
    pub fn clear(&mut self) {
        self.traces.clear();
        self.spans.clear();
        self.resources.clear();
        self.scopes.clear();
        self.events.clear();
        self.links.clear();
        self.attributes.clear();
    }

    /// The attributes at `range`.
    pub fn attrs(&self, range: &Range<usize>) -> &[(&'a str, ValueRef<'a>)] {
        &self.attributes[range.clone()]
    }

    /// Appends `attributes` to the arena; their range.
    pub fn push_attributes(&mut self, attributes: &'a [KeyValue]) -> Range<usize> {
        let from = self.attributes.len();
        self.attributes.extend(
            attributes
                .iter()
                .map(|kv| (kv.key.as_str(), kv.value.borrowed())),
        );
        from..self.attributes.len()
    }

    /// The span and resource attribute lists, each with its scope (`span`,
    /// `resource`), each once: a resource row stands for the run of spans that share
    /// it.
    pub fn attribute_lists(&self) -> impl Iterator<Item = (&'static str, &Range<usize>)> {
        self.spans
            .iter()
            .map(|s| ("span", &s.attributes))
            .chain(self.resources.iter().map(|r| ("resource", &r.attributes)))
    }

    /// The first string `service.name` of resource `resource`, if any.
    pub fn service_name(&self, resource: usize) -> Option<&'a str> {
        self.attrs(&self.resources[resource].attributes)
            .iter()
            .find_map(|(key, value)| match (value, *key) {
                (ValueRef::Str(s), "service.name") => Some(*s),
                _ => None,
            })
    }

    /// Whether `span` has a `child_of` link (OpenTracing's reference, kept as a link
    /// attribute) into its own trace: such a span is not a root even without a parent.
    pub fn child_of_own_trace(&self, span: &SpanRow<'_>) -> bool {
        self.links[span.links.clone()].iter().any(|l| {
            l.trace_id == span.trace_id
                && self.attrs(&l.attributes).iter().any(|(key, value)| {
                    *key == "opentracing.ref_type" && *value == ValueRef::Str("child_of")
                })
        })
    }

    /// Appends trace `trace` of the span model, its spans in their order.
    pub fn push_trace(&mut self, trace: &'a Trace) {
        let first = self.spans.len();
        let mut last_resource: Option<&Arc<Resource>> = None;
        let mut last_scope: Option<&Arc<Scope>> = None;
        for span in trace {
            // Spans of one resource and scope mostly come together: one row for a run.
            if last_resource.is_none_or(|r| !Arc::ptr_eq(r, &span.resource)) {
                let attributes = self.push_attributes(&span.resource.attributes);
                self.resources.push(ResourceRow {
                    attributes,
                    dropped_attributes_count: span.resource.dropped_attributes_count,
                    schema_url: &span.resource.schema_url,
                });
                last_resource = Some(&span.resource);
            }
            if last_scope.is_none_or(|s| !Arc::ptr_eq(s, &span.scope)) {
                let attributes = self.push_attributes(&span.scope.attributes);
                self.scopes.push(ScopeRow {
                    name: &span.scope.name,
                    version: &span.scope.version,
                    attributes,
                    dropped_attributes_count: span.scope.dropped_attributes_count,
                    schema_url: &span.scope.schema_url,
                });
                last_scope = Some(&span.scope);
            }
            let attributes = self.push_attributes(&span.attributes);
            let events_from = self.events.len();
            for e in &span.events {
                let attributes = self.push_attributes(&e.attributes);
                self.events.push(EventRow {
                    time_unix_nano: e.time_unix_nano,
                    name: &e.name,
                    attributes,
                    dropped_attributes_count: e.dropped_attributes_count,
                });
            }
            let links_from = self.links.len();
            for l in &span.links {
                let attributes = self.push_attributes(&l.attributes);
                self.links.push(LinkRow {
                    trace_id: l.trace_id,
                    span_id: l.span_id,
                    trace_state: &l.trace_state,
                    flags: l.flags,
                    attributes,
                    dropped_attributes_count: l.dropped_attributes_count,
                });
            }
            self.spans.push(SpanRow {
                trace_id: span.trace_id,
                span_id: span.span_id,
                parent_span_id: span.parent_span_id,
                trace_state: &span.trace_state,
                flags: span.flags,
                name: &span.name,
                kind: span.kind,
                start_unix_nano: span.start_unix_nano,
                end_unix_nano: span.end_unix_nano,
                attributes,
                dropped_attributes_count: span.dropped_attributes_count,
                events: events_from..self.events.len(),
                dropped_events_count: span.dropped_events_count,
                links: links_from..self.links.len(),
                dropped_links_count: span.dropped_links_count,
                status_code: span.status_code,
                status_message: &span.status_message,
                resource: self.resources.len() - 1,
                scope: self.scopes.len() - 1,
            });
        }
        self.traces.push(first..self.spans.len());
    }

    /// The traces as the span model: resources and scopes shared by the spans that
    /// point at them.
    pub fn to_traces(&self) -> Vec<Trace> {
        let owned = |range: &Range<usize>| -> Vec<KeyValue> {
            self.attrs(range)
                .iter()
                .map(|(key, value)| KeyValue {
                    key: key.to_string(),
                    value: value.to_value(),
                })
                .collect()
        };
        let resources: Vec<Arc<Resource>> = self
            .resources
            .iter()
            .map(|r| {
                Arc::new(Resource {
                    attributes: owned(&r.attributes),
                    dropped_attributes_count: r.dropped_attributes_count,
                    schema_url: r.schema_url.to_string(),
                })
            })
            .collect();
        let scopes: Vec<Arc<Scope>> = self
            .scopes
            .iter()
            .map(|s| {
                Arc::new(Scope {
                    name: s.name.to_string(),
                    version: s.version.to_string(),
                    attributes: owned(&s.attributes),
                    dropped_attributes_count: s.dropped_attributes_count,
                    schema_url: s.schema_url.to_string(),
                })
            })
            .collect();
        self.traces
            .iter()
            .map(|range| {
                self.spans[range.clone()]
                    .iter()
                    .map(|s| Span {
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        parent_span_id: s.parent_span_id,
                        trace_state: s.trace_state.to_string(),
                        flags: s.flags,
                        name: s.name.to_string(),
                        kind: s.kind,
                        start_unix_nano: s.start_unix_nano,
                        end_unix_nano: s.end_unix_nano,
                        attributes: owned(&s.attributes),
                        dropped_attributes_count: s.dropped_attributes_count,
                        events: self.events[s.events.clone()]
                            .iter()
                            .map(|e| Event {
                                time_unix_nano: e.time_unix_nano,
                                name: e.name.to_string(),
                                attributes: owned(&e.attributes),
                                dropped_attributes_count: e.dropped_attributes_count,
                            })
                            .collect(),
                        dropped_events_count: s.dropped_events_count,
                        links: self.links[s.links.clone()]
                            .iter()
                            .map(|l| Link {
                                trace_id: l.trace_id,
                                span_id: l.span_id,
                                trace_state: l.trace_state.to_string(),
                                flags: l.flags,
                                attributes: owned(&l.attributes),
                                dropped_attributes_count: l.dropped_attributes_count,
                            })
                            .collect(),
                        dropped_links_count: s.dropped_links_count,
                        status_code: s.status_code,
                        status_message: s.status_message.to_string(),
                        resource: Arc::clone(&resources[s.resource]),
                        scope: Arc::clone(&scopes[s.scope]),
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value,
        }
    }

    #[test]
    fn the_span_model_round_trips_and_shares_resources_and_scopes() {
        let resource = Arc::new(Resource {
            attributes: vec![kv("service.name", Value::Str("a".into()))],
            dropped_attributes_count: 1,
            schema_url: "r".into(),
        });
        let scope = Arc::new(Scope {
            name: "lib".into(),
            version: "1".into(),
            attributes: vec![kv("x", Value::IntArray(vec![1, 2]))],
            dropped_attributes_count: 2,
            schema_url: "s".into(),
        });
        let span = |id: u8, parent: Option<u8>| Span {
            trace_id: [7; 16],
            span_id: [id; 8],
            parent_span_id: parent.map(|p| [p; 8]),
            trace_state: "t".into(),
            flags: 1,
            name: format!("span {id}"),
            kind: 2,
            start_unix_nano: u64::from(id),
            end_unix_nano: u64::from(id) + 10,
            attributes: vec![kv("k", Value::StrArray(vec!["p".into(), "q".into()]))],
            dropped_attributes_count: 3,
            events: vec![Event {
                time_unix_nano: 5,
                name: "e".into(),
                attributes: vec![kv("b", Value::Bool(true))],
                dropped_attributes_count: 4,
            }],
            dropped_events_count: 5,
            links: vec![Link {
                trace_id: [7; 16],
                span_id: [9; 8],
                trace_state: String::new(),
                flags: 0,
                attributes: vec![kv("opentracing.ref_type", Value::Str("child_of".into()))],
                dropped_attributes_count: 6,
            }],
            dropped_links_count: 7,
            status_code: 2,
            status_message: "m".into(),
            resource: Arc::clone(&resource),
            scope: Arc::clone(&scope),
        };
        let traces = vec![vec![span(1, None), span(2, Some(1))], vec![span(3, None)]];
        let mut rows = SpanRows::default();
        for t in &traces {
            rows.push_trace(t);
        }
        assert_eq!(rows.traces, vec![0..2, 2..3]);
        // One resource and scope for the run of spans sharing them in each trace.
        assert_eq!((rows.resources.len(), rows.scopes.len()), (2, 2));
        assert_eq!(rows.service_name(rows.spans[2].resource), Some("a"));
        assert!(rows.child_of_own_trace(&rows.spans[0]));
        assert_eq!(rows.to_traces(), traces);
        rows.clear();
        assert!(rows.spans.is_empty() && rows.attributes.is_empty());
    }
}
