//! The loose top-level tree: spansets, numbers, function calls and the operators
//! between them, before deciding what kind of query they form.

use super::Parser;
use crate::ast::{Aggregate, FieldExpr, FieldRef, Hint, Intrinsic, Literal, MetricsFunction};
use crate::ast::{Function, precedence};
use crate::lexer::TokenKind;
use crate::vocab::{keyword_literal, top_level};
use crate::{Error, Span};

/// A node of the loose tree. Contents of `{ … }` and of function calls are typed already.
#[derive(Debug)]
pub(super) enum Term {
    /// `{ … }` or `< … >`.
    Spanset {
        filter: Option<FieldExpr>,
        span: Span,
    },
    /// `( … )`.
    Paren { inner: Box<Term>, span: Span },
    /// An integer, float or duration.
    Number { value: Literal, span: Span },
    /// `-x`.
    Neg { operand: Box<Term>, span: Span },
    /// `lhs op rhs`, including `|`.
    Binary {
        op: TokenKind,
        op_span: Span,
        lhs: Box<Term>,
        rhs: Box<Term>,
        span: Span,
    },
    /// `count()`, `avg(e)`, …
    Aggregate { aggregate: Aggregate, span: Span },
    /// `by(e)`.
    GroupBy { expr: FieldExpr, span: Span },
    /// `select(a, …)`.
    Select { fields: Vec<FieldRef>, span: Span },
    /// `coalesce()`.
    Coalesce { span: Span },
    /// `rate()`, `quantile_over_time(…)`, … with an optional `by (…)`.
    Metrics {
        function: MetricsFunction,
        by: Vec<FieldRef>,
        span: Span,
    },
    /// `topk(n)` or `bottomk(n)`.
    TopK { bottom: bool, n: i64, span: Span },
}

impl Term {
    /// Where the node is.
    pub(super) fn span(&self) -> Span {
        match self {
            Term::Spanset { span, .. }
            | Term::Paren { span, .. }
            | Term::Number { span, .. }
            | Term::Neg { span, .. }
            | Term::Binary { span, .. }
            | Term::Aggregate { span, .. }
            | Term::GroupBy { span, .. }
            | Term::Select { span, .. }
            | Term::Coalesce { span }
            | Term::Metrics { span, .. }
            | Term::TopK { span, .. } => *span,
        }
    }
}

impl Parser<'_> {
    /// The whole query: a term, optional hints, then the end of input.
    pub(super) fn query(&mut self) -> Result<(Term, Vec<Hint>), Error> {
        if matches!(self.peek(), TokenKind::Eof) {
            return Err(Error::parse("empty query", self.span(), "nothing here")
                .with_hint("for example { status = error } or { duration > 1s }"));
        }
        let (term, _) = self.term_bp(0)?;
        let mut hints = Vec::new();
        while self.at_word("with") {
            self.hints(&mut hints)?;
        }
        if !matches!(self.peek(), TokenKind::Eof) {
            let err = self.expected("the end of the query");
            let err = match self.peek() {
                TokenKind::Int(_) | TokenKind::Float(_) | TokenKind::Duration(_) => {
                    err.with_hint("put an operator between two values")
                }
                TokenKind::RParen | TokenKind::RBrace => {
                    err.with_hint("this closes something that was never opened")
                }
                TokenKind::LBrace | TokenKind::Lt => err.with_hint(
                    "combine spansets with an operator, e.g. { .a } && { .b } or { .a } >> { .b }",
                ),
                _ => err,
            };
            return Err(err);
        }
        Ok((term, hints))
    }

    /// `with(name=value, …)`.
    fn hints(&mut self, hints: &mut Vec<Hint>) -> Result<(), Error> {
        self.bump();
        let open = self.expect(&TokenKind::LParen, "after `with`")?;
        loop {
            let start = self.span();
            let TokenKind::Ident(name) = self.peek().clone() else {
                return Err(self
                    .expected("a hint name")
                    .with_hint("for example with(most_recent=true)"));
            };
            self.bump();
            self.expect(&TokenKind::Eq, "after the hint name")?;
            let value = self.hint_value()?;
            hints.push(Hint {
                name,
                value,
                span: start.to(self.prev_span()),
            });
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        if !self.eat(&TokenKind::RParen) {
            return Err(self.unclosed(open, ")"));
        }
        Ok(())
    }

    /// A literal hint value; a leading `-` negates a number or duration.
    fn hint_value(&mut self) -> Result<Literal, Error> {
        let negative = self.eat(&TokenKind::Minus);
        let value = match self.peek().clone() {
            TokenKind::Int(i) => Literal::Int(if negative { -i } else { i }),
            TokenKind::Float(f) => Literal::Float(if negative { -f } else { f }),
            TokenKind::Duration(d) => Literal::Duration(if negative { -d } else { d }),
            TokenKind::Str(s) if !negative => Literal::String(s),
            TokenKind::Ident(w) if !negative => match keyword_literal(&w) {
                Some(lit) => lit,
                None => {
                    return Err(self
                        .expected("a hint value")
                        .with_hint("hint values are literals: true, 0.1, 10, \"text\""));
                }
            },
            _ => {
                return Err(self
                    .expected("a hint value")
                    .with_hint("hint values are literals: true, 0.1, 10, \"text\""));
            }
        };
        self.bump();
        Ok(value)
    }

    /// Precedence climbing over top-level operators. Returns the term and its depth.
    fn term_bp(&mut self, min: u8) -> Result<(Term, usize), Error> {
        self.enter()?;
        let result = self.term_bp_inner(min);
        self.leave();
        result
    }

    fn term_bp_inner(&mut self, min: u8) -> Result<(Term, usize), Error> {
        let (mut lhs, mut depth) = self.term_prefix()?;
        while let Some((prec, right_assoc)) = top_level(self.peek()) {
            if prec < min {
                break;
            }
            let op = self.bump();
            let next = if right_assoc { prec } else { prec + 1 };
            let (rhs, rhs_depth) = self.term_bp(next)?;
            let span = lhs.span().to(rhs.span());
            depth = depth.max(rhs_depth) + 1;
            self.check_depth(depth, span)?;
            lhs = Term::Binary {
                op: op.kind,
                op_span: op.span,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                span,
            };
        }
        Ok((lhs, depth))
    }

    fn term_prefix(&mut self) -> Result<(Term, usize), Error> {
        let start = self.span();
        match self.peek().clone() {
            TokenKind::LBrace => {
                self.bump();
                let filter = if matches!(self.peek(), TokenKind::RBrace) {
                    None
                } else {
                    Some(self.field_expr(false)?)
                };
                if !self.eat(&TokenKind::RBrace) {
                    return Err(self.unclosed(start, "}"));
                }
                let span = start.to(self.prev_span());
                Ok((Term::Spanset { filter, span }, 1))
            }
            TokenKind::Lt => {
                self.bump();
                let filter = if matches!(self.peek(), TokenKind::Gt) {
                    None
                } else {
                    Some(self.field_expr(true)?)
                };
                if !self.eat(&TokenKind::Gt) {
                    return Err(self.unclosed(start, ">"));
                }
                let span = start.to(self.prev_span());
                Ok((Term::Spanset { filter, span }, 1))
            }
            TokenKind::LParen => {
                self.bump();
                let (inner, depth) = self.term_bp(0)?;
                if !self.eat(&TokenKind::RParen) {
                    return Err(self.unclosed(start, ")"));
                }
                let span = start.to(self.prev_span());
                Ok((
                    Term::Paren {
                        inner: Box::new(inner),
                        span,
                    },
                    depth + 1,
                ))
            }
            TokenKind::Int(i) => Ok(self.number(Literal::Int(i))),
            TokenKind::Float(f) => Ok(self.number(Literal::Float(f))),
            TokenKind::Duration(d) => Ok(self.number(Literal::Duration(d))),
            TokenKind::Minus => {
                self.bump();
                let (operand, depth) = self.term_bp(precedence::PREFIX_MINUS_OPERAND)?;
                let span = start.to(operand.span());
                Ok((
                    Term::Neg {
                        operand: Box::new(operand),
                        span,
                    },
                    depth + 1,
                ))
            }
            TokenKind::Ident(word) => self.function(&word).map(|t| (t, 1)),
            TokenKind::Attr(_) | TokenKind::ScopeColon(_) | TokenKind::Str(_) => Err(self
                .expected("a spanset filter `{ … }`")
                .with_hint(self.braces_hint())),
            TokenKind::Eof => Err(self.expected("a spanset filter, number or function")),
            _ => Err(self.expected("a spanset filter `{ … }`")),
        }
    }

    /// Suggests wrapping the condition that starts at the current token in braces.
    fn braces_hint(&self) -> String {
        let rest = self.src[self.span().start..].trim();
        let condition = match rest.find(['|', ')']) {
            Some(end) => rest[..end].trim_end(),
            None => rest,
        };
        if condition.chars().count() <= 60 {
            format!("conditions go inside braces: {{ {condition} }}")
        } else {
            "conditions go inside braces: { .http.method = \"GET\" }".to_string()
        }
    }

    fn number(&mut self, value: Literal) -> (Term, usize) {
        let span = self.bump().span;
        (Term::Number { value, span }, 1)
    }

    /// A function call (or a misplaced keyword) at the top level.
    fn function(&mut self, word: &str) -> Result<Term, Error> {
        let start = self.span();
        let Some(function) = Function::from_name(word) else {
            return self.not_a_function(word, start);
        };
        let aggregate = |f: fn(FieldExpr) -> Aggregate| Some(f);
        let agg_ctor = match function {
            Function::Avg => aggregate(Aggregate::Avg),
            Function::Min => aggregate(Aggregate::Min),
            Function::Max => aggregate(Aggregate::Max),
            Function::Sum => aggregate(Aggregate::Sum),
            _ => None,
        };
        if let Some(ctor) = agg_ctor {
            self.bump();
            let arg = self.call_arg(word)?;
            let span = start.to(self.prev_span());
            return Ok(Term::Aggregate {
                aggregate: ctor(arg),
                span,
            });
        }
        let field_fn = |f: fn(FieldRef) -> MetricsFunction| Some(f);
        let metrics_ctor = match function {
            Function::MinOverTime => field_fn(MetricsFunction::MinOverTime),
            Function::MaxOverTime => field_fn(MetricsFunction::MaxOverTime),
            Function::AvgOverTime => field_fn(MetricsFunction::AvgOverTime),
            Function::SumOverTime => field_fn(MetricsFunction::SumOverTime),
            Function::HistogramOverTime => field_fn(MetricsFunction::HistogramOverTime),
            _ => None,
        };
        if let Some(ctor) = metrics_ctor {
            self.bump();
            let open = self.expect(&TokenKind::LParen, &format!("after `{word}`"))?;
            let field = self.metrics_field(word)?;
            self.close_call(open)?;
            return self.metrics_by(start, ctor(field));
        }
        match function {
            Function::Count => {
                self.bump();
                self.empty_call(word)?;
                Ok(Term::Aggregate {
                    aggregate: Aggregate::Count,
                    span: start.to(self.prev_span()),
                })
            }
            Function::By => {
                self.bump();
                let expr = self.call_arg(word)?;
                Ok(Term::GroupBy {
                    expr,
                    span: start.to(self.prev_span()),
                })
            }
            Function::Select => {
                self.bump();
                let open = self.expect(&TokenKind::LParen, "after `select`")?;
                if matches!(self.peek(), TokenKind::RParen) {
                    return Err(self.expected("an attribute or intrinsic").with_hint(
                        "select() needs at least one field, e.g. select(span.http.url)",
                    ));
                }
                let fields = self.field_ref_list(open)?;
                Ok(Term::Select {
                    fields,
                    span: start.to(self.prev_span()),
                })
            }
            Function::Coalesce => {
                self.bump();
                self.empty_call(word)?;
                Ok(Term::Coalesce {
                    span: start.to(self.prev_span()),
                })
            }
            Function::Rate | Function::CountOverTime => {
                self.bump();
                self.empty_call(word)?;
                let function = if function == Function::Rate {
                    MetricsFunction::Rate
                } else {
                    MetricsFunction::CountOverTime
                };
                self.metrics_by(start, function)
            }
            Function::QuantileOverTime => {
                self.bump();
                let open = self.expect(&TokenKind::LParen, "after `quantile_over_time`")?;
                let field = self.metrics_field(word)?;
                let mut quantiles = Vec::new();
                while self.eat(&TokenKind::Comma) {
                    quantiles.push(self.signed_number("a quantile such as 0.99")?);
                }
                if quantiles.is_empty() {
                    return Err(self
                        .expected("`,` and a quantile")
                        .with_hint("for example quantile_over_time(duration, .5, .99)"));
                }
                self.close_call(open)?;
                self.metrics_by(
                    start,
                    MetricsFunction::QuantileOverTime { field, quantiles },
                )
            }
            Function::Compare => {
                self.bump();
                let open = self.expect(&TokenKind::LParen, "after `compare`")?;
                let brace = self.expect(
                    &TokenKind::LBrace,
                    "to start the selection filter of compare()",
                )?;
                let filter = if matches!(self.peek(), TokenKind::RBrace) {
                    None
                } else {
                    Some(self.field_expr(false)?)
                };
                if !self.eat(&TokenKind::RBrace) {
                    return Err(self.unclosed(brace, "}"));
                }
                let mut numbers = Vec::new();
                while self.eat(&TokenKind::Comma) {
                    numbers.push((self.signed_int("an integer")?, self.prev_span()));
                }
                let (top_n, range) = match numbers.as_slice() {
                    [] => (None, None),
                    [(n, _)] => (Some(*n), None),
                    [(n, _), (s, _), (e, _)] => (Some(*n), Some((*s, *e))),
                    [_, (_, span)] | [_, _, _, (_, span), ..] => {
                        return Err(Error::parse(
                            "compare() takes a filter, then optionally a count, then optionally start and end",
                            *span,
                            "unexpected argument",
                        )
                        .with_hint("compare({ status = error }, 10) or compare({ status = error }, 10, START_NS, END_NS)"));
                    }
                };
                self.close_call(open)?;
                self.metrics_by(
                    start,
                    MetricsFunction::Compare {
                        filter,
                        top_n,
                        range,
                    },
                )
            }
            Function::TopK | Function::BottomK => {
                self.bump();
                let open = self.expect(&TokenKind::LParen, &format!("after `{word}`"))?;
                let TokenKind::Int(n) = *self.peek() else {
                    return Err(self
                        .expected("a positive integer")
                        .with_hint(format!("for example {word}(10)")));
                };
                self.bump();
                self.close_call(open)?;
                Ok(Term::TopK {
                    bottom: function == Function::BottomK,
                    n,
                    span: start.to(self.prev_span()),
                })
            }
            Function::Avg
            | Function::Min
            | Function::Max
            | Function::Sum
            | Function::MinOverTime
            | Function::MaxOverTime
            | Function::AvgOverTime
            | Function::SumOverTime
            | Function::HistogramOverTime => unreachable!("handled above"),
        }
    }

    /// A word at the top level that is not a function: a misplaced keyword or value, or
    /// an unknown word.
    fn not_a_function(&mut self, word: &str, start: Span) -> Result<Term, Error> {
        match word {
            "minInt" | "maxInt" => {
                let value = keyword_literal(word).expect("integer constants are literals");
                Ok(self.number(value).0)
            }
            "with" => Err(Error::parse(
                "hints must come at the end of the query",
                start,
                "hint here",
            )
            .with_hint("for example { status = error } with(most_recent=true)")),
            w if keyword_literal(w).is_some()
                || w == "nil"
                || Intrinsic::from_unscoped(w).is_some() =>
            {
                Err(Error::parse(
                    format!("`{w}` must be inside a spanset filter"),
                    start,
                    "outside of { … }",
                )
                .with_hint(self.braces_hint()))
            }
            _ => {
                let err = self.unknown_word(word);
                if matches!(self.peek2(), TokenKind::LParen) {
                    let near = crate::suggest::closest_keyword(word, &crate::vocab::FUNCTION_WORDS);
                    return Err(Error::parse(
                        format!("unknown function `{word}`"),
                        start,
                        "not a function",
                    )
                    .with_hint(match near {
                        Some(f) => format!("did you mean `{f}`?"),
                        None => {
                            "functions are count, avg, min, max, sum, by, select, coalesce, rate, \
                                     count_over_time, …_over_time, compare, topk and bottomk"
                                .to_string()
                        }
                    }));
                }
                Err(err)
            }
        }
    }

    /// `( expr )` after an aggregate or `by`.
    fn call_arg(&mut self, word: &str) -> Result<FieldExpr, Error> {
        let open = self.expect(&TokenKind::LParen, &format!("after `{word}`"))?;
        if matches!(self.peek(), TokenKind::RParen) {
            return Err(self
                .expected("an expression")
                .with_hint(format!("{word}() needs an argument, e.g. {word}(duration)")));
        }
        let arg = self.field_expr(false)?;
        self.close_call(open)?;
        Ok(arg)
    }

    /// `()` after a function that takes no argument.
    fn empty_call(&mut self, word: &str) -> Result<(), Error> {
        let open = self.expect(&TokenKind::LParen, &format!("after `{word}`"))?;
        if !matches!(self.peek(), TokenKind::RParen) {
            return Err(self
                .expected("`)`")
                .with_hint(format!("{word}() takes no arguments")));
        }
        self.close_call(open)
    }

    /// The `)` of a call opened at `open`.
    fn close_call(&mut self, open: Span) -> Result<(), Error> {
        if self.eat(&TokenKind::RParen) {
            Ok(())
        } else {
            Err(self.unclosed(open, ")"))
        }
    }

    /// The attribute or intrinsic argument of a metrics function.
    fn metrics_field(&mut self, word: &str) -> Result<FieldRef, Error> {
        self.field_ref().map_err(|e| {
            if e.hint.is_none() {
                e.with_hint(format!(
                    "{word}() takes an attribute or intrinsic, e.g. {word}(duration)"
                ))
            } else {
                e
            }
        })
    }

    /// `a, b, c)` after an opening parenthesis.
    fn field_ref_list(&mut self, open: Span) -> Result<Vec<FieldRef>, Error> {
        let mut fields = vec![self.field_ref()?];
        while self.eat(&TokenKind::Comma) {
            fields.push(self.field_ref()?);
        }
        self.close_call(open)?;
        Ok(fields)
    }

    /// An optional `by (a, …)` after a metrics function.
    fn metrics_by(&mut self, start: Span, function: MetricsFunction) -> Result<Term, Error> {
        let mut by = Vec::new();
        if self.at_word("by") && matches!(self.peek2(), TokenKind::LParen) {
            self.bump();
            let open = self.bump().span;
            if matches!(self.peek(), TokenKind::RParen) {
                return Err(self.expected("an attribute or intrinsic").with_hint(
                    "by (…) needs at least one field, e.g. by (resource.service.name)",
                ));
            }
            by = self.field_ref_list(open)?;
        }
        Ok(Term::Metrics {
            function,
            by,
            span: start.to(self.prev_span()),
        })
    }

    /// An integer or float, optionally negative, as f64.
    fn signed_number(&mut self, what: &str) -> Result<f64, Error> {
        let negative = self.eat(&TokenKind::Minus);
        let value = match *self.peek() {
            TokenKind::Int(i) => i as f64,
            TokenKind::Float(f) => f,
            _ => return Err(self.expected(what)),
        };
        self.bump();
        Ok(if negative { -value } else { value })
    }

    /// An integer, optionally negative.
    fn signed_int(&mut self, what: &str) -> Result<i64, Error> {
        let negative = self.eat(&TokenKind::Minus);
        let TokenKind::Int(value) = *self.peek() else {
            return Err(self.expected(what));
        };
        self.bump();
        Ok(if negative { -value } else { value })
    }
}
