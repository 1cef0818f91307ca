//! The assembly of a search plan's rows into [`SearchResults`]: rows are grouped by
//! trace and spanset, the first `spss` spans of each spanset are kept, and only the
//! first `limit` traces in the search's order survive.

use rustc_hash::FxHashMap as HashMap;

use datafusion::arrow::array::{
    Array, ArrayRef, FixedSizeBinaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use traceql_format::display::go_duration;
use traceql_format::entries::Values;
use traceql_format::schema::columns as c;
use traceql_format::value::Value;
use traceql_planner::lower::{AttributeKind, ResultAttribute, SPANSET, SearchPlan};
use traceql_planner::shown::{PlainValue, plain_shown, plain_value};

use super::response::{Attribute, SearchMetrics};
use super::results::{FoundSpanSet, FoundTrace, Interner, NONE, SearchResults, ShownSpan};
use crate::engine::Order;

/// Collects result rows into traces, keeping the first `limit` traces in `order`.
pub struct Assembler {
    order: Order,
    spanset_attributes: Vec<ResultAttribute>,
    span_attributes: Vec<ResultAttribute>,
    limit: usize,
    spss: usize,
    traces: HashMap<[u8; 16], TraceAcc>,
    interned: Interned,
    /// Spans shown, over all traces held.
    shown: usize,
}

struct TraceAcc {
    root_service: u32,
    root_name: u32,
    start: u64,
    end: u64,
    /// (spanset index, spanset) in the order first seen.
    spansets: Vec<(i32, FoundSpanSet)>,
}

impl TraceAcc {
    /// The trace's rank in `order`: lower first.
    fn rank(&self, order: Order) -> u64 {
        order.rank(self.start, self.end - self.start)
    }
}

fn col<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    traceql_format::arrays::column(batch, name)
        .map_err(|e| DataFusionError::Internal(format!("search result: {e}")))
}

/// The column `name` of `batch`.
fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("search result lacks column `{name}`")))
}

fn utf8(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    let array = cast(column(batch, name)?, &DataType::Utf8)?;
    Ok(array
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .unwrap_or_else(|| StringArray::from(Vec::<Option<&str>>::new())))
}

/// The columns of a batch of result rows.
struct Rows<'a> {
    trace_id: &'a FixedSizeBinaryArray,
    span_id: &'a FixedSizeBinaryArray,
    name: StringArray,
    start: &'a UInt64Array,
    duration: &'a UInt64Array,
    root_service: StringArray,
    root_name: StringArray,
    trace_start: &'a UInt64Array,
    trace_duration: &'a UInt64Array,
    spanset: &'a Int32Array,
}

impl<'a> Rows<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Rows<'a>> {
        let rows = Rows {
            trace_id: col(batch, c::TRACE_ID)?,
            span_id: col(batch, c::SPAN_ID)?,
            name: utf8(batch, c::NAME)?,
            start: col(batch, c::START_UNIX_NANO)?,
            duration: col(batch, c::DURATION_NANO)?,
            root_service: utf8(batch, c::TRACE_ROOT_SERVICE)?,
            root_name: utf8(batch, c::TRACE_ROOT_NAME)?,
            trace_start: col(batch, c::TRACE_START_UNIX_NANO)?,
            trace_duration: col(batch, c::TRACE_DURATION_NANO)?,
            spanset: col(batch, SPANSET)?,
        };
        if rows.trace_id.value_length() != 16 || rows.span_id.value_length() != 8 {
            return Err(DataFusionError::Internal(format!(
                "search result: trace ids of {} bytes and span ids of {} (expected 16 and 8)",
                rows.trace_id.value_length(),
                rows.span_id.value_length()
            )));
        }
        Ok(rows)
    }

    fn trace_id(&self, row: usize) -> [u8; 16] {
        // The width was checked in `of`.
        self.trace_id.value(row).try_into().unwrap_or([0; 16])
    }

    fn span_id(&self, row: usize) -> [u8; 8] {
        self.span_id.value(row).try_into().unwrap_or([0; 8])
    }
}

/// The strings and values of the spans shown, each kept once.
#[derive(Default)]
pub(super) struct Interned {
    names: Interner<Box<str>>,
    values: Interner<Value>,
    /// Per attribute shown from a plain column (by its slot, see [`Adder`]): the value
    /// number of each distinct value seen, so each is rendered once.
    plain: Vec<PlainValues>,
}

/// The value numbers of the distinct values of a plain column.
#[derive(Default)]
struct PlainValues {
    strs: HashMap<Box<str>, u32>,
    bits: HashMap<u64, u32>,
}

impl Interned {
    /// The values numbered so far, in order of their numbers.
    pub(super) fn values(&self) -> &[Value] {
        self.values.items()
    }

    /// The number of the string at `row` of `values` ([`NONE`] if null or empty).
    fn name(&mut self, values: &StringArray, row: usize) -> u32 {
        if values.is_null(row) || values.value(row).is_empty() {
            return NONE;
        }
        self.names.intern_str(values.value(row))
    }

    /// The number of the value of `attr`, in slot `slot`, at `row` of its column
    /// `column`, or `None` if it is nil.
    pub(super) fn value(
        &mut self,
        attr: &ResultAttribute,
        slot: usize,
        column: &ShownColumn<'_>,
        row: usize,
    ) -> Result<Option<u32>> {
        let values = column.array;
        if values.is_null(row) {
            return Ok(None);
        }
        let n = match (attr.kind, &column.values) {
            (AttributeKind::Value, Some(view)) => {
                let value = view
                    .value(row)
                    .map_err(|e| DataFusionError::Internal(format!("search result: {e}")))?;
                self.values.intern(&value, Value::clone)
            }
            (AttributeKind::Plain(holds), _) => {
                let Some(value) = plain_value(holds, values, row)? else {
                    return Ok(None);
                };
                if self.plain.len() <= slot {
                    self.plain.resize_with(slot + 1, PlainValues::default);
                }
                let seen = &mut self.plain[slot];
                let known = match value {
                    PlainValue::Str(s) => seen.strs.get(s),
                    PlainValue::Bits(b) => seen.bits.get(&b),
                };
                if let Some(&n) = known {
                    return Ok(Some(n));
                }
                let Some(shown) = plain_shown(holds, value) else {
                    return Ok(None);
                };
                let n = self.values.intern(&shown, Value::clone);
                match value {
                    PlainValue::Str(s) => seen.strs.insert(s.into(), n),
                    PlainValue::Bits(b) => seen.bits.insert(b, n),
                };
                n
            }
            (AttributeKind::Value, None) => {
                return Err(DataFusionError::Internal(format!(
                    "search result: column `{}` of `{}` is not a value column",
                    attr.column, attr.name
                )));
            }
            (kind, _) => {
                let v = downcast::<Float64Array>(values, attr)?.value(row);
                let value = match kind {
                    AttributeKind::Int => Value::Int(v as i64),
                    AttributeKind::Duration => Value::Str(go_duration(v.round() as i64)),
                    _ => Value::Float(v),
                };
                self.values.intern(&value, Value::clone)
            }
        };
        Ok(Some(n))
    }
}

/// A column of a shown attribute, with the view of its values if it is a value column.
pub(super) struct ShownColumn<'a> {
    array: &'a dyn Array,
    values: Option<Values<'a>>,
}

impl<'a> ShownColumn<'a> {
    /// The column of `attr` in `batch`.
    pub(super) fn of(batch: &'a RecordBatch, attr: &ResultAttribute) -> Result<Self> {
        let array = column(batch, &attr.column)?.as_ref();
        let values = match attr.kind {
            AttributeKind::Value => Some(Values::new(array).map_err(|e| {
                DataFusionError::Internal(format!(
                    "search result: column `{}` of `{}`: {e}",
                    attr.column, attr.name
                ))
            })?),
            _ => None,
        };
        Ok(ShownColumn { array, values })
    }
}

/// `values`, the column of `attr`, as a `T`.
fn downcast<'a, T: 'static>(values: &'a dyn Array, attr: &ResultAttribute) -> Result<&'a T> {
    values.as_any().downcast_ref::<T>().ok_or_else(|| {
        DataFusionError::Internal(format!(
            "search result: column `{}` of `{}` holds {}",
            attr.column,
            attr.name,
            values.data_type()
        ))
    })
}

/// What the rows of a batch add to their traces. Attributes have slots: span
/// attributes first, then spanset attributes.
struct Adder<'a> {
    rows: Rows<'a>,
    spanset_attributes: &'a [ResultAttribute],
    span_attributes: &'a [ResultAttribute],
    /// The columns of the span attributes, then of the spanset attributes.
    columns: Vec<ShownColumn<'a>>,
    spss: usize,
}

impl Adder<'_> {
    /// The spanset attributes at `row` (those that are not nil).
    fn spanset_attributes(&self, interned: &mut Interned, row: usize) -> Result<Vec<Attribute>> {
        let mut out = Vec::new();
        let first = self.span_attributes.len();
        for (i, attr) in self.spanset_attributes.iter().enumerate() {
            let slot = first + i;
            if let Some(n) = interned.value(attr, slot, &self.columns[slot], row)? {
                out.push(Attribute {
                    key: attr.name.clone(),
                    value: interned.values.get(n).clone(),
                });
            }
        }
        Ok(out)
    }

    /// The span attributes at `row` (those that are not nil).
    fn span_attributes(&self, interned: &mut Interned, row: usize) -> Result<Box<[(u16, u32)]>> {
        let mut out = Vec::new();
        for (i, attr) in self.span_attributes.iter().enumerate() {
            if let Some(n) = interned.value(attr, i, &self.columns[i], row)? {
                out.push((i as u16, n));
            }
        }
        Ok(out.into_boxed_slice())
    }

    /// Adds row `row` to its trace `acc`; whether a span was added to those shown (not
    /// put in the place of one).
    fn add(&self, acc: &mut TraceAcc, interned: &mut Interned, row: usize) -> Result<bool> {
        let rows = &self.rows;
        if acc.root_service == NONE {
            acc.root_service = interned.name(&rows.root_service, row);
        }
        if acc.root_name == NONE {
            acc.root_name = interned.name(&rows.root_name, row);
        }
        let ts = rows.trace_start.value(row);
        acc.start = acc.start.min(ts);
        acc.end = acc.end.max(ts + rows.trace_duration.value(row));
        let set_id = rows.spanset.value(row);
        let index = match acc.spansets.iter().position(|(i, _)| *i == set_id) {
            Some(i) => i,
            None => {
                let attributes = self.spanset_attributes(interned, row)?;
                acc.spansets.push((
                    set_id,
                    FoundSpanSet {
                        spans: Vec::new(),
                        matched: 0,
                        attributes,
                    },
                ));
                acc.spansets.len() - 1
            }
        };
        let set = &mut acc.spansets[index].1;
        set.matched += 1;
        // The spans shown are the spanset's first `spss` by start time (then span id),
        // whatever order the rows arrive in.
        let key = (rows.start.value(row), rows.span_id(row));
        let replace = if set.spans.len() < self.spss {
            None
        } else {
            match set.spans.iter().enumerate().max_by_key(|(_, s)| s.key()) {
                Some((i, latest)) if key < latest.key() => Some(i),
                _ => return Ok(false),
            }
        };
        let span = ShownSpan {
            start: key.0,
            id: key.1,
            duration: rows.duration.value(row),
            name: interned.name(&rows.name, row),
            attributes: self.span_attributes(interned, row)?,
        };
        match replace {
            Some(i) => set.spans[i] = span,
            None => set.spans.push(span),
        }
        Ok(replace.is_none())
    }
}

impl Assembler {
    /// An assembler for the rows of `plan`.
    pub fn new(plan: &SearchPlan, limit: usize, spss: usize, order: Order) -> Self {
        Assembler {
            order,
            spanset_attributes: plan.spanset_attributes.clone(),
            span_attributes: plan.span_attributes.clone(),
            limit,
            spss,
            traces: HashMap::default(),
            interned: Interned::default(),
            shown: 0,
        }
    }

    /// Adds a batch of result rows.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let columns = self
            .span_attributes
            .iter()
            .chain(&self.spanset_attributes)
            .map(|attr| ShownColumn::of(batch, attr))
            .collect::<Result<Vec<_>>>()?;
        let adder = Adder {
            rows: Rows::of(batch)?,
            columns,
            spanset_attributes: &self.spanset_attributes,
            span_attributes: &self.span_attributes,
            spss: self.spss,
        };
        let n = batch.num_rows();
        let mut row = 0;
        while row < n {
            // Rows of one trace mostly come together: look the trace up once per run.
            let id = adder.rows.trace_id(row);
            let acc = self.traces.entry(id).or_insert_with(|| TraceAcc {
                root_service: NONE,
                root_name: NONE,
                start: u64::MAX,
                end: 0,
                spansets: Vec::new(),
            });
            let mut shown = usize::from(adder.add(acc, &mut self.interned, row)?);
            row += 1;
            while row < n && adder.rows.trace_id.value(row) == id {
                shown += usize::from(adder.add(acc, &mut self.interned, row)?);
                row += 1;
            }
            self.shown += shown;
        }
        self.prune();
        Ok(())
    }

    /// Keeps the memory bounded: once many more traces than `limit` are held, only the
    /// first `limit` in order are kept.
    fn prune(&mut self) {
        if self.traces.len() <= self.limit.saturating_mul(4).max(4096) {
            return;
        }
        let mut ranks: Vec<(u64, [u8; 16])> = self
            .traces
            .iter()
            .map(|(id, t)| (t.rank(self.order), *id))
            .collect();
        ranks.sort_unstable();
        for (_, id) in ranks.into_iter().skip(self.limit) {
            if let Some(trace) = self.traces.remove(&id) {
                let spans: usize = trace.spansets.iter().map(|(_, s)| s.spans.len()).sum();
                self.shown -= spans;
            }
        }
    }

    /// About how many bytes the traces held so far take: what the memory limit counts
    /// for a search's results.
    pub fn held_bytes(&self) -> usize {
        // A shown span with a few attribute values; a trace with one spanset and its
        // entry in the map.
        const SPAN: usize = std::mem::size_of::<ShownSpan>() + 16;
        const TRACE: usize =
            std::mem::size_of::<TraceAcc>() + std::mem::size_of::<FoundSpanSet>() + 48;
        self.shown * SPAN
            + self.traces.len() * TRACE
            + self.interned.names.bytes()
            + self.interned.values.bytes()
    }

    /// Traces seen so far (before the limit).
    pub fn trace_count(&self) -> usize {
        self.traces.len()
    }

    /// The first `limit` traces in order (ties by trace id), with `metrics`.
    pub fn finish(self, metrics: SearchMetrics) -> SearchResults {
        let order = self.order;
        let mut traces: Vec<(u64, [u8; 16], TraceAcc)> = self
            .traces
            .into_iter()
            .map(|(id, t)| (t.rank(order), id, t))
            .collect();
        traces.sort_unstable_by_key(|(rank, id, _)| (*rank, *id));
        traces.truncate(self.limit);
        let traces = traces
            .into_iter()
            .map(|(_, id, t)| {
                let mut sets = t.spansets;
                for (_, set) in &mut sets {
                    set.spans.sort_unstable_by_key(ShownSpan::key);
                }
                // Spansets in the order of their earliest span, whatever order the rows
                // arrived in (then by their index, for spansets shown without spans).
                sets.sort_by_cached_key(|(i, s)| (s.spans.first().map(ShownSpan::key), *i));
                FoundTrace {
                    id,
                    root_service: t.root_service,
                    root_name: t.root_name,
                    start: t.start,
                    end: t.end,
                    spansets: sets.into_iter().map(|(_, s)| s).collect(),
                }
            })
            .collect();
        SearchResults::new(
            traces,
            self.interned.names,
            self.interned.values,
            (
                self.span_attributes.into_iter().map(|a| a.name).collect(),
                self.spanset_attributes
                    .into_iter()
                    .map(|a| a.name)
                    .collect(),
            ),
            metrics,
        )
    }
}
