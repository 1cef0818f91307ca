//! A scan's filters as a test on Tempo rows ([`Test`]), for the Parquet reader to apply
//! before it decodes a trace: the native comparisons of span columns the planner hands
//! down (`name = "GET"`, `status_code = 2`, `duration_nano > 10000000`) and the
//! TraceQL expressions of `{ … }` filter functions (attributes included).
//!
//! Every test built is a necessary condition for a row to hold a span passing the
//! filters (see [`traceql_format::tempo::filter`]): what cannot be expressed that way
//! (negations, arithmetic, `nil`, event times) is left out, which only means
//! more rows are decoded. The filters still run on the decoded spans.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use traceql_format::block::TypedColumn;
use traceql_format::codes::{kind, status};
use traceql_format::schema::columns as c;
use traceql_format::tempo::filter::{Cmp, Level, Op, Target, Test};
use traceql_parser::ast::{
    AttributeScope, BinaryOp, Field, FieldExpr, FieldExprKind, Intrinsic, Literal,
};
use traceql_parser::compile_regex;
use traceql_planner::eval::udf::filter_of;
use traceql_planner::eval::value::mirror;

/// The test on Tempo rows that every row holding a span passing all of `filters`
/// passes; `None` if the filters give none.
pub(super) fn test_of(filters: &[Expr], typed: &[TypedColumn]) -> Option<Test> {
    all(filters.iter().map(|f| from_expr(f, typed)).collect())
}

/// All of the tests found (`None` parts are left out: they hold anyway).
fn all(tests: Vec<Option<Test>>) -> Option<Test> {
    let mut tests: Vec<Test> = tests.into_iter().flatten().collect();
    match tests.len() {
        0 => None,
        1 => tests.pop(),
        _ => Some(Test::All(tests)),
    }
}

/// One of the tests, if each part has one.
fn any(tests: Vec<Option<Test>>) -> Option<Test> {
    let mut tests: Vec<Test> = tests.into_iter().collect::<Option<_>>()?;
    match tests.len() {
        1 => tests.pop(),
        _ => Some(Test::Any(tests)),
    }
}

fn from_expr(e: &Expr, typed: &[TypedColumn]) -> Option<Test> {
    if let Some(f) = filter_of(e) {
        return from_field_expr(f);
    }
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => all(vec![from_expr(left, typed), from_expr(right, typed)]),
            Operator::Or => any(vec![from_expr(left, typed), from_expr(right, typed)]),
            _ => match (left.as_ref(), right.as_ref()) {
                (Expr::Column(col), Expr::Literal(value, _)) => {
                    native(&col.name, *op, value, typed)
                }
                (Expr::Literal(value, _), Expr::Column(col)) => {
                    native(&col.name, op.swap()?, value, typed)
                }
                _ => None,
            },
        },
        // A comparison made two-valued: `coalesce(x, false)` keeps what `x` keeps.
        Expr::ScalarFunction(call)
            if call.name() == "coalesce"
                && call.args.len() == 2
                && call.args[1] == Expr::Literal(ScalarValue::Boolean(Some(false)), None) =>
        {
            from_expr(&call.args[0], typed)
        }
        _ => None,
    }
}

/// A native comparison `column op value` of a span-table column: an intrinsic, or a
/// typed attribute column (`typed`), whose attribute is then looked for wherever the
/// block keeps it.
fn native(column: &str, op: Operator, value: &ScalarValue, typed: &[TypedColumn]) -> Option<Test> {
    let target = match column {
        c::NAME => Target::Name,
        c::STATUS_MESSAGE => Target::StatusMessage,
        c::STATUS_CODE => Target::StatusCode,
        c::KIND => Target::Kind,
        c::DURATION_NANO => Target::Duration,
        _ => {
            let t = typed.iter().find(|t| t.name == column)?;
            let level = match t.scope.as_str() {
                "span" => Level::Span,
                "resource" => Level::Resource,
                _ => return None,
            };
            Target::Attribute {
                level,
                key: t.key.clone(),
            }
        }
    };
    let text = match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s.as_str()),
        _ => None,
    };
    let cmp = match op {
        // The planner anchors the pattern itself.
        Operator::RegexMatch | Operator::RegexNotMatch => {
            Cmp::anchored_regex(text?, op == Operator::RegexMatch)?
        }
        _ => {
            let op = match op {
                Operator::Eq => Op::Eq,
                Operator::NotEq => Op::Neq,
                Operator::Lt => Op::Lt,
                Operator::LtEq => Op::Lte,
                Operator::Gt => Op::Gt,
                Operator::GtEq => Op::Gte,
                _ => return None,
            };
            match value {
                _ if text.is_some() => Cmp::Str(op, text?.to_string()),
                ScalarValue::Int8(Some(v)) => Cmp::Int(op, i64::from(*v)),
                ScalarValue::Int64(Some(v)) => Cmp::Int(op, *v),
                ScalarValue::UInt64(Some(v)) => Cmp::Int(op, i64::try_from(*v).ok()?),
                ScalarValue::Float64(Some(v)) => Cmp::Float(op, *v),
                ScalarValue::Boolean(Some(b)) if op == Op::Eq => Cmp::Bool(*b),
                _ => return None,
            }
        }
    };
    Some(Test::Leaf(target, cmp))
}

fn from_field_expr(e: &FieldExpr) -> Option<Test> {
    let FieldExprKind::Binary { op, lhs, rhs } = &e.kind else {
        return None;
    };
    match op {
        BinaryOp::And => all(vec![from_field_expr(lhs), from_field_expr(rhs)]),
        BinaryOp::Or => any(vec![from_field_expr(lhs), from_field_expr(rhs)]),
        _ => match (&lhs.kind, &rhs.kind) {
            (FieldExprKind::Field(f), FieldExprKind::Literal(l)) => compare(f, *op, l),
            (FieldExprKind::Literal(l), FieldExprKind::Field(f)) if op.is_comparison() => {
                compare(f, mirror(*op), l)
            }
            _ => None,
        },
    }
}

fn order(op: BinaryOp) -> Option<Op> {
    Some(match op {
        BinaryOp::Eq => Op::Eq,
        BinaryOp::Neq => Op::Neq,
        BinaryOp::Lt => Op::Lt,
        BinaryOp::Lte => Op::Lte,
        BinaryOp::Gt => Op::Gt,
        BinaryOp::Gte => Op::Gte,
        _ => return None,
    })
}

/// `field op literal` as TraceQL compares them (see the planner's `compare`): strings
/// by bytes, integers exactly, other numbers (durations with numbers included) as
/// `f64`, statuses and kinds by equality.
fn compare(field: &Field, op: BinaryOp, literal: &Literal) -> Option<Test> {
    let regex = |pattern: &str, matches: bool| {
        Some(Cmp::Regex {
            re: compile_regex(pattern).ok()?,
            matches,
        })
    };
    match field {
        Field::Intrinsic(i) => {
            let (target, cmp) = match (i, literal) {
                // Ids compare as printed (see the planner): trace ids without leading
                // zeros, span ids as 16 digits; a string literal is brought to that form.
                (
                    Intrinsic::TraceId
                    | Intrinsic::LinkTraceId
                    | Intrinsic::SpanId
                    | Intrinsic::ParentId
                    | Intrinsic::LinkSpanId,
                    Literal::String(s),
                ) => {
                    let trimmed = s.trim_start_matches('0');
                    let (target, normal) = match i {
                        Intrinsic::TraceId => (Target::TraceId, trimmed.to_string()),
                        Intrinsic::LinkTraceId => (Target::LinkTraceId, trimmed.to_string()),
                        Intrinsic::SpanId => (Target::SpanId, format!("{trimmed:0>16}")),
                        Intrinsic::ParentId => (Target::ParentId, format!("{trimmed:0>16}")),
                        _ => (Target::LinkSpanId, format!("{trimmed:0>16}")),
                    };
                    let cmp = match op {
                        BinaryOp::Regex => regex(s, true)?,
                        BinaryOp::NotRegex => regex(s, false)?,
                        _ => Cmp::Str(order(op)?, normal),
                    };
                    (target, cmp)
                }
                (Intrinsic::Name | Intrinsic::StatusMessage, Literal::String(s)) => {
                    let target = if *i == Intrinsic::Name {
                        Target::Name
                    } else {
                        Target::StatusMessage
                    };
                    let cmp = match op {
                        BinaryOp::Regex => regex(s, true)?,
                        BinaryOp::NotRegex => regex(s, false)?,
                        _ => Cmp::Str(order(op)?, s.clone()),
                    };
                    (target, cmp)
                }
                (Intrinsic::EventName, Literal::String(s)) => {
                    let cmp = match op {
                        BinaryOp::Regex => regex(s, true)?,
                        BinaryOp::NotRegex => regex(s, false)?,
                        _ => Cmp::Str(order(op)?, s.clone()),
                    };
                    (Target::EventName, cmp)
                }
                (Intrinsic::Status, Literal::Status(s)) if equality(op) => (
                    Target::StatusCode,
                    Cmp::Int(order(op)?, i64::from(status::code(*s))),
                ),
                (Intrinsic::Kind, Literal::Kind(k)) if equality(op) => (
                    Target::Kind,
                    Cmp::Int(order(op)?, i64::from(kind::code(*k))),
                ),
                (Intrinsic::Duration, Literal::Duration(d)) => {
                    (Target::Duration, Cmp::Int(order(op)?, *d))
                }
                (Intrinsic::Duration, Literal::Int(n)) => {
                    (Target::Duration, Cmp::Float(order(op)?, *n as f64))
                }
                (Intrinsic::Duration, Literal::Float(f)) => {
                    (Target::Duration, Cmp::Float(order(op)?, *f))
                }
                _ => return None,
            };
            Some(Test::Leaf(target, cmp))
        }
        Field::Attribute(a) if !a.parent => {
            let levels: &[Level] = match a.scope {
                AttributeScope::Span => &[Level::Span],
                AttributeScope::Resource => &[Level::Resource],
                AttributeScope::Instrumentation => &[Level::Scope],
                AttributeScope::Unscoped => &[Level::Span, Level::Resource, Level::Scope],
                AttributeScope::Event => &[Level::Event],
                AttributeScope::Link => &[Level::Link],
            };
            let cmp = match (op, literal) {
                (BinaryOp::Regex, Literal::String(s)) => regex(s, true)?,
                // `!~` also holds for empty arrays: no value to test.
                (BinaryOp::NotRegex, _) => return None,
                (_, Literal::String(s)) => Cmp::Str(order(op)?, s.clone()),
                (_, Literal::Int(n)) => Cmp::Int(order(op)?, *n),
                (_, Literal::Float(f)) => Cmp::Float(order(op)?, *f),
                (_, Literal::Duration(d)) => Cmp::Float(order(op)?, *d as f64),
                (BinaryOp::Eq, Literal::Bool(b)) => Cmp::Bool(*b),
                _ => return None,
            };
            any(levels
                .iter()
                .map(|&level| {
                    Some(Test::Leaf(
                        Target::Attribute {
                            level,
                            key: a.name.clone(),
                        },
                        cmp.clone(),
                    ))
                })
                .collect())
        }
        _ => None,
    }
}

fn equality(op: BinaryOp) -> bool {
    matches!(op, BinaryOp::Eq | BinaryOp::Neq)
}
