//! What is wrong with the requests of a window, or of one trace: N+1 database queries,
//! N+1 calls, slow database queries (see `traceql_planner::ops::insights` for the
//! rules), and where the time went — each service's own time on the critical paths.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use datafusion::arrow::array::{Array, FixedSizeBinaryArray, Int32Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use serde::Serialize;
use traceql_format::ids::{hex, parse_trace_id};
use traceql_format::schema::columns as c;
use traceql_planner::insights::{BY_FINDING, CRITICAL_NANOS, plan_findings, plan_summary};
use traceql_planner::ops::insights as op;
pub use traceql_planner::ops::insights::{Thresholds, critical_path};

use crate::engine::{
    Answer, Engine, EngineError, ParsedQuery, QueryStats, TimeRange, Window, search_of,
};

/// What insights cover.
#[derive(Clone, Debug, Default)]
pub struct InsightsOptions {
    /// Traces that end at or after this time, unix nanoseconds.
    pub start_unix_nano: Option<u64>,
    /// Traces that start at or before this time, unix nanoseconds.
    pub end_unix_nano: Option<u64>,
    /// Only the traces this search matches (at least one span).
    pub query: Option<ParsedQuery>,
    /// When a pattern is a finding.
    pub thresholds: Thresholds,
}

/// A finding in one trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// `n_plus_one_db`, `n_plus_one_calls` or `slow_db`.
    pub kind: &'static str,
    /// The trace, hex.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// The first span of the run (or the slow query), hex.
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// The service of its spans.
    pub service: String,
    /// The name of their parent span (empty if it is not in the trace).
    pub parent: String,
    /// The normalised statement, or the method and route.
    pub pattern: String,
    /// Spans in the run (1 for a slow query).
    pub count: u64,
    /// Their durations added up, milliseconds.
    pub total_ms: f64,
}

/// The findings of one kind, service, parent operation and pattern across traces.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingGroup {
    /// The kind of finding.
    pub kind: &'static str,
    /// The service.
    pub service: String,
    /// The parent operation.
    pub parent: String,
    /// The pattern.
    pub pattern: String,
    /// Traces with the finding.
    pub traces: u64,
    /// Findings (a trace may have several).
    pub occurrences: u64,
    /// Spans in them.
    pub spans: u64,
    /// Time spent in them, milliseconds.
    pub total_ms: f64,
    /// Up to three traces where it cost most, costliest first.
    #[serde(rename = "exampleTraceIDs")]
    pub examples: Vec<String>,
}

/// A service's own time on the critical paths.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTime {
    /// The service.
    pub service: String,
    /// Its own time on the critical paths, milliseconds.
    pub total_ms: f64,
    /// Its share of all critical-path time.
    pub share: f64,
}

/// The insights of a window (or of one trace).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Insights {
    /// Every finding, costliest first.
    pub findings: Vec<Finding>,
    /// The findings grouped, costliest group first.
    pub groups: Vec<FindingGroup>,
    /// Where the time went: services by their own time on the critical paths, most
    /// first.
    pub critical_path: Vec<ServiceTime>,
}

impl Engine {
    /// The insights of the traces in the window of `options` that its query matches.
    pub async fn insights(
        &self,
        options: &InsightsOptions,
    ) -> Result<(Insights, QueryStats), EngineError> {
        let started = Instant::now();
        let io = self.store.io();
        let range = TimeRange {
            start_unix_nano: options.start_unix_nano,
            end_unix_nano: options.end_unix_nano,
        };
        let pipeline = search_of(options.query.as_ref(), "insights")?;
        let blocks = self.select(&range, None);
        let mut stats = QueryStats {
            blocks: blocks.len() as u64,
            ..QueryStats::default()
        };
        let (scan, facts) = self.scan(&range, &blocks, Window::ALL).await?;
        let mut findings = plan_findings(scan, &facts, options.thresholds)?;
        if let Some(pipeline) = pipeline {
            findings = self.in_matching_traces(findings, &range, pipeline).await?;
        }
        let summary = plan_summary(findings)?;
        stats.planning = started.elapsed();
        let batches = self.execute(&summary, &blocks, &mut stats).await?;
        let insights = assemble(&batches)?;
        stats.io = self.store.io().since(io);
        Ok((insights, stats))
    }

    /// The insights of the trace with id `trace_id` (hex); `None` if no block holds
    /// it.
    pub async fn trace_insights(
        &self,
        trace_id: &str,
        thresholds: Thresholds,
    ) -> Result<Option<Insights>, EngineError> {
        let id = parse_trace_id(trace_id).map_err(EngineError::InvalidInput)?;
        let mut selected = Vec::new();
        for block in self.select(&TimeRange::ALL, None) {
            if block.0.may_hold_trace(&self.store, &id).await {
                selected.push(block);
            }
        }
        if selected.is_empty() {
            return Ok(None);
        }
        let window = Window {
            trace: Some(id),
            ..Window::ALL
        };
        let (scan, facts) = self.scan(&TimeRange::ALL, &selected, window).await?;
        let summary = plan_summary(plan_findings(scan, &facts, thresholds)?)?;
        let batches = self
            .execute(&summary, &selected, &mut QueryStats::default())
            .await?;
        let insights = assemble(&batches)?;
        Ok((!insights.critical_path.is_empty()).then_some(insights))
    }
}

/// Column `name` of `answer` as unsigned integers (nulls read as 0).
fn integers(answer: &Answer<'_>, name: &str) -> Result<Vec<u64>, EngineError> {
    let array = answer.cast::<Int64Array>(name, DataType::Int64)?;
    Ok(array
        .iter()
        .map(|v| v.map_or(0, |v| v.max(0) as u64))
        .collect())
}

/// The insights from the summary's rows: the findings, grouped, and the critical-path
/// time per service.
fn assemble(batches: &[RecordBatch]) -> Result<Insights, EngineError> {
    let mut findings = Vec::new();
    let mut critical: BTreeMap<String, u64> = BTreeMap::new();
    for batch in batches {
        let answer = Answer::new(batch, "the insights");
        let by_finding = answer.cast::<Int32Array>(BY_FINDING, DataType::Int32)?;
        let trace_ids = answer.column::<FixedSizeBinaryArray>(c::TRACE_ID)?;
        let span_ids = answer.column::<FixedSizeBinaryArray>(c::SPAN_ID)?;
        let service = answer.text(op::SERVICE)?;
        let run_kind = answer.text(op::RUN_KIND)?;
        let run_pattern = answer.text(op::RUN_PATTERN)?;
        let parent = answer.text(op::PARENT_NAME)?;
        let slow_pattern = answer.text(op::SLOW_PATTERN)?;
        let run_count = integers(&answer, op::RUN_COUNT)?;
        let run_nanos = integers(&answer, op::RUN_NANOS)?;
        let duration = integers(&answer, c::DURATION_NANO)?;
        let critical_nanos = integers(&answer, CRITICAL_NANOS)?;
        for row in 0..batch.num_rows() {
            let service_name = service.get(row).unwrap_or_default().to_string();
            if by_finding.value(row) != 0 {
                if critical_nanos[row] > 0 {
                    *critical.entry(service_name).or_default() += critical_nanos[row];
                }
                continue;
            }
            if trace_ids.is_null(row) {
                continue; // the rows only on critical paths
            }
            let finding = |kind, pattern: &str, count, nanos: u64| Finding {
                kind,
                trace_id: hex(trace_ids.value(row)),
                span_id: hex(span_ids.value(row)),
                service: service_name.clone(),
                parent: parent.get(row).unwrap_or_default().to_string(),
                pattern: pattern.to_string(),
                count,
                total_ms: nanos as f64 / 1e6,
            };
            if let Some(kind) = run_kind.get(row) {
                let kind = if kind == op::N_PLUS_ONE_DATABASE {
                    op::N_PLUS_ONE_DATABASE
                } else {
                    op::N_PLUS_ONE_CALLS
                };
                findings.push(finding(
                    kind,
                    run_pattern.get(row).unwrap_or_default(),
                    run_count[row],
                    run_nanos[row],
                ));
            }
            if let Some(pattern) = slow_pattern.get(row) {
                findings.push(finding(op::SLOW_DATABASE, pattern, 1, duration[row]));
            }
        }
    }
    findings.sort_by(|a, b| {
        b.total_ms
            .total_cmp(&a.total_ms)
            .then_with(|| a.trace_id.cmp(&b.trace_id))
            .then_with(|| a.span_id.cmp(&b.span_id))
            .then_with(|| a.kind.cmp(b.kind))
    });
    // Each group, by kind, service, parent and pattern, with the traces it was found in.
    type Key<'a> = (&'a str, &'a str, &'a str, &'a str);
    let mut groups: BTreeMap<Key<'_>, (FindingGroup, BTreeSet<&str>)> = BTreeMap::new();
    for f in &findings {
        let key = (
            f.kind,
            f.service.as_str(),
            f.parent.as_str(),
            f.pattern.as_str(),
        );
        let (group, traces) = groups.entry(key).or_insert_with(|| {
            let group = FindingGroup {
                kind: f.kind,
                service: f.service.clone(),
                parent: f.parent.clone(),
                pattern: f.pattern.clone(),
                traces: 0,
                occurrences: 0,
                spans: 0,
                total_ms: 0.0,
                examples: Vec::new(),
            };
            (group, BTreeSet::new())
        });
        group.occurrences += 1;
        group.spans += f.count;
        group.total_ms += f.total_ms;
        // Findings come costliest first: the first three traces are the examples.
        if traces.insert(&f.trace_id) && group.examples.len() < 3 {
            group.examples.push(f.trace_id.clone());
        }
    }
    let mut groups: Vec<FindingGroup> = groups
        .into_values()
        .map(|(group, traces)| FindingGroup {
            traces: traces.len() as u64,
            ..group
        })
        .collect();
    groups.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
    let total: u64 = critical.values().sum();
    let mut critical_path: Vec<ServiceTime> = critical
        .into_iter()
        .map(|(service, nanos)| ServiceTime {
            service,
            total_ms: nanos as f64 / 1e6,
            share: nanos as f64 / total.max(1) as f64,
        })
        .collect();
    critical_path.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
    Ok(Insights {
        findings,
        groups,
        critical_path,
    })
}
