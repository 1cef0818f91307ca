//! Canonical TraceQL text: `Display` for every AST node.
//!
//! The printer uses the fewest parentheses the precedence rules allow, plus two for
//! readability: around `||` inside `&&` (and the reverse), since TraceQL gives them the
//! same precedence, and around negative operands of tighter operators. Spansets are
//! printed with braces, strings with double quotes, intrinsics in their short form
//! (`duration`, not `span:duration`) and durations in h/m/s/ms/us/ns units.

use std::fmt::{self, Display, Formatter, Write};

use crate::ast::precedence::{ATOM, PREFIX_MINUS_OPERAND};
use crate::ast::*;
use crate::duration::format_duration;
use crate::lexer::is_name_terminator;

/// Whether a child of a binary operator at precedence `prec` needs parentheses.
fn needs_parens(child: u8, prec: u8, is_rhs: bool, right_assoc: bool) -> bool {
    child < prec || (child == prec && (is_rhs != right_assoc))
}

/// Writes `text` in parentheses when `paren` is set.
fn wrap(f: &mut Formatter<'_>, paren: bool, text: &dyn Display) -> fmt::Result {
    if paren {
        write!(f, "({text})")
    } else {
        write!(f, "{text}")
    }
}

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.body {
            QueryBody::Search(p) => write!(f, "{p}")?,
            QueryBody::Metrics(m) => write!(f, "{m}")?,
        }
        if !self.hints.is_empty() {
            f.write_str(" with(")?;
            for (i, h) in self.hints.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{h}")?;
            }
            f.write_char(')')?;
        }
        Ok(())
    }
}

impl Display for Hint {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

impl Display for Pipeline {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{stage}")?;
        }
        Ok(())
    }
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Spanset(e) => write!(f, "{e}"),
            Stage::ScalarFilter(s) => write!(f, "{s}"),
            Stage::GroupBy { expr, .. } => write!(f, "by({expr})"),
            Stage::Select { fields, .. } => {
                f.write_str("select(")?;
                write_list(f, fields)?;
                f.write_char(')')
            }
            Stage::Coalesce { .. } => f.write_str("coalesce()"),
        }
    }
}

fn write_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// True when `child` is the other one of `&&`/`||` under `op`.
fn mixes_and_or<T: PartialEq>(op: T, child: Option<T>, and: T, or: T) -> bool {
    match child {
        Some(c) => (op == and && c == or) || (op == or && c == and),
        None => false,
    }
}

impl SpansetExpr {
    fn precedence(&self) -> u8 {
        match &self.kind {
            SpansetExprKind::Binary { op, .. } => op.precedence(),
            _ => ATOM,
        }
    }

    fn op(&self) -> Option<SpansetOp> {
        match &self.kind {
            SpansetExprKind::Binary { op, .. } => Some(*op),
            _ => None,
        }
    }
}

impl Display for SpansetExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SpansetExprKind::Filter(None) => f.write_str("{ }"),
            SpansetExprKind::Filter(Some(e)) => write!(f, "{{ {e} }}"),
            SpansetExprKind::Pipeline(p) => write!(f, "({p})"),
            SpansetExprKind::Binary { op, lhs, rhs } => {
                let p = op.precedence();
                let mixes =
                    |e: &SpansetExpr| mixes_and_or(*op, e.op(), SpansetOp::And, SpansetOp::Or);
                wrap(
                    f,
                    needs_parens(lhs.precedence(), p, false, false) || mixes(lhs),
                    lhs,
                )?;
                write!(f, " {} ", op.as_str())?;
                wrap(
                    f,
                    needs_parens(rhs.precedence(), p, true, false) || mixes(rhs),
                    rhs,
                )
            }
        }
    }
}

impl FieldExpr {
    fn precedence(&self) -> u8 {
        match &self.kind {
            FieldExprKind::Binary { op, .. } => op.precedence(),
            FieldExprKind::Unary { op, .. } => op.precedence(),
            _ => ATOM,
        }
    }

    fn op(&self) -> Option<BinaryOp> {
        match &self.kind {
            FieldExprKind::Binary { op, .. } => Some(*op),
            _ => None,
        }
    }
}

impl Display for FieldExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FieldExprKind::Literal(l) => write!(f, "{l}"),
            FieldExprKind::Field(x) => write!(f, "{x}"),
            FieldExprKind::Unary { op, expr } => {
                f.write_str(op.as_str())?;
                let is_unary = matches!(expr.kind, FieldExprKind::Unary { .. });
                wrap(
                    f,
                    !is_unary && expr.precedence() < op.operand_precedence(),
                    expr,
                )
            }
            FieldExprKind::Binary { op, lhs, rhs } => {
                let p = op.precedence();
                let right = op.is_right_assoc();
                let mixes = |e: &FieldExpr| mixes_and_or(*op, e.op(), BinaryOp::And, BinaryOp::Or);
                wrap(
                    f,
                    needs_parens(lhs.precedence(), p, false, right) || mixes(lhs),
                    lhs,
                )?;
                write!(f, " {} ", op.as_str())?;
                wrap(
                    f,
                    needs_parens(rhs.precedence(), p, true, right) || mixes(rhs),
                    rhs,
                )
            }
        }
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Int(i64::MIN) => f.write_str("minInt"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Float(x) => write_float(f, *x),
            Literal::Duration(ns) => f.write_str(&format_duration(*ns)),
            Literal::String(s) => write_string(f, s),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Nil => f.write_str("nil"),
            Literal::Status(s) => write!(f, "{s}"),
            Literal::Kind(k) => write!(f, "{k}"),
        }
    }
}

/// Floats print so that they read back as the same float: `1.0`, `0.5`, `1e300`.
fn write_float(f: &mut Formatter<'_>, x: f64) -> fmt::Result {
    write!(f, "{x:?}")
}

/// A double-quoted string with Go escapes where needed.
fn write_string(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
            c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl Display for Status {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for SpanKind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for Field {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Field::Attribute(a) => write!(f, "{a}"),
            Field::Intrinsic(i) => write!(f, "{i}"),
        }
    }
}

impl Display for FieldRef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.field)
    }
}

impl Display for Intrinsic {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.canonical_name())
    }
}

impl Display for Attribute {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.parent {
            f.write_str("parent.")?;
        }
        f.write_str(match (self.scope, self.parent) {
            (AttributeScope::Unscoped, false) => ".",
            (AttributeScope::Unscoped, true) => "",
            (AttributeScope::Span, _) => "span.",
            (AttributeScope::Resource, _) => "resource.",
            (AttributeScope::Event, _) => "event.",
            (AttributeScope::Link, _) => "link.",
            (AttributeScope::Instrumentation, _) => "instrumentation.",
        })?;
        let name = &self.name;
        let quote = name.is_empty()
            || name.contains(is_name_terminator)
            || (self.scope == AttributeScope::Unscoped
                && !self.parent
                && name.starts_with(|c: char| c.is_ascii_digit()))
            || (self.scope == AttributeScope::Unscoped
                && self.parent
                && (name.starts_with("span.") || name.starts_with("resource.")));
        if !quote {
            return f.write_str(name);
        }
        f.write_char('"')?;
        for c in name.chars() {
            if c == '"' || c == '\\' {
                f.write_char('\\')?;
            }
            f.write_char(c)?;
        }
        f.write_char('"')
    }
}

impl Display for ScalarFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.lhs, self.op.as_str(), self.rhs)
    }
}

impl Display for ComparisonOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ScalarExpr {
    fn precedence(&self) -> u8 {
        match &self.kind {
            ScalarExprKind::Binary { op, .. } => op.precedence(),
            ScalarExprKind::Neg(_) => PREFIX_MINUS_OPERAND,
            _ => ATOM,
        }
    }
}

impl Display for ScalarExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ScalarExprKind::Aggregate(a) => write!(f, "{a}"),
            ScalarExprKind::Literal(l) => write!(f, "{l}"),
            ScalarExprKind::Neg(e) => {
                f.write_char('-')?;
                let is_neg = matches!(e.kind, ScalarExprKind::Neg(_));
                wrap(f, !is_neg && e.precedence() < PREFIX_MINUS_OPERAND, e)
            }
            ScalarExprKind::Binary { op, lhs, rhs } => {
                let p = op.precedence();
                let right = op.is_right_assoc();
                wrap(f, needs_parens(lhs.precedence(), p, false, right), lhs)?;
                write!(f, " {} ", op.as_str())?;
                wrap(f, needs_parens(rhs.precedence(), p, true, right), rhs)
            }
            ScalarExprKind::Pipeline {
                pipeline,
                aggregate,
            } => write!(f, "({pipeline} | {aggregate})"),
        }
    }
}

impl Display for Aggregate {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.arg() {
            Some(arg) => write!(f, "{}({arg})", self.name()),
            None => write!(f, "{}()", self.name()),
        }
    }
}

impl MetricsExpr {
    fn precedence(&self) -> u8 {
        match &self.kind {
            MetricsExprKind::Binary { op, .. } => op.precedence(),
            MetricsExprKind::Constant(c) => c.precedence(),
            MetricsExprKind::Query(_) | MetricsExprKind::Stage { .. } => 0,
        }
    }
}

impl Display for MetricsExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            MetricsExprKind::Query(q) => write!(f, "{q}"),
            MetricsExprKind::Constant(c) => write!(f, "{c}"),
            MetricsExprKind::Binary { op, lhs, rhs } => {
                let p = op.precedence();
                wrap(f, needs_parens(lhs.precedence(), p, false, false), lhs)?;
                write!(f, " {} ", op.as_str())?;
                wrap(f, needs_parens(rhs.precedence(), p, true, false), rhs)
            }
            MetricsExprKind::Stage { input, stage } => write!(f, "{input}{stage}"),
        }
    }
}

impl Display for SecondStage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SecondStage::TopK(n) => write!(f, " | topk({n})"),
            SecondStage::BottomK(n) => write!(f, " | bottomk({n})"),
            SecondStage::Filter { op, threshold } => write!(f, " {op} {threshold}"),
        }
    }
}

impl Display for MetricsQuery {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} | {}", self.pipeline, self.function)?;
        if !self.by.is_empty() {
            f.write_str(" by (")?;
            write_list(f, &self.by)?;
            f.write_char(')')?;
        }
        Ok(())
    }
}

impl Display for MetricsFunction {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        f.write_char('(')?;
        match self {
            MetricsFunction::Rate | MetricsFunction::CountOverTime => {}
            MetricsFunction::QuantileOverTime { field, quantiles } => {
                write!(f, "{field}")?;
                for q in quantiles {
                    f.write_str(", ")?;
                    write_float(f, *q)?;
                }
            }
            MetricsFunction::Compare {
                filter,
                top_n,
                range,
            } => {
                match filter {
                    Some(e) => write!(f, "{{ {e} }}")?,
                    None => f.write_str("{ }")?,
                }
                if let Some(n) = top_n {
                    write!(f, ", {n}")?;
                }
                if let Some((start, end)) = range {
                    write!(f, ", {start}, {end}")?;
                }
            }
            other => {
                if let Some(field) = other.field() {
                    write!(f, "{field}")?;
                }
            }
        }
        f.write_char(')')
    }
}
