//! Tests on Tempo rows that the Parquet reader applies before it decodes a row, so a
//! scan never decodes a trace that cannot hold a span it keeps.
//!
//! A Tempo row is a whole trace, so a test asks whether *some* element of the row (a
//! span, a resource, an instrumentation scope) satisfies a comparison: a [`Test::Leaf`]
//! holds for a row when one of its elements does, [`Test::All`] when every part holds
//! and [`Test::Any`] when one does. A span-level condition `a && b` therefore becomes
//! "some span has `a`" and "some span has `b`": a necessary condition for a span with
//! both, never a sufficient one. Whoever builds a test must keep it necessary — every
//! row holding a span the query keeps passes — and the query still filters the decoded
//! spans exactly; a test only saves work.
//!
//! [`RowFilter`] adds what a scan itself knows (the trace of a lookup, the window of
//! trace starts of a search's round) and reads only the leaf columns its tests use.

use arrow::array::{
    Array, BinaryArray, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch,
    StructArray, UInt64Array,
};
use arrow::datatypes::DataType;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::arrays::{StrCol, column, downcast, field};
use crate::error::{FormatError, Result};
use crate::ids::{TraceId, span_id_hex, trace_id_hex};
use crate::tempo::TempoVersion;
use crate::tempo::columns::{RESOURCE_WELL_KNOWN, SPAN_WELL_KNOWN, Spare, SpareScope, spares};
use crate::tempo::meta::DedicatedColumn;
use crate::tempo::read::{field_path, padded};

use std::fmt;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
}

impl Op {
    fn holds<T: PartialOrd>(self, value: T, literal: T) -> bool {
        match self {
            Op::Eq => value == literal,
            Op::Neq => value != literal,
            Op::Lt => value < literal,
            Op::Lte => value <= literal,
            Op::Gt => value > literal,
            Op::Gte => value >= literal,
        }
    }

    /// The operator that holds whenever `self` does for exact values, once both sides
    /// are rounded to `f64` (a strict order may become an equality).
    fn rounded(self) -> Op {
        match self {
            Op::Lt => Op::Lte,
            Op::Gt => Op::Gte,
            other => other,
        }
    }
}

/// A comparison of a value with a literal. A value of another type than the literal's
/// never satisfies it, except integers and floats, which compare as numbers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Cmp {
    /// Strings, compared with a string.
    Str(Op, String),
    /// Strings matched against an anchored regex (`matches: false` for `!~`).
    Regex {
        /// The anchored pattern.
        #[serde(with = "pattern")]
        re: Regex,
        /// Whether a match satisfies it (`=~`) or a mismatch does (`!~`).
        matches: bool,
    },
    /// Numbers, compared with an integer.
    Int(Op, i64),
    /// Numbers, compared with a float.
    Float(Op, f64),
    /// Booleans, equal to this one.
    Bool(bool),
}

impl Cmp {
    /// `=~` (`matches`) or `!~` with `pattern`, which is anchored already; `None` if it
    /// is not a valid regex.
    pub fn anchored_regex(pattern: &str, matches: bool) -> Option<Cmp> {
        Some(Cmp::Regex {
            re: Regex::new(pattern).ok()?,
            matches,
        })
    }

    fn str(&self, v: &str) -> bool {
        match self {
            Cmp::Str(op, s) => op.holds(v, s.as_str()),
            Cmp::Regex { re, matches } => re.is_match(v) == *matches,
            _ => false,
        }
    }

    fn int(&self, v: i64) -> bool {
        match self {
            Cmp::Int(op, i) => op.holds(v, *i),
            Cmp::Float(op, f) => op.rounded().holds(v as f64, *f),
            _ => false,
        }
    }

    fn float(&self, v: f64) -> bool {
        match self {
            Cmp::Float(op, f) => op.holds(v, *f),
            Cmp::Int(op, i) => op.rounded().holds(v, *i as f64),
            _ => false,
        }
    }

    fn uint(&self, v: u64) -> bool {
        match self {
            Cmp::Int(op, i) => u64::try_from(*i).map_or_else(
                // A negative literal: every value is greater.
                |_| matches!(op, Op::Neq | Op::Gt | Op::Gte),
                |i| op.holds(v, i),
            ),
            Cmp::Float(op, f) => op.rounded().holds(v as f64, *f),
            _ => false,
        }
    }

    fn bool(&self, v: bool) -> bool {
        matches!(self, Cmp::Bool(b) if *b == v)
    }

    /// Whether it compares numbers.
    fn numeric(&self) -> bool {
        matches!(self, Cmp::Int(..) | Cmp::Float(..))
    }
}

/// The level of a Tempo row an attribute is kept at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    /// `rs.Resource`.
    Resource,
    /// `rs.ss.Scope` (instrumentation scope).
    Scope,
    /// `rs.ss.Spans`.
    Span,
    /// `rs.ss.Spans.Events`.
    Event,
    /// `rs.ss.Spans.Links`.
    Link,
}

impl Level {
    fn path(self) -> &'static [&'static str] {
        match self {
            Level::Resource => &["rs", "Resource"],
            Level::Scope => &["rs", "ss", "Scope"],
            Level::Span => &["rs", "ss", "Spans"],
            Level::Event => &["rs", "ss", "Spans", "Events"],
            Level::Link => &["rs", "ss", "Spans", "Links"],
        }
    }
}

/// What a leaf test compares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// The trace id, as TraceQL prints it (hex without leading zeros).
    TraceId,
    /// The span's id, as TraceQL prints it (16 hex digits).
    SpanId,
    /// The span's parent id, as TraceQL prints it (16 hex digits; zeros for a root).
    ParentId,
    /// The trace id of one of the span's links (hex without leading zeros).
    LinkTraceId,
    /// The span id of one of the span's links (16 hex digits).
    LinkSpanId,
    /// The span's name.
    Name,
    /// The span's status message.
    StatusMessage,
    /// The span's OTLP status code.
    StatusCode,
    /// The span's OTLP kind.
    Kind,
    /// The span's duration in nanoseconds (0 when its end precedes its start).
    Duration,
    /// The name of one of the span's events.
    EventName,
    /// Every value of attribute `key` kept at `level`, wherever the block keeps it:
    /// the generic attribute list, a dedicated column, a well-known column.
    Attribute {
        /// Where the attribute is kept.
        level: Level,
        /// Its key.
        key: String,
    },
}

/// A test on a Tempo row (a trace).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Test {
    /// Some element holding `target` satisfies the comparison.
    Leaf(Target, Cmp),
    /// Every test holds.
    All(Vec<Test>),
    /// Some test holds.
    Any(Vec<Test>),
}

/// The tests a scan of one Tempo block gives its Parquet reader. It travels (serde) as
/// what [`RowFilter::new`] was given.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "FilterSpec", try_from = "FilterSpec")]
pub struct RowFilter {
    /// The leaf-path prefixes the filter reads, found once.
    wanted: Vec<Vec<String>>,
    test: Option<Test>,
    trace: Option<TraceId>,
    starts: (Option<u64>, Option<u64>),
    version: TempoVersion,
    dedicated: Vec<DedicatedColumn>,
    spares: Vec<Spare>,
}

/// What a [`RowFilter`] is made of.
#[derive(Serialize, Deserialize)]
struct FilterSpec {
    version: TempoVersion,
    dedicated: Vec<DedicatedColumn>,
    test: Option<Test>,
    trace: Option<TraceId>,
    starts: (Option<u64>, Option<u64>),
}

impl From<RowFilter> for FilterSpec {
    fn from(f: RowFilter) -> FilterSpec {
        FilterSpec {
            version: f.version,
            dedicated: f.dedicated,
            test: f.test,
            trace: f.trace,
            starts: f.starts,
        }
    }
}

impl TryFrom<FilterSpec> for RowFilter {
    type Error = String;

    fn try_from(s: FilterSpec) -> std::result::Result<RowFilter, String> {
        RowFilter::new(s.version, &s.dedicated, s.test, s.trace, s.starts)
            .ok_or_else(|| "a Tempo row filter that tests nothing".to_string())
    }
}

/// A regex as its pattern text (serde).
mod pattern {
    use regex::Regex;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(re: &Regex, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(re.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Regex, D::Error> {
        let text = String::deserialize(d)?;
        Regex::new(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Neq => "!=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Gt => ">",
            Op::Gte => ">=",
        })
    }
}

impl fmt::Display for Cmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cmp::Str(op, s) => write!(f, "{op} {s:?}"),
            Cmp::Regex { re, matches } => {
                write!(
                    f,
                    "{} {:?}",
                    if *matches { "=~" } else { "!~" },
                    re.as_str()
                )
            }
            Cmp::Int(op, i) => write!(f, "{op} {i}"),
            Cmp::Float(op, x) => write!(f, "{op} {x:?}"),
            Cmp::Bool(b) => write!(f, "= {b}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::TraceId => f.write_str("TraceID"),
            Target::SpanId => f.write_str("SpanID"),
            Target::ParentId => f.write_str("ParentSpanID"),
            Target::LinkTraceId => f.write_str("Links.TraceID"),
            Target::LinkSpanId => f.write_str("Links.SpanID"),
            Target::Name => f.write_str("Name"),
            Target::StatusMessage => f.write_str("StatusMessage"),
            Target::StatusCode => f.write_str("StatusCode"),
            Target::Kind => f.write_str("Kind"),
            Target::Duration => f.write_str("DurationNano"),
            Target::EventName => f.write_str("Events.Name"),
            Target::Attribute { level, key } => {
                let level = match level {
                    Level::Resource => "resource",
                    Level::Scope => "scope",
                    Level::Span => "span",
                    Level::Event => "event",
                    Level::Link => "link",
                };
                write!(f, "{level}.{key}")
            }
        }
    }
}

/// Shown as the conditions a row must meet, e.g. `some StatusCode = 2`.
impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, tests: &[Test], sep: &str| {
            for (i, t) in tests.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                match t {
                    Test::Leaf(..) => write!(f, "{t}")?,
                    _ => write!(f, "({t})")?,
                }
            }
            Ok(())
        };
        match self {
            Test::Leaf(target, cmp) => write!(f, "some {target} {cmp}"),
            Test::All(tests) => list(f, tests, " and "),
            Test::Any(tests) => list(f, tests, " or "),
        }
    }
}

impl fmt::Display for RowFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(test) = &self.test {
            parts.push(test.to_string());
        }
        if self.trace.is_some() {
            parts.push("the trace looked up".to_string());
        }
        match self.starts {
            (None, None) => {}
            (from, to) => parts.push(format!(
                "starts in [{}, {})",
                from.map_or("-".to_string(), |v| v.to_string()),
                to.map_or("-".to_string(), |v| v.to_string())
            )),
        }
        f.write_str(&parts.join("; "))
    }
}

/// The span fields every span-level path ends in.
const SPANS: [&str; 3] = ["rs", "ss", "Spans"];

impl RowFilter {
    /// The filter of a block of `version` with `dedicated` columns keeping rows that
    /// pass `test`, hold trace `trace` and start in `[from, to)` (each where given);
    /// `None` when it would keep every row.
    pub fn new(
        version: TempoVersion,
        dedicated: &[DedicatedColumn],
        test: Option<Test>,
        trace: Option<TraceId>,
        starts: (Option<u64>, Option<u64>),
    ) -> Option<RowFilter> {
        if test.is_none() && trace.is_none() && starts == (None, None) {
            return None;
        }
        let mut filter = RowFilter {
            wanted: Vec::new(),
            test,
            trace,
            starts,
            version,
            dedicated: dedicated.to_vec(),
            spares: spares(version, dedicated),
        };
        let mut wanted = Vec::new();
        if filter.trace.is_some() {
            wanted.push(vec!["TraceID".to_string()]);
        }
        if filter.starts != (None, None) {
            wanted.push(span_path("StartTimeUnixNano"));
        }
        if let Some(test) = &filter.test {
            filter.paths(test, &mut wanted);
        }
        filter.wanted = wanted;
        Some(filter)
    }

    /// Whether the filter reads the leaf column at `path` (its Parquet path parts).
    pub fn leaf(&self, path: &[String]) -> bool {
        let path = field_path(path);
        self.wanted
            .iter()
            .any(|w| path.len() >= w.len() && w.iter().zip(&path).all(|(a, b)| a == b))
    }

    /// The paths (prefixes of leaf paths) `test` reads.
    fn paths(&self, test: &Test, out: &mut Vec<Vec<String>>) {
        match test {
            Test::All(tests) | Test::Any(tests) => {
                tests.iter().for_each(|t| self.paths(t, out));
            }
            Test::Leaf(target, cmp) => match target {
                Target::TraceId => out.push(vec!["TraceID".to_string()]),
                Target::SpanId => out.push(span_path("SpanID")),
                Target::ParentId => out.push(span_path("ParentSpanID")),
                Target::LinkTraceId => out.push(span_path("Links.TraceID")),
                Target::LinkSpanId => out.push(span_path("Links.SpanID")),
                Target::Name => out.push(span_path("Name")),
                Target::StatusMessage => out.push(span_path("StatusMessage")),
                Target::StatusCode => out.push(span_path("StatusCode")),
                Target::Kind => out.push(span_path("Kind")),
                Target::EventName => out.push(span_path("Events.Name")),
                Target::Duration => {
                    out.push(span_path("DurationNano"));
                    out.push(span_path("StartTimeUnixNano"));
                }
                Target::Attribute { level, key } => {
                    let at = |rest: &[&str]| {
                        level
                            .path()
                            .iter()
                            .chain(rest)
                            .map(|s| s.to_string())
                            .collect::<Vec<_>>()
                    };
                    out.push(at(&["Attrs", "Key"]));
                    for list in value_lists(cmp) {
                        out.push(at(&["Attrs", list]));
                    }
                    for own in self.own_columns(*level, key, cmp) {
                        out.push(match own {
                            Own::Plain(name) => at(&[name]),
                            Own::Dedicated(name) => at(&["DedicatedAttributes", name]),
                        });
                    }
                }
            },
        }
    }

    /// The columns of Tempo's own that may keep attribute `key` of `level` with
    /// values `cmp` compares.
    fn own_columns<'s>(&'s self, level: Level, key: &str, cmp: &Cmp) -> Vec<Own<'s>> {
        let v4 = self.version == TempoVersion::V4;
        let (well_known, scope): (&[_], _) = match level {
            Level::Resource => (&RESOURCE_WELL_KNOWN[..], SpareScope::Resource),
            Level::Span => (&SPAN_WELL_KNOWN[..], SpareScope::Span),
            // vParquet5's event spares; vParquet4 has none.
            Level::Event => (&[][..], SpareScope::Event),
            Level::Scope | Level::Link => return Vec::new(),
        };
        let fits = |int: bool| if int { cmp.numeric() } else { !cmp.numeric() };
        let mut out = Vec::new();
        if level == Level::Resource && key == "service.name" && fits(false) {
            out.push(Own::Plain("ServiceName"));
        }
        if v4 {
            out.extend(
                well_known
                    .iter()
                    .filter(|w| w.key == key && fits(w.int))
                    .map(|w| Own::Plain(w.column)),
            );
        }
        out.extend(
            self.spares
                .iter()
                .filter(|s| s.scope == scope && s.key == key && fits(s.int))
                .map(|s| Own::Dedicated(s.column.as_str())),
        );
        out
    }

    /// Which rows of `batch` (Tempo rows read with the columns [`Self::leaf`] asks
    /// for) may hold a span the scan keeps.
    pub fn matches(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let rows = batch.num_rows();
        let mut keep = vec![true; rows];
        if let Some(id) = &self.trace {
            let ids = column::<BinaryArray>(batch, "TraceID")?;
            for (row, keep) in keep.iter_mut().enumerate() {
                *keep &= padded::<16>(ids.value(row)) == *id;
            }
        }
        let mut levels = Levels::new(batch);
        if self.starts != (None, None) {
            let (owners, spans) = levels.get(Level::Span)?;
            let starts = downcast::<UInt64Array>(
                field_of(spans, "StartTimeUnixNano")?,
                "StartTimeUnixNano",
            )?;
            let mut first = vec![u64::MAX; rows];
            for (e, &row) in owners.iter().enumerate() {
                if row != NONE {
                    first[row as usize] = first[row as usize].min(starts.value(e));
                }
            }
            let (from, to) = self.starts;
            for (keep, start) in keep.iter_mut().zip(first) {
                // A trace without spans starts at 0, as its rows say.
                let start = if start == u64::MAX { 0 } else { start };
                *keep &= from.is_none_or(|f| start >= f) && to.is_none_or(|t| start < t);
            }
        }
        if let Some(test) = &self.test {
            let passed = self.eval(test, &mut levels, rows)?;
            keep.iter_mut().zip(passed).for_each(|(k, p)| *k &= p);
        }
        Ok(BooleanArray::from(keep))
    }

    fn eval(&self, test: &Test, levels: &mut Levels<'_>, rows: usize) -> Result<Vec<bool>> {
        match test {
            Test::All(tests) => {
                let mut out = vec![true; rows];
                for t in tests {
                    let r = self.eval(t, levels, rows)?;
                    out.iter_mut().zip(r).for_each(|(o, r)| *o &= r);
                }
                Ok(out)
            }
            Test::Any(tests) => {
                let mut out = vec![false; rows];
                for t in tests {
                    let r = self.eval(t, levels, rows)?;
                    out.iter_mut().zip(r).for_each(|(o, r)| *o |= r);
                }
                Ok(out)
            }
            Test::Leaf(target, cmp) => self.leaf_test(target, cmp, levels, rows),
        }
    }

    fn leaf_test(
        &self,
        target: &Target,
        cmp: &Cmp,
        levels: &mut Levels<'_>,
        rows: usize,
    ) -> Result<Vec<bool>> {
        let mut out = vec![false; rows];
        if *target == Target::TraceId {
            let ids = column::<BinaryArray>(batch_of(levels), "TraceID")?;
            for (row, out) in out.iter_mut().enumerate() {
                *out = cmp.str(&trace_id_hex(&padded::<16>(ids.value(row))));
            }
            return Ok(out);
        }
        let level = match target {
            Target::Attribute { level, .. } => *level,
            Target::EventName => Level::Event,
            Target::LinkTraceId | Target::LinkSpanId => Level::Link,
            _ => Level::Span,
        };
        let (owners, items) = levels.get(level)?;
        let mut each = |test: &dyn Fn(usize) -> bool| {
            for (e, &row) in owners.iter().enumerate() {
                if row != NONE && !out[row as usize] && test(e) {
                    out[row as usize] = true;
                }
            }
        };
        match target {
            Target::Name | Target::StatusMessage | Target::EventName => {
                let name = if *target == Target::StatusMessage {
                    "StatusMessage"
                } else {
                    "Name"
                };
                let values = StrCol::new(field_of(items, name)?, name)?;
                each(&|e| cmp.str(values.value(e)));
            }
            Target::StatusCode | Target::Kind => {
                let name = if *target == Target::Kind {
                    "Kind"
                } else {
                    "StatusCode"
                };
                let values = downcast::<Int64Array>(field_of(items, name)?, name)?;
                each(&|e| cmp.int(values.value(e)));
            }
            Target::Duration => {
                let durations = field::<UInt64Array>(items, "DurationNano")?;
                let starts = field::<UInt64Array>(items, "StartTimeUnixNano")?;
                each(&|e| {
                    let (start, duration) = (starts.value(e), durations.value(e));
                    // Tempo stores end − start wrapped; such a span lasts 0.
                    let duration = if start.checked_add(duration).is_some() {
                        duration
                    } else {
                        0
                    };
                    cmp.uint(duration)
                });
            }
            Target::TraceId => {}
            Target::SpanId | Target::ParentId | Target::LinkSpanId => {
                let name = match target {
                    Target::ParentId => "ParentSpanID",
                    _ => "SpanID",
                };
                let ids = downcast::<BinaryArray>(field_of(items, name)?, name)?;
                each(&|e| {
                    let mut buf = [0u8; 16];
                    cmp.str(span_id_hex(&padded::<8>(ids.value(e)), &mut buf))
                });
            }
            Target::LinkTraceId => {
                let ids = downcast::<BinaryArray>(field_of(items, "TraceID")?, "TraceID")?;
                each(&|e| cmp.str(&trace_id_hex(&padded::<16>(ids.value(e)))));
            }
            Target::Attribute { key, .. } => {
                for own in self.own_columns(level, key, cmp) {
                    let array = match own {
                        Own::Plain(name) => field_of(items, name)?,
                        Own::Dedicated(name) => {
                            let group = field::<StructArray>(items, "DedicatedAttributes")?;
                            field_of(group, name)?
                        }
                    };
                    let values = Values::new(array)?;
                    let service = own == Own::Plain("ServiceName");
                    each(&|e| values.any(e, cmp, service));
                }
                self.generic(key, cmp, level, levels, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Marks in `out` the rows with an entry of attribute `key` in the generic lists
    /// of `level` whose values satisfy `cmp`.
    fn generic(
        &self,
        key: &str,
        cmp: &Cmp,
        level: Level,
        levels: &mut Levels<'_>,
        out: &mut [bool],
    ) -> Result<()> {
        let (owners, items) = levels.get(level)?;
        let attrs = field::<ListArray>(items, "Attrs")?;
        let entries = downcast::<StructArray>(attrs.values().as_ref(), "items of `Attrs`")?;
        let owners = descend(owners, attrs);
        let keys = StrCol::new(field_of(entries, "Key")?, "Key")?;
        let lists: Vec<Values<'_>> = value_lists(cmp)
            .iter()
            .map(|name| Values::new(field_of(entries, name)?))
            .collect::<Result<_>>()?;
        for (e, &row) in owners.iter().enumerate() {
            if row == NONE || out[row as usize] || keys.value(e) != key {
                continue;
            }
            if lists.iter().any(|l| l.any(e, cmp, false)) {
                out[row as usize] = true;
            }
        }
        Ok(())
    }
}

/// A column of Tempo's own, by name at its level or inside `DedicatedAttributes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Own<'a> {
    Plain(&'a str),
    Dedicated(&'a str),
}

/// The value lists of a generic attribute entry that may hold values `cmp` compares.
fn value_lists(cmp: &Cmp) -> &'static [&'static str] {
    match cmp {
        Cmp::Str(..) | Cmp::Regex { .. } => &["Value"],
        Cmp::Int(..) | Cmp::Float(..) => &["ValueInt", "ValueDouble"],
        Cmp::Bool(_) => &["ValueBool"],
    }
}

/// The path of field `name` (dotted below the span: `Events.Name`) of spans.
fn span_path(name: &str) -> Vec<String> {
    SPANS
        .iter()
        .copied()
        .chain(name.split('.'))
        .map(str::to_string)
        .collect()
}

/// Field `name` of `s`.
fn field_of<'a>(s: &'a StructArray, name: &str) -> Result<&'a dyn Array> {
    s.column_by_name(name)
        .map(|a| a.as_ref())
        .ok_or_else(|| FormatError::corrupt(format!("field `{name}` is missing")))
}

/// The owner of an item no row holds (outside a sliced list's range).
const NONE: u32 = u32::MAX;

/// The row owning each item of `list`'s values, given the row owning each list.
fn descend(owners: &[u32], list: &ListArray) -> Vec<u32> {
    let mut out = vec![NONE; list.values().len()];
    let offsets = list.value_offsets();
    for (i, &row) in owners.iter().enumerate().take(list.len()) {
        if list.is_null(i) {
            continue;
        }
        let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
        out[from..to].iter_mut().for_each(|o| *o = row);
    }
    out
}

/// The batch whose levels `levels` finds.
fn batch_of<'a>(levels: &Levels<'a>) -> &'a RecordBatch {
    levels.batch
}

/// The elements of each level of a batch of Tempo rows, with the row owning each,
/// found once per batch.
struct Levels<'a> {
    batch: &'a RecordBatch,
    found: Vec<(Level, Vec<u32>, &'a StructArray)>,
}

impl<'a> Levels<'a> {
    fn new(batch: &'a RecordBatch) -> Levels<'a> {
        Levels {
            batch,
            found: Vec::new(),
        }
    }

    fn get(&mut self, level: Level) -> Result<(&[u32], &'a StructArray)> {
        if let Some(i) = self.found.iter().position(|(l, ..)| *l == level) {
            let (_, owners, items) = &self.found[i];
            return Ok((owners, items));
        }
        let path = level.path();
        let rs = column::<ListArray>(self.batch, path[0])?;
        let mut owners: Vec<u32> = (0..self.batch.num_rows() as u32).collect();
        owners = descend(&owners, rs);
        let mut items = downcast::<StructArray>(rs.values().as_ref(), "items of `rs`")?;
        for name in &path[1..] {
            let child = field_of(items, name)?;
            items = match child.data_type() {
                DataType::List(_) => {
                    let list = downcast::<ListArray>(child, name)?;
                    owners = descend(&owners, list);
                    downcast::<StructArray>(list.values().as_ref(), name)?
                }
                _ => downcast::<StructArray>(child, name)?,
            };
        }
        self.found.push((level, owners, items));
        let (_, owners, items) = self.found.last().expect("just pushed");
        Ok((owners, items))
    }
}

/// The values of one column at a level: one nullable value per element, or a list.
enum Values<'a> {
    Scalar(Typed<'a>),
    List(&'a ListArray, Typed<'a>),
}

/// Values of one type.
enum Typed<'a> {
    Str(StrCol<'a>),
    Int(&'a Int64Array),
    Float(&'a Float64Array),
    Bool(&'a BooleanArray),
}

impl<'a> Typed<'a> {
    fn new(array: &'a dyn Array) -> Result<Typed<'a>> {
        Ok(match array.data_type() {
            DataType::Int64 => Typed::Int(downcast(array, "integer values")?),
            DataType::Float64 => Typed::Float(downcast(array, "float values")?),
            DataType::Boolean => Typed::Bool(downcast(array, "boolean values")?),
            _ => Typed::Str(StrCol::new(array, "string values")?),
        })
    }

    /// Whether value `i` is present and satisfies `cmp`; an empty string counts as
    /// absent where `empty_absent` (Tempo's `ServiceName`).
    fn test(&self, i: usize, cmp: &Cmp, empty_absent: bool) -> bool {
        match self {
            Typed::Str(a) => a
                .get(i)
                .is_some_and(|v| !(empty_absent && v.is_empty()) && cmp.str(v)),
            Typed::Int(a) => a.is_valid(i) && cmp.int(a.value(i)),
            Typed::Float(a) => a.is_valid(i) && cmp.float(a.value(i)),
            Typed::Bool(a) => a.is_valid(i) && cmp.bool(a.value(i)),
        }
    }
}

impl<'a> Values<'a> {
    fn new(array: &'a dyn Array) -> Result<Values<'a>> {
        Ok(match array.data_type() {
            DataType::List(_) => {
                let list = downcast::<ListArray>(array, "a list of values")?;
                Values::List(list, Typed::new(list.values().as_ref())?)
            }
            _ => Values::Scalar(Typed::new(array)?),
        })
    }

    /// Whether some value of element `e` satisfies `cmp`.
    fn any(&self, e: usize, cmp: &Cmp, empty_absent: bool) -> bool {
        match self {
            Values::Scalar(t) => t.test(e, cmp, empty_absent),
            Values::List(list, t) => {
                if list.is_null(e) {
                    return false;
                }
                let offsets = list.value_offsets();
                (offsets[e] as usize..offsets[e + 1] as usize).any(|j| t.test(j, cmp, empty_absent))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    fn attribute(level: Level, key: &str, cmp: Cmp) -> Test {
        Test::Leaf(
            Target::Attribute {
                level,
                key: key.into(),
            },
            cmp,
        )
    }

    #[test]
    fn a_filter_reads_only_the_leaves_its_tests_compare() {
        let dedicated = [DedicatedColumn {
            scope: "span".into(),
            name: "http.route".into(),
            value_type: "string".into(),
            options: Vec::new(),
        }];
        let test = Test::All(vec![
            Test::Leaf(Target::StatusCode, Cmp::Int(Op::Eq, 2)),
            attribute(Level::Span, "http.route", Cmp::Str(Op::Eq, "/a".into())),
            attribute(
                Level::Resource,
                "service.name",
                Cmp::Str(Op::Eq, "a".into()),
            ),
        ]);
        let v5 = RowFilter::new(
            TempoVersion::V5,
            &dedicated,
            Some(test.clone()),
            None,
            (None, None),
        )
        .expect("a filter");
        for (leaf, read) in [
            ("rs.ss.Spans.StatusCode", true),
            ("rs.ss.Spans.Attrs.Key", true),
            ("rs.ss.Spans.Attrs.Value", true),
            ("rs.ss.Spans.Attrs.ValueInt", false),
            ("rs.ss.Spans.DedicatedAttributes.String01", true),
            ("rs.Resource.ServiceName", true),
            ("rs.Resource.Attrs.Value", true),
            ("rs.ss.Spans.Name", false),
            ("rs.ss.Spans.Events.Attrs.Key", false),
            ("TraceID", false),
        ] {
            assert_eq!(v5.leaf(&path(leaf)), read, "v5 {leaf}");
        }
        // vParquet4 wraps lists, and keeps http.method in a column of its own.
        let v4 = RowFilter::new(
            TempoVersion::V4,
            &dedicated,
            Some(attribute(
                Level::Span,
                "http.method",
                Cmp::Str(Op::Eq, "GET".into()),
            )),
            Some([1; 16]),
            (Some(5), None),
        )
        .expect("a filter");
        for (leaf, read) in [
            (
                "rs.list.element.ss.list.element.Spans.list.element.HttpMethod",
                true,
            ),
            (
                "rs.list.element.ss.list.element.Spans.list.element.HttpUrl",
                false,
            ),
            (
                "rs.list.element.ss.list.element.Spans.list.element.StartTimeUnixNano",
                true,
            ),
            ("TraceID", true),
        ] {
            assert_eq!(v4.leaf(&path(leaf)), read, "v4 {leaf}");
        }
        assert_eq!(
            v4.to_string(),
            "some span.http.method = \"GET\"; the trace looked up; starts in [5, -)"
        );
        assert_eq!(
            test.to_string(),
            "some StatusCode = 2 and some span.http.route = \"/a\" and some \
             resource.service.name = \"a\""
        );
        assert!(RowFilter::new(TempoVersion::V5, &[], None, None, (None, None)).is_none());
    }

    #[test]
    fn numbers_compare_across_types_as_traceql_does_or_more_loosely() {
        // Integers exactly; an integer and a float as f64, a strict order loosened
        // where rounding may make the two equal.
        assert!(Cmp::Int(Op::Eq, 24).float(24.0));
        assert!(Cmp::Float(Op::Gt, 850.5).int(851));
        assert!(!Cmp::Float(Op::Gt, 850.5).int(850));
        let big = (1i64 << 53) + 1;
        // 2^53 + 1 rounds to 2^53: exactly greater, equal once rounded, still kept.
        assert!(Cmp::Float(Op::Gt, (1i64 << 53) as f64).int(big));
        assert!(Cmp::Int(Op::Lt, big).int(big - 1));
        assert!(!Cmp::Int(Op::Lt, big).int(big));
        // Durations are unsigned: every one is greater than a negative literal.
        assert!(Cmp::Int(Op::Gt, -1).uint(0));
        assert!(!Cmp::Int(Op::Lt, -1).uint(0));
        // Values of another type never satisfy a comparison.
        assert!(!Cmp::Str(Op::Eq, "1".into()).int(1));
        assert!(!Cmp::Int(Op::Eq, 1).str("1"));
        assert!(!Cmp::Bool(true).int(1));
    }
}
