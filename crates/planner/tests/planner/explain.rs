//! EXPLAIN snapshots: the optimised logical plan of a representative query of each
//! span-set operator and each metrics function, over an empty span table with two
//! typed columns. A change to how TraceQL is lowered shows up here as a diff to review.

use std::sync::Arc;

use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use traceql_format::block::TypedColumn;
use traceql_format::block::schema::block_schema;
use traceql_format::facts::Facts;
use traceql_format::value::ValueType;
use traceql_parser::ast::{MetricsExprKind, QueryBody};
use traceql_planner::lower::plan_search;
use traceql_planner::metrics::{Buckets, plan_compare, plan_metrics};
use traceql_planner::ops::planner::install;

const SECOND: u64 = 1_000_000_000;

fn typed() -> Vec<TypedColumn> {
    let column = |name: &str, scope: &str, key: &str, value_type| TypedColumn {
        name: name.into(),
        scope: scope.into(),
        key: key.into(),
        value_type,
    };
    vec![
        column(
            "resource.service.name",
            "resource",
            "service.name",
            ValueType::Str,
        ),
        column(
            "span.http.status_code:int",
            "span",
            "http.status_code",
            ValueType::Int,
        ),
    ]
}

/// A scan of an empty span table with the typed columns above, and its facts.
fn scan() -> (LogicalPlan, Facts) {
    let typed = typed();
    let table = Arc::new(EmptyTable::new(block_schema(&typed)));
    let plan = LogicalPlanBuilder::scan("spans", provider_as_source(table), None)
        .unwrap()
        .build()
        .unwrap();
    let facts = Facts::with_typed(typed.iter().filter_map(TypedColumn::attribute).collect());
    (plan, facts)
}

/// The optimised logical plan of a search or metrics query, as `traceql explain`
/// prints it.
fn explain(query: &str) -> String {
    let parsed = traceql_parser::parse_and_validate(query).expect("valid query");
    traceql_parser::check_supported(&parsed).expect("supported");
    let (input, facts) = scan();
    let plan = match &parsed.body {
        QueryBody::Search(_) => plan_search(&parsed, input, &facts).unwrap().plan,
        QueryBody::Metrics(m) => {
            let MetricsExprKind::Query(metrics) = &m.kind else {
                panic!("one metrics function per snapshot");
            };
            let buckets = Buckets::for_range(100 * SECOND, 400 * SECOND, Some(60 * SECOND));
            if metrics.function.name() == "compare" {
                plan_compare(metrics, input, &facts, &buckets).unwrap()
            } else {
                plan_metrics(metrics, input, &facts, &buckets).unwrap().plan
            }
        }
    };
    let ctx = install(&SessionContext::new());
    ctx.state()
        .optimize(&plan)
        .unwrap()
        .display_indent()
        .to_string()
}

const QUERIES: &[(&str, &str)] = &[
    (
        "filter",
        "{ resource.service.name = \"checkout\" && status = error }",
    ),
    ("spanset_and", "{ kind = server } && { status = error }"),
    (
        "spanset_or",
        "{ span.http.status_code >= 500 } || { status = error }",
    ),
    (
        "structural_descendant",
        "{ kind = server } >> { name = \"db.query\" }",
    ),
    (
        "structural_not_child",
        "{ kind = server } !> { .retry = true }",
    ),
    (
        "structural_union_sibling",
        "{ name = \"a\" } &~ { name = \"b\" }",
    ),
    ("aggregate", "{ kind = server } | avg(duration) > 20ms"),
    ("count", "{ } | count() > 3"),
    (
        "by",
        "{ status = error } | by(resource.service.name) | count() > 1",
    ),
    ("select", "{ status = error } | select(span.http.route)"),
    ("coalesce", "{ } | by(name) | coalesce()"),
    (
        "rate",
        "{ status = error } | rate() by (resource.service.name)",
    ),
    ("count_over_time", "{ } | count_over_time() by (status)"),
    ("min_over_time", "{ } | min_over_time(duration)"),
    (
        "max_over_time",
        "{ } | max_over_time(span.http.status_code)",
    ),
    ("avg_over_time", "{ } | avg_over_time(duration) by (kind)"),
    (
        "sum_over_time",
        "{ } | sum_over_time(span.http.status_code)",
    ),
    (
        "quantile_over_time",
        "{ kind = server } | quantile_over_time(duration, .5, .99)",
    ),
    ("histogram_over_time", "{ } | histogram_over_time(duration)"),
    ("compare", "{ } | compare({ status = error })"),
];

#[test]
fn explain_plans_of_each_operator_and_metrics_function() {
    for (name, query) in QUERIES {
        let text = explain(query);
        insta::with_settings!({ description => *query, omit_expression => true }, {
            insta::assert_snapshot!(*name, text);
        });
    }
}
