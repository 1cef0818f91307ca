//! Running a metrics query on an [`Engine`]: each metrics function becomes one
//! aggregate plan; constants, arithmetic and second stages combine the series.

use std::pin::Pin;
use std::time::Instant;

use datafusion::logical_expr::LogicalPlan;
use traceql_format::facts::Facts;
use traceql_parser::Query;
use traceql_parser::ast::visit::Visitor;
use traceql_parser::ast::{
    Literal, MetricsExpr, MetricsExprKind, MetricsFunction, MetricsQuery, QueryBody, ScalarExpr,
    ScalarExprKind, SecondStage,
};
use traceql_planner::lower::constant;
use traceql_planner::metrics::series::{self, Metrics};
use traceql_planner::metrics::{Buckets, compare, plan_compare, plan_metrics};

use super::{MetricsOptions, MetricsResponse};
use crate::engine::{Engine, EngineError, ParsedQuery, QueryStats, TimeRange, Window};
use crate::source::Block;
use crate::table::union_typed_columns;

/// The most points a series may have.
pub const MAX_POINTS: u64 = 100_000;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, EngineError>> + Send + 'a>>;

impl Engine {
    /// Runs a metrics query (`{ … } | rate() by (…)`, arithmetic between such queries,
    /// second stages) over the range of `options`.
    pub async fn metrics(
        &self,
        query: &str,
        options: &MetricsOptions,
    ) -> Result<(MetricsResponse, QueryStats), EngineError> {
        self.metrics_parsed(&ParsedQuery::parse(query)?, options)
            .await
    }

    /// Runs a metrics query already parsed, as [`Self::metrics`] does.
    pub async fn metrics_parsed(
        &self,
        query: &ParsedQuery,
        options: &MetricsOptions,
    ) -> Result<(MetricsResponse, QueryStats), EngineError> {
        let started = Instant::now();
        let io = self.store.io();
        let QueryBody::Metrics(expr) = &query.query().body else {
            return Err(EngineError::InvalidInput(
                "this is a search, not a metrics query: add a metrics function such as \
                 `| rate()` or run it as a search"
                    .into(),
            ));
        };
        let buckets = self.buckets(options);
        if buckets.count() > MAX_POINTS {
            return Err(EngineError::InvalidInput(format!(
                "a step of {}s over this range gives {} points per series; at most {MAX_POINTS} \
                 are allowed: use a larger step",
                buckets.step as f64 / 1e9,
                buckets.count()
            )));
        }
        let mut stats = QueryStats {
            planning: started.elapsed(),
            ..QueryStats::default()
        };
        let result = self.evaluate(expr, &buckets, &mut stats).await?;
        let Metrics::Series(mut series) = result else {
            return Err(EngineError::InvalidInput(
                "a metrics query must contain a metrics function".into(),
            ));
        };
        series.retain(|s| s.values.iter().any(|v| !v.is_nan()));
        stats.io = self.store.io().since(io);
        Ok((
            MetricsResponse {
                buckets,
                series,
                inspected_spans: stats.spans_scanned,
                inspected_bytes: stats.bytes_scanned,
            },
            stats,
        ))
    }

    /// The aggregate plan of each metrics function in `parsed`, over the store's whole
    /// time span with the default step.
    pub(crate) async fn metrics_plans(
        &self,
        parsed: &Query,
    ) -> Result<Vec<LogicalPlan>, EngineError> {
        let QueryBody::Metrics(expr) = &parsed.body else {
            return Ok(Vec::new());
        };
        let buckets = self.buckets(&MetricsOptions::default());
        let mut queries = Vec::new();
        collect_queries(expr, &mut queries);
        let mut plans = Vec::new();
        for query in queries {
            let (blocks, range) = self.metrics_blocks(query, &buckets);
            let (scan, facts) = self.scan(&range, &blocks, Window::ALL).await?;
            plans.push(match query.function {
                MetricsFunction::Compare { .. } => plan_compare(query, scan, &facts, &buckets)?,
                _ => plan_metrics(query, scan, &facts, &buckets)?.plan,
            });
        }
        Ok(plans)
    }

    /// The buckets `options` ask for; the range defaults to the store's time span.
    fn buckets(&self, options: &MetricsOptions) -> Buckets {
        let first = self.blocks().map(|b| b.start_unix_nano).min().unwrap_or(0);
        let last = self.blocks().map(|b| b.end_unix_nano).max().unwrap_or(0);
        let start = options.start_unix_nano.unwrap_or(first);
        let end = options.end_unix_nano.unwrap_or(last).max(start + 1);
        if options.instant {
            Buckets::for_instant(start, end)
        } else {
            Buckets::for_range(start, end, options.step_nano)
        }
    }

    /// The blocks that may hold spans for `query` in `buckets`, and the range of
    /// traces that overlap them.
    fn metrics_blocks(
        &self,
        query: &MetricsQuery,
        buckets: &Buckets,
    ) -> (Vec<&(Block, Facts)>, TimeRange) {
        let range = TimeRange {
            start_unix_nano: Some(buckets.start),
            end_unix_nano: Some(buckets.end),
        };
        (self.select(&range, Some(&query.pipeline)), range)
    }

    fn evaluate<'a>(
        &'a self,
        expr: &'a MetricsExpr,
        buckets: &'a Buckets,
        stats: &'a mut QueryStats,
    ) -> Boxed<'a, Metrics> {
        Box::pin(async move {
            Ok(match &expr.kind {
                MetricsExprKind::Query(query) => {
                    Metrics::Series(self.series(query, buckets, stats).await?)
                }
                MetricsExprKind::Constant(scalar) => Metrics::Scalar(constant(scalar)?),
                MetricsExprKind::Binary { op, lhs, rhs } => {
                    let lhs = self.evaluate(lhs, buckets, stats).await?;
                    let rhs = self.evaluate(rhs, buckets, stats).await?;
                    series::arithmetic(*op, lhs, rhs)
                }
                MetricsExprKind::Stage { input, stage } => {
                    let Metrics::Series(input) = self.evaluate(input, buckets, stats).await? else {
                        return Err(EngineError::Unsupported(
                            "a second stage after a constant is not supported yet".into(),
                        ));
                    };
                    Metrics::Series(match stage {
                        SecondStage::TopK(k) => series::top_k(input, *k as usize, true),
                        SecondStage::BottomK(k) => series::top_k(input, *k as usize, false),
                        SecondStage::Filter { op, threshold } => {
                            series::filter(input, *op, threshold_value(threshold)?)
                        }
                    })
                }
            })
        })
    }

    /// The series of one metrics function over the spans its pipeline selects.
    async fn series(
        &self,
        query: &MetricsQuery,
        buckets: &Buckets,
        stats: &mut QueryStats,
    ) -> Result<Vec<series::Series>, EngineError> {
        let round = Instant::now();
        let (blocks, range) = self.metrics_blocks(query, buckets);
        stats.blocks += blocks.len() as u64;
        let (scan, facts) = self.scan(&range, &blocks, Window::ALL).await?;
        if let MetricsFunction::Compare { top_n, .. } = &query.function {
            let sources: Vec<Block> = blocks.iter().map(|(b, _)| b.clone()).collect();
            let typed = union_typed_columns(&sources)?;
            let plan = plan_compare(query, scan, &facts, buckets)?;
            stats.planning += round.elapsed();
            let batches = self.execute(&plan, &blocks, stats).await?;
            let counting = Instant::now();
            let top_n = top_n.unwrap_or(10).max(1) as usize;
            let series = compare::from_batches(&batches, &typed, top_n, buckets.count())?;
            stats.execution += counting.elapsed();
            return Ok(series);
        }
        let plan = plan_metrics(query, scan, &facts, buckets)?;
        stats.planning += round.elapsed();
        let batches = self.execute(&plan.plan, &blocks, stats).await?;
        let assembling = Instant::now();
        let step_seconds = buckets.step as f64 / 1e9;
        let series = series::from_batches(
            &plan,
            &query.function,
            &batches,
            buckets.count(),
            step_seconds,
        )?;
        stats.execution += assembling.elapsed();
        Ok(series)
    }
}

/// A comparison threshold: durations in seconds, as metrics values of durations are.
fn threshold_value(threshold: &ScalarExpr) -> Result<f64, EngineError> {
    Ok(match &threshold.kind {
        ScalarExprKind::Literal(Literal::Duration(ns)) => *ns as f64 / 1e9,
        _ => constant(threshold)?,
    })
}

/// The metrics functions of `expr`, left to right.
fn collect_queries<'a>(expr: &'a MetricsExpr, out: &mut Vec<&'a MetricsQuery>) {
    struct Queries<'o, 'a>(&'o mut Vec<&'a MetricsQuery>);
    impl<'a> Visitor<'a> for Queries<'_, 'a> {
        fn visit_metrics_query(&mut self, query: &'a MetricsQuery) {
            self.0.push(query);
        }
    }
    Queries(out).visit_metrics(expr);
}
