//! The service graph as DataFusion plans: the requests between services in each trace
//! ([`plan_requests`], by the span-set operator [`ServiceEdges`]) and their statistics
//! per edge and per called service ([`plan_graph`]), with exact latency percentiles
//! ([`crate::quantiles`]).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::error::Result;
use datafusion::functions::core::expr_fn::get_field;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, when};
use datafusion::prelude::{coalesce, concat, ident as col, lit};
use traceql_format::codes::kind;
use traceql_format::facts::Facts;
use traceql_format::schema::columns as c;
use traceql_parser::Span;
use traceql_parser::ast::{Attribute, AttributeScope, Field, FieldExpr, FieldExprKind};

use crate::eval::udf::{Output, field_expr_call};
use crate::native::{Holds, native_column};
use crate::ops::node::TraceNode;
use crate::ops::service_edges::{self as edges, EdgeColumns, ServiceEdges};
use crate::quantiles::latency_quantiles;

/// Column of the request plan and the graph: the calling service (or virtual node).
pub const CLIENT: &str = "client";
/// Column: the called service (or database, or virtual node).
pub const SERVER: &str = "server";
/// Column: the connection type (`""` for unset, `messaging_system`, `database`,
/// `virtual_node`).
pub const CONNECTION_TYPE: &str = "connection_type";
/// Column of the request plan: whether the request failed.
pub const FAILED: &str = "failed";
/// Column of the request plan: the server side's latency in nanoseconds (0 when
/// missing).
pub const SERVER_NANOS: &str = "server_nanos";
/// Column of the request plan: the client side's latency in nanoseconds (0 when
/// missing).
pub const CLIENT_NANOS: &str = "client_nanos";

/// Column of the graph: the number of requests.
pub const REQUESTS: &str = "requests";
/// Column of the graph: the number of failed requests.
pub const FAILED_REQUESTS: &str = "failed_requests";
/// Column of the graph: the sum of the server latencies, nanoseconds.
pub const SERVER_NANOS_SUM: &str = "server_nanos_sum";
/// Column of the graph: the sum of the client latencies, nanoseconds.
pub const CLIENT_NANOS_SUM: &str = "client_nanos_sum";
/// Column of the graph: the server latency's exact percentiles in seconds, a list of
/// [`crate::quantiles::QUANTILES`].
pub const SERVER_QUANTILES: &str = "server_quantiles";
/// Column of the graph: the client latency's exact percentiles, as
/// [`SERVER_QUANTILES`].
pub const CLIENT_QUANTILES: &str = "client_quantiles";

/// The upper bounds, in seconds, of the histogram of server latencies the graph counts
/// (Grafana Tempo's defaults: 0.1 s doubling to 12.8 s); the column of bound `b` counts
/// the requests with a server latency of at most `b`, `server_le_<b>`.
pub const SERVER_BUCKETS: [f64; 8] = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8];

/// The column counting the requests with a server latency of at most `bound` seconds.
pub fn bucket_column(bound: f64) -> String {
    format!("server_le_{bound}")
}

/// The database attributes, in the order they are looked for.
pub(crate) const DATABASE_ATTRIBUTES: [&str; 4] =
    ["db.namespace", "db.name", "db.system", "db.system.name"];

/// The span attributes that name the other side of a virtual node, in order.
const PEER_ATTRIBUTES: [&str; 4] = ["peer.service", "db.name", "db.system", "db.system.name"];

/// The text of attribute `key` of `scope` for each span (strings as they are, integers
/// printed), null where it has none.
pub(crate) fn text(
    scope: AttributeScope,
    key: &str,
    schema: &Schema,
    facts: &Facts,
) -> Result<Expr> {
    let field = Field::Attribute(Attribute {
        scope,
        parent: false,
        name: key.to_string(),
    });
    Ok(match native_column(&field, schema, facts) {
        Some((column, Holds::Str)) => column,
        Some((column, _)) => cast(column, DataType::Utf8),
        None => {
            let expr = FieldExpr {
                kind: FieldExprKind::Field(field),
                span: Span::default(),
            };
            let value = field_expr_call(Some(&expr), Output::Value, schema, facts)?;
            coalesce(vec![
                get_field(value.clone(), "str"),
                cast(get_field(value, "int"), DataType::Utf8),
            ])
        }
    })
}

/// Adds `values` to `projection`, each a column of its own named after its place there,
/// and returns their names in order: the input of a span-set operator's
/// [`crate::ops::FirstOf`].
pub(crate) fn first_of_columns(projection: &mut Vec<Expr>, values: Vec<Expr>) -> Vec<String> {
    values
        .into_iter()
        .map(|value| {
            let name = format!("__{}", projection.len());
            projection.push(value.alias(&name));
            name
        })
        .collect()
}

/// One row per request between services in the traces of `scan` (a scan of the span
/// table that `facts` describe) whose row's span starts in `[from, to)`: `trace_id`,
/// `start_unix_nano`, then [`CLIENT`], [`SERVER`], [`CONNECTION_TYPE`], [`FAILED`],
/// [`SERVER_NANOS`] and [`CLIENT_NANOS`].
pub fn plan_requests(
    scan: LogicalPlan,
    facts: &Facts,
    from: Option<u64>,
    to: Option<u64>,
) -> Result<LogicalPlan> {
    let schema = Arc::clone(scan.schema().inner());
    let span = |key| text(AttributeScope::Span, key, &schema, facts);
    let resource = |key| text(AttributeScope::Resource, key, &schema, facts);
    let kinds = [kind::SERVER, kind::CLIENT, kind::PRODUCER, kind::CONSUMER];
    let mut projection = vec![
        col(c::TRACE_ID),
        col(c::TRACE_START_UNIX_NANO),
        col(c::NESTED_SET_LEFT),
        col(c::NESTED_SET_PARENT),
        col(c::KIND),
        col(c::STATUS_CODE),
        col(c::START_UNIX_NANO),
        col(c::DURATION_NANO),
        resource("service.name")?.alias(edges::SERVICE),
    ];
    let mut database = Vec::new();
    for key in DATABASE_ATTRIBUTES {
        database.push(span(key)?);
        database.push(resource(key)?);
    }
    let address = span("network.peer.address")?;
    let port = span("network.peer.port")?;
    let address = when(port.clone().is_null(), address.clone()).otherwise(concat(vec![
        address,
        lit(":"),
        port,
    ]))?;
    let peer = PEER_ATTRIBUTES
        .iter()
        .map(|key| span(key))
        .collect::<Result<Vec<_>>>()?;
    let columns = EdgeColumns {
        database: first_of_columns(&mut projection, database),
        database_server: first_of_columns(
            &mut projection,
            vec![span("peer.service")?, span("server.address")?, address],
        ),
        peer: first_of_columns(&mut projection, peer),
    };
    let spans = LogicalPlanBuilder::from(scan)
        .filter(col(c::KIND).in_list(kinds.iter().map(|k| lit(*k)).collect(), false))?
        .project(projection)?
        .build()?;
    let requests = TraceNode::try_new(spans, ServiceEdges { columns }.into())?.into_plan();
    let mut keep = col(edges::CLIENT).is_not_null();
    if let Some(from) = from {
        keep = keep.and(col(c::START_UNIX_NANO).gt_eq(lit(from)));
    }
    if let Some(to) = to {
        keep = keep.and(col(c::START_UNIX_NANO).lt(lit(to)));
    }
    // Only the columns kept reach the filter, which copies what it keeps.
    let kept = [
        c::TRACE_ID,
        c::START_UNIX_NANO,
        edges::CLIENT,
        edges::SERVER,
        edges::CONNECTION_TYPE,
        edges::FAILED,
        edges::SERVER_NANOS,
        edges::CLIENT_NANOS,
    ];
    LogicalPlanBuilder::from(requests)
        .project(kept.iter().map(|name| col(*name)))?
        .filter(keep)?
        .project(vec![
            col(c::TRACE_ID),
            col(c::START_UNIX_NANO),
            col(edges::CLIENT).alias(CLIENT),
            col(edges::SERVER).alias(SERVER),
            col(edges::CONNECTION_TYPE).alias(CONNECTION_TYPE),
            col(edges::FAILED).alias(FAILED),
            col(edges::SERVER_NANOS).alias(SERVER_NANOS),
            col(edges::CLIENT_NANOS).alias(CLIENT_NANOS),
        ])?
        .build()
}

/// The statistics of `requests` (a plan of [`plan_requests`]) per edge, grouped by
/// [`CLIENT`], [`SERVER`] and [`CONNECTION_TYPE`]: [`REQUESTS`], [`FAILED_REQUESTS`],
/// [`SERVER_NANOS_SUM`], [`CLIENT_NANOS_SUM`], the exact percentiles of both latencies
/// ([`SERVER_QUANTILES`], [`CLIENT_QUANTILES`]) and the [`SERVER_BUCKETS`] counts. (The
/// services' own totals are sums of their edges'; percentiles per service would keep
/// every latency a second time, and cost the graph a third of its time at 10M spans.)
pub fn plan_graph(requests: LogicalPlan) -> Result<LogicalPlan> {
    let group = vec![col(CLIENT), col(SERVER), col(CONNECTION_TYPE)];
    let mut aggregates = vec![
        count(lit(1)).alias(REQUESTS),
        sum(cast(col(FAILED), DataType::Int64)).alias(FAILED_REQUESTS),
        sum(col(SERVER_NANOS)).alias(SERVER_NANOS_SUM),
        sum(col(CLIENT_NANOS)).alias(CLIENT_NANOS_SUM),
        latency_quantiles(col(SERVER_NANOS)).alias(SERVER_QUANTILES),
        latency_quantiles(col(CLIENT_NANOS)).alias(CLIENT_QUANTILES),
    ];
    for bound in SERVER_BUCKETS {
        let nanos = (bound * 1e9) as u64;
        let within = when(col(SERVER_NANOS).lt_eq(lit(nanos)), lit(1i64)).otherwise(lit(0i64))?;
        aggregates.push(sum(within).alias(bucket_column(bound)));
    }
    LogicalPlanBuilder::from(requests)
        .aggregate(group, aggregates)?
        .build()
}
