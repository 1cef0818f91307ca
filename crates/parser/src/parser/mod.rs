//! From tokens to the typed AST.
//!
//! The grammar is read in two steps:
//! 1. `term`: a precedence-climbing parser reads the query into a loose [`term::Term`]
//!    tree in which pipes, spanset operators, comparisons and arithmetic are just
//!    operators, and the contents of `{ … }` and of function calls are already typed
//!    (`field`).
//! 2. `shape`: the loose tree is checked against what TraceQL allows where (a search
//!    pipeline, a scalar filter, a metrics query and its second stages, metrics
//!    arithmetic) and turned into the typed AST, with a precise error when it does not fit.
//!
//! `term` knows nothing of `shape`: [`parse`] runs one after the other.
//!
//! Reading everything once and deciding afterwards avoids backtracking, so input of any
//! shape is parsed in linear time; a nesting budget turns very deep input into an error
//! instead of a stack overflow.

mod field;
mod shape;
mod term;

use crate::ast::{FieldExpr, Query};
use crate::lexer::{Token, TokenKind, tokenize};
use crate::{Error, Span};

/// How deeply parentheses, braces and prefix operators may nest before the parser gives
/// up with an error. Generous for real queries, small enough for a 2 MiB stack.
pub const MAX_NESTING: usize = 100;

/// How deep the syntax tree may grow, counting chains such as `a || b || c …` (which
/// nest to the left). Printing, validating and dropping a tree recurse to this depth.
pub const MAX_TREE_DEPTH: usize = 400;

/// Parses a TraceQL query. Does not validate it: see [`crate::validate`].
pub fn parse(src: &str) -> Result<Query, Error> {
    let mut parser = Parser::new(src)?;
    let (term, hints) = parser.query()?;
    let body = shape::body(term)?;
    Ok(Query {
        body,
        hints,
        span: Span::new(0, src.len()),
    })
}

/// Parses one field expression (`span.http.status_code >= 500 && status = error`), as
/// [`crate::ast::FieldExpr`]'s `Display` prints it: how a plan shipped to another machine
/// carries the expressions it evaluates. Nothing follows the expression.
pub fn parse_field_expr(src: &str) -> Result<FieldExpr, Error> {
    let mut parser = Parser::new(src)?;
    let expr = parser.field_expr(false)?;
    if !matches!(parser.peek(), TokenKind::Eof) {
        return Err(parser.expected("the end of the expression"));
    }
    Ok(expr)
}

/// A cursor over the tokens of one query.
pub(crate) struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl<'s> Parser<'s> {
    /// A parser at the first token of `src`.
    fn new(src: &'s str) -> Result<Parser<'s>, Error> {
        Ok(Parser {
            src,
            tokens: tokenize(src)?,
            pos: 0,
            depth: 0,
        })
    }

    /// The current token.
    fn peek(&self) -> &TokenKind {
        &self.tokens[self.pos].kind
    }

    /// The token after the current one.
    fn peek2(&self) -> &TokenKind {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)].kind
    }

    /// The current token's span.
    fn span(&self) -> Span {
        self.tokens[self.pos].span
    }

    /// The span of the token just consumed.
    fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].span
    }

    /// Consumes and returns the current token (the final `Eof` is never consumed).
    fn bump(&mut self) -> Token {
        let token = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    /// Consumes the current token if it is `kind`.
    fn eat(&mut self, kind: &TokenKind) -> bool {
        if self.peek() == kind {
            self.bump();
            true
        } else {
            false
        }
    }

    /// True if the current token is the word `word`.
    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), TokenKind::Ident(w) if w == word)
    }

    /// Consumes `kind` or fails with "expected `…` <context>".
    fn expect(&mut self, kind: &TokenKind, context: &str) -> Result<Span, Error> {
        if self.peek() == kind {
            return Ok(self.bump().span);
        }
        Err(self.expected(&format!("`{}` {context}", kind.punct())))
    }

    /// "expected WHAT, found …" at the current token, with a hint when one is known.
    fn expected(&self, what: &str) -> Error {
        let found = self.peek();
        let span = self.span();
        if *found == TokenKind::Eq && self.prev_is(&TokenKind::Eq) {
            return Error::parse(
                "`==` is not an operator",
                self.prev_span().to(span),
                "not an operator",
            )
            .with_hint("use `=` to compare");
        }
        let err = Error::parse(
            format!("expected {what}, found {}", found.describe()),
            span,
            format!("expected {what}"),
        );
        if *found == TokenKind::Eof {
            err.at_end_of_input()
        } else {
            err
        }
    }

    /// True if the previous token is `kind` and touches the current one (`==`).
    fn prev_is(&self, kind: &TokenKind) -> bool {
        self.pos > 0
            && &self.tokens[self.pos - 1].kind == kind
            && self.tokens[self.pos - 1].span.end == self.span().start
    }

    /// Error for a `{` or `(` that is never closed, labelled at both ends.
    fn unclosed(&self, open: Span, close: &str) -> Error {
        let opener = &self.src[open.start..open.end];
        let mut err = self.expected(&format!("`{close}`"));
        if matches!(self.peek(), TokenKind::Eof) {
            err.message = format!("unclosed `{opener}`");
            err = err
                .with_label(open, format!("this `{opener}` is never closed"))
                .with_hint(format!("add `{close}` to close it"));
        } else {
            err = err.with_label(open, format!("to close this `{opener}`"));
        }
        err
    }

    /// Enters one level of nesting, failing past [`MAX_NESTING`].
    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(Error::parse(
                "query nested too deeply",
                self.span(),
                format!("more than {MAX_NESTING} levels of nesting"),
            )
            .with_hint("simplify the query or split it"));
        }
        Ok(())
    }

    /// Leaves one level of nesting.
    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Checks that the tree built so far is not deeper than the budget.
    fn check_depth(&self, depth: usize, span: Span) -> Result<(), Error> {
        if depth > MAX_TREE_DEPTH {
            return Err(Error::parse(
                "query nested too deeply",
                span,
                format!("more than {MAX_TREE_DEPTH} levels of operators"),
            )
            .with_hint("simplify the query or split it"));
        }
        Ok(())
    }
}
