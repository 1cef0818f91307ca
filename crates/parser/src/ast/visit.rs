//! Walking the syntax tree. Implement [`Visitor`] and override the methods of the
//! nodes you care about; the default methods walk into every child (call the matching
//! `walk_*` function from an override to keep walking below it).

use super::*;
use crate::Span;

/// Visits the nodes of a query, children after their parent, left to right.
pub trait Visitor<'a> {
    /// A search pipeline (the whole query, a parenthesised operand or a metrics query's
    /// first part).
    fn visit_pipeline(&mut self, pipeline: &'a Pipeline) {
        walk_pipeline(self, pipeline);
    }

    /// A spanset expression: `{ … }`, an operator between spansets, a nested pipeline.
    fn visit_spanset(&mut self, expr: &'a SpansetExpr) {
        walk_spanset(self, expr);
    }

    /// An expression inside `{ … }`, an aggregate or `by()`.
    fn visit_field_expr(&mut self, expr: &'a FieldExpr) {
        walk_field_expr(self, expr);
    }

    /// An attribute or intrinsic wherever it occurs, with where it is.
    fn visit_field(&mut self, _field: &'a Field, _span: Span) {}

    /// A scalar expression: aggregates, constants, arithmetic.
    fn visit_scalar(&mut self, expr: &'a ScalarExpr) {
        walk_scalar(self, expr);
    }

    /// A metrics expression: queries, constants, arithmetic, second stages.
    fn visit_metrics(&mut self, expr: &'a MetricsExpr) {
        walk_metrics(self, expr);
    }

    /// One metrics function over a pipeline.
    fn visit_metrics_query(&mut self, query: &'a MetricsQuery) {
        walk_metrics_query(self, query);
    }
}

/// Visits the body of `query`.
pub fn walk_query<'a, V: Visitor<'a> + ?Sized>(v: &mut V, query: &'a Query) {
    match &query.body {
        QueryBody::Search(p) => v.visit_pipeline(p),
        QueryBody::Metrics(m) => v.visit_metrics(m),
    }
}

/// Visits the stages of `pipeline`.
pub fn walk_pipeline<'a, V: Visitor<'a> + ?Sized>(v: &mut V, pipeline: &'a Pipeline) {
    for stage in &pipeline.stages {
        match stage {
            Stage::Spanset(e) => v.visit_spanset(e),
            Stage::ScalarFilter(f) => {
                v.visit_scalar(&f.lhs);
                v.visit_scalar(&f.rhs);
            }
            Stage::GroupBy { expr, .. } => v.visit_field_expr(expr),
            Stage::Select { fields, .. } => {
                for f in fields {
                    v.visit_field(&f.field, f.span);
                }
            }
            Stage::Coalesce { .. } => {}
        }
    }
}

/// Visits the parts of a spanset expression.
pub fn walk_spanset<'a, V: Visitor<'a> + ?Sized>(v: &mut V, expr: &'a SpansetExpr) {
    match &expr.kind {
        SpansetExprKind::Filter(None) => {}
        SpansetExprKind::Filter(Some(e)) => v.visit_field_expr(e),
        SpansetExprKind::Binary { lhs, rhs, .. } => {
            v.visit_spanset(lhs);
            v.visit_spanset(rhs);
        }
        SpansetExprKind::Pipeline(p) => v.visit_pipeline(p),
    }
}

/// Visits the operands and fields of a field expression.
pub fn walk_field_expr<'a, V: Visitor<'a> + ?Sized>(v: &mut V, expr: &'a FieldExpr) {
    match &expr.kind {
        FieldExprKind::Literal(_) => {}
        FieldExprKind::Field(f) => v.visit_field(f, expr.span),
        FieldExprKind::Unary { expr, .. } => v.visit_field_expr(expr),
        FieldExprKind::Binary { lhs, rhs, .. } => {
            v.visit_field_expr(lhs);
            v.visit_field_expr(rhs);
        }
    }
}

/// Visits the parts of a scalar expression.
pub fn walk_scalar<'a, V: Visitor<'a> + ?Sized>(v: &mut V, expr: &'a ScalarExpr) {
    let aggregate = |v: &mut V, a: &'a Aggregate| {
        if let Some(arg) = a.arg() {
            v.visit_field_expr(arg);
        }
    };
    match &expr.kind {
        ScalarExprKind::Aggregate(a) => aggregate(v, a),
        ScalarExprKind::Literal(_) => {}
        ScalarExprKind::Neg(inner) => v.visit_scalar(inner),
        ScalarExprKind::Binary { lhs, rhs, .. } => {
            v.visit_scalar(lhs);
            v.visit_scalar(rhs);
        }
        ScalarExprKind::Pipeline {
            pipeline,
            aggregate: a,
        } => {
            v.visit_pipeline(pipeline);
            aggregate(v, a);
        }
    }
}

/// Visits the parts of a metrics expression.
pub fn walk_metrics<'a, V: Visitor<'a> + ?Sized>(v: &mut V, expr: &'a MetricsExpr) {
    match &expr.kind {
        MetricsExprKind::Query(q) => v.visit_metrics_query(q),
        MetricsExprKind::Constant(c) => v.visit_scalar(c),
        MetricsExprKind::Binary { lhs, rhs, .. } => {
            v.visit_metrics(lhs);
            v.visit_metrics(rhs);
        }
        MetricsExprKind::Stage { input, stage } => {
            v.visit_metrics(input);
            if let SecondStage::Filter { threshold, .. } = stage {
                v.visit_scalar(threshold);
            }
        }
    }
}

/// Visits a metrics query's pipeline, the field it reads, its `compare()` filter and
/// its `by` fields.
pub fn walk_metrics_query<'a, V: Visitor<'a> + ?Sized>(v: &mut V, query: &'a MetricsQuery) {
    v.visit_pipeline(&query.pipeline);
    if let Some(f) = query.function.field() {
        v.visit_field(&f.field, f.span);
    }
    if let MetricsFunction::Compare {
        filter: Some(filter),
        ..
    } = &query.function
    {
        v.visit_field_expr(filter);
    }
    for f in &query.by {
        v.visit_field(&f.field, f.span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fields(Vec<String>);

    impl<'a> Visitor<'a> for Fields {
        fn visit_field(&mut self, field: &'a Field, _span: Span) {
            self.0.push(field.to_string());
        }
    }

    #[test]
    fn every_field_is_visited_in_order() {
        let query = crate::parse(
            "({ .a = 1 } >> { span.b > 2 || -.c < 3 } | avg(duration) > 2 | by(name)) \
             | select(.d) | count() > 1",
        )
        .unwrap();
        let mut fields = Fields::default();
        walk_query(&mut fields, &query);
        assert_eq!(fields.0, [".a", "span.b", ".c", "duration", "name", ".d"]);

        let query = crate::parse(
            "({ .a } | quantile_over_time(duration, .9) by (.b)) / ({ } | rate()) > 2",
        );
        let query = query.unwrap();
        let mut fields = Fields::default();
        walk_query(&mut fields, &query);
        assert_eq!(fields.0, [".a", "duration", ".b"]);
    }
}
