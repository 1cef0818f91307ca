//! What `meta.json` says of a block's spans, gathered a row group at a time and added
//! up, so that a block can be written without ever holding all its spans.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::{BTreeMap, BTreeSet};

use super::meta::{MAX_DICTIONARY_VALUES, MAX_FALLBACK_KEYS, TypedColumn, duration_histogram};
use super::rows::bounds;
use super::span_rows::SpanRows;
use crate::ids::TraceId;
use crate::model::Trace;
use crate::schema::columns;
use crate::value::{ValueRef, ValueType};

/// The facts of some traces that `meta.json` records; [`BlockSummary::add`] joins two.
#[derive(Clone, Debug)]
pub(crate) struct BlockSummary {
    /// Earliest span start, unix nanoseconds (`u64::MAX` while empty).
    pub start_unix_nano: u64,
    /// Latest span end, unix nanoseconds.
    pub end_unix_nano: u64,
    /// Traces.
    pub traces: u64,
    /// Spans.
    pub spans: u64,
    /// Smallest and largest trace id (`None` while empty).
    pub trace_ids: Option<(TraceId, TraceId)>,
    /// Keys of the fallback lists, per scope; `None` beyond [`MAX_FALLBACK_KEYS`].
    pub fallback_keys: Option<BTreeMap<String, BTreeSet<String>>>,
    /// Distinct values per column; a column's set is `None` beyond
    /// [`MAX_DICTIONARY_VALUES`].
    pub dictionaries: BTreeMap<String, Option<BTreeSet<String>>>,
    /// Trace durations, counted per bucket of [`duration_histogram`].
    pub trace_durations: Vec<u64>,
}

impl BlockSummary {
    /// The summary of `traces` (whole, each non-empty), with the typed columns `typed`.
    pub fn of(traces: &[Trace], typed: &[TypedColumn]) -> BlockSummary {
        let mut rows = SpanRows::default();
        for trace in traces.iter().filter(|t| !t.is_empty()) {
            rows.push_trace(trace);
        }
        BlockSummary::of_rows(&rows, typed)
    }

    /// The summary of the traces of `rows` (whole), with the typed columns `typed`.
    pub fn of_rows(rows: &SpanRows<'_>, typed: &[TypedColumn]) -> BlockSummary {
        let mut summary = BlockSummary::empty();
        let mut durations = Vec::with_capacity(rows.traces.len());
        for trace in rows.traces.iter().filter(|t| !t.is_empty()) {
            let spans = &rows.spans[trace.clone()];
            let (start, end) = bounds(spans.iter().map(|s| (s.start_unix_nano, s.end_unix_nano)));
            summary.start_unix_nano = summary.start_unix_nano.min(start);
            summary.end_unix_nano = summary.end_unix_nano.max(end);
            summary.traces += 1;
            summary.spans += spans.len() as u64;
            let id = spans[0].trace_id;
            summary.trace_ids = Some(
                summary
                    .trace_ids
                    .map_or((id, id), |(lo, hi)| (lo.min(id), hi.max(id))),
            );
            durations.push(end - start);
        }
        summary.trace_durations = duration_histogram(durations);
        summary.fallback_keys = fallback_keys(rows, typed);
        summary.dictionaries = dictionaries(rows, typed);
        summary
    }

    /// The summary of an empty block, to [`BlockSummary::add`] to.
    pub fn empty() -> BlockSummary {
        BlockSummary {
            start_unix_nano: u64::MAX,
            end_unix_nano: 0,
            traces: 0,
            spans: 0,
            trace_ids: None,
            fallback_keys: Some(BTreeMap::new()),
            dictionaries: BTreeMap::new(),
            trace_durations: Vec::new(),
        }
    }

    /// Adds the summary of more traces of the same block.
    pub fn add(&mut self, other: BlockSummary) {
        self.start_unix_nano = self.start_unix_nano.min(other.start_unix_nano);
        self.end_unix_nano = self.end_unix_nano.max(other.end_unix_nano);
        self.traces += other.traces;
        self.spans += other.spans;
        self.trace_ids = match (self.trace_ids, other.trace_ids) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (one, other) => one.or(other),
        };
        self.fallback_keys = match (self.fallback_keys.take(), other.fallback_keys) {
            (Some(mut mine), Some(theirs)) => {
                for (scope, keys) in theirs {
                    mine.entry(scope).or_default().extend(keys);
                }
                let count: usize = mine.values().map(BTreeSet::len).sum();
                (count <= MAX_FALLBACK_KEYS).then_some(mine)
            }
            _ => None,
        };
        for (column, values) in other.dictionaries {
            let mine = self
                .dictionaries
                .entry(column)
                .or_insert_with(|| Some(BTreeSet::new()));
            *mine = match (mine.take(), values) {
                (Some(mut mine), Some(theirs)) => {
                    mine.extend(theirs);
                    (mine.len() <= MAX_DICTIONARY_VALUES).then_some(mine)
                }
                _ => None,
            };
        }
        if self.trace_durations.len() < other.trace_durations.len() {
            self.trace_durations.resize(other.trace_durations.len(), 0);
        }
        for (mine, theirs) in self.trace_durations.iter_mut().zip(other.trace_durations) {
            *mine += theirs;
        }
    }

    /// The dictionaries `meta.json` records: the columns with at most
    /// [`MAX_DICTIONARY_VALUES`] values.
    pub fn recorded_dictionaries(&mut self) -> BTreeMap<String, BTreeSet<String>> {
        std::mem::take(&mut self.dictionaries)
            .into_iter()
            .filter_map(|(column, values)| Some((column, values?)))
            .collect()
    }
}

/// The keys that end up in the fallback lists of the traces of `rows`, per scope:
/// attributes without a typed column, and repeated values of a typed key and type.
/// `None` beyond [`MAX_FALLBACK_KEYS`].
fn fallback_keys<'a>(
    rows: &SpanRows<'a>,
    typed: &[TypedColumn],
) -> Option<BTreeMap<String, BTreeSet<String>>> {
    let typed: HashSet<(&str, &str, ValueType)> = typed
        .iter()
        .map(|c| (c.scope.as_str(), c.key.as_str(), c.value_type))
        .collect();
    let mut keys: HashSet<(&str, &'a str)> = HashSet::default();
    let mut seen: Vec<(&str, ValueType)> = Vec::new();
    for (scope, range) in rows.attribute_lists() {
        seen.clear();
        for (key, value) in rows.attrs(range) {
            let t = value.value_type();
            let slot = (*key, t);
            if !typed.contains(&(scope, *key, t)) || seen.contains(&slot) {
                keys.insert((scope, key));
            } else {
                seen.push(slot);
            }
        }
        if keys.len() > MAX_FALLBACK_KEYS {
            return None;
        }
    }
    for scope in &rows.scopes {
        for (key, _) in rows.attrs(&scope.attributes) {
            keys.insert(("instrumentation", key));
        }
    }
    if keys.len() > MAX_FALLBACK_KEYS {
        return None;
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (scope, key) in keys {
        out.entry(scope.to_string())
            .or_default()
            .insert(key.to_string());
    }
    Some(out)
}

/// The distinct values of `name` and of the typed string attribute columns; a column's
/// set is `None` once it has more than [`MAX_DICTIONARY_VALUES`].
fn dictionaries<'a>(
    rows: &SpanRows<'a>,
    typed: &[TypedColumn],
) -> BTreeMap<String, Option<BTreeSet<String>>> {
    let mut out: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    let mut names: HashSet<&str> = HashSet::default();
    for span in &rows.spans {
        names.insert(span.name);
        if names.len() > MAX_DICTIONARY_VALUES {
            break;
        }
    }
    out.insert(columns::NAME.into(), owned(names));
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
    for (scope, range) in rows.attribute_lists() {
        if open == 0 {
            break;
        }
        for (key, value) in rows.attrs(range) {
            // The column holds the first string value of the key.
            let ValueRef::Str(v) = value else { continue };
            let Some(&i) = index.get(&(scope, *key)) else {
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
    for (column, set) in strings.iter().zip(values) {
        out.insert(column.name.clone(), set.and_then(owned));
    }
    out
}

/// `set` as owned strings, or `None` beyond [`MAX_DICTIONARY_VALUES`].
fn owned(set: HashSet<&str>) -> Option<BTreeSet<String>> {
    (set.len() <= MAX_DICTIONARY_VALUES).then(|| set.into_iter().map(str::to_string).collect())
}
