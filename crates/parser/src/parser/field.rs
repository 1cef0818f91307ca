//! Field expressions (the inside of `{ … }`), literals and field references.

use super::Parser;
use crate::Error;
use crate::ast::{
    AttributeScope, BinaryOp, Field, FieldExpr, FieldExprKind, FieldRef, Intrinsic, IntrinsicScope,
    Literal, UnaryOp,
};
use crate::lexer::TokenKind;
use crate::suggest::closest_keyword;
use crate::vocab::{FUNCTION_WORDS, binary_op, field_words, keyword_literal};

impl Parser<'_> {
    /// Parses a field expression. `angle` is true directly inside `< … >`, where a `>`
    /// that is not followed by an operand closes the spanset.
    pub(super) fn field_expr(&mut self, angle: bool) -> Result<FieldExpr, Error> {
        Ok(self.field_bp(0, angle)?.0)
    }

    /// Precedence climbing: parses operators binding at least as tight as `min`.
    /// Returns the expression and the depth of its tree.
    fn field_bp(&mut self, min: u8, angle: bool) -> Result<(FieldExpr, usize), Error> {
        self.enter()?;
        let result = self.field_bp_inner(min, angle);
        self.leave();
        result
    }

    fn field_bp_inner(&mut self, min: u8, angle: bool) -> Result<(FieldExpr, usize), Error> {
        let (mut lhs, mut depth) = self.field_prefix(angle)?;
        while let Some(op) = binary_op(self.peek()) {
            let prec = op.precedence();
            if prec < min || (angle && op == BinaryOp::Gt && !self.operand_follows()) {
                break;
            }
            self.bump();
            let (rhs, rhs_depth) =
                if matches!(op, BinaryOp::Eq | BinaryOp::Neq) && self.at_word("nil") {
                    (self.literal_expr(Literal::Nil), 1)
                } else {
                    let next = if op.is_right_assoc() { prec } else { prec + 1 };
                    self.field_bp(next, angle)?
                };
            let span = lhs.span.to(rhs.span);
            depth = depth.max(rhs_depth) + 1;
            self.check_depth(depth, span)?;
            lhs = FieldExpr {
                kind: FieldExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
        }
        Ok((lhs, depth))
    }

    /// True if the token after the current one can start an operand, which makes a `>`
    /// inside `< … >` a comparison rather than the closing bracket.
    fn operand_follows(&self) -> bool {
        use TokenKind as T;
        match self.peek2() {
            T::Int(_) | T::Float(_) | T::Duration(_) | T::Str(_) | T::Attr(_) => true,
            T::ScopeColon(_) | T::LParen | T::Minus | T::Bang => true,
            T::Ident(w) => !FUNCTION_WORDS.contains(&w.as_str()) && w != "with",
            _ => false,
        }
    }

    /// Consumes the current token as the literal `value`.
    fn literal_expr(&mut self, value: Literal) -> FieldExpr {
        let span = self.bump().span;
        FieldExpr {
            kind: FieldExprKind::Literal(value),
            span,
        }
    }

    /// An operand: literal, field, parenthesised expression, or prefix operator.
    fn field_prefix(&mut self, angle: bool) -> Result<(FieldExpr, usize), Error> {
        let start = self.span();
        let unary = match self.peek() {
            TokenKind::Minus => Some(UnaryOp::Neg),
            TokenKind::Bang => Some(UnaryOp::Not),
            _ => None,
        };
        if let Some(op) = unary {
            self.bump();
            let (expr, depth) = self.field_bp(op.operand_precedence(), angle)?;
            let span = start.to(expr.span);
            return Ok((
                FieldExpr {
                    kind: FieldExprKind::Unary {
                        op,
                        expr: Box::new(expr),
                    },
                    span,
                },
                depth + 1,
            ));
        }
        let value = match self.peek().clone() {
            TokenKind::LParen => {
                self.bump();
                let (mut inner, depth) = self.field_bp(0, false)?;
                if !self.eat(&TokenKind::RParen) {
                    return Err(self.unclosed(start, ")"));
                }
                inner.span = start.to(self.prev_span());
                return Ok((inner, depth));
            }
            TokenKind::Int(i) => Literal::Int(i),
            TokenKind::Float(f) => Literal::Float(f),
            TokenKind::Duration(d) => Literal::Duration(d),
            TokenKind::Str(s) => Literal::String(s),
            TokenKind::Attr(_) | TokenKind::ScopeColon(_) => {
                let field = self.field_ref()?;
                let expr = FieldExpr {
                    kind: FieldExprKind::Field(field.field),
                    span: field.span,
                };
                return Ok((expr, 1));
            }
            TokenKind::Ident(word) => {
                if word == "nil" {
                    if !matches!(self.peek2(), TokenKind::Eq | TokenKind::Neq) {
                        return Err(Error::parse(
                            "`nil` can only be compared with `=` or `!=`",
                            start,
                            "nil used as a value",
                        )
                        .with_hint("test for a missing attribute with `.a = nil`, for a present one with `.a != nil`"));
                    }
                    Literal::Nil
                } else if let Some(lit) = keyword_literal(&word) {
                    lit
                } else if Intrinsic::from_unscoped(&word).is_some() {
                    let field = self.field_ref()?;
                    let expr = FieldExpr {
                        kind: FieldExprKind::Field(field.field),
                        span: field.span,
                    };
                    return Ok((expr, 1));
                } else {
                    return Err(self.unknown_word(&word));
                }
            }
            TokenKind::RBrace | TokenKind::Eof => {
                return Err(self.expected("a value, attribute or intrinsic"));
            }
            _ => return Err(self.expected("a value, attribute or intrinsic")),
        };
        Ok((self.literal_expr(value), 1))
    }

    /// An attribute or intrinsic, as in `select(…)` and `by (…)`.
    pub(super) fn field_ref(&mut self) -> Result<FieldRef, Error> {
        let start = self.span();
        match self.peek().clone() {
            TokenKind::Attr(attr) => {
                self.bump();
                Ok(FieldRef {
                    field: Field::Attribute(attr),
                    span: start,
                })
            }
            TokenKind::ScopeColon(scope) => {
                self.bump();
                let TokenKind::Ident(word) = self.peek().clone() else {
                    return Err(self
                        .expected(&format!("an intrinsic name after `{}:`", scope.as_str()))
                        .with_hint(scoped_names_hint(scope)));
                };
                let Some(intrinsic) = Intrinsic::from_scoped(scope, &word) else {
                    return Err(self.bad_scoped_intrinsic(scope, &word));
                };
                self.bump();
                Ok(FieldRef {
                    field: Field::Intrinsic(intrinsic),
                    span: start.to(self.prev_span()),
                })
            }
            TokenKind::Ident(word) => match Intrinsic::from_unscoped(&word) {
                Some(intrinsic) => {
                    self.bump();
                    Ok(FieldRef {
                        field: Field::Intrinsic(intrinsic),
                        span: start,
                    })
                }
                None if keyword_literal(&word).is_some() || word == "nil" => Err(self
                    .expected("an attribute or intrinsic")
                    .with_hint("for example span.http.url or duration")),
                None => Err(self.unknown_word(&word)),
            },
            _ => Err(self
                .expected("an attribute or intrinsic")
                .with_hint("for example span.http.url or duration")),
        }
    }

    /// Error for `scope:word` where `scope` has no intrinsic `word`.
    fn bad_scoped_intrinsic(&self, scope: IntrinsicScope, word: &str) -> Error {
        let span = self.prev_span().to(self.span());
        let mut err = Error::parse(
            format!("`{}:` has no intrinsic `{word}`", scope.as_str()),
            span,
            "unknown intrinsic",
        );
        let names: Vec<&str> = scope.intrinsics().iter().map(|(n, _)| *n).collect();
        let other_scope = [
            IntrinsicScope::Span,
            IntrinsicScope::Trace,
            IntrinsicScope::Event,
            IntrinsicScope::Link,
            IntrinsicScope::Instrumentation,
        ]
        .into_iter()
        .find(|s| Intrinsic::from_scoped(*s, word).is_some());
        err = match (closest_keyword(word, &names), other_scope) {
            (Some(near), _) => err.with_hint(format!("did you mean `{}:{near}`?", scope.as_str())),
            (None, Some(other)) => err.with_hint(format!(
                "`{word}` is a `{}:` intrinsic: `{}:{word}`; `{}:` has {}",
                other.as_str(),
                other.as_str(),
                scope.as_str(),
                names.join(", ")
            )),
            (None, None) => err.with_hint(scoped_names_hint(scope)),
        };
        err
    }

    /// Error for a bare word that is not a keyword, with the most useful hint.
    pub(super) fn unknown_word(&self, word: &str) -> Error {
        let span = self.span();
        let next = &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)];
        let glued_attr = match &next.kind {
            TokenKind::Attr(a)
                if next.span.start == span.end
                    && a.scope == AttributeScope::Unscoped
                    && !a.parent =>
            {
                Some(format!("{word}.{}", a.name))
            }
            _ => None,
        };
        if word == "trace" && glued_attr.is_some() {
            return Error::parse("there is no `trace.` attribute scope", span, "unknown scope")
                .with_hint("trace-level intrinsics are trace:id, trace:duration, trace:rootName and trace:rootService");
        }
        if let Some(name) = glued_attr {
            let span = span.to(next.span);
            let near = closest_keyword(
                word,
                &[
                    "span",
                    "resource",
                    "event",
                    "link",
                    "instrumentation",
                    "parent",
                ],
            );
            let hint = match near {
                Some(scope) if scope != word => format!("did you mean `{scope}.`?"),
                _ => format!(
                    "attribute names need a scope or a leading dot: `.{name}` (span or resource) or `resource.{name}`"
                ),
            };
            return Error::parse(
                format!("unknown attribute scope in `{name}`"),
                span,
                "not a scope",
            )
            .with_hint(hint);
        }
        if FUNCTION_WORDS.contains(&word) {
            return Error::parse(format!("`{word}` is a function and cannot be used here"), span, "function name")
                .with_hint(format!("aggregates go after a pipe, e.g. `{{ … }} | count() > 1`; for an attribute named {word} write `.{word}`"));
        }
        let err = Error::parse(
            format!("unknown identifier `{word}`"),
            span,
            "not a keyword, intrinsic or attribute",
        );
        match closest_keyword(word, &field_words()) {
            Some(near) => err.with_hint(format!("did you mean `{near}`?")),
            None => err.with_hint(format!(
                "attributes start with `.`, `span.` or `resource.`: `.{word}`; strings are quoted: \"{word}\""
            )),
        }
    }
}

fn scoped_names_hint(scope: IntrinsicScope) -> String {
    let names: Vec<String> = scope
        .intrinsics()
        .iter()
        .map(|(n, _)| format!("{}:{n}", scope.as_str()))
        .collect();
    format!("`{}:` intrinsics are {}", scope.as_str(), names.join(", "))
}
