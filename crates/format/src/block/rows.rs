//! The rows of a row group: traces in the span table's Arrow layout, with their nested
//! sets and trace-level columns computed per trace.

use std::ops::Range;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder, Int8Builder,
    Int32Builder, Int64Builder, ListArray, ListBuilder, RecordBatch, StringBuilder, StructArray,
    UInt32Builder, UInt64Builder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, SchemaRef};

use super::meta::TypedColumn;
use super::nested_set::nested_sets;
use super::span_rows::{SpanRow, SpanRows};
use super::summary::BlockSummary;
use crate::arena::ArenaTraces;
use crate::entries::EntryListBuilder;
use crate::error::{FormatError, Result};
use crate::model::Trace;
use crate::schema::{event_fields, link_fields};
use crate::value::{ValueRef, ValueType};

fn encode(e: impl std::fmt::Display) -> FormatError {
    FormatError::Encode(e.to_string())
}

/// The rows of `traces` in the block schema `schema` (from
/// [`block_schema`](super::schema::block_schema)`(typed)`), each trace's spans in the order given (by start time):
/// what a block stores, and how blocks of other kinds present their spans.
pub fn span_batch(
    schema: &SchemaRef,
    typed: &[TypedColumn],
    traces: &[Trace],
) -> Result<RecordBatch> {
    let spans = traces.iter().map(Vec::len).sum();
    let mut builder = RowGroupBuilder::new(schema, typed, spans);
    // One trace at a time: the borrowed rows stay small, their memory reused.
    let mut rows = SpanRows::default();
    for trace in traces {
        rows.clear();
        rows.push_trace(trace);
        builder.append(&rows)?;
    }
    builder.finish()
}

/// Traces lent as rows at a time by [`lent_batch`]: few enough that their borrowed
/// rows stay small, enough that summing up their facts is cheap.
const TRACES_AT_ONCE: usize = 1024;

/// The rows of the traces `which` of `traces` in the span-table schema `schema` with
/// typed columns `typed`, as [`span_batch`] makes them of the span model; with
/// `summary`, what `meta.json` says of them is added to it.
pub(crate) fn arena_batch(
    schema: &SchemaRef,
    typed: &[TypedColumn],
    traces: &ArenaTraces,
    which: Range<usize>,
    summary: Option<&mut BlockSummary>,
) -> Result<RecordBatch> {
    let spans = traces.traces[which.clone()].iter().map(Vec::len).sum();
    lent_batch(schema, typed, which, spans, |run| traces.rows(run), summary)
}

/// [`arena_batch`] for traces of the span model (each whole, in block order).
pub(crate) fn traces_batch(
    schema: &SchemaRef,
    typed: &[TypedColumn],
    traces: &[Trace],
    summary: Option<&mut BlockSummary>,
) -> Result<RecordBatch> {
    let spans = traces.iter().map(Vec::len).sum();
    let lend = |run: Range<usize>| {
        let mut rows = SpanRows::default();
        for trace in &traces[run] {
            rows.push_trace(trace);
        }
        rows
    };
    lent_batch(schema, typed, 0..traces.len(), spans, lend, summary)
}

/// The rows of the traces `which` (of `spans` spans in all), lent as rows by `lend`
/// [`TRACES_AT_ONCE`] at a time; with `summary`, their facts are added to it.
fn lent_batch<'a>(
    schema: &SchemaRef,
    typed: &[TypedColumn],
    which: Range<usize>,
    spans: usize,
    lend: impl Fn(Range<usize>) -> SpanRows<'a>,
    mut summary: Option<&mut BlockSummary>,
) -> Result<RecordBatch> {
    let mut builder = RowGroupBuilder::new(schema, typed, spans);
    for start in which.clone().step_by(TRACES_AT_ONCE) {
        let rows = lend(start..(start + TRACES_AT_ONCE).min(which.end));
        builder.append(&rows)?;
        if let Some(summary) = summary.as_deref_mut() {
            summary.add(BlockSummary::of_rows(&rows, typed));
        }
    }
    builder.finish()
}

/// The rows of the traces of `rows` in the span-table schema `schema` with typed
/// columns `typed`, as [`span_batch`] makes them of the span model.
pub fn span_rows_batch(
    schema: &SchemaRef,
    typed: &[TypedColumn],
    rows: &SpanRows<'_>,
) -> Result<RecordBatch> {
    let mut builder = RowGroupBuilder::new(schema, typed, rows.spans.len());
    builder.append(rows)?;
    builder.finish()
}

/// The earliest start and latest end (a span ending before it starts ends at its
/// start) of spans' `(start, end)`, unix nanoseconds: a trace's bounds, which its
/// trace-level columns come from.
pub(crate) fn bounds(spans: impl Iterator<Item = (u64, u64)> + Clone) -> (u64, u64) {
    let start = spans.clone().map(|(s, _)| s).min().unwrap_or(0);
    let end = spans.map(|(s, e)| e.max(s)).max().unwrap_or(0);
    (start, end)
}

/// Builders for one typed attribute column.
enum TypedBuilder {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    StrList(ListBuilder<StringBuilder>),
    IntList(ListBuilder<Int64Builder>),
    FloatList(ListBuilder<Float64Builder>),
    BoolList(ListBuilder<BooleanBuilder>),
}

impl TypedBuilder {
    fn new(t: ValueType) -> Self {
        match t {
            ValueType::Str | ValueType::Opaque => TypedBuilder::Str(StringBuilder::new()),
            ValueType::Int => TypedBuilder::Int(Int64Builder::new()),
            ValueType::Float => TypedBuilder::Float(Float64Builder::new()),
            ValueType::Bool => TypedBuilder::Bool(BooleanBuilder::new()),
            ValueType::StrArray => TypedBuilder::StrList(ListBuilder::new(StringBuilder::new())),
            ValueType::IntArray => TypedBuilder::IntList(ListBuilder::new(Int64Builder::new())),
            ValueType::FloatArray => {
                TypedBuilder::FloatList(ListBuilder::new(Float64Builder::new()))
            }
            ValueType::BoolArray => TypedBuilder::BoolList(ListBuilder::new(BooleanBuilder::new())),
        }
    }

    /// Appends `value` (of this column's type) or null.
    fn append(&mut self, value: Option<&ValueRef<'_>>) {
        match (self, value) {
            (TypedBuilder::Str(b), Some(ValueRef::Str(v))) => b.append_value(v),
            (TypedBuilder::Int(b), Some(ValueRef::Int(v))) => b.append_value(*v),
            (TypedBuilder::Float(b), Some(ValueRef::Float(v))) => b.append_value(*v),
            (TypedBuilder::Bool(b), Some(ValueRef::Bool(v))) => b.append_value(*v),
            (TypedBuilder::StrList(b), Some(ValueRef::StrArray(v))) => {
                b.append_value(v.iter().map(Some))
            }
            (TypedBuilder::IntList(b), Some(ValueRef::IntArray(v))) => {
                b.append_value(v.iter().copied().map(Some))
            }
            (TypedBuilder::FloatList(b), Some(ValueRef::FloatArray(v))) => {
                b.append_value(v.iter().copied().map(Some))
            }
            (TypedBuilder::BoolList(b), Some(ValueRef::BoolArray(v))) => {
                b.append_value(v.iter().copied().map(Some))
            }
            (b, _) => b.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            TypedBuilder::Str(b) => b.append_null(),
            TypedBuilder::Int(b) => b.append_null(),
            TypedBuilder::Float(b) => b.append_null(),
            TypedBuilder::Bool(b) => b.append_null(),
            TypedBuilder::StrList(b) => b.append_null(),
            TypedBuilder::IntList(b) => b.append_null(),
            TypedBuilder::FloatList(b) => b.append_null(),
            TypedBuilder::BoolList(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            TypedBuilder::Str(b) => Arc::new(b.finish()),
            TypedBuilder::Int(b) => Arc::new(b.finish()),
            TypedBuilder::Float(b) => Arc::new(b.finish()),
            TypedBuilder::Bool(b) => Arc::new(b.finish()),
            TypedBuilder::StrList(b) => Arc::new(b.finish()),
            TypedBuilder::IntList(b) => Arc::new(b.finish()),
            TypedBuilder::FloatList(b) => Arc::new(b.finish()),
            TypedBuilder::BoolList(b) => Arc::new(b.finish()),
        }
    }
}

/// Builds the record batch of one row group.
struct RowGroupBuilder<'a> {
    schema: &'a SchemaRef,
    typed: Vec<TypedBuilder>,
    /// Which typed columns the span being appended has filled (kept between spans).
    filled: Vec<bool>,
    typed_index: HashMap<(&'a str, &'a str, ValueType), usize>,
    trace_id: FixedSizeBinaryBuilder,
    span_id: FixedSizeBinaryBuilder,
    parent_span_id: FixedSizeBinaryBuilder,
    name: StringBuilder,
    kind: Int8Builder,
    status_code: Int8Builder,
    status_message: StringBuilder,
    start: UInt64Builder,
    duration: UInt64Builder,
    left: Int32Builder,
    right: Int32Builder,
    parent: Int32Builder,
    child_count: Int32Builder,
    root_service: StringBuilder,
    root_name: StringBuilder,
    trace_start: UInt64Builder,
    trace_duration: UInt64Builder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    dropped_attributes: UInt32Builder,
    dropped_events: UInt32Builder,
    dropped_links: UInt32Builder,
    resource_dropped: UInt32Builder,
    resource_schema_url: StringBuilder,
    scope_dropped: UInt32Builder,
    scope_schema_url: StringBuilder,
    span_attrs: EntryListBuilder,
    resource_attrs: EntryListBuilder,
    scope_attrs: EntryListBuilder,
    events: NestedList,
    event_time: UInt64Builder,
    event_name: StringBuilder,
    event_attrs: EntryListBuilder,
    event_dropped: UInt32Builder,
    links: NestedList,
    link_trace_id: FixedSizeBinaryBuilder,
    link_span_id: FixedSizeBinaryBuilder,
    link_trace_state: StringBuilder,
    link_flags: UInt32Builder,
    link_attrs: EntryListBuilder,
    link_dropped: UInt32Builder,
}

/// Offsets of a list column whose items are built separately.
#[derive(Default)]
struct NestedList {
    offsets: Vec<i32>,
}

impl NestedList {
    fn push(&mut self, items: usize) {
        let last = *self.offsets.last().unwrap_or(&0);
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.offsets.push(last + items as i32);
    }

    fn finish(&mut self, fields: arrow::datatypes::Fields, columns: Vec<ArrayRef>) -> ArrayRef {
        let mut offsets = std::mem::take(&mut self.offsets);
        if offsets.is_empty() {
            offsets.push(0);
        }
        let items = StructArray::new(fields.clone(), columns, None);
        let field = Arc::new(arrow::datatypes::Field::new(
            "item",
            DataType::Struct(fields),
            false,
        ));
        Arc::new(ListArray::new(
            field,
            OffsetBuffer::new(offsets.into()),
            Arc::new(items),
            None,
        ))
    }
}

impl<'a> RowGroupBuilder<'a> {
    fn new(schema: &'a SchemaRef, typed: &'a [TypedColumn], rows: usize) -> Self {
        let id = |n| FixedSizeBinaryBuilder::with_capacity(rows, n);
        RowGroupBuilder {
            schema,
            typed: typed
                .iter()
                .map(|c| TypedBuilder::new(c.value_type))
                .collect(),
            filled: Vec::new(),
            typed_index: typed
                .iter()
                .enumerate()
                .map(|(i, c)| ((c.scope.as_str(), c.key.as_str(), c.value_type), i))
                .collect(),
            trace_id: id(16),
            span_id: id(8),
            parent_span_id: id(8),
            name: StringBuilder::new(),
            kind: Int8Builder::with_capacity(rows),
            status_code: Int8Builder::with_capacity(rows),
            status_message: StringBuilder::new(),
            start: UInt64Builder::with_capacity(rows),
            duration: UInt64Builder::with_capacity(rows),
            left: Int32Builder::with_capacity(rows),
            right: Int32Builder::with_capacity(rows),
            parent: Int32Builder::with_capacity(rows),
            child_count: Int32Builder::with_capacity(rows),
            root_service: StringBuilder::new(),
            root_name: StringBuilder::new(),
            trace_start: UInt64Builder::with_capacity(rows),
            trace_duration: UInt64Builder::with_capacity(rows),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            trace_state: StringBuilder::new(),
            flags: UInt32Builder::with_capacity(rows),
            dropped_attributes: UInt32Builder::with_capacity(rows),
            dropped_events: UInt32Builder::with_capacity(rows),
            dropped_links: UInt32Builder::with_capacity(rows),
            resource_dropped: UInt32Builder::with_capacity(rows),
            resource_schema_url: StringBuilder::new(),
            scope_dropped: UInt32Builder::with_capacity(rows),
            scope_schema_url: StringBuilder::new(),
            span_attrs: EntryListBuilder::default(),
            resource_attrs: EntryListBuilder::default(),
            scope_attrs: EntryListBuilder::default(),
            events: NestedList::default(),
            event_time: UInt64Builder::new(),
            event_name: StringBuilder::new(),
            event_attrs: EntryListBuilder::default(),
            event_dropped: UInt32Builder::new(),
            links: NestedList::default(),
            link_trace_id: id(16),
            link_span_id: id(8),
            link_trace_state: StringBuilder::new(),
            link_flags: UInt32Builder::new(),
            link_attrs: EntryListBuilder::default(),
            link_dropped: UInt32Builder::new(),
        }
    }

    /// Appends the rows of every trace of `rows`.
    fn append(&mut self, rows: &SpanRows<'_>) -> Result<()> {
        let mut filled = std::mem::take(&mut self.filled);
        filled.resize(self.typed.len(), false);
        let mut rest: Vec<&(&str, ValueRef<'_>)> = Vec::new();
        for trace in &rows.traces {
            let spans = &rows.spans[trace.clone()];
            let numbers = nested_sets(spans);
            let root = root_span(rows, spans);
            let (trace_start, trace_end) =
                bounds(spans.iter().map(|s| (s.start_unix_nano, s.end_unix_nano)));
            let root_service = root.and_then(|r| rows.service_name(r.resource));
            for (span, n) in spans.iter().zip(&numbers) {
                let resource = &rows.resources[span.resource];
                let scope = &rows.scopes[span.scope];
                self.trace_id.append_value(span.trace_id).map_err(encode)?;
                self.span_id.append_value(span.span_id).map_err(encode)?;
                match span.parent_span_id {
                    Some(p) => self.parent_span_id.append_value(p).map_err(encode)?,
                    None => self.parent_span_id.append_null(),
                }
                self.name.append_value(span.name);
                self.kind.append_value(span.kind);
                self.status_code.append_value(span.status_code);
                self.status_message.append_value(span.status_message);
                self.start.append_value(span.start_unix_nano);
                self.duration.append_value(span.duration_nano());
                self.left.append_value(n.left);
                self.right.append_value(n.right);
                self.parent.append_value(n.parent);
                self.child_count.append_value(n.children);
                self.root_service.append_option(root_service);
                self.root_name.append_option(root.map(|r| r.name));
                self.trace_start.append_value(trace_start);
                self.trace_duration.append_value(trace_end - trace_start);
                self.scope_name.append_value(scope.name);
                self.scope_version.append_value(scope.version);
                self.trace_state.append_value(span.trace_state);
                self.flags.append_value(span.flags);
                self.dropped_attributes
                    .append_value(span.dropped_attributes_count);
                self.dropped_events.append_value(span.dropped_events_count);
                self.dropped_links.append_value(span.dropped_links_count);
                self.resource_dropped
                    .append_value(resource.dropped_attributes_count);
                self.resource_schema_url.append_value(resource.schema_url);
                self.scope_dropped
                    .append_value(scope.dropped_attributes_count);
                self.scope_schema_url.append_value(scope.schema_url);
                self.scope_attrs.append_refs(rows.attrs(&scope.attributes));

                filled.iter_mut().for_each(|f| *f = false);
                for (scope, attrs) in [
                    ("span", rows.attrs(&span.attributes)),
                    ("resource", rows.attrs(&resource.attributes)),
                ] {
                    rest.clear();
                    for kv in attrs {
                        let slot = self.typed_index.get(&(scope, kv.0, kv.1.value_type()));
                        match slot {
                            Some(&i) if !filled[i] => {
                                filled[i] = true;
                                self.typed[i].append(Some(&kv.1));
                            }
                            _ => rest.push(kv),
                        }
                    }
                    let list = if scope == "span" {
                        &mut self.span_attrs
                    } else {
                        &mut self.resource_attrs
                    };
                    list.append_refs(rest.iter().copied());
                }
                for (i, f) in filled.iter().enumerate() {
                    if !f {
                        self.typed[i].append_null();
                    }
                }

                let events = &rows.events[span.events.clone()];
                self.events.push(events.len());
                for e in events {
                    self.event_time.append_value(e.time_unix_nano);
                    self.event_name.append_value(e.name);
                    self.event_attrs.append_refs(rows.attrs(&e.attributes));
                    self.event_dropped.append_value(e.dropped_attributes_count);
                }
                let links = &rows.links[span.links.clone()];
                self.links.push(links.len());
                for l in links {
                    self.link_trace_id
                        .append_value(l.trace_id)
                        .map_err(encode)?;
                    self.link_span_id.append_value(l.span_id).map_err(encode)?;
                    self.link_trace_state.append_value(l.trace_state);
                    self.link_flags.append_value(l.flags);
                    self.link_attrs.append_refs(rows.attrs(&l.attributes));
                    self.link_dropped.append_value(l.dropped_attributes_count);
                }
            }
        }
        self.filled = filled;
        Ok(())
    }

    /// The record batch of the rows appended.
    fn finish(mut self) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent_span_id.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.left.finish()),
            Arc::new(self.right.finish()),
            Arc::new(self.parent.finish()),
            Arc::new(self.child_count.finish()),
            Arc::new(self.root_service.finish()),
            Arc::new(self.root_name.finish()),
            Arc::new(self.trace_start.finish()),
            Arc::new(self.trace_duration.finish()),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.dropped_attributes.finish()),
            Arc::new(self.dropped_events.finish()),
            Arc::new(self.dropped_links.finish()),
            Arc::new(self.resource_dropped.finish()),
            Arc::new(self.resource_schema_url.finish()),
            Arc::new(self.scope_dropped.finish()),
            Arc::new(self.scope_schema_url.finish()),
        ];
        columns.extend(self.typed.iter_mut().map(TypedBuilder::finish));
        columns.push(self.span_attrs.finish());
        columns.push(self.resource_attrs.finish());
        columns.push(self.scope_attrs.finish());
        let event_columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_time.finish()),
            Arc::new(self.event_name.finish()),
            self.event_attrs.finish(),
            Arc::new(self.event_dropped.finish()),
        ];
        columns.push(self.events.finish(event_fields(), event_columns));
        let link_columns: Vec<ArrayRef> = vec![
            finish_fixed(&mut self.link_trace_id, 16),
            finish_fixed(&mut self.link_span_id, 8),
            Arc::new(self.link_trace_state.finish()),
            Arc::new(self.link_flags.finish()),
            self.link_attrs.finish(),
            Arc::new(self.link_dropped.finish()),
        ];
        columns.push(self.links.finish(link_fields(), link_columns));
        RecordBatch::try_new(Arc::clone(self.schema), columns).map_err(encode)
    }
}

/// An empty fixed-size binary builder finishes with the width it was created with.
fn finish_fixed(b: &mut FixedSizeBinaryBuilder, width: i32) -> ArrayRef {
    if b.is_empty() {
        Arc::new(FixedSizeBinaryBuilder::new(width).finish())
    } else {
        Arc::new(b.finish())
    }
}

/// Tempo's root span: a span without a parent and without a `child_of` link into its own
/// trace; when several qualify, the last one in trace order.
fn root_span<'r, 'a>(rows: &SpanRows<'a>, spans: &'r [SpanRow<'a>]) -> Option<&'r SpanRow<'a>> {
    spans
        .iter()
        .rev()
        .find(|s| s.parent_span_id.is_none() && !rows.child_of_own_trace(s))
}
