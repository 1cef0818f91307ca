//! What is wrong with each trace: repeated sequential calls among siblings (N+1
//! database queries, N+1 calls to another service), slow database queries, and the
//! critical path with each span's own time on it.
//!
//! - **N+1**: siblings (same parent) of one kind — database spans by their normalised
//!   statement ([`normalise_statement`]), or client calls by method and normalised
//!   route or URL ([`normalise_url`]) — taken in start order, each starting at or after
//!   the previous one ended. A run of at least [`Thresholds::min_repeats`] such spans
//!   that together take at least the kind's threshold is a finding, written on the run's
//!   first span. A span of another pattern between them does not break a run (a loop
//!   that runs two queries per item shows as two runs); one that overlaps its
//!   predecessor does (calls made in parallel are not N+1), and starts a new run.
//! - **Slow database query**: a database span taking at least
//!   [`Thresholds::slow_database`].
//! - **Critical path** ([`critical_path`]): from the root, the child that finished
//!   last before the parent's end, then the one that finished last before that child
//!   started, and so on, recursively; each span on it is given the time on the path
//!   that none of its children on the path covers (its own time).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int8Array, Int32Array, Int64Array, RecordBatch, StringArray, StringBuilder,
    UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::Result;
use traceql_format::codes::kind;
use traceql_format::schema::columns as c;

use super::{FirstOf, TraceOperator, column, text_at};

/// Input: the span's service (`Utf8`).
pub const SERVICE: &str = "__service";
/// Output: the kind of N+1 run starting at this span ([`N_PLUS_ONE_DATABASE`] or
/// [`N_PLUS_ONE_CALLS`]), null elsewhere.
pub const RUN_KIND: &str = "__run_kind";
/// Output: the run's pattern (normalised statement, or method and route).
pub const RUN_PATTERN: &str = "__run_pattern";
/// Output: the number of spans in the run (`Int64`).
pub const RUN_COUNT: &str = "__run_count";
/// Output: the run's spans' durations added up, nanoseconds (`UInt64`).
pub const RUN_NANOS: &str = "__run_nanos";
/// Output: the name of the run's (or slow query's) parent span (`Utf8`).
pub const PARENT_NAME: &str = "__parent_name";
/// Output: the normalised statement of a slow database query, null elsewhere.
pub const SLOW_PATTERN: &str = "__slow_pattern";
/// Output: the own time on the critical path of the spans of this span's service in
/// its trace, nanoseconds (`UInt64`), written on the first such span on the path; null
/// on the others.
pub const CRITICAL_NANOS: &str = "__critical_nanos";

/// The kind of a run of repeated database queries.
pub const N_PLUS_ONE_DATABASE: &str = "n_plus_one_db";
/// The kind of a run of repeated calls.
pub const N_PLUS_ONE_CALLS: &str = "n_plus_one_calls";
/// The kind of a slow database query.
pub const SLOW_DATABASE: &str = "slow_db";

/// When a pattern is a finding.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize,
)]
pub struct Thresholds {
    /// The fewest sequential repeats that make an N+1 run (5).
    pub min_repeats: u64,
    /// The least time an N+1 database run takes, nanoseconds (50 ms).
    pub database_run: u64,
    /// The least time an N+1 run of calls takes, nanoseconds (300 ms).
    pub call_run: u64,
    /// The least time of a slow database query, nanoseconds (500 ms).
    pub slow_database: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_repeats: 5,
            database_run: 50_000_000,
            call_run: 300_000_000,
            slow_database: 500_000_000,
        }
    }
}

/// A database statement with its literals replaced by `?`: quoted strings, numbers
/// (not digits inside names), `true`/`false`/`null`, and `IN (…)` lists of them as one
/// `IN (?)`; runs of white space become one space.
pub fn normalise_statement(statement: &str) -> String {
    let chars: Vec<char> = statement.chars().collect();
    let mut out = String::with_capacity(statement.len());
    let mut i = 0;
    let word_char = |c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == '.';
    while i < chars.len() {
        let ch = chars[i];
        if ch == '\'' {
            // A quoted string, with '' as an escaped quote.
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push('?');
        } else if ch.is_ascii_digit()
            || (ch == '-'
                && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
                && !out.trim_end().ends_with(|c: char| word_char(c) || c == ')'))
        {
            let previous = out.chars().last();
            if previous.is_some_and(word_char) {
                // A digit inside a name (`table1`, `$1`).
                out.push(ch);
                i += 1;
                continue;
            }
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push('?');
        } else if ch.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            out.push(' ');
        } else if word_char(ch) {
            let begin = i;
            while i < chars.len() && word_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[begin..i].iter().collect();
            let previous = out.chars().last();
            let lower = word.to_ascii_lowercase();
            if matches!(lower.as_str(), "true" | "false" | "null")
                && !previous.is_some_and(word_char)
            {
                out.push('?');
            } else {
                out.push_str(&word);
            }
        } else {
            out.push(ch);
            i += 1;
        }
    }
    collapse_in_lists(out.trim())
}

/// `IN (?, ?, ?)` as `IN (?)`.
fn collapse_in_lists(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_in_list(rest) {
        let (before, list) = rest.split_at(at);
        out.push_str(before);
        let close = list.find(')').unwrap_or(list.len() - 1);
        out.push_str("IN (?)");
        rest = &list[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Where an `IN (` list of placeholders begins in `text`.
fn find_in_list(text: &str) -> Option<usize> {
    let upper = text.to_ascii_uppercase();
    let mut from = 0;
    while let Some(found) = upper[from..].find("IN (") {
        let at = from + found;
        let boundary = at == 0 || !upper.as_bytes()[at - 1].is_ascii_alphanumeric();
        let list = &text[at + 4..];
        let inner = list.split(')').next().unwrap_or("");
        if boundary
            && list.contains(')')
            && !inner.is_empty()
            && inner.split(',').all(|item| item.trim() == "?")
        {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// A URL or route with its query values, and path segments that look like ids
/// (numbers, UUIDs, long hex), replaced by `*`; scheme and host are kept.
pub fn normalise_url(url: &str) -> String {
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    };
    let id_like = |segment: &str| {
        !segment.is_empty()
            && (segment.chars().all(|c| c.is_ascii_digit())
                || (segment.len() >= 8
                    && segment.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
                    && segment.chars().any(|c| c.is_ascii_digit())))
    };
    let (prefix, path) = match path.find("://") {
        Some(scheme) => {
            let after = scheme + 3;
            let host_end = path[after..].find('/').map_or(path.len(), |p| after + p);
            path.split_at(host_end)
        }
        None => ("", path),
    };
    let mut out = prefix.to_string();
    let segments: Vec<&str> = path
        .split('/')
        .map(|s| if id_like(s) { "*" } else { s })
        .collect();
    out.push_str(&segments.join("/"));
    if let Some(query) = query {
        out.push('?');
        let keys: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}=*"),
                None => pair.to_string(),
            })
            .collect();
        out.push_str(&keys.join("&"));
    }
    out
}

/// Each span's own time on the critical path of its trace (`None` off the path), for
/// spans given by start, end and the index of their parent (`None` for roots and spans
/// whose parent is missing). The path starts at the root that ends last. A child is
/// taken as lasting no longer than its parent.
pub fn critical_path(starts: &[u64], ends: &[u64], parents: &[Option<usize>]) -> Vec<Option<u64>> {
    let n = starts.len();
    let mut own = vec![None; n];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (i, parent) in parents.iter().enumerate() {
        match parent {
            Some(p) if *p != i && *p < n => children[*p].push(i),
            _ => roots.push(i),
        }
    }
    let end = |i: usize| ends[i].max(starts[i]);
    let Some(root) = roots
        .into_iter()
        .max_by_key(|&r| (end(r), std::cmp::Reverse(r)))
    else {
        return own;
    };
    // (span, the latest its time on the path may end).
    let mut stack = vec![(root, end(root))];
    while let Some((span, limit)) = stack.pop() {
        if own[span].is_some() {
            continue; // a cycle of parent ids
        }
        let start = starts[span];
        let mut cursor = end(span).min(limit).max(start);
        let mut kids: Vec<(u64, u64, usize)> = children[span]
            .iter()
            .map(|&k| (starts[k].max(start), end(k).min(cursor), k))
            .filter(|(s, e, _)| s <= e)
            .collect();
        kids.sort_by_key(|&(s, e, k)| std::cmp::Reverse((e, s, std::cmp::Reverse(k))));
        let mut mine = 0;
        for (kid_start, kid_end, kid) in kids {
            if kid_end > cursor || kid_start >= cursor {
                continue;
            }
            mine += cursor - kid_end;
            stack.push((kid, kid_end));
            cursor = kid_start;
        }
        mine += cursor - start;
        own[span] = Some(mine);
    }
    own
}

/// N+1 runs, slow database queries and the critical path of each trace (see the
/// module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize)]
pub struct Insights {
    /// When a pattern is a finding.
    pub thresholds: Thresholds,
    /// The input columns of each role.
    pub columns: RoleColumns,
}

/// The input columns (`Utf8`) of each attribute the operator reads, in order of
/// preference: a span's statement is in the first of `statement` that has a value.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize,
)]
pub struct RoleColumns {
    /// Database attributes: a span with any is a database call.
    pub database: Vec<String>,
    /// The database statement.
    pub statement: Vec<String>,
    /// The HTTP method of a call.
    pub method: Vec<String>,
    /// Its route, URL template or URL.
    pub url: Vec<String>,
    /// The RPC service of a call.
    pub rpc_service: Vec<String>,
    /// The RPC method of a call.
    pub rpc_method: Vec<String>,
}

/// The key of RPC patterns (service and method) among the worked-out patterns.
const RPC: &str = "rpc";

/// Patterns already worked out in a batch, by kind and the texts they come from.
type Patterns<'a> = HashMap<(&'static str, &'a str, &'a str), Arc<str>>;

/// The pattern of a span of `kind`: its normalised statement (`a`), or its method
/// (`a`) and normalised URL (`b`), or (kind [`RPC`]) its RPC service (`a`) and method
/// (`b`), or its RPC method or name (`a`, `b` empty); each worked out once per batch.
fn memo<'a>(patterns: &mut Patterns<'a>, kind: &'static str, a: &'a str, b: &'a str) -> Arc<str> {
    let pattern = patterns.entry((kind, a, b)).or_insert_with(|| {
        match kind {
            N_PLUS_ONE_DATABASE => normalise_statement(a),
            RPC => format!("{a}/{b}"),
            _ if b.is_empty() => a.to_string(),
            _ => format!("{a} {}", normalise_url(b)),
        }
        .into()
    });
    Arc::clone(pattern)
}

/// The pattern of database span `row`: its normalised statement, else its name.
fn database_pattern<'a>(
    patterns: &mut Patterns<'a>,
    roles: &Roles<'a>,
    names: &'a StringArray,
    row: usize,
) -> Arc<str> {
    match roles.statement.first(row) {
        Some(s) => memo(patterns, N_PLUS_ONE_DATABASE, s, ""),
        None => memo(patterns, N_PLUS_ONE_CALLS, names.value(row), ""),
    }
}

/// The pattern of call `row`: method and normalised URL, else the RPC method.
fn call_pattern<'a>(patterns: &mut Patterns<'a>, roles: &Roles<'a>, row: usize) -> Arc<str> {
    match (roles.method.first(row), roles.url.first(row)) {
        (Some(m), Some(u)) => memo(patterns, N_PLUS_ONE_CALLS, m, u),
        _ => match (roles.rpc_service.first(row), roles.rpc_method.first(row)) {
            (Some(s), Some(m)) => memo(patterns, RPC, s, m),
            (None, Some(m)) => memo(patterns, N_PLUS_ONE_CALLS, m, ""),
            _ => Arc::from(""),
        },
    }
}

/// The roles of a batch's columns.
struct Roles<'a> {
    database: FirstOf<'a>,
    statement: FirstOf<'a>,
    method: FirstOf<'a>,
    url: FirstOf<'a>,
    rpc_service: FirstOf<'a>,
    rpc_method: FirstOf<'a>,
}

impl<'a> Roles<'a> {
    fn new(op: &Insights, batch: &'a RecordBatch) -> Result<Self> {
        let c = &op.columns;
        Ok(Roles {
            database: FirstOf::new(batch, &c.database)?,
            statement: FirstOf::new(batch, &c.statement)?,
            method: FirstOf::new(batch, &c.method)?,
            url: FirstOf::new(batch, &c.url)?,
            rpc_service: FirstOf::new(batch, &c.rpc_service)?,
            rpc_method: FirstOf::new(batch, &c.rpc_method)?,
        })
    }
}

impl TraceOperator for Insights {
    fn name(&self) -> &'static str {
        "Insights"
    }

    fn outputs(&self) -> Vec<Field> {
        vec![
            Field::new(RUN_KIND, DataType::Utf8, true),
            Field::new(RUN_PATTERN, DataType::Utf8, true),
            Field::new(RUN_COUNT, DataType::Int64, true),
            Field::new(RUN_NANOS, DataType::UInt64, true),
            Field::new(PARENT_NAME, DataType::Utf8, true),
            Field::new(SLOW_PATTERN, DataType::Utf8, true),
            Field::new(CRITICAL_NANOS, DataType::UInt64, true),
        ]
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.thresholds;
        write!(
            f,
            "N+1 runs of {}+ (database {}ms, calls {}ms), slow database queries {}ms, critical path",
            t.min_repeats,
            t.database_run / 1_000_000,
            t.call_run / 1_000_000,
            t.slow_database / 1_000_000
        )
    }

    fn evaluate(&self, batch: &RecordBatch, traces: &[Range<usize>]) -> Result<Vec<ArrayRef>> {
        // Parents by nested-set number (see `service_edges`): `left` is unique in a
        // trace, `parent` is the parent's, negative for roots and orphans.
        let left: &Int32Array = column(batch, c::NESTED_SET_LEFT)?;
        let parent: &Int32Array = column(batch, c::NESTED_SET_PARENT)?;
        let kinds: &Int8Array = column(batch, c::KIND)?;
        let names: &StringArray = column(batch, c::NAME)?;
        let starts: &UInt64Array = column(batch, c::START_UNIX_NANO)?;
        let durations: &UInt64Array = column(batch, c::DURATION_NANO)?;
        let services: &StringArray = column(batch, SERVICE)?;
        let roles = Roles::new(self, batch)?;
        let rows = batch.num_rows();
        let t = &self.thresholds;

        let mut run_kind = vec![None; rows];
        let mut run_pattern: Vec<Option<Arc<str>>> = vec![None; rows];
        let mut run_count = vec![None; rows];
        let mut run_nanos = vec![None; rows];
        let mut parent_name: Vec<Option<&str>> = vec![None; rows];
        let mut slow: Vec<Option<Arc<str>>> = vec![None; rows];
        let mut critical: Vec<Option<u64>> = vec![None; rows];
        // Statements and URLs repeat: each is normalised once per batch.
        let mut patterns: HashMap<(&'static str, &str, &str), Arc<str>> = HashMap::new();
        // Scratch space reused across traces.
        let mut ids: Vec<(i32, usize)> = Vec::new();
        let mut kinds_of: Vec<(Option<usize>, &'static str, usize)> = Vec::new();
        let mut candidates: Vec<(Option<usize>, &'static str, Arc<str>, usize)> = Vec::new();
        let mut own_by_service: Vec<(&str, usize, u64)> = Vec::new();

        for trace in traces {
            let begin = trace.start;
            ids.clear();
            ids.extend(trace.clone().map(|row| (left.value(row), row)));
            ids.sort_unstable();
            let parent_of = |row: usize| -> Option<usize> {
                let p = parent.value(row);
                if p < 0 {
                    return None;
                }
                ids.binary_search_by_key(&p, |e| e.0).ok().map(|i| ids[i].1)
            };
            // Candidates of N+1 runs: (parent, kind, row); their patterns are worked out
            // only where a parent has enough children of the kind to make a run.
            kinds_of.clear();
            for row in trace.clone() {
                let database_span =
                    roles.database.first(row).is_some() || roles.statement.first(row).is_some();
                if database_span && durations.value(row) >= t.slow_database {
                    let pattern = database_pattern(&mut patterns, &roles, names, row);
                    slow[row] = Some(pattern);
                    parent_name[row] = parent_of(row).map(|p| names.value(p));
                }
                let kind = if database_span {
                    N_PLUS_ONE_DATABASE
                } else if kinds.value(row) == kind::CLIENT
                    && (roles.rpc_method.first(row).is_some()
                        || (roles.method.first(row).is_some() && roles.url.first(row).is_some()))
                {
                    N_PLUS_ONE_CALLS
                } else {
                    continue;
                };
                kinds_of.push((parent_of(row), kind, row));
            }
            kinds_of.sort_unstable();
            candidates.clear();
            for siblings in kinds_of.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
                if (siblings.len() as u64) < t.min_repeats {
                    continue;
                }
                for &(parent_row, kind, row) in siblings {
                    let pattern = if kind == N_PLUS_ONE_DATABASE {
                        database_pattern(&mut patterns, &roles, names, row)
                    } else {
                        call_pattern(&mut patterns, &roles, row)
                    };
                    candidates.push((parent_row, kind, pattern, row));
                }
            }
            // Siblings of one pattern together, in start order.
            candidates.sort_unstable_by(|a, b| {
                (a.0, a.1, &a.2, starts.value(a.3), left.value(a.3)).cmp(&(
                    b.0,
                    b.1,
                    &b.2,
                    starts.value(b.3),
                    left.value(b.3),
                ))
            });
            for group in candidates.chunk_by(|a, b| (a.0, a.1, &a.2) == (b.0, b.1, &b.2)) {
                let (parent_row, kind, pattern) = (group[0].0, group[0].1, &group[0].2);
                let threshold = if kind == N_PLUS_ONE_DATABASE {
                    t.database_run
                } else {
                    t.call_run
                };
                let mut close = |run: &[usize]| {
                    let total: u64 = run.iter().map(|&r| durations.value(r)).sum();
                    if run.len() as u64 >= t.min_repeats && total >= threshold {
                        let first = run[0];
                        run_kind[first] = Some(kind);
                        run_pattern[first] = Some(Arc::clone(pattern));
                        run_count[first] = Some(run.len() as i64);
                        run_nanos[first] = Some(total);
                        parent_name[first] = parent_row.map(|p| names.value(p));
                    }
                };
                // Runs break where a span starts before its predecessor ended.
                let rows: Vec<usize> = group.iter().map(|c| c.3).collect();
                let mut from = 0;
                for i in 1..rows.len() {
                    let last = rows[i - 1];
                    if starts.value(rows[i]) < starts.value(last) + durations.value(last) {
                        close(&rows[from..i]);
                        from = i;
                    }
                }
                close(&rows[from..]);
            }
            // The critical path's time per service, on the first row of each service.
            let span_starts: Vec<u64> = trace.clone().map(|r| starts.value(r)).collect();
            let span_ends: Vec<u64> = trace
                .clone()
                .map(|r| starts.value(r) + durations.value(r))
                .collect();
            let parents: Vec<Option<usize>> = trace
                .clone()
                .map(|r| parent_of(r).map(|p| p - begin))
                .collect();
            own_by_service.clear();
            for (i, own) in critical_path(&span_starts, &span_ends, &parents)
                .into_iter()
                .enumerate()
            {
                let Some(own) = own else { continue };
                let row = begin + i;
                let service = text_at(services, row).unwrap_or_default();
                match own_by_service.iter_mut().find(|(s, _, _)| *s == service) {
                    Some(entry) => entry.2 += own,
                    None => own_by_service.push((service, row, own)),
                }
            }
            for &(_, row, own) in &own_by_service {
                critical[row] = Some(own);
            }
        }

        let mut kind_out = StringBuilder::new();
        let mut pattern_out = StringBuilder::new();
        let mut parent_out = StringBuilder::new();
        let mut slow_out = StringBuilder::new();
        for row in 0..rows {
            kind_out.append_option(run_kind[row]);
            pattern_out.append_option(run_pattern[row].as_deref());
            parent_out.append_option(parent_name[row]);
            slow_out.append_option(slow[row].as_deref());
        }
        Ok(vec![
            Arc::new(kind_out.finish()),
            Arc::new(pattern_out.finish()),
            Arc::new(Int64Array::from(run_count)),
            Arc::new(UInt64Array::from(run_nanos)),
            Arc::new(parent_out.finish()),
            Arc::new(slow_out.finish()),
            Arc::new(UInt64Array::from(critical)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_lose_their_literals() {
        let cases = [
            (
                "SELECT * FROM users WHERE id = 42",
                "SELECT * FROM users WHERE id = ?",
            ),
            (
                "SELECT price FROM items WHERE sku = 'A-1''s' AND active = TRUE",
                "SELECT price FROM items WHERE sku = ? AND active = ?",
            ),
            (
                "select * from t1 where id in (1, 2,3) and x = -4.5",
                "select * from t1 where id IN (?) and x = ?",
            ),
            (
                "SELECT a FROM b WHERE c IN ('x','y')\n  LIMIT 10",
                "SELECT a FROM b WHERE c IN (?) LIMIT ?",
            ),
            (
                "SELECT * FROM users WHERE id = $1",
                "SELECT * FROM users WHERE id = $1",
            ),
            ("UPDATE t SET a = a - 1", "UPDATE t SET a = a - ?"),
        ];
        for (statement, want) in cases {
            assert_eq!(normalise_statement(statement), want, "{statement}");
        }
    }

    #[test]
    fn urls_lose_their_ids_and_query_values() {
        assert_eq!(
            normalise_url("https://api.shop/v1/items/1234?expand=price&x"),
            "https://api.shop/v1/items/*?expand=*&x"
        );
        assert_eq!(
            normalise_url("/orders/3f2a9c1e-7b4d-4e1f-9a2b-0c1d2e3f4a5b/lines"),
            "/orders/*/lines"
        );
        assert_eq!(normalise_url("/api/cart/{id}"), "/api/cart/{id}");
        assert_eq!(normalise_url("/v2/health"), "/v2/health");
    }

    #[test]
    fn the_critical_path_gives_each_span_its_own_time() {
        // root 0..100: a 10..40, b 30..90 (overlaps a), c 92..95; b has d 40..60.
        let starts = [0, 10, 30, 92, 40];
        let ends = [100, 40, 90, 95, 60];
        let parents = [None, Some(0), Some(0), Some(0), Some(2)];
        let own = critical_path(&starts, &ends, &parents);
        // From the end: c (95..92), b (90..30, under it d 60..40), then a ends after b
        // started: skipped; the root's own time is 100-95, 92-90 and 30-0.
        assert_eq!(own, vec![Some(37), None, Some(40), Some(3), Some(20)]);
        assert_eq!(own.iter().flatten().sum::<u64>(), 100);
        // A child outlasting its parent counts up to the parent's end.
        let own = critical_path(&[0, 50], &[100, 150], &[None, Some(0)]);
        assert_eq!(own, vec![Some(50), Some(50)]);
        assert_eq!(critical_path(&[], &[], &[]), Vec::<Option<u64>>::new());
    }
}
