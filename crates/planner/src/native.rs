//! Field expressions that DataFusion can evaluate natively, with TraceQL's semantics
//! kept exactly: comparisons of intrinsics and typed attribute columns with literals,
//! `nil` tests, regexes on strings, string arrays equal to a string (any element
//! equal), and `&&`, `||`, `!` over those. Such filters run vectorised and (but for
//! arrays) reach the Parquet reader (statistics, page index, late materialisation).
//! Anything else (arithmetic, events and links, ids, other tests of arrays,
//! attributes that may sit in a fallback list) is left to the field-expression
//! function of [`crate::eval`].
//!
//! Every expression produced is two-valued (never null), so `!` and the boolean
//! operators mean what they mean in TraceQL.

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::functions_nested::expr_fn::array_has;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, binary_expr, cast};
use datafusion::prelude::{coalesce, ident, lit};
use traceql_parser::ast::{
    Attribute, AttributeScope, BinaryOp, Field, FieldExpr, FieldExprKind, Intrinsic, Literal,
    UnaryOp,
};

use crate::eval::value::mirror;
use traceql_format::codes::{kind, status};
use traceql_format::facts::Facts;
use traceql_format::schema::columns as c;

/// `expr` as a native boolean expression over the span table, if it can be one.
pub fn native_filter(expr: &FieldExpr, schema: &Schema, facts: &Facts) -> Option<Expr> {
    Native { schema, facts }.boolean(expr)
}

struct Native<'a> {
    schema: &'a Schema,
    facts: &'a Facts,
}

/// The plain column holding `field`'s only value for every span, and what it holds;
/// `None` when the field may live elsewhere (fallback lists, several scopes).
pub fn native_column(field: &Field, schema: &Schema, facts: &Facts) -> Option<(Expr, Holds)> {
    let mut columns = Native { schema, facts }.columns(field)?;
    if columns.len() != 1 {
        return None;
    }
    let (name, holds) = columns.remove(0);
    Some((ident(name.as_str()), holds))
}

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// `Utf8` text.
    Str,
    /// `Int64`.
    Int,
    /// `UInt64` (durations in nanoseconds).
    UInt,
    /// `Float64`.
    Float,
    /// `Boolean`.
    Bool,
    /// `Int8` status codes.
    Status,
    /// `Int8` span kinds.
    Kind,
}

fn operator(op: BinaryOp) -> Option<Operator> {
    Some(match op {
        BinaryOp::Eq => Operator::Eq,
        BinaryOp::Neq => Operator::NotEq,
        BinaryOp::Lt => Operator::Lt,
        BinaryOp::Lte => Operator::LtEq,
        BinaryOp::Gt => Operator::Gt,
        BinaryOp::Gte => Operator::GtEq,
        _ => return None,
    })
}

/// A comparison that is null when the column is: made two-valued.
fn definite(e: Expr) -> Expr {
    coalesce(vec![e, lit(false)])
}

/// `e` as a filter: it keeps the same rows, without the two-valued wrappers of
/// [`definite`] reached through `AND` and `OR`, where a null and a false both drop the
/// row (under `NOT` they differ, so those stay). DataFusion rewrites each wrapper as
/// `c IS NOT NULL AND c`, two more predicates for the Parquet reader to apply.
pub fn as_filter(e: Expr) -> Expr {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: op @ (Operator::And | Operator::Or),
            right,
        }) => binary_expr(as_filter(*left), op, as_filter(*right)),
        Expr::ScalarFunction(call)
            if call.name() == "coalesce" && call.args.len() == 2 && call.args[1] == lit(false) =>
        {
            let mut args = call.args;
            args.swap_remove(0)
        }
        other => other,
    }
}

impl Native<'_> {
    fn boolean(&self, expr: &FieldExpr) -> Option<Expr> {
        match &expr.kind {
            FieldExprKind::Literal(Literal::Bool(b)) => Some(lit(*b)),
            FieldExprKind::Unary {
                op: UnaryOp::Not,
                expr,
            } => Some(!self.boolean(expr)?),
            FieldExprKind::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => Some(self.boolean(lhs)?.and(self.boolean(rhs)?)),
            FieldExprKind::Binary {
                op: BinaryOp::Or,
                lhs,
                rhs,
            } => Some(self.boolean(lhs)?.or(self.boolean(rhs)?)),
            FieldExprKind::Binary { op, lhs, rhs } => {
                let nil = |e: &FieldExpr| matches!(e.kind, FieldExprKind::Literal(Literal::Nil));
                match (&lhs.kind, &rhs.kind) {
                    _ if nil(lhs) && nil(rhs) => Some(lit(false)),
                    (FieldExprKind::Field(f), _) if nil(rhs) => self.exists(f, *op),
                    (_, FieldExprKind::Field(f)) if nil(lhs) => self.exists(f, *op),
                    (FieldExprKind::Field(f), FieldExprKind::Literal(l)) => self.compare(f, *op, l),
                    (FieldExprKind::Literal(l), FieldExprKind::Field(f)) if op.is_comparison() => {
                        self.compare(f, mirror(*op), l)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The columns holding `field`, with what they hold; `None` if the field is not
    /// (only) in plain columns.
    fn columns(&self, field: &Field) -> Option<Vec<(String, Holds)>> {
        let columns = self.columns_or_lists(field, false)?;
        Some(
            columns
                .into_iter()
                .map(|(name, holds, _)| (name, holds))
                .collect(),
        )
    }

    /// As [`Self::columns`], and with `lists`, also the columns of string arrays (as
    /// holding [`Holds::Str`], marked `true`).
    fn columns_or_lists(&self, field: &Field, lists: bool) -> Option<Vec<(String, Holds, bool)>> {
        let one = |name: &str, holds| Some(vec![(name.to_string(), holds, false)]);
        match field {
            Field::Intrinsic(i) => match i {
                Intrinsic::Name => one(c::NAME, Holds::Str),
                Intrinsic::StatusMessage => one(c::STATUS_MESSAGE, Holds::Str),
                Intrinsic::RootName => one(c::TRACE_ROOT_NAME, Holds::Str),
                Intrinsic::RootService => one(c::TRACE_ROOT_SERVICE, Holds::Str),
                Intrinsic::InstrumentationName => one(c::INSTRUMENTATION_NAME, Holds::Str),
                Intrinsic::InstrumentationVersion => one(c::INSTRUMENTATION_VERSION, Holds::Str),
                Intrinsic::Status => one(c::STATUS_CODE, Holds::Status),
                Intrinsic::Kind => one(c::KIND, Holds::Kind),
                Intrinsic::Duration => one(c::DURATION_NANO, Holds::UInt),
                Intrinsic::TraceDuration => one(c::TRACE_DURATION_NANO, Holds::UInt),
                Intrinsic::NestedSetLeft => one(c::NESTED_SET_LEFT, Holds::Int),
                Intrinsic::NestedSetRight => one(c::NESTED_SET_RIGHT, Holds::Int),
                Intrinsic::NestedSetParent => one(c::NESTED_SET_PARENT, Holds::Int),
                _ => None,
            },
            Field::Attribute(a) => self.attribute_columns(a, lists),
        }
    }

    fn attribute_columns(&self, a: &Attribute, lists: bool) -> Option<Vec<(String, Holds, bool)>> {
        if a.parent {
            return None;
        }
        let scopes: &[AttributeScope] = match a.scope {
            AttributeScope::Span => &[AttributeScope::Span],
            AttributeScope::Resource => &[AttributeScope::Resource],
            AttributeScope::Unscoped => &[
                AttributeScope::Span,
                AttributeScope::Resource,
                AttributeScope::Instrumentation,
            ],
            AttributeScope::Instrumentation => &[AttributeScope::Instrumentation],
            AttributeScope::Event | AttributeScope::Link => return None,
        };
        let mut out = Vec::new();
        let mut levels = 0;
        for &scope in scopes {
            if self.facts.may_be_in_fallback(scope, &a.name) {
                return None;
            }
            // Unscoped `.x` reads the first level with a value; comparing the columns
            // of several levels at once would also read the later ones.
            if self.facts.typed_columns(scope, &a.name).next().is_some() {
                levels += 1;
                if levels > 1 {
                    return None;
                }
            }
            for t in self.facts.typed_columns(scope, &a.name) {
                let (holds, list) = match self.schema.field_with_name(&t.column).ok()?.data_type() {
                    DataType::Utf8 => (Holds::Str, false),
                    DataType::Int64 => (Holds::Int, false),
                    DataType::Float64 => (Holds::Float, false),
                    DataType::Boolean => (Holds::Bool, false),
                    DataType::List(item) if lists && item.data_type() == &DataType::Utf8 => {
                        (Holds::Str, true)
                    }
                    _ => return None,
                };
                out.push((t.column.clone(), holds, list));
            }
        }
        Some(out)
    }

    fn exists(&self, field: &Field, op: BinaryOp) -> Option<Expr> {
        let columns = self.columns(field)?;
        let present = columns
            .iter()
            .map(|(name, _)| ident(name.as_str()).is_not_null())
            .reduce(Expr::or)
            .unwrap_or(lit(false));
        match op {
            BinaryOp::Neq => Some(present),
            BinaryOp::Eq => Some(!present),
            _ => None,
        }
    }

    fn compare(&self, field: &Field, op: BinaryOp, literal: &Literal) -> Option<Expr> {
        // An array equals a string when any of its elements does (`!=`, no element
        // equal, is left to the field-expression function).
        let text = match (op, literal) {
            (BinaryOp::Eq, Literal::String(text)) => Some(text),
            _ => None,
        };
        let columns = self.columns_or_lists(field, text.is_some())?;
        let mut any: Option<Expr> = None;
        for (name, holds, list) in columns {
            let e = match text {
                Some(text) if list => {
                    Some(definite(array_has(ident(name.as_str()), lit(text.clone()))))
                }
                _ => comparison(ident(name.as_str()), holds, op, literal)?,
            };
            if let Some(e) = e {
                any = Some(match any {
                    Some(a) => a.or(e),
                    None => e,
                });
            }
        }
        Some(any.unwrap_or(lit(false)))
    }
}

/// `column op literal` for a column holding `holds`: `Some(None)` when the types never
/// compare (false), `None` when this module does not handle the case.
fn comparison(column: Expr, holds: Holds, op: BinaryOp, literal: &Literal) -> Option<Option<Expr>> {
    if let BinaryOp::Regex | BinaryOp::NotRegex = op {
        let (Holds::Str, Literal::String(pattern)) = (holds, literal) else {
            return Some(None);
        };
        let operator = if op == BinaryOp::Regex {
            Operator::RegexMatch
        } else {
            Operator::RegexNotMatch
        };
        let anchored = format!("^(?s:{pattern})$");
        return Some(Some(definite(binary_expr(column, operator, lit(anchored)))));
    }
    let operator = operator(op)?;
    let equality = matches!(op, BinaryOp::Eq | BinaryOp::Neq);
    let e = match (holds, literal) {
        (Holds::Str, Literal::String(s)) => binary_expr(column, operator, lit(s.clone())),
        (Holds::Bool, Literal::Bool(b)) if equality => binary_expr(column, operator, lit(*b)),
        (Holds::Status, Literal::Status(s)) if equality => {
            binary_expr(column, operator, lit(status::code(*s)))
        }
        (Holds::Kind, Literal::Kind(k)) if equality => {
            binary_expr(column, operator, lit(kind::code(*k)))
        }
        (Holds::Int, Literal::Int(v) | Literal::Duration(v)) => {
            binary_expr(cast(column, DataType::Int64), operator, lit(*v))
        }
        (Holds::UInt, Literal::Int(v) | Literal::Duration(v)) if *v >= 0 => {
            binary_expr(column, operator, lit(*v as u64))
        }
        (Holds::UInt, Literal::Int(_) | Literal::Duration(_)) => {
            // Every duration is at least 0, so greater than any negative number.
            return Some(Some(lit(matches!(
                op,
                BinaryOp::Neq | BinaryOp::Gt | BinaryOp::Gte
            ))));
        }
        (Holds::Int | Holds::UInt | Holds::Float, Literal::Float(f)) => {
            binary_expr(cast(column, DataType::Float64), operator, lit(*f))
        }
        (Holds::Float, Literal::Int(v) | Literal::Duration(v)) => {
            binary_expr(column, operator, lit(*v as f64))
        }
        _ => return Some(None),
    };
    Some(Some(definite(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_lose_the_wrappers_under_and_and_or_but_not_under_not() {
        let a = || ident("a").eq(lit(1));
        let b = || ident("b").eq(lit(2));
        let c = || ident("c").eq(lit(3));
        let wrapped = definite(a()).and(definite(b()).or(!definite(c())));
        assert_eq!(as_filter(wrapped), a().and(b().or(!definite(c()))));
        // Anything else is left as it is.
        let other = coalesce(vec![a(), lit(true)]);
        assert_eq!(as_filter(other.clone()), other);
    }
}
