//! Deciding from a block's [`Facts`] alone that a search cannot match anything in it,
//! so the block is not read at all: every `{ … }` filter of the query is provably false
//! for every span of the block (an attribute the block lacks, a value its dictionary
//! lacks, a literal of a type none of its columns has).
//!
//! The analysis is conservative: "unknown" whenever in doubt.

use traceql_parser::ast::{
    Attribute, AttributeScope, BinaryOp, Field, FieldExpr, FieldExprKind, Intrinsic, Literal,
    Pipeline, SpansetExpr, SpansetExprKind, Stage,
};

use traceql_format::facts::Facts;
use traceql_format::schema::columns;
use traceql_format::value::ValueType;

/// Whether `pipeline` (of a search, or the first part of a metrics query) may select
/// spans of a block with `facts`.
pub fn may_match(pipeline: &Pipeline, facts: &Facts) -> bool {
    let mut filters = Vec::new();
    if needs_all_spans(pipeline, &mut filters) {
        return true;
    }
    !filters.iter().all(|f| definitely_false(f, facts))
}

/// Collects the filters of `pipeline`; true if some stage sees spans no filter chose
/// (a first stage that is not a spanset expression, or `{ }`).
fn needs_all_spans<'a>(pipeline: &'a Pipeline, filters: &mut Vec<&'a FieldExpr>) -> bool {
    let mut all = false;
    for (i, stage) in pipeline.stages.iter().enumerate() {
        match stage {
            Stage::Spanset(e) => all |= spanset_filters(e, filters),
            _ if i == 0 => all = true,
            _ => {}
        }
    }
    all
}

fn spanset_filters<'a>(expr: &'a SpansetExpr, filters: &mut Vec<&'a FieldExpr>) -> bool {
    match &expr.kind {
        SpansetExprKind::Filter(None) => true,
        SpansetExprKind::Filter(Some(f)) => {
            filters.push(f);
            false
        }
        SpansetExprKind::Binary { lhs, rhs, .. } => {
            let l = spanset_filters(lhs, filters);
            spanset_filters(rhs, filters) || l
        }
        SpansetExprKind::Pipeline(p) => needs_all_spans(p, filters),
    }
}

/// Whether `expr` is false for every span of a block with `facts`.
pub fn definitely_false(expr: &FieldExpr, facts: &Facts) -> bool {
    match &expr.kind {
        FieldExprKind::Literal(Literal::Bool(false)) => true,
        FieldExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => definitely_false(lhs, facts) || definitely_false(rhs, facts),
        FieldExprKind::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
        } => definitely_false(lhs, facts) && definitely_false(rhs, facts),
        FieldExprKind::Binary { op, lhs, rhs }
            if op.is_comparison() || matches!(op, BinaryOp::Regex | BinaryOp::NotRegex) =>
        {
            let (field, literal) = match (&lhs.kind, &rhs.kind) {
                (FieldExprKind::Field(f), FieldExprKind::Literal(l)) => (f, l),
                (FieldExprKind::Literal(l), FieldExprKind::Field(f)) => (f, l),
                _ => return false,
            };
            if *literal == Literal::Nil {
                // `x != nil` is false when the block has no value of x anywhere.
                return *op == BinaryOp::Neq
                    && matches!(field, Field::Attribute(a) if absent(a, facts));
            }
            match field {
                Field::Attribute(a) => attribute_never(a, *op, literal, facts),
                Field::Intrinsic(Intrinsic::Name) => {
                    *op == BinaryOp::Eq && string_not_in(columns::NAME, literal, facts)
                }
                Field::Intrinsic(_) => false,
            }
        }
        _ => false,
    }
}

/// The scopes whose columns an attribute reference reads, if they can be known.
fn scopes(a: &Attribute) -> Option<&'static [AttributeScope]> {
    if a.parent {
        return None;
    }
    Some(match a.scope {
        AttributeScope::Span => &[AttributeScope::Span],
        AttributeScope::Resource => &[AttributeScope::Resource],
        AttributeScope::Instrumentation => &[AttributeScope::Instrumentation],
        AttributeScope::Unscoped => &[
            AttributeScope::Span,
            AttributeScope::Resource,
            AttributeScope::Instrumentation,
        ],
        AttributeScope::Event | AttributeScope::Link => return None,
    })
}

/// Whether the block has no value of attribute `a` at all.
fn absent(a: &Attribute, facts: &Facts) -> bool {
    scopes(a).is_some_and(|scopes| {
        scopes.iter().all(|&s| {
            facts.typed_columns(s, &a.name).next().is_none()
                && !facts.may_be_in_fallback(s, &a.name)
        })
    })
}

/// Whether `a op literal` is false for every span: no fallback entries for the key,
/// and every typed column either has another type family than the literal or (for
/// `=` on strings) a dictionary without the literal.
fn attribute_never(a: &Attribute, op: BinaryOp, literal: &Literal, facts: &Facts) -> bool {
    let Some(scopes) = scopes(a) else {
        return false;
    };
    scopes.iter().all(|&scope| {
        !facts.may_be_in_fallback(scope, &a.name)
            && facts.typed_columns(scope, &a.name).all(|t| {
                let family = type_family(t.value_type);
                match (family, literal) {
                    (Family::Str, Literal::String(_)) => {
                        op == BinaryOp::Eq && string_not_in(&t.column, literal, facts)
                    }
                    (Family::Str, _) => true,
                    (
                        Family::Number,
                        Literal::Int(_) | Literal::Float(_) | Literal::Duration(_),
                    ) => false,
                    (Family::Bool, Literal::Bool(_)) => false,
                    (Family::Array, _) => false,
                    _ => true,
                }
            })
    })
}

enum Family {
    Str,
    Number,
    Bool,
    Array,
}

/// The type family of a typed column's values.
fn type_family(value_type: ValueType) -> Family {
    match value_type {
        ValueType::Str => Family::Str,
        ValueType::Int | ValueType::Float => Family::Number,
        ValueType::Bool => Family::Bool,
        _ => Family::Array,
    }
}

fn string_not_in(column: &str, literal: &Literal, facts: &Facts) -> bool {
    let Literal::String(value) = literal else {
        return false;
    };
    facts
        .dictionaries
        .get(column)
        .is_some_and(|values| !values.contains(value))
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use traceql_format::schema::TypedAttribute;
    use traceql_parser::ast::QueryBody;

    fn facts() -> Facts {
        Facts {
            typed: vec![TypedAttribute {
                scope: AttributeScope::Resource,
                key: "service.name".into(),
                value_type: ValueType::Str,
                column: "resource.service.name".into(),
            }],
            fallback: Some(HashSet::from([(
                AttributeScope::Span,
                "http.route".to_string(),
            )])),
            dictionaries: HashMap::from([
                (
                    "resource.service.name".to_string(),
                    HashSet::from(["api".to_string()]),
                ),
                ("name".to_string(), HashSet::from(["GET /".to_string()])),
            ]),
            missing_child_counts: false,
        }
    }

    fn may(q: &str) -> bool {
        let query = traceql_parser::parse_and_validate(q).unwrap();
        let QueryBody::Search(pipeline) = &query.body else {
            panic!("{q} is not a search");
        };
        may_match(pipeline, &facts())
    }

    #[test]
    fn values_and_keys_the_block_lacks_skip_it() {
        assert!(!may(r#"{ resource.service.name = "checkout" }"#));
        assert!(!may(r#"{ name = "POST /" }"#));
        assert!(!may(r#"{ span.nope = 1 } >> { .other != nil }"#));
        assert!(!may(r#"{ resource.service.name = 3 }"#));
    }

    #[test]
    fn anything_uncertain_reads_the_block() {
        assert!(may(r#"{ resource.service.name = "api" }"#));
        assert!(may(r#"{ span.http.route = "/x" }"#));
        assert!(may(r#"{ resource.service.name != "checkout" }"#));
        assert!(may(r#"{ name = "POST /" } || { status = error }"#));
        assert!(may(r#"count() > 1 | { name = "POST /" }"#));
        assert!(may(r#"{ } !> { name = "POST /" }"#));
    }
}
