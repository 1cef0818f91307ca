//! Encodes traces into one block: a Parquet file sorted by trace start, then trace id
//! (so a trace's spans are together), whose row groups never split a trace, and its
//! [`BlockMeta`].

use std::sync::Arc;

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder, Int8Builder,
    Int32Builder, Int64Builder, ListArray, ListBuilder, RecordBatch, StringBuilder, StructArray,
    UInt32Builder, UInt64Builder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use traceql_parser::ast::AttributeScope;

use super::meta::{
    BlockMeta, FORMAT_VERSION, MAX_DICTIONARY_VALUES, MAX_FALLBACK_KEYS, TypedColumn,
    duration_histogram,
};
use super::nested_set::nested_sets;
use super::schema::block_schema;
use crate::entries::EntryListBuilder;
use crate::error::{FormatError, Result};
use crate::ids::hex;
use crate::kind::BlockKind;
use crate::model::{Scope, Span, Trace};
use crate::schema::{TRACE_ORDER, columns, event_fields, link_fields, typed_attribute_column};
use crate::value::{KeyValue, Value, ValueType};

fn encode(e: impl std::fmt::Display) -> FormatError {
    FormatError::Encode(e.to_string())
}

/// How blocks are cut and which attributes get typed columns.
#[derive(Clone, Debug)]
pub struct BlockOptions {
    /// Spans per block, roughly: a block closes at the first trace boundary past it.
    pub spans_per_block: usize,
    /// Spans per Parquet row group, roughly (row groups end at trace boundaries).
    pub spans_per_row_group: usize,
    /// An attribute (scope, key, type) seen on at least this fraction of a block's spans
    /// gets a typed column.
    pub typed_min_fraction: f64,
    /// Attributes that always get a typed column when present: (scope, key).
    pub always_typed: Vec<(String, String)>,
    /// At most this many typed columns per block (the most frequent win).
    pub max_typed_columns: usize,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            spans_per_block: 1_000_000,
            spans_per_row_group: 100_000,
            typed_min_fraction: 0.01,
            always_typed: vec![("resource".into(), "service.name".into())],
            max_typed_columns: 256,
        }
    }
}

/// An encoded block.
pub struct EncodedBlock {
    /// The Parquet file.
    pub data: Vec<u8>,
    /// Its `meta.json` contents.
    pub meta: BlockMeta,
}

/// Encodes `traces` (in order of trace start, then trace id; each trace's spans by
/// start time) as block `id`.
pub fn encode_block(id: &str, traces: &[Trace], options: &BlockOptions) -> Result<EncodedBlock> {
    let spans: usize = traces.iter().map(Vec::len).sum();
    if spans == 0 {
        return Err(FormatError::Empty);
    }
    let typed = choose_typed_columns(traces, spans, options);
    let schema = block_schema(&typed);
    let bloom_ndv = spans.min(options.spans_per_row_group).max(1) as u64;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(encode)?))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_bloom_filter_enabled(columns::TRACE_ID.into(), true)
        .set_column_bloom_filter_enabled(columns::SPAN_ID.into(), true)
        // Sized for a row group's ids, not Parquet's default of a million: the filter
        // is allocated whole for every row group before it is folded down.
        .set_column_bloom_filter_max_ndv(columns::TRACE_ID.into(), bloom_ndv)
        .set_column_bloom_filter_max_ndv(columns::SPAN_ID.into(), bloom_ndv)
        .set_max_row_group_row_count(Some(usize::MAX))
        .set_sorting_columns(Some(
            TRACE_ORDER
                .iter()
                .map(|name| {
                    Ok(SortingColumn {
                        column_idx: schema.index_of(name).map_err(encode)? as i32,
                        descending: false,
                        nulls_first: false,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ))
        .build();
    let mut writer =
        ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props)).map_err(encode)?;
    let mut row_groups = 0;
    let mut start = 0;
    while start < traces.len() {
        let mut end = start;
        let mut rows = 0;
        while end < traces.len()
            && (rows == 0 || rows + traces[end].len() <= options.spans_per_row_group)
        {
            rows += traces[end].len();
            end += 1;
        }
        let batch = RowGroupBuilder::new(&schema, &typed, rows).build(&traces[start..end])?;
        writer.write(&batch).map_err(encode)?;
        writer.flush().map_err(encode)?;
        row_groups += 1;
        start = end;
    }
    let data = writer.into_inner().map_err(encode)?;
    let all = traces.iter().flatten();
    let meta = BlockMeta {
        format: BlockKind::Traceql.name().into(),
        version: FORMAT_VERSION,
        id: id.into(),
        start_unix_nano: all.clone().map(|s| s.start_unix_nano).min().unwrap_or(0),
        end_unix_nano: all
            .map(|s| s.end_unix_nano.max(s.start_unix_nano))
            .max()
            .unwrap_or(0),
        traces: traces.len() as u64,
        spans: spans as u64,
        min_trace_id: hex(&traces
            .iter()
            .map(|t| t[0].trace_id)
            .min()
            .unwrap_or_default()),
        max_trace_id: hex(&traces
            .iter()
            .map(|t| t[0].trace_id)
            .max()
            .unwrap_or_default()),
        row_groups,
        bytes: data.len() as u64,
        fallback_keys: fallback_keys(traces, &typed),
        dictionaries: dictionaries(traces, &typed),
        trace_durations: duration_histogram(traces.iter().map(|t| {
            let (start, end) = trace_bounds(t);
            end - start
        })),
        typed_columns: typed,
        partial_traces: false,
        txn: None,
        tempo: None,
    };
    Ok(EncodedBlock { data, meta })
}

/// The rows of `traces` in the block schema `schema` (from
/// [`block_schema`]`(typed)`), each trace's spans in the order given (by start time):
/// what a block stores, and how blocks of other kinds present their spans.
pub fn span_batch(
    schema: &SchemaRef,
    typed: &[TypedColumn],
    traces: &[Trace],
) -> Result<RecordBatch> {
    let rows = traces.iter().map(Vec::len).sum();
    RowGroupBuilder::new(schema, typed, rows).build(traces)
}

/// A trace's earliest span start and latest span end (a span ending before it starts
/// ends at its start), unix nanoseconds; the trace-level columns come from these.
fn trace_bounds(trace: &Trace) -> (u64, u64) {
    let start = trace.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let end = trace
        .iter()
        .map(|s| s.end_unix_nano.max(s.start_unix_nano))
        .max()
        .unwrap_or(0);
    (start, end)
}

/// The keys that end up in the fallback lists of `traces`, per scope: attributes
/// without a typed column, and repeated values of a typed key and type. `None` beyond
/// [`MAX_FALLBACK_KEYS`].
fn fallback_keys(
    traces: &[Trace],
    typed: &[TypedColumn],
) -> Option<BTreeMap<String, BTreeSet<String>>> {
    let typed: HashSet<(&str, &str, ValueType)> = typed
        .iter()
        .map(|c| (c.scope.as_str(), c.key.as_str(), c.value_type))
        .collect();
    let mut keys: HashSet<(&str, &str)> = HashSet::default();
    let mut scopes: HashSet<*const Scope> = HashSet::default();
    let mut seen: Vec<(&str, ValueType)> = Vec::new();
    for span in traces.iter().flatten() {
        for (scope, attrs) in [
            ("span", &span.attributes),
            ("resource", &span.resource.attributes),
        ] {
            seen.clear();
            for kv in attrs {
                let t = kv.value.value_type();
                let slot = (kv.key.as_str(), t);
                if !typed.contains(&(scope, kv.key.as_str(), t)) || seen.contains(&slot) {
                    keys.insert((scope, kv.key.as_str()));
                } else {
                    seen.push(slot);
                }
            }
        }
        if scopes.insert(Arc::as_ptr(&span.scope)) {
            for kv in &span.scope.attributes {
                keys.insert(("instrumentation", kv.key.as_str()));
            }
        }
        if keys.len() > MAX_FALLBACK_KEYS {
            return None;
        }
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (scope, key) in keys {
        out.entry(scope.to_string())
            .or_default()
            .insert(key.to_string());
    }
    Some(out)
}

/// The distinct values of `name` and of the typed string attribute columns, for the
/// columns with at most [`MAX_DICTIONARY_VALUES`] of them.
fn dictionaries(traces: &[Trace], typed: &[TypedColumn]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut names: HashSet<&str> = HashSet::default();
    for span in traces.iter().flatten() {
        names.insert(&span.name);
        if names.len() > MAX_DICTIONARY_VALUES {
            break;
        }
    }
    if names.len() <= MAX_DICTIONARY_VALUES {
        out.insert(
            columns::NAME.into(),
            names.iter().map(|n| n.to_string()).collect(),
        );
    }
    // One pass over the attributes for all string columns; a column's set is dropped
    // (None) once it has too many values.
    let strings: Vec<&TypedColumn> = typed
        .iter()
        .filter(|c| c.value_type == ValueType::Str)
        .collect();
    let index: HashMap<(&str, &str), usize> = strings
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.scope.as_str(), c.key.as_str()), i))
        .collect();
    let mut values: Vec<Option<HashSet<&str>>> = vec![Some(HashSet::default()); strings.len()];
    let mut seen = vec![false; strings.len()];
    let mut touched = Vec::new();
    let mut open = strings.len();
    for span in traces.iter().flatten() {
        if open == 0 {
            break;
        }
        for (scope, attrs) in [
            ("span", &span.attributes),
            ("resource", &span.resource.attributes),
        ] {
            for kv in attrs.iter() {
                // The column holds the first string value of the key.
                let Value::Str(v) = &kv.value else { continue };
                let Some(&i) = index.get(&(scope, kv.key.as_str())) else {
                    continue;
                };
                if seen[i] {
                    continue;
                }
                seen[i] = true;
                touched.push(i);
                if let Some(set) = &mut values[i] {
                    set.insert(v);
                    if set.len() > MAX_DICTIONARY_VALUES {
                        values[i] = None;
                        open -= 1;
                    }
                }
            }
            for i in touched.drain(..) {
                seen[i] = false;
            }
        }
    }
    for (column, set) in strings.iter().zip(values) {
        if let Some(set) = set {
            out.insert(
                column.name.clone(),
                set.iter().map(|v| v.to_string()).collect(),
            );
        }
    }
    out
}

/// Picks the typed attribute columns of a block: frequent (scope, key, type) triples of
/// span and resource attributes, most frequent first. String columns get the plain name
/// (`span.http.route`), other types a type suffix (`span.http.status_code:int`), so a
/// column name means the same type in every block. Keys containing `:` are never typed
/// (their names could collide with a suffixed one); they stay in the fallback lists.
fn choose_typed_columns(
    traces: &[Trace],
    spans: usize,
    options: &BlockOptions,
) -> Vec<TypedColumn> {
    let mut counts: HashMap<(&str, &str, ValueType), usize> = HashMap::default();
    for span in traces.iter().flatten() {
        for (scope, attrs) in [
            ("span", &span.attributes),
            ("resource", &span.resource.attributes),
        ] {
            for kv in attrs {
                if kv.value.value_type() != ValueType::Opaque {
                    *counts
                        .entry((scope, kv.key.as_str(), kv.value.value_type()))
                        .or_default() += 1;
                }
            }
        }
    }
    let threshold = ((spans as f64 * options.typed_min_fraction).ceil() as usize).max(1);
    let always = |scope: &str, key: &str| {
        options
            .always_typed
            .iter()
            .any(|(s, k)| s == scope && k == key)
    };
    let mut chosen: Vec<((&str, &str, ValueType), usize)> = counts
        .into_iter()
        .filter(|((scope, key, _), n)| {
            !key.contains(':') && (*n >= threshold || always(scope, key))
        })
        .collect();
    chosen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    chosen.truncate(options.max_typed_columns);
    let mut out: Vec<TypedColumn> = chosen
        .into_iter()
        .map(|((scope, key, value_type), _)| {
            let scope_kind = if scope == "span" {
                AttributeScope::Span
            } else {
                AttributeScope::Resource
            };
            let name = typed_attribute_column(scope_kind, key, value_type)
                .expect("span and resource have columns");
            TypedColumn {
                name,
                scope: scope.into(),
                key: key.into(),
                value_type,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
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
    fn append(&mut self, value: Option<&Value>) {
        match (self, value) {
            (TypedBuilder::Str(b), Some(Value::Str(v))) => b.append_value(v),
            (TypedBuilder::Int(b), Some(Value::Int(v))) => b.append_value(*v),
            (TypedBuilder::Float(b), Some(Value::Float(v))) => b.append_value(*v),
            (TypedBuilder::Bool(b), Some(Value::Bool(v))) => b.append_value(*v),
            (TypedBuilder::StrList(b), Some(Value::StrArray(v))) => {
                b.append_value(v.iter().map(Some))
            }
            (TypedBuilder::IntList(b), Some(Value::IntArray(v))) => {
                b.append_value(v.iter().copied().map(Some))
            }
            (TypedBuilder::FloatList(b), Some(Value::FloatArray(v))) => {
                b.append_value(v.iter().copied().map(Some))
            }
            (TypedBuilder::BoolList(b), Some(Value::BoolArray(v))) => {
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

    fn build(mut self, traces: &[Trace]) -> Result<RecordBatch> {
        let mut filled = vec![false; self.typed.len()];
        let mut rest: Vec<&KeyValue> = Vec::new();
        for trace in traces {
            let spans: Vec<&Span> = trace.iter().collect();
            let numbers = nested_sets(&spans);
            let root = root_span(&spans);
            let (trace_start, trace_end) = trace_bounds(trace);
            for (span, n) in spans.iter().zip(&numbers) {
                self.trace_id.append_value(span.trace_id).map_err(encode)?;
                self.span_id.append_value(span.span_id).map_err(encode)?;
                match span.parent_span_id {
                    Some(p) => self.parent_span_id.append_value(p).map_err(encode)?,
                    None => self.parent_span_id.append_null(),
                }
                self.name.append_value(&span.name);
                self.kind.append_value(span.kind);
                self.status_code.append_value(span.status_code);
                self.status_message.append_value(&span.status_message);
                self.start.append_value(span.start_unix_nano);
                self.duration.append_value(span.duration_nano());
                self.left.append_value(n.left);
                self.right.append_value(n.right);
                self.parent.append_value(n.parent);
                self.child_count.append_value(n.children);
                self.root_service
                    .append_option(root.and_then(|r| r.resource.service_name()));
                self.root_name.append_option(root.map(|r| r.name.as_str()));
                self.trace_start.append_value(trace_start);
                self.trace_duration.append_value(trace_end - trace_start);
                self.scope_name.append_value(&span.scope.name);
                self.scope_version.append_value(&span.scope.version);
                self.trace_state.append_value(&span.trace_state);
                self.flags.append_value(span.flags);
                self.dropped_attributes
                    .append_value(span.dropped_attributes_count);
                self.dropped_events.append_value(span.dropped_events_count);
                self.dropped_links.append_value(span.dropped_links_count);
                self.resource_dropped
                    .append_value(span.resource.dropped_attributes_count);
                self.resource_schema_url
                    .append_value(&span.resource.schema_url);
                self.scope_dropped
                    .append_value(span.scope.dropped_attributes_count);
                self.scope_schema_url.append_value(&span.scope.schema_url);
                self.scope_attrs.append(&span.scope.attributes);

                filled.iter_mut().for_each(|f| *f = false);
                for (scope, attrs) in [
                    ("span", &span.attributes),
                    ("resource", &span.resource.attributes),
                ] {
                    rest.clear();
                    for kv in attrs.iter() {
                        let slot =
                            self.typed_index
                                .get(&(scope, kv.key.as_str(), kv.value.value_type()));
                        match slot {
                            Some(&i) if !filled[i] => {
                                filled[i] = true;
                                self.typed[i].append(Some(&kv.value));
                            }
                            _ => rest.push(kv),
                        }
                    }
                    let list = if scope == "span" {
                        &mut self.span_attrs
                    } else {
                        &mut self.resource_attrs
                    };
                    list.append(rest.iter().copied());
                }
                for (i, f) in filled.iter().enumerate() {
                    if !f {
                        self.typed[i].append_null();
                    }
                }

                self.events.push(span.events.len());
                for e in &span.events {
                    self.event_time.append_value(e.time_unix_nano);
                    self.event_name.append_value(&e.name);
                    self.event_attrs.append(&e.attributes);
                    self.event_dropped.append_value(e.dropped_attributes_count);
                }
                self.links.push(span.links.len());
                for l in &span.links {
                    self.link_trace_id
                        .append_value(l.trace_id)
                        .map_err(encode)?;
                    self.link_span_id.append_value(l.span_id).map_err(encode)?;
                    self.link_trace_state.append_value(&l.trace_state);
                    self.link_flags.append_value(l.flags);
                    self.link_attrs.append(&l.attributes);
                    self.link_dropped.append_value(l.dropped_attributes_count);
                }
            }
        }
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
fn root_span<'s>(spans: &[&'s Span]) -> Option<&'s Span> {
    spans
        .iter()
        .rev()
        .find(|s| {
            s.parent_span_id.is_none()
                && !s.links.iter().any(|l| {
                    l.trace_id == s.trace_id
                        && l.attributes.iter().any(|kv| {
                            kv.key == "opentracing.ref_type"
                                && kv.value == Value::Str("child_of".into())
                        })
                })
        })
        .copied()
}
