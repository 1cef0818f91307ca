//! Tempo rows → whole traces, borrowed from the batch's columns ([`SpanRows`]) or as
//! the span model.
//!
//! A Tempo row is one trace: `rs` (resource spans) → `ss` (scope spans) → `Spans`, each
//! level a list of structs. vParquet4 wraps lists in Parquet's LIST groups and
//! vParquet5 writes bare repeated groups; Arrow reads both as lists of structs, so one
//! decoder serves both, looking fields up by name (vParquet5 files drop unused spare
//! columns, and the reader may leave out columns it does not need).

use std::ops::Range;

use arrow::array::{
    Array, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StructArray, UInt64Array,
};
use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

use crate::arrays::{StrCol, TypedList, column, downcast, field, list_range, str_field};
use crate::block::span_rows::{EventRow, LinkRow, ResourceRow, ScopeRow, SpanRow, SpanRows};
use crate::error::{FormatError, Result};
use crate::ids::{SpanId, TraceId};
use crate::model::Trace;
use crate::tempo::TempoVersion;
use crate::tempo::columns::{RESOURCE_WELL_KNOWN, SPAN_WELL_KNOWN, Spare, SpareScope, spares};
use crate::tempo::meta::DedicatedColumn;
use crate::value::ValueRef;

/// The OTLP/JSON text of an empty array, as ingest keeps one.
pub const EMPTY_ARRAY: &str = r#"{"arrayValue":{"values":[]}}"#;

/// Which parts of a Tempo row a scan needs besides the span fields every query reads
/// (ids, name, kind, times, status, scope name and version, links, the resource's
/// service name): attribute lists and events are the bulk of a row, and are read only
/// when the query's columns use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// Span attributes (generic, dedicated and well-known columns).
    pub span_attributes: bool,
    /// Resource attributes other than `service.name`.
    pub resource_attributes: bool,
    /// Instrumentation scope attributes.
    pub scope_attributes: bool,
    /// Events.
    pub events: bool,
}

impl Needs {
    /// Every part of the row.
    pub const ALL: Needs = Needs {
        span_attributes: true,
        resource_attributes: true,
        scope_attributes: true,
        events: true,
    };

    /// Whether the reader needs the leaf column at `path` (its Parquet path parts, e.g.
    /// `rs.list.element.ss.list.element.Spans.list.element.Name`). Tempo's derived
    /// columns (trace summaries, service statistics, nested-set numbers, child counts,
    /// rounded start times, span counts) are recomputed or unused and never read.
    pub fn leaf(&self, path: &[String]) -> bool {
        let path = field_path(path);
        const TRACE_LEVEL: [&str; 7] = [
            "TraceIDText",
            "StartTimeUnixNano",
            "EndTimeUnixNano",
            "DurationNano",
            "RootServiceName",
            "RootSpanName",
            "ServiceStats",
        ];
        const DERIVED: [&str; 9] = [
            "ParentID",
            "NestedSetLeft",
            "NestedSetRight",
            "ChildCount",
            "SpanCount",
            "StartTimeRounded15",
            "StartTimeRounded60",
            "StartTimeRounded300",
            "StartTimeRounded3600",
        ];
        let own = |name: &str| name == "Attrs" || name == "DedicatedAttributes";
        match path.as_slice() {
            [] => false,
            [top] => !TRACE_LEVEL.contains(top),
            [top, ..] if TRACE_LEVEL.contains(top) => false,
            [.., leaf] if DERIVED.contains(leaf) => false,
            ["rs", "Resource", "ServiceName"] => true,
            ["rs", "Resource", field, ..] if *field != "DroppedAttributesCount" => {
                // Attribute lists, dedicated and well-known columns.
                self.resource_attributes
            }
            ["rs", "ss", "Scope", "Attrs", ..] => self.scope_attributes,
            ["rs", "ss", "Spans", "Events", ..] => self.events,
            ["rs", "ss", "Spans", field, ..]
                if own(field) || matches!(*field, "HttpMethod" | "HttpUrl" | "HttpStatusCode") =>
            {
                self.span_attributes
            }
            _ => true,
        }
    }
}

/// The field names of a leaf column's Parquet path (e.g.
/// `rs.list.element.Resource.ServiceName` → `rs.Resource.ServiceName`): vParquet4's
/// LIST wrappers add `list.element`; vParquet5 has none.
pub fn field_path(path: &[String]) -> Vec<&str> {
    path.iter()
        .map(String::as_str)
        .filter(|p| *p != "list" && *p != "element")
        .collect()
}

/// Decodes batches of a Tempo block's rows into traces. It travels (serde) as the
/// block's version and dedicated columns, and finds their spare columns again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "DecoderSpec", from = "DecoderSpec")]
pub struct TraceDecoder {
    version: TempoVersion,
    dedicated: Vec<DedicatedColumn>,
    spares: Vec<Spare>,
}

/// What a [`TraceDecoder`] is made of.
#[derive(Serialize, Deserialize)]
struct DecoderSpec {
    version: TempoVersion,
    dedicated: Vec<DedicatedColumn>,
}

impl From<TraceDecoder> for DecoderSpec {
    fn from(d: TraceDecoder) -> DecoderSpec {
        DecoderSpec {
            version: d.version,
            dedicated: d.dedicated,
        }
    }
}

impl From<DecoderSpec> for TraceDecoder {
    fn from(spec: DecoderSpec) -> TraceDecoder {
        TraceDecoder::new(spec.version, &spec.dedicated)
    }
}

impl TraceDecoder {
    /// A decoder for blocks of `version` with dedicated columns `dedicated`.
    pub fn new(version: TempoVersion, dedicated: &[DedicatedColumn]) -> TraceDecoder {
        TraceDecoder {
            version,
            dedicated: dedicated.to_vec(),
            spares: spares(version, dedicated),
        }
    }

    /// The traces of `batch`, one per row, each trace's spans sorted by start time and
    /// span id.
    pub fn decode(&self, batch: &RecordBatch) -> Result<Vec<Trace>> {
        Ok(self.rows(batch)?.to_traces())
    }

    /// The traces of `batch` borrowed from its columns, one per row, each trace's spans
    /// sorted by start time and span id: what the row builder makes span-table rows of,
    /// with no copy of a string on the way.
    pub fn rows<'a>(&'a self, batch: &'a RecordBatch) -> Result<SpanRows<'a>> {
        let v4 = self.version == TempoVersion::V4;
        let trace_ids = column::<BinaryArray>(batch, "TraceID")?;
        let rs_list = column::<ListArray>(batch, "rs")?;
        let rs = items(rs_list, "rs")?;
        let resource = field::<StructArray>(rs, "Resource")?;
        let resources = Resources {
            attrs: Attrs::new(resource, "resource")?,
            service: str_field(resource, "ServiceName")?,
            dropped: field::<Int32Array>(resource, "DroppedAttributesCount")?,
            own: own_columns(
                resource,
                if v4 { &RESOURCE_WELL_KNOWN[..] } else { &[] },
                &self.spares,
                SpareScope::Resource,
            )?,
        };
        let ss_list = field::<ListArray>(rs, "ss")?;
        let ss = items(ss_list, "ss")?;
        let scope = field::<StructArray>(ss, "Scope")?;
        let scopes = Scopes {
            name: str_field(scope, "Name")?,
            version: str_field(scope, "Version")?,
            attrs: Attrs::new(scope, "scope")?,
            dropped: field::<Int32Array>(scope, "DroppedAttributesCount")?,
        };
        let spans_list = field::<ListArray>(ss, "Spans")?;
        let spans = Spans::new(
            items(spans_list, "Spans")?,
            if v4 { &SPAN_WELL_KNOWN[..] } else { &[] },
            &self.spares,
        )?;
        let mut rows = SpanRows::default();
        for row in 0..batch.num_rows() {
            let trace_id: TraceId = padded(trace_ids.value(row));
            let first = rows.spans.len();
            for r in list_range(rs_list, row) {
                resources.push(r, &mut rows);
                for s in list_range(ss_list, r) {
                    scopes.push(s, &mut rows);
                    for i in list_range(spans_list, s) {
                        spans.push(i, trace_id, &mut rows)?;
                    }
                }
            }
            rows.spans[first..].sort_by_key(|s| (s.start_unix_nano, s.span_id));
            rows.traces.push(first..rows.spans.len());
        }
        Ok(rows)
    }
}

/// The struct items of a list column.
fn items<'a>(list: &'a ListArray, what: &str) -> Result<&'a StructArray> {
    downcast::<StructArray>(list.values().as_ref(), &format!("items of `{what}`"))
}

/// List field `name` of `parent` and its struct items; `None` if the scan left the
/// field out.
fn optional_items<'a>(
    parent: &'a StructArray,
    name: &str,
) -> Result<Option<(&'a ListArray, &'a StructArray)>> {
    if parent.column_by_name(name).is_none() {
        return Ok(None);
    }
    let list = field::<ListArray>(parent, name)?;
    Ok(Some((list, items(list, name)?)))
}

/// `bytes` as an id of `N` bytes: left-padded with zeros when shorter, its last `N`
/// bytes when longer (as Tempo pads trace ids).
pub(crate) fn padded<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut id = [0u8; N];
    let take = bytes.len().min(N);
    id[N - take..].copy_from_slice(&bytes[bytes.len() - take..]);
    id
}

fn count(a: &Int32Array, i: usize) -> u32 {
    u32::try_from(a.value(i)).unwrap_or(0)
}

/// A generic attribute list (`Attrs`): key, the value in one of four typed lists, or
/// an unsupported value's OTLP/JSON text.
struct Attrs<'a> {
    list: &'a ListArray,
    key: StrCol<'a>,
    is_array: &'a BooleanArray,
    strs: (&'a ListArray, StrCol<'a>),
    ints: TypedList<'a, Int64Array>,
    floats: TypedList<'a, Float64Array>,
    bools: TypedList<'a, BooleanArray>,
    unsupported: StrCol<'a>,
}

impl<'a> Attrs<'a> {
    /// The `Attrs` field of `parent`, `None` if it was not read; `what` names the level
    /// in errors.
    fn new(parent: &'a StructArray, what: &str) -> Result<Option<Attrs<'a>>> {
        let Some((list, entry)) = optional_items(parent, "Attrs")? else {
            return Ok(None);
        };
        fn typed<'a, T: 'static>(
            entry: &'a StructArray,
            name: &str,
            what: &str,
        ) -> Result<TypedList<'a, T>> {
            TypedList::new(field::<ListArray>(entry, name)?, &format!("{what} {name}"))
        }
        let strs = field::<ListArray>(entry, "Value")?;
        Ok(Some(Attrs {
            list,
            key: str_field(entry, "Key")?,
            is_array: field::<BooleanArray>(entry, "IsArray")?,
            strs: (strs, StrCol::new(strs.values().as_ref(), "Value items")?),
            ints: typed(entry, "ValueInt", what)?,
            floats: typed(entry, "ValueDouble", what)?,
            bools: typed(entry, "ValueBool", what)?,
            unsupported: str_field(entry, "ValueUnsupported")?,
        }))
    }

    /// Appends the attributes of list `row` to `out`.
    fn push(&self, row: usize, out: &mut Vec<(&'a str, ValueRef<'a>)>) {
        for i in list_range(self.list, row) {
            out.push((self.key.value(i), self.value(i)));
        }
    }

    fn value(&self, i: usize) -> ValueRef<'a> {
        if let Some(json) = self.unsupported.get(i) {
            return ValueRef::Opaque(json);
        }
        // A scalar is one item with `IsArray` unset; an array keeps its shape even
        // with one item.
        let array = self.is_array.value(i);
        fn shape<'v, T>(
            mut v: Vec<T>,
            array: bool,
            one: fn(T) -> ValueRef<'v>,
            many: fn(Vec<T>) -> ValueRef<'v>,
        ) -> ValueRef<'v> {
            if !array && v.len() == 1 {
                one(v.pop().expect("one item"))
            } else {
                many(v)
            }
        }
        let strs = list_range(self.strs.0, i);
        if !strs.is_empty() {
            let v = strs.map(|j| self.strs.1.value(j)).collect();
            return shape(v, array, ValueRef::Str, ValueRef::StrArray);
        }
        let ints = self.ints.range(i);
        if !ints.is_empty() {
            let v = ints.map(|j| self.ints.items.value(j)).collect();
            return shape(v, array, ValueRef::Int, ValueRef::IntArray);
        }
        let floats = self.floats.range(i);
        if !floats.is_empty() {
            let v = floats.map(|j| self.floats.items.value(j)).collect();
            return shape(v, array, ValueRef::Float, ValueRef::FloatArray);
        }
        let bools = self.bools.range(i);
        if !bools.is_empty() {
            let v = bools.map(|j| self.bools.items.value(j)).collect();
            return shape(v, array, ValueRef::Bool, ValueRef::BoolArray);
        }
        ValueRef::Opaque(if array { EMPTY_ARRAY } else { "{}" })
    }
}

/// Appends the attributes of list `row` of `attrs` (if read) to `out`.
fn push_attrs<'a>(attrs: &Option<Attrs<'a>>, row: usize, out: &mut Vec<(&'a str, ValueRef<'a>)>) {
    if let Some(attrs) = attrs {
        attrs.push(row, out);
    }
}

/// A column of Tempo's own holding one attribute: well-known (nullable scalars) or
/// dedicated (nullable scalars in vParquet4, repeated values in vParquet5).
enum OwnColumn<'a> {
    Str(StrCol<'a>),
    Int(&'a Int64Array),
    StrList(&'a ListArray, StrCol<'a>),
    IntList(&'a ListArray, &'a Int64Array),
}

impl<'a> OwnColumn<'a> {
    fn new(array: &'a dyn Array, what: &str) -> Result<OwnColumn<'a>> {
        Ok(match array.data_type() {
            DataType::Int64 => OwnColumn::Int(downcast(array, what)?),
            DataType::List(item) if item.data_type() == &DataType::Int64 => {
                let list = downcast::<ListArray>(array, what)?;
                OwnColumn::IntList(list, downcast(list.values().as_ref(), what)?)
            }
            DataType::List(_) => {
                let list = downcast::<ListArray>(array, what)?;
                OwnColumn::StrList(list, StrCol::new(list.values().as_ref(), what)?)
            }
            _ => OwnColumn::Str(StrCol::new(array, what)?),
        })
    }

    /// The value at `row`: none for null or no values, a scalar for one value, an
    /// array for several.
    fn get(&self, row: usize) -> Option<ValueRef<'a>> {
        match self {
            OwnColumn::Str(a) => a.get(row).map(ValueRef::Str),
            OwnColumn::Int(a) => a.is_valid(row).then(|| ValueRef::Int(a.value(row))),
            OwnColumn::StrList(list, items) => {
                let mut v: Vec<&'a str> = list_range(list, row).map(|j| items.value(j)).collect();
                match v.len() {
                    0 => None,
                    1 => v.pop().map(ValueRef::Str),
                    _ => Some(ValueRef::StrArray(v)),
                }
            }
            OwnColumn::IntList(list, items) => {
                let mut v: Vec<i64> = list_range(list, row).map(|j| items.value(j)).collect();
                match v.len() {
                    0 => None,
                    1 => v.pop().map(ValueRef::Int),
                    _ => Some(ValueRef::IntArray(v)),
                }
            }
        }
    }
}

/// The well-known and dedicated columns of one level, with their attribute keys.
type OwnColumns<'a> = Vec<(&'a str, OwnColumn<'a>)>;

/// The columns of `parent` that hold attributes of their own: the well-known ones
/// listed and the dedicated spares of `scope` (those present in the file).
fn own_columns<'a>(
    parent: &'a StructArray,
    well_known: &[crate::tempo::columns::WellKnown],
    spares: &'a [Spare],
    scope: SpareScope,
) -> Result<OwnColumns<'a>> {
    let mut out = Vec::new();
    for w in well_known {
        if let Some(array) = parent.column_by_name(w.column) {
            out.push((w.key, OwnColumn::new(array.as_ref(), w.column)?));
        }
    }
    if let Some(group) = parent.column_by_name("DedicatedAttributes") {
        let group = downcast::<StructArray>(group.as_ref(), "DedicatedAttributes")?;
        for spare in spares.iter().filter(|s| s.scope == scope) {
            if let Some(array) = group.column_by_name(&spare.column) {
                out.push((
                    spare.key.as_str(),
                    OwnColumn::new(array.as_ref(), &spare.column)?,
                ));
            }
        }
    }
    Ok(out)
}

fn push_own<'a>(own: &OwnColumns<'a>, row: usize, out: &mut Vec<(&'a str, ValueRef<'a>)>) {
    for (key, column) in own {
        if let Some(value) = column.get(row) {
            out.push((key, value));
        }
    }
}

struct Resources<'a> {
    attrs: Option<Attrs<'a>>,
    service: StrCol<'a>,
    dropped: &'a Int32Array,
    own: OwnColumns<'a>,
}

impl<'a> Resources<'a> {
    /// Appends resource `r` to `rows`.
    fn push(&self, r: usize, rows: &mut SpanRows<'a>) {
        let from = rows.attributes.len();
        // Tempo stores a missing `service.name` as "" and drops "" when it rebuilds
        // a trace; so does this.
        let service = self.service.value(r);
        if !service.is_empty() {
            rows.attributes
                .push(("service.name", ValueRef::Str(service)));
        }
        push_attrs(&self.attrs, r, &mut rows.attributes);
        push_own(&self.own, r, &mut rows.attributes);
        rows.resources.push(ResourceRow {
            attributes: from..rows.attributes.len(),
            dropped_attributes_count: count(self.dropped, r),
            schema_url: "",
        });
    }
}

struct Scopes<'a> {
    name: StrCol<'a>,
    version: StrCol<'a>,
    attrs: Option<Attrs<'a>>,
    dropped: &'a Int32Array,
}

impl<'a> Scopes<'a> {
    /// Appends scope `s` to `rows`.
    fn push(&self, s: usize, rows: &mut SpanRows<'a>) {
        let from = rows.attributes.len();
        push_attrs(&self.attrs, s, &mut rows.attributes);
        rows.scopes.push(ScopeRow {
            name: self.name.value(s),
            version: self.version.value(s),
            attributes: from..rows.attributes.len(),
            dropped_attributes_count: count(self.dropped, s),
            schema_url: "",
        });
    }
}

/// The events of spans, when read.
struct Events<'a> {
    list: &'a ListArray,
    time: &'a UInt64Array,
    name: StrCol<'a>,
    attrs: Option<Attrs<'a>>,
    dropped: &'a Int32Array,
    own: OwnColumns<'a>,
}

impl<'a> Events<'a> {
    /// The `Events` field of `spans`, `None` if it was not read.
    fn new(spans: &'a StructArray, spares: &'a [Spare]) -> Result<Option<Events<'a>>> {
        let Some((list, events)) = optional_items(spans, "Events")? else {
            return Ok(None);
        };
        Ok(Some(Events {
            list,
            time: field(events, "TimeSinceStartNano")?,
            name: str_field(events, "Name")?,
            attrs: Attrs::new(events, "event")?,
            dropped: field(events, "DroppedAttributesCount")?,
            own: own_columns(events, &[], spares, SpareScope::Event)?,
        }))
    }

    /// Appends the events of span `i`, which starts at `start`, to `rows`; their range.
    fn push(&self, i: usize, start: u64, rows: &mut SpanRows<'a>) -> Range<usize> {
        let first = rows.events.len();
        for e in list_range(self.list, i) {
            let from = rows.attributes.len();
            push_attrs(&self.attrs, e, &mut rows.attributes);
            push_own(&self.own, e, &mut rows.attributes);
            rows.events.push(EventRow {
                time_unix_nano: start.wrapping_add(self.time.value(e)),
                name: self.name.value(e),
                attributes: from..rows.attributes.len(),
                dropped_attributes_count: count(self.dropped, e),
            });
        }
        first..rows.events.len()
    }
}

struct Spans<'a> {
    span_id: &'a BinaryArray,
    parent_span_id: &'a BinaryArray,
    name: StrCol<'a>,
    kind: &'a Int64Array,
    trace_state: StrCol<'a>,
    start: &'a UInt64Array,
    duration: &'a UInt64Array,
    status_code: &'a Int64Array,
    status_message: StrCol<'a>,
    attrs: Option<Attrs<'a>>,
    dropped_attributes: &'a Int32Array,
    own: OwnColumns<'a>,
    events: Option<Events<'a>>,
    dropped_events: &'a Int32Array,
    links_list: &'a ListArray,
    link_trace_id: &'a BinaryArray,
    link_span_id: &'a BinaryArray,
    link_trace_state: StrCol<'a>,
    link_attrs: Option<Attrs<'a>>,
    link_dropped: &'a Int32Array,
    dropped_links: &'a Int32Array,
}

impl<'a> Spans<'a> {
    fn new(
        spans: &'a StructArray,
        well_known: &[crate::tempo::columns::WellKnown],
        spares: &'a [Spare],
    ) -> Result<Spans<'a>> {
        let links_list = field::<ListArray>(spans, "Links")?;
        let links = items(links_list, "Links")?;
        Ok(Spans {
            span_id: field(spans, "SpanID")?,
            parent_span_id: field(spans, "ParentSpanID")?,
            name: str_field(spans, "Name")?,
            kind: field(spans, "Kind")?,
            trace_state: str_field(spans, "TraceState")?,
            start: field(spans, "StartTimeUnixNano")?,
            duration: field(spans, "DurationNano")?,
            status_code: field(spans, "StatusCode")?,
            status_message: str_field(spans, "StatusMessage")?,
            attrs: Attrs::new(spans, "span")?,
            dropped_attributes: field(spans, "DroppedAttributesCount")?,
            own: own_columns(spans, well_known, spares, SpareScope::Span)?,
            events: Events::new(spans, spares)?,
            dropped_events: field(spans, "DroppedEventsCount")?,
            links_list,
            link_trace_id: field(links, "TraceID")?,
            link_span_id: field(links, "SpanID")?,
            link_trace_state: str_field(links, "TraceState")?,
            link_attrs: Attrs::new(links, "link")?,
            link_dropped: field(links, "DroppedAttributesCount")?,
            dropped_links: field(spans, "DroppedLinksCount")?,
        })
    }

    /// Appends span `i` of trace `trace_id`, of the last resource and scope appended,
    /// to `rows`.
    fn push(&self, i: usize, trace_id: TraceId, rows: &mut SpanRows<'a>) -> Result<()> {
        let code = |v: i64, what: &str| {
            i8::try_from(v)
                .map_err(|_| FormatError::corrupt(format!("span {what} {v} is out of range")))
        };
        let start = self.start.value(i);
        let from = rows.attributes.len();
        push_attrs(&self.attrs, i, &mut rows.attributes);
        push_own(&self.own, i, &mut rows.attributes);
        let attributes = from..rows.attributes.len();
        let events = match &self.events {
            Some(e) => e.push(i, start, rows),
            None => rows.events.len()..rows.events.len(),
        };
        let first_link = rows.links.len();
        for l in list_range(self.links_list, i) {
            let from = rows.attributes.len();
            push_attrs(&self.link_attrs, l, &mut rows.attributes);
            rows.links.push(LinkRow {
                trace_id: padded(self.link_trace_id.value(l)),
                span_id: padded(self.link_span_id.value(l)),
                trace_state: self.link_trace_state.value(l),
                flags: 0,
                attributes: from..rows.attributes.len(),
                dropped_attributes_count: count(self.link_dropped, l),
            });
        }
        let parent = self.parent_span_id.value(i);
        let span = SpanRow {
            trace_id,
            span_id: padded::<8>(self.span_id.value(i)) as SpanId,
            parent_span_id: (!parent.is_empty()).then(|| padded(parent)),
            trace_state: self.trace_state.value(i),
            flags: 0,
            name: self.name.value(i),
            kind: code(self.kind.value(i), "kind")?,
            start_unix_nano: start,
            // Tempo stores end − start, wrapped when the end precedes the start.
            end_unix_nano: start.wrapping_add(self.duration.value(i)),
            attributes,
            dropped_attributes_count: count(self.dropped_attributes, i),
            events,
            dropped_events_count: count(self.dropped_events, i),
            links: first_link..rows.links.len(),
            dropped_links_count: count(self.dropped_links, i),
            status_code: code(self.status_code.value(i), "status code")?,
            status_message: self.status_message.value(i),
            resource: rows.resources.len() - 1,
            scope: rows.scopes.len() - 1,
        };
        rows.spans.push(span);
        Ok(())
    }
}
