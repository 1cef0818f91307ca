//! Trace insights as DataFusion plans: per span, what the [`Insights`] operator finds
//! ([`plan_findings`]), and those findings with the critical-path time of each service
//! ([`plan_summary`]).

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{grouping, sum};
use datafusion::logical_expr::{Expr, GroupingSet, LogicalPlan, LogicalPlanBuilder, when};
use datafusion::prelude::{ident as col, lit};
use traceql_format::facts::Facts;
use traceql_format::schema::columns as c;
use traceql_parser::ast::AttributeScope;

use crate::ops::insights::{self as op, Insights, RoleColumns, Thresholds};
use crate::ops::node::TraceNode;
use crate::services::{DATABASE_ATTRIBUTES, first_of_columns, text};

/// Column of the summary: `grouping(trace_id)`, 0 on the rows of findings, 1 on the
/// rows of critical-path time per service.
pub const BY_FINDING: &str = "__by_finding";
/// Column of the summary: the service's own time on critical paths, nanoseconds.
pub const CRITICAL_NANOS: &str = "critical_nanos";

/// Per span of the traces of `scan` (a scan of the span table that `facts`
/// describe) that holds a finding or lies on its trace's critical path: `trace_id`,
/// `span_id`, `duration_nano`, the service ([`op::SERVICE`]) and the [`Insights`]
/// operator's outputs.
pub fn plan_findings(
    scan: LogicalPlan,
    facts: &Facts,
    thresholds: Thresholds,
) -> Result<LogicalPlan> {
    let schema: Arc<Schema> = Arc::clone(scan.schema().inner());
    let mut projection = vec![
        col(c::TRACE_ID),
        col(c::TRACE_START_UNIX_NANO),
        col(c::SPAN_ID),
        col(c::NESTED_SET_LEFT),
        col(c::NESTED_SET_PARENT),
        col(c::KIND),
        col(c::NAME),
        col(c::START_UNIX_NANO),
        col(c::DURATION_NANO),
        text(AttributeScope::Resource, "service.name", &schema, facts)?.alias(op::SERVICE),
    ];
    // Each attribute a column of its own, which the operator reads in order: no
    // `coalesce` copying text it will not look at.
    let mut role = |keys: &[&str]| -> Result<Vec<String>> {
        let values = keys
            .iter()
            .map(|key| text(AttributeScope::Span, key, &schema, facts))
            .collect::<Result<Vec<_>>>()?;
        Ok(first_of_columns(&mut projection, values))
    };
    let columns = RoleColumns {
        database: role(&DATABASE_ATTRIBUTES)?,
        statement: role(&["db.query.text", "db.statement"])?,
        method: role(&["http.request.method", "http.method"])?,
        url: role(&[
            "url.template",
            "http.route",
            "url.full",
            "http.url",
            "http.target",
            "url.path",
        ])?,
        rpc_service: role(&["rpc.service"])?,
        rpc_method: role(&["rpc.method"])?,
    };
    let spans = LogicalPlanBuilder::from(scan)
        .project(projection)?
        .build()?;
    let found = TraceNode::try_new(
        spans,
        Insights {
            thresholds,
            columns,
        }
        .into(),
    )?
    .into_plan();
    LogicalPlanBuilder::from(found)
        .filter(
            col(op::RUN_KIND)
                .is_not_null()
                .or(col(op::SLOW_PATTERN).is_not_null())
                .or(col(op::CRITICAL_NANOS).gt(lit(0u64))),
        )?
        .project(vec![
            col(c::TRACE_ID),
            col(c::SPAN_ID),
            col(c::DURATION_NANO),
            col(op::SERVICE),
            col(op::RUN_KIND),
            col(op::RUN_PATTERN),
            col(op::RUN_COUNT),
            col(op::RUN_NANOS),
            col(op::PARENT_NAME),
            col(op::SLOW_PATTERN),
            col(op::CRITICAL_NANOS),
        ])?
        .build()
}

/// The summary of `findings` (a plan of [`plan_findings`]): a row per finding — the
/// columns of [`plan_findings`] but the critical-path time, [`BY_FINDING`] 0 — and a row
/// per service with its own time on the critical paths, [`CRITICAL_NANOS`]
/// ([`BY_FINDING`] 1). One aggregate, so that the traces are read once, while the rows
/// only on a critical path are added up instead of kept.
pub fn plan_summary(findings: LogicalPlan) -> Result<LogicalPlan> {
    let finding = col(op::RUN_KIND)
        .is_not_null()
        .or(col(op::SLOW_PATTERN).is_not_null());
    let only_findings = |column: &str| {
        when(finding.clone(), col(column))
            .otherwise(Expr::Literal(datafusion::common::ScalarValue::Null, None))
    };
    // The finding's own columns, null on the rows only on a critical path: those rows
    // make one group per service in the findings' grouping set, not one each.
    let mut projection = vec![
        only_findings(c::TRACE_ID)?.alias(c::TRACE_ID),
        only_findings(c::SPAN_ID)?.alias(c::SPAN_ID),
        only_findings(c::DURATION_NANO)?.alias(c::DURATION_NANO),
    ];
    let keys = [
        op::RUN_KIND,
        op::RUN_PATTERN,
        op::RUN_COUNT,
        op::RUN_NANOS,
        op::PARENT_NAME,
        op::SLOW_PATTERN,
    ];
    projection.extend(keys.iter().map(|k| col(*k)));
    projection.push(col(op::SERVICE));
    projection.push(col(op::CRITICAL_NANOS));
    let mut per_finding: Vec<Expr> = vec![
        col(c::TRACE_ID),
        col(c::SPAN_ID),
        col(c::DURATION_NANO),
        col(op::SERVICE),
    ];
    per_finding.extend(keys.iter().map(|k| col(*k)));
    let group = Expr::GroupingSet(GroupingSet::GroupingSets(vec![
        per_finding,
        vec![col(op::SERVICE)],
    ]));
    LogicalPlanBuilder::from(findings)
        .project(projection)?
        .aggregate(
            vec![group],
            vec![
                grouping(col(c::TRACE_ID)).alias(BY_FINDING),
                sum(col(op::CRITICAL_NANOS)).alias(CRITICAL_NANOS),
            ],
        )?
        .build()
}
