//! Semantic checks after parsing: operand types, regexes, `nil` rules, aggregate and
//! metrics arguments, and constructs that are valid TraceQL but not supported yet.
//!
//! Ordinary validation errors take priority over "unsupported": a query that is wrong
//! in any way reports what is wrong, and only a query that is otherwise valid reports
//! that part of it is not supported yet.

use std::fmt;

use crate::ast::visit::Visitor;
use crate::ast::*;
use crate::{Error, Span};

/// Checks a parsed query as TraceQL (Tempo's rules). Returns a
/// [`crate::ErrorKind::Validation`] error for queries that mean nothing, or an
/// [`crate::ErrorKind::Unsupported`] error naming a construct that is valid TraceQL but
/// not supported yet (by Tempo either).
pub fn validate(query: &Query) -> Result<(), Error> {
    let v = Validator::check(query)?;
    match v.unsupported {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Checks a parsed query for what the engine runs: everything [`validate`] checks, and
/// then the valid TraceQL that Tempo runs but this engine does not yet (`span:childCount`,
/// `by()` inside a spanset operand), as an [`crate::ErrorKind::Unsupported`] error with
/// its position. `traceql fmt` accepts such queries; running them stops here.
pub fn check_supported(query: &Query) -> Result<(), Error> {
    let v = Validator::check(query)?;
    match v.unsupported.or(v.engine_unsupported) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// The static type of a field expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Int,
    Float,
    Duration,
    String,
    Bool,
    Status,
    Kind,
    Nil,
    /// An attribute: its type is only known per span.
    Unknown,
}

impl Type {
    fn is_numeric(self) -> bool {
        matches!(self, Type::Int | Type::Float | Type::Duration)
    }

    fn numeric_or_unknown(self) -> bool {
        self.is_numeric() || self == Type::Unknown
    }

    fn of_literal(l: &Literal) -> Type {
        match l {
            Literal::Int(_) => Type::Int,
            Literal::Float(_) => Type::Float,
            Literal::Duration(_) => Type::Duration,
            Literal::String(_) => Type::String,
            Literal::Bool(_) => Type::Bool,
            Literal::Nil => Type::Nil,
            Literal::Status(_) => Type::Status,
            Literal::Kind(_) => Type::Kind,
        }
    }

    fn of_intrinsic(i: Intrinsic) -> Type {
        use Intrinsic::*;
        match i {
            Name | StatusMessage | SpanId | ParentId | TraceId | RootName | RootService
            | EventName | LinkTraceId | LinkSpanId => Type::String,
            Duration | TraceDuration | EventTimeSinceStart => Type::Duration,
            Status => Type::Status,
            Kind => Type::Kind,
            ChildCount | NestedSetLeft | NestedSetRight | NestedSetParent => Type::Int,
            InstrumentationName | InstrumentationVersion | Parent => Type::Unknown,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Int => "an integer",
            Type::Float => "a float",
            Type::Duration => "a duration",
            Type::String => "a string",
            Type::Bool => "a boolean",
            Type::Status => "a status",
            Type::Kind => "a span kind",
            Type::Nil => "nil",
            Type::Unknown => "an attribute",
        })
    }
}

#[derive(Default)]
struct Validator {
    /// The first construct met that TraceQL does not support yet, reported if nothing
    /// else is wrong.
    unsupported: Option<Error>,
    /// The first construct met that this engine does not run yet (see
    /// [`check_supported`]).
    engine_unsupported: Option<Error>,
    /// How deep inside spanset operands (parenthesised pipelines) the check is.
    operand_depth: usize,
}

impl Validator {
    /// Runs every check over `query`.
    fn check(query: &Query) -> Result<Validator, Error> {
        let mut v = Validator::default();
        match &query.body {
            QueryBody::Search(p) => v.pipeline(p)?,
            QueryBody::Metrics(m) => v.metrics(m)?,
        }
        Ok(v)
    }

    fn unsupported(&mut self, what: &str, span: Span) {
        if self.unsupported.is_none() {
            self.unsupported = Some(Error::unsupported(what, span));
        }
    }

    fn engine_unsupported(&mut self, what: &str, span: Span) {
        if self.engine_unsupported.is_none() {
            self.engine_unsupported = Some(Error::unsupported(what, span));
        }
    }

    fn pipeline(&mut self, p: &Pipeline) -> Result<(), Error> {
        p.stages.iter().try_for_each(|s| self.stage(s))
    }

    fn stage(&mut self, stage: &Stage) -> Result<(), Error> {
        match stage {
            Stage::Spanset(e) => self.spanset(e),
            Stage::ScalarFilter(s) => self.scalar_filter(s),
            Stage::GroupBy { expr, span } => {
                self.field(expr)?;
                require_span_reference(expr, "by()")?;
                if self.operand_depth > 0 {
                    self.engine_unsupported("`by()` inside a spanset operand", *span);
                }
                Ok(())
            }
            Stage::Select { fields, .. } => {
                fields.iter().for_each(|f| self.field_ref(f));
                Ok(())
            }
            Stage::Coalesce { .. } => Ok(()),
        }
    }

    fn spanset(&mut self, e: &SpansetExpr) -> Result<(), Error> {
        match &e.kind {
            SpansetExprKind::Filter(None) => Ok(()),
            SpansetExprKind::Filter(Some(expr)) => self.filter(expr),
            SpansetExprKind::Binary { lhs, rhs, .. } => {
                self.spanset(lhs)?;
                self.spanset(rhs)
            }
            SpansetExprKind::Pipeline(p) => {
                self.operand_depth += 1;
                let checked = self.pipeline(p);
                self.operand_depth -= 1;
                checked
            }
        }
    }

    /// The condition of `{ … }`: must be a boolean (or an attribute).
    fn filter(&mut self, expr: &FieldExpr) -> Result<(), Error> {
        let ty = self.field(expr)?;
        if matches!(ty, Type::Bool | Type::Unknown) {
            return Ok(());
        }
        let err = Error::validation(
            format!("a spanset filter must be a condition, but this is {ty}"),
            expr.span,
            "not true or false",
        );
        Err(match ty {
            Type::Status => err.with_hint("compare it: { status = error }"),
            Type::Kind => err.with_hint("compare it: { kind = server }"),
            _ => err.with_hint("compare it with something, e.g. { .a = 1 }"),
        })
    }

    fn field_ref(&mut self, f: &FieldRef) {
        self.field_kind(&f.field, f.span);
    }

    fn field_kind(&mut self, field: &Field, span: Span) -> Type {
        match field {
            Field::Attribute(a) => {
                if a.parent {
                    self.unsupported("the `parent.` attribute scope", span);
                }
                Type::Unknown
            }
            Field::Intrinsic(i) => {
                if *i == Intrinsic::Parent {
                    self.unsupported("the `parent` intrinsic", span);
                }
                Type::of_intrinsic(*i)
            }
        }
    }

    /// The static type of a field expression, checking its operators on the way.
    fn field(&mut self, e: &FieldExpr) -> Result<Type, Error> {
        match &e.kind {
            FieldExprKind::Literal(l) => Ok(Type::of_literal(l)),
            FieldExprKind::Field(field) => Ok(self.field_kind(field, e.span)),
            FieldExprKind::Unary { op, expr } => {
                let ty = self.field(expr)?;
                match op {
                    UnaryOp::Neg if ty.numeric_or_unknown() => Ok(ty),
                    UnaryOp::Not if matches!(ty, Type::Bool | Type::Unknown) => Ok(Type::Bool),
                    UnaryOp::Neg => Err(Error::validation(
                        format!("`-` needs a number, but this is {ty}"),
                        expr.span,
                        "not a number",
                    )),
                    UnaryOp::Not => Err(Error::validation(
                        format!("`!` needs a boolean, but this is {ty}"),
                        expr.span,
                        "not a boolean",
                    )),
                }
            }
            FieldExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, e.span),
        }
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        lhs: &FieldExpr,
        rhs: &FieldExpr,
        span: Span,
    ) -> Result<Type, Error> {
        let lt = self.field(lhs)?;
        let rt = self.field(rhs)?;
        let mismatch =
            |what: String| Error::validation(what, span, format!("{lt} {} {rt}", op.as_str()));
        if op.is_arithmetic() {
            for (ty, side) in [(lt, lhs), (rt, rhs)] {
                if !ty.numeric_or_unknown() {
                    return Err(Error::validation(
                        format!("`{}` needs numbers, but this is {ty}", op.as_str()),
                        side.span,
                        "not a number",
                    ));
                }
            }
            return Ok(match (lt, rt) {
                (Type::Unknown, _) | (_, Type::Unknown) => Type::Unknown,
                (Type::Int, Type::Int) => Type::Int,
                _ => Type::Float,
            });
        }
        match op {
            BinaryOp::And | BinaryOp::Or => {
                for (ty, side) in [(lt, lhs), (rt, rhs)] {
                    if !matches!(ty, Type::Bool | Type::Unknown) {
                        return Err(Error::validation(
                            format!("`{}` needs conditions, but this is {ty}", op.as_str()),
                            side.span,
                            "not a boolean",
                        ));
                    }
                }
                Ok(Type::Bool)
            }
            BinaryOp::Regex | BinaryOp::NotRegex => {
                let FieldExprKind::Literal(Literal::String(pattern)) = &rhs.kind else {
                    return Err(Error::validation(
                        format!(
                            "the right side of `{}` must be a regular expression in a string",
                            op.as_str()
                        ),
                        rhs.span,
                        "not a string literal",
                    )
                    .with_hint(format!(".a {} \"pattern.*\"", op.as_str())));
                };
                if !matches!(lt, Type::String | Type::Unknown) {
                    return Err(mismatch(format!(
                        "`{}` matches strings, but the left side is {lt}",
                        op.as_str()
                    )));
                }
                if let Err(e) = compile_regex(pattern) {
                    return Err(Error::validation(
                        format!("invalid regular expression: {}", first_line(&e)),
                        rhs.span,
                        "invalid regex",
                    ));
                }
                Ok(Type::Bool)
            }
            _ => {
                self.comparison(op, lhs, lt, rhs, rt, span)?;
                Ok(Type::Bool)
            }
        }
    }

    fn comparison(
        &mut self,
        op: BinaryOp,
        lhs: &FieldExpr,
        lt: Type,
        rhs: &FieldExpr,
        rt: Type,
        span: Span,
    ) -> Result<(), Error> {
        if lt == Type::Nil || rt == Type::Nil {
            let (other, other_ty) = if lt == Type::Nil {
                (rhs, rt)
            } else {
                (lhs, lt)
            };
            if op == BinaryOp::Eq && other_ty != Type::Nil {
                if let FieldExprKind::Field(Field::Intrinsic(i)) = &other.kind {
                    return Err(Error::validation(
                        format!("intrinsic `{i}` always has a value, so it cannot be nil"),
                        span,
                        "always false",
                    ));
                }
                if let FieldExprKind::Field(Field::Attribute(a)) = &other.kind
                    && a.scope == AttributeScope::Resource
                    && a.name == "service.name"
                    && !a.parent
                {
                    return Err(Error::validation(
                        "resource.service.name always has a value, so it cannot be nil",
                        span,
                        "always false",
                    ));
                }
            }
            return Ok(());
        }
        let compatible = lt == rt
            || (lt.is_numeric() && rt.is_numeric())
            || lt == Type::Unknown
            || rt == Type::Unknown;
        if !compatible {
            let err = Error::validation(
                format!("cannot compare {lt} with {rt}"),
                span,
                "types differ",
            );
            let hint = match (lt, rt) {
                (Type::Status, Type::String) | (Type::String, Type::Status) => {
                    Some("status values are keywords, not strings: status = error")
                }
                (Type::Kind, Type::String) | (Type::String, Type::Kind) => {
                    Some("kinds are keywords, not strings: kind = server")
                }
                (Type::String, t) | (t, Type::String) if t.is_numeric() => {
                    Some("strings and numbers never compare equal; quote both or neither")
                }
                _ => None,
            };
            return Err(match hint {
                Some(h) => err.with_hint(h),
                None => err,
            });
        }
        let ordered = !matches!(op, BinaryOp::Eq | BinaryOp::Neq);
        let ty = if lt == Type::Unknown { rt } else { lt };
        if ordered && matches!(ty, Type::Bool | Type::Status | Type::Kind) {
            return Err(Error::validation(
                format!("{ty} can only be compared with = or !="),
                span,
                format!("`{}` has no meaning here", op.as_str()),
            ));
        }
        Ok(())
    }

    fn scalar_filter(&mut self, s: &ScalarFilter) -> Result<(), Error> {
        self.scalar(&s.lhs)?;
        self.scalar(&s.rhs)?;
        let simple = matches!(s.lhs.kind, ScalarExprKind::Aggregate(_)) && s.rhs.is_constant();
        if !simple {
            self.unsupported("a scalar filter other than `aggregate op constant`", s.span);
        }
        Ok(())
    }

    fn scalar(&mut self, e: &ScalarExpr) -> Result<(), Error> {
        match &e.kind {
            ScalarExprKind::Aggregate(a) => self.aggregate(a),
            ScalarExprKind::Literal(_) => Ok(()),
            ScalarExprKind::Neg(inner) => self.scalar(inner),
            ScalarExprKind::Binary { lhs, rhs, .. } => {
                self.scalar(lhs)?;
                self.scalar(rhs)
            }
            ScalarExprKind::Pipeline {
                pipeline,
                aggregate,
            } => {
                self.pipeline(pipeline)?;
                self.aggregate(aggregate)?;
                self.unsupported("comparing aggregates of parenthesised pipelines", e.span);
                Ok(())
            }
        }
    }

    fn aggregate(&mut self, a: &Aggregate) -> Result<(), Error> {
        let Some(arg) = a.arg() else { return Ok(()) };
        let ty = self.field(arg)?;
        if !ty.numeric_or_unknown() {
            return Err(Error::validation(
                format!("{}() needs a number, but its argument is {ty}", a.name()),
                arg.span,
                "not a number",
            ));
        }
        require_span_reference(arg, &format!("{}()", a.name()))
    }

    fn metrics(&mut self, m: &MetricsExpr) -> Result<(), Error> {
        match &m.kind {
            MetricsExprKind::Query(q) => self.metrics_query(q),
            MetricsExprKind::Constant(_) => Ok(()),
            MetricsExprKind::Binary { lhs, rhs, .. } => {
                self.no_compare(lhs, "arithmetic")?;
                self.no_compare(rhs, "arithmetic")?;
                self.metrics(lhs)?;
                self.metrics(rhs)
            }
            MetricsExprKind::Stage { input, stage } => {
                self.no_compare(input, "second stage functions")?;
                if let SecondStage::TopK(n) | SecondStage::BottomK(n) = stage
                    && *n <= 0
                {
                    return Err(Error::validation(
                        "topk() and bottomk() need a positive number of series",
                        m.span,
                        "must be at least 1",
                    ));
                }
                self.metrics(input)
            }
        }
    }

    fn no_compare(&self, m: &MetricsExpr, with: &str) -> Result<(), Error> {
        if let MetricsExprKind::Query(q) = &m.kind
            && let MetricsFunction::Compare { .. } = q.function
        {
            return Err(Error::validation(
                format!("compare() cannot be used with {with}"),
                q.span,
                "compare() here",
            )
            .with_hint("compare() returns baseline and selection series; use it alone"));
        }
        Ok(())
    }

    fn metrics_query(&mut self, q: &MetricsQuery) -> Result<(), Error> {
        self.pipeline(&q.pipeline)?;
        if let Some(field) = q.function.field() {
            let ty = self.field_kind(&field.field, field.span);
            if !ty.numeric_or_unknown() {
                return Err(Error::validation(
                    format!(
                        "{}() needs a numeric field, but this is {ty}",
                        q.function.name()
                    ),
                    field.span,
                    "not a number",
                ));
            }
        }
        match &q.function {
            MetricsFunction::QuantileOverTime { quantiles, .. } => {
                if let Some(bad) = quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
                    return Err(Error::validation(
                        format!("quantile {bad} is outside [0, 1]"),
                        q.span,
                        "quantiles go from 0 to 1",
                    )
                    .with_hint("for example quantile_over_time(duration, .5, .9, .99)"));
                }
            }
            MetricsFunction::Compare {
                filter,
                top_n,
                range,
            } => {
                if let Some(f) = filter {
                    self.filter(f)?;
                }
                if let Some(n) = top_n
                    && !(1..=1000).contains(n)
                {
                    return Err(Error::validation(
                        "compare() keeps between 1 and 1000 values per attribute",
                        q.span,
                        "out of range",
                    ));
                }
                if let Some((start, end)) = range
                    && (*start <= 0 || *end <= 0 || end <= start)
                {
                    return Err(Error::validation(
                        "compare() needs 0 < start < end (unix nanoseconds)",
                        q.span,
                        "invalid time range",
                    ));
                }
            }
            _ => {}
        }
        let max_by = match q.function {
            MetricsFunction::QuantileOverTime { .. } | MetricsFunction::HistogramOverTime(_) => 4,
            _ => 5,
        };
        for f in &q.by {
            self.field_ref(f);
        }
        if q.by.len() > max_by {
            self.unsupported(
                &format!(
                    "grouping {}() by more than {max_by} fields",
                    q.function.name()
                ),
                q.span,
            );
        }
        Ok(())
    }
}

/// Fails unless `expr` reads an attribute or intrinsic of the span.
fn require_span_reference(expr: &FieldExpr, what: &str) -> Result<(), Error> {
    if references_span(expr) {
        return Ok(());
    }
    Err(Error::validation(
        format!("{what} must depend on the span, but this is a constant"),
        expr.span,
        "constant",
    )
    .with_hint("use an attribute or intrinsic, e.g. duration or span.http.status_code"))
}

fn references_span(e: &FieldExpr) -> bool {
    struct AnyField(bool);
    impl Visitor<'_> for AnyField {
        fn visit_field(&mut self, _: &Field, _: Span) {
            self.0 = true;
        }
    }
    let mut found = AnyField(false);
    found.visit_field_expr(e);
    found.0
}

/// Compiles a TraceQL regex: fully anchored, `.` matches newlines.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?s:{pattern})$"))
}

fn first_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .last()
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}
