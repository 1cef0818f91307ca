//! Turns the loose [`Term`] tree into a typed query, deciding what each part is:
//! a search pipeline and its stages, a scalar filter, a metrics query with second
//! stages, or arithmetic between metrics queries.

use super::term::Term;
use crate::ast::Literal;
use crate::ast::{
    ArithmeticOp, ComparisonOp, MetricsExpr, MetricsExprKind, MetricsQuery, Pipeline, QueryBody,
    ScalarExpr, ScalarExprKind, ScalarFilter, SecondStage, SpansetExpr, SpansetExprKind, Stage,
};
use crate::lexer::TokenKind;
use crate::vocab::{arithmetic, comparison, spanset_op};
use crate::{Error, Span};

/// The body of a query: metrics if a metrics function occurs anywhere, else a search.
pub(super) fn body(term: Term) -> Result<QueryBody, Error> {
    if contains_metrics(&term) {
        Ok(QueryBody::Metrics(metrics_expr(term)?))
    } else {
        let span = term.span();
        Ok(QueryBody::Search(pipeline(flatten_pipe(term), span, true)?))
    }
}

/// True if a metrics function occurs in the term (outside of `{ … }`).
fn contains_metrics(t: &Term) -> bool {
    match t {
        Term::Metrics { .. } => true,
        Term::Paren { inner, .. } => contains_metrics(inner),
        Term::Neg { operand, .. } => contains_metrics(operand),
        Term::Binary { lhs, rhs, .. } => contains_metrics(lhs) || contains_metrics(rhs),
        _ => false,
    }
}

/// The stages of `a | b | c` (pipes associate to the left).
fn flatten_pipe(mut t: Term) -> Vec<Term> {
    let mut stages = Vec::new();
    loop {
        match t {
            Term::Binary {
                op: TokenKind::Pipe,
                lhs,
                rhs,
                ..
            } => {
                stages.push(*rhs);
                t = *lhs;
            }
            other => {
                stages.push(other);
                stages.reverse();
                return stages;
            }
        }
    }
}

/// True if `inner` (the inside of parentheses) is `pipeline | aggregate`.
fn is_wrapped_scalar(inner: &Term) -> bool {
    matches!(inner, Term::Binary { op: TokenKind::Pipe, rhs, .. } if matches!(**rhs, Term::Aggregate { .. }))
}

/// True if the term is an aggregate expression (so a comparison with it is a scalar filter).
fn is_scalar(t: &Term) -> bool {
    match t {
        Term::Aggregate { .. } => true,
        Term::Paren { inner, .. } => is_wrapped_scalar(inner) || is_scalar(inner),
        Term::Neg { operand, .. } => is_scalar(operand),
        Term::Binary { op, lhs, rhs, .. } => {
            arithmetic(op).is_some() && (is_scalar(lhs) || is_scalar(rhs))
        }
        _ => false,
    }
}

/// True if a parenthesised `(pipeline | aggregate)` occurs in the term.
fn has_wrapped(t: &Term) -> bool {
    match t {
        Term::Paren { inner, .. } => is_wrapped_scalar(inner) || has_wrapped(inner),
        Term::Neg { operand, .. } => has_wrapped(operand),
        Term::Binary { lhs, rhs, .. } => has_wrapped(lhs) || has_wrapped(rhs),
        _ => false,
    }
}

/// True if the term is made only of wrapped pipelines joined by arithmetic.
fn wrapped_only(t: &Term) -> bool {
    match t {
        Term::Paren { inner, .. } => is_wrapped_scalar(inner) || wrapped_only(inner),
        Term::Binary { op, lhs, rhs, .. } => {
            arithmetic(op).is_some() && wrapped_only(lhs) && wrapped_only(rhs)
        }
        _ => false,
    }
}

/// A search pipeline from its stage terms.
fn pipeline(terms: Vec<Term>, span: Span, whole_query: bool) -> Result<Pipeline, Error> {
    let alone = whole_query && terms.len() == 1;
    let stages = terms
        .into_iter()
        .enumerate()
        .map(|(i, t)| stage(t, i == 0, alone))
        .collect::<Result<_, _>>()?;
    Ok(Pipeline { stages, span })
}

fn stage(t: Term, first: bool, whole_query: bool) -> Result<Stage, Error> {
    match t {
        Term::GroupBy { expr, span } => Ok(Stage::GroupBy { expr, span }),
        Term::Select { fields, span } => Ok(Stage::Select { fields, span }),
        Term::Coalesce { span } if first => Err(Error::parse(
            "a pipeline cannot start with coalesce()",
            span,
            "nothing to merge yet",
        )
        .with_hint(
            "coalesce() merges the spansets of earlier stages, e.g. { } | by(.a) | coalesce()",
        )),
        Term::Coalesce { span } => Ok(Stage::Coalesce { span }),
        Term::Aggregate { aggregate, span } => Err(Error::parse(
            format!("{}() must be compared with a value", aggregate.name()),
            span,
            "an aggregate alone is not a filter",
        )
        .with_hint(format!("for example {}() > 1", aggregate.name()))),
        Term::TopK { bottom, span, .. } => {
            let name = if bottom { "bottomk" } else { "topk" };
            Err(Error::parse(
                format!("{name}() must follow a metrics function"),
                span,
                "no metrics function before it",
            )
            .with_hint(format!(
                "for example {{ }} | rate() by (resource.service.name) | {name}(10)"
            )))
        }
        Term::Metrics { span, .. } => Err(bare_metrics(span)),
        Term::Binary {
            op,
            op_span,
            lhs,
            rhs,
            span,
        } if is_scalar(&lhs) || is_scalar(&rhs) => match comparison(&op) {
            Some(op) => Ok(Stage::ScalarFilter(scalar_filter(
                op,
                *lhs,
                *rhs,
                span,
                whole_query,
            )?)),
            None if arithmetic(&op).is_some() => Err(Error::parse(
                "an aggregate expression must be compared with a value",
                span,
                "this computes a number but filters nothing",
            )
            .with_hint("for example avg(duration) + 1 > 2")),
            None => Err(Error::parse(
                format!("`{}` cannot combine an aggregate with spansets", op.punct()),
                op_span,
                "not allowed here",
            )
            .with_hint("filter with a pipeline stage instead: { … } | count() > 3")),
        },
        other => Ok(Stage::Spanset(spanset_expr(other)?)),
    }
}

fn bare_metrics(span: Span) -> Error {
    Error::parse(
        "a metrics function must follow a spanset pipeline",
        span,
        "nothing to aggregate",
    )
    .with_hint("for example { status = error } | rate() by (resource.service.name)")
}

/// True if the term can stand where a spanset expression is expected.
fn is_spanset_like(t: &Term) -> bool {
    match t {
        Term::Spanset { .. } | Term::Paren { .. } => true,
        Term::Binary { op, lhs, rhs, .. } => {
            spanset_op(op).is_some() && !is_scalar(lhs) && !is_scalar(rhs)
        }
        _ => false,
    }
}

fn spanset_expr(t: Term) -> Result<SpansetExpr, Error> {
    match t {
        Term::Spanset { filter, span } => Ok(SpansetExpr {
            kind: SpansetExprKind::Filter(filter),
            span,
        }),
        Term::Binary {
            op,
            op_span,
            lhs,
            rhs,
            span,
        } => {
            let Some(op) = spanset_op(&op) else {
                return Err(Error::parse(
                    format!("`{}` cannot combine spansets", op.punct()),
                    op_span,
                    "not a spanset operator",
                )
                .with_hint(
                    "spanset operators are && || > < >> << ~, negated !> !< !>> !<< !~ and union &> &< &>> &<< &~; \
                     comparisons and arithmetic go inside { … }",
                ));
            };
            Ok(SpansetExpr {
                kind: SpansetExprKind::Binary {
                    op,
                    lhs: Box::new(spanset_expr(*lhs)?),
                    rhs: Box::new(spanset_expr(*rhs)?),
                },
                span,
            })
        }
        Term::Paren { inner, span } => {
            let mut terms = flatten_pipe(*inner);
            if terms.len() == 1 && is_spanset_like(&terms[0]) {
                let mut expr = spanset_expr(terms.pop().expect("one term"))?;
                expr.span = span;
                return Ok(expr);
            }
            Ok(SpansetExpr {
                kind: SpansetExprKind::Pipeline(pipeline(terms, span, false)?),
                span,
            })
        }
        Term::Number { span, .. } | Term::Neg { span, .. } => Err(Error::parse(
            "expected a spanset filter `{ … }`, found a number",
            span,
            "not a spanset",
        )
        .with_hint("to compare values, put the condition inside braces: { .a > 3 }")),
        Term::Aggregate { aggregate, span } => Err(Error::parse(
            format!(
                "{}() cannot be combined with spansets here",
                aggregate.name()
            ),
            span,
            "an aggregate",
        )
        .with_hint("aggregates filter in a pipeline stage: { … } | count() > 3")),
        Term::Metrics { span, .. } => Err(bare_metrics(span)),
        other => Err(Error::parse(
            "expected a spanset filter `{ … }`",
            other.span(),
            "not a spanset",
        )
        .with_hint("pipeline stages such as by(), select() and coalesce() go after `|`")),
    }
}

fn scalar_filter(
    op: ComparisonOp,
    lhs: Term,
    rhs: Term,
    span: Span,
    whole_query: bool,
) -> Result<ScalarFilter, Error> {
    if has_wrapped(&lhs) || has_wrapped(&rhs) {
        if !whole_query {
            return Err(Error::parse(
                "a comparison of parenthesised pipelines must be the whole query",
                span,
                "inside a pipeline",
            ));
        }
        if !wrapped_only(&lhs) {
            return Err(Error::parse(
                "the left side must be parenthesised pipelines such as ({ … } | count())",
                lhs.span(),
                "a constant or aggregate here",
            )
            .with_hint("constants go on the right: ({ … } | count()) > 2"));
        }
        if !(wrapped_only(&rhs) || matches!(rhs, Term::Number { .. })) {
            return Err(Error::parse(
                "a parenthesised pipeline can only be compared with another one or with a single number",
                rhs.span(),
                "an expression here",
            ));
        }
    }
    Ok(ScalarFilter {
        op,
        lhs: scalar_expr(lhs)?,
        rhs: scalar_expr(rhs)?,
        span,
    })
}

fn scalar_expr(t: Term) -> Result<ScalarExpr, Error> {
    let span = t.span();
    let kind = match t {
        Term::Aggregate { aggregate, .. } => ScalarExprKind::Aggregate(aggregate),
        Term::Number { value, .. } => ScalarExprKind::Literal(value),
        Term::Neg { operand, .. } => ScalarExprKind::Neg(Box::new(scalar_expr(*operand)?)),
        Term::Binary {
            op,
            op_span,
            lhs,
            rhs,
            ..
        } => {
            let Some(op) = arithmetic(&op) else {
                return Err(Error::parse(
                    format!("`{}` cannot be used between aggregates", op.punct()),
                    op_span,
                    "not arithmetic",
                ));
            };
            ScalarExprKind::Binary {
                op,
                lhs: Box::new(scalar_expr(*lhs)?),
                rhs: Box::new(scalar_expr(*rhs)?),
            }
        }
        Term::Paren { inner, .. } if is_wrapped_scalar(&inner) => {
            let mut terms = flatten_pipe(*inner);
            let Some(Term::Aggregate {
                aggregate,
                span: agg_span,
            }) = terms.pop()
            else {
                unreachable!("is_wrapped_scalar checked the last stage")
            };
            let pipe_span = terms[0].span().to(agg_span);
            ScalarExprKind::Pipeline {
                pipeline: pipeline(terms, pipe_span, false)?,
                aggregate,
            }
        }
        Term::Paren { inner, .. } => return scalar_expr(*inner).map(|e| ScalarExpr { span, ..e }),
        other => {
            return Err(Error::parse(
                "expected an aggregate such as count() or a number",
                other.span(),
                "not a number",
            ));
        }
    };
    Ok(ScalarExpr { kind, span })
}

/// A metrics expression: `pipeline | function … | second stages`, or an operand.
fn metrics_expr(t: Term) -> Result<MetricsExpr, Error> {
    if !matches!(
        t,
        Term::Binary {
            op: TokenKind::Pipe,
            ..
        }
    ) {
        return metrics_operand(t);
    }
    let mut terms = flatten_pipe(t);
    let k = terms
        .iter()
        .position(contains_metrics)
        .expect("metrics_expr is only called on terms with a metrics function");
    let rest = terms.split_off(k + 1);
    let head = terms.pop().expect("k < len");
    let mut expr = if k == 0 {
        metrics_operand(head)?
    } else {
        let pipe_span = terms[0].span().to(terms[k - 1].span());
        let pipeline = pipeline(terms, pipe_span, false)?;
        let (core, filters) = peel_filters(head)?;
        let Term::Metrics { function, by, span } = core else {
            return Err(match core {
                Term::Binary { op, op_span, .. } if arithmetic(&op).is_some() => Error::parse(
                    "arithmetic on a metrics query needs parentheses around the query",
                    op_span,
                    "ambiguous",
                )
                .with_hint("for example ({ } | rate()) * 100"),
                other => Error::parse(
                    "expected a metrics function such as rate() after `|`",
                    other.span(),
                    "not a metrics function",
                ),
            });
        };
        let span = pipe_span.to(span);
        let query = MetricsExpr {
            kind: MetricsExprKind::Query(MetricsQuery {
                pipeline,
                function,
                by,
                span,
            }),
            span,
        };
        apply_filters(query, filters)
    };
    for t in rest {
        let (core, filters) = peel_filters(t)?;
        let Term::TopK { bottom, n, span } = core else {
            return Err(Error::parse(
                "after a metrics function only topk(), bottomk() or a comparison may follow",
                core.span(),
                "not a second stage",
            )
            .with_hint("for example { } | rate() by (span.http.route) | topk(5)"));
        };
        let stage = if bottom {
            SecondStage::BottomK(n)
        } else {
            SecondStage::TopK(n)
        };
        expr = with_stage(expr, stage, span);
        expr = apply_filters(expr, filters);
    }
    Ok(expr)
}

fn with_stage(input: MetricsExpr, stage: SecondStage, span: Span) -> MetricsExpr {
    let span = input.span.to(span);
    MetricsExpr {
        kind: MetricsExprKind::Stage {
            input: Box::new(input),
            stage,
        },
        span,
    }
}

fn apply_filters(mut expr: MetricsExpr, filters: Vec<(ComparisonOp, ScalarExpr)>) -> MetricsExpr {
    for (op, threshold) in filters {
        let span = threshold.span;
        expr = with_stage(expr, SecondStage::Filter { op, threshold }, span);
    }
    expr
}

/// Splits `x > 1 <= 2` into `x` and its comparisons, in order.
fn peel_filters(mut t: Term) -> Result<(Term, Vec<(ComparisonOp, ScalarExpr)>), Error> {
    let mut filters = Vec::new();
    loop {
        match t {
            Term::Binary { op, lhs, rhs, .. } if comparison(&op).is_some() => {
                let op = comparison(&op).expect("checked");
                filters.push((op, threshold(*rhs)?));
                t = *lhs;
            }
            other => {
                filters.reverse();
                return Ok((other, filters));
            }
        }
    }
}

/// One operand of metrics arithmetic.
fn metrics_operand(t: Term) -> Result<MetricsExpr, Error> {
    let span = t.span();
    if !contains_metrics(&t) {
        return Ok(MetricsExpr {
            kind: MetricsExprKind::Constant(constant(t)?),
            span,
        });
    }
    match t {
        Term::Paren { inner, span } => Ok(MetricsExpr {
            span,
            ..metrics_expr(*inner)?
        }),
        Term::Binary {
            op,
            op_span,
            lhs,
            rhs,
            span,
        } => {
            if comparison(&op).is_some() {
                let (core, filters) = peel_filters(Term::Binary {
                    op,
                    op_span,
                    lhs,
                    rhs,
                    span,
                })?;
                return Ok(apply_filters(metrics_operand(core)?, filters));
            }
            match arithmetic(&op) {
                Some(ArithmeticOp::Mod | ArithmeticOp::Pow) => Err(Error::parse(
                    format!("`{}` cannot be used between metrics queries", op.punct()),
                    op_span,
                    "only + - * / here",
                )),
                Some(op) => Ok(MetricsExpr {
                    kind: MetricsExprKind::Binary {
                        op,
                        lhs: Box::new(metrics_operand(*lhs)?),
                        rhs: Box::new(metrics_operand(*rhs)?),
                    },
                    span,
                }),
                None if op == TokenKind::Pipe => metrics_expr(Term::Binary { op, op_span, lhs, rhs, span }),
                None => Err(Error::parse(
                    format!("`{}` cannot combine metrics queries", op.punct()),
                    op_span,
                    "not a metrics operator",
                )
                .with_hint("metrics queries combine with + - * /, e.g. ({ status = error } | rate()) / ({ } | rate())")),
            }
        }
        Term::Metrics { span, .. } => Err(bare_metrics(span)),
        other => Err(Error::parse(
            "expected a metrics query in parentheses or a number",
            other.span(),
            "not allowed in metrics arithmetic",
        )
        .with_hint("for example ({ } | rate()) * 100")),
    }
}

/// A numeric constant of metrics arithmetic: numbers, `-`, `+ - * /`, parentheses.
fn constant(t: Term) -> Result<ScalarExpr, Error> {
    let span = t.span();
    let kind = match t {
        Term::Number {
            value: Literal::Duration(_),
            span,
        } => {
            return Err(Error::parse(
                "durations cannot be used in metrics arithmetic",
                span,
                "a duration",
            )
            .with_hint("a single duration may only be a comparison threshold, e.g. > 1s"));
        }
        Term::Number { value, .. } => ScalarExprKind::Literal(value),
        Term::Neg { operand, .. } => ScalarExprKind::Neg(Box::new(constant(*operand)?)),
        Term::Paren { inner, .. } => return constant(*inner).map(|e| ScalarExpr { span, ..e }),
        Term::Binary {
            op,
            op_span,
            lhs,
            rhs,
            ..
        } => match arithmetic(&op) {
            Some(
                op
                @ (ArithmeticOp::Add | ArithmeticOp::Sub | ArithmeticOp::Mul | ArithmeticOp::Div),
            ) => ScalarExprKind::Binary {
                op,
                lhs: Box::new(constant(*lhs)?),
                rhs: Box::new(constant(*rhs)?),
            },
            _ => {
                return Err(Error::parse(
                    format!("`{}` is not allowed in metrics arithmetic", op.punct()),
                    op_span,
                    "only + - * / here",
                ));
            }
        },
        other => {
            return Err(
                Error::parse("expected a number", other.span(), "not a number").with_hint(
                    "metrics queries combine with numbers and with ({ … } | rate())-style queries",
                ),
            );
        }
    };
    Ok(ScalarExpr { kind, span })
}

/// A comparison threshold: a constant, or a single (possibly negative) duration.
fn threshold(t: Term) -> Result<ScalarExpr, Error> {
    match t {
        Term::Number {
            value: value @ Literal::Duration(_),
            span,
        } => Ok(ScalarExpr {
            kind: ScalarExprKind::Literal(value),
            span,
        }),
        Term::Neg { operand, span }
            if matches!(
                *operand,
                Term::Number {
                    value: Literal::Duration(_),
                    ..
                }
            ) =>
        {
            let Term::Number { value, span: inner } = *operand else {
                unreachable!()
            };
            Ok(ScalarExpr {
                kind: ScalarExprKind::Neg(Box::new(ScalarExpr {
                    kind: ScalarExprKind::Literal(value),
                    span: inner,
                })),
                span,
            })
        }
        other if contains_metrics(&other) => Err(Error::parse(
            "a metrics query can only be compared with a constant",
            other.span(),
            "not a constant",
        )),
        other => constant(other),
    }
}
