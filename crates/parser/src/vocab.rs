//! The language's vocabulary in one place: which token stands for which operator, the
//! value keywords, and the word lists suggestions and the REPL offer. The parser, the
//! suggestions and the REPL take these from here; the names that belong to syntax-tree
//! types (operators, functions, scopes, statuses, kinds, intrinsics) and the binding
//! strengths ([`precedence`]) are defined once on those types in [`crate::ast`].

use crate::ast::precedence;
use crate::ast::{
    ArithmeticOp, AttributeScope, BinaryOp, ComparisonOp, Function, Intrinsic, IntrinsicScope,
    Literal, SpanKind, SpansetOp, Status,
};
use crate::lexer::TokenKind;

/// The binary operator a token stands for inside `{ … }`.
pub(crate) fn binary_op(token: &TokenKind) -> Option<BinaryOp> {
    use TokenKind as T;
    Some(match token {
        T::Plus => BinaryOp::Add,
        T::Minus => BinaryOp::Sub,
        T::Star => BinaryOp::Mul,
        T::Slash => BinaryOp::Div,
        T::Percent => BinaryOp::Mod,
        T::Caret => BinaryOp::Pow,
        T::Eq => BinaryOp::Eq,
        T::Neq => BinaryOp::Neq,
        T::Lt => BinaryOp::Lt,
        T::Lte => BinaryOp::Lte,
        T::Gt => BinaryOp::Gt,
        T::Gte => BinaryOp::Gte,
        T::Regex => BinaryOp::Regex,
        T::NotRegex => BinaryOp::NotRegex,
        T::AndAnd => BinaryOp::And,
        T::OrOr => BinaryOp::Or,
        _ => return None,
    })
}

/// The spanset operator a token stands for between spansets.
pub(crate) fn spanset_op(token: &TokenKind) -> Option<SpansetOp> {
    use TokenKind as T;
    Some(match token {
        T::AndAnd => SpansetOp::And,
        T::OrOr => SpansetOp::Or,
        T::Gt => SpansetOp::Child,
        T::Lt => SpansetOp::Parent,
        T::Descendant => SpansetOp::Descendant,
        T::Ancestor => SpansetOp::Ancestor,
        T::Tilde => SpansetOp::Sibling,
        T::NotChild => SpansetOp::NotChild,
        T::NotParent => SpansetOp::NotParent,
        T::NotDescendant => SpansetOp::NotDescendant,
        T::NotAncestor => SpansetOp::NotAncestor,
        T::NotRegex => SpansetOp::NotSibling,
        T::UnionChild => SpansetOp::UnionChild,
        T::UnionParent => SpansetOp::UnionParent,
        T::UnionDescendant => SpansetOp::UnionDescendant,
        T::UnionAncestor => SpansetOp::UnionAncestor,
        T::UnionSibling => SpansetOp::UnionSibling,
        _ => return None,
    })
}

/// The comparison a token stands for in a scalar or metrics filter.
pub(crate) fn comparison(token: &TokenKind) -> Option<ComparisonOp> {
    use TokenKind as T;
    Some(match token {
        T::Eq => ComparisonOp::Eq,
        T::Neq => ComparisonOp::Neq,
        T::Lt => ComparisonOp::Lt,
        T::Lte => ComparisonOp::Lte,
        T::Gt => ComparisonOp::Gt,
        T::Gte => ComparisonOp::Gte,
        _ => return None,
    })
}

/// The arithmetic operator a token stands for between scalars or metrics queries.
pub(crate) fn arithmetic(token: &TokenKind) -> Option<ArithmeticOp> {
    use TokenKind as T;
    Some(match token {
        T::Plus => ArithmeticOp::Add,
        T::Minus => ArithmeticOp::Sub,
        T::Star => ArithmeticOp::Mul,
        T::Slash => ArithmeticOp::Div,
        T::Percent => ArithmeticOp::Mod,
        T::Caret => ArithmeticOp::Pow,
        _ => return None,
    })
}

/// The binding strength of a token as an operator between top-level terms, and whether
/// it is right-associative: the pipe, then whatever the token means as a field or
/// spanset operator (they agree where a token is both).
pub(crate) fn top_level(token: &TokenKind) -> Option<(u8, bool)> {
    if *token == TokenKind::Pipe {
        return Some((precedence::PIPE, false));
    }
    binary_op(token)
        .map(|op| (op.precedence(), op.is_right_assoc()))
        .or_else(|| spanset_op(token).map(|op| (op.precedence(), false)))
}

/// The names of every function, in [`Function::ALL`] order.
pub const FUNCTION_WORDS: [&str; 19] = {
    let mut words = [""; 19];
    let mut i = 0;
    while i < 19 {
        words[i] = Function::ALL[i].0;
        i += 1;
    }
    words
};

/// Keywords that stand for values (besides status and kind words).
const VALUE_KEYWORDS: [(&str, Literal); 4] = [
    ("true", Literal::Bool(true)),
    ("false", Literal::Bool(false)),
    ("minInt", Literal::Int(i64::MIN)),
    ("maxInt", Literal::Int(i64::MAX)),
];

/// The literal a keyword stands for: `true`, `false`, `minInt`, `maxInt`, a status
/// (`error`) or a span kind (`server`).
pub(crate) fn keyword_literal(word: &str) -> Option<Literal> {
    if let Some((_, literal)) = VALUE_KEYWORDS.iter().find(|(w, _)| *w == word) {
        return Some(literal.clone());
    }
    if let Some(s) = Status::ALL.into_iter().find(|s| s.as_str() == word) {
        return Some(Literal::Status(s));
    }
    SpanKind::ALL
        .into_iter()
        .find(|k| k.as_str() == word)
        .map(Literal::Kind)
}

/// Words that may appear as values or fields inside `{ … }`: value keywords, `nil`,
/// status and kind words, and the unscoped intrinsics.
pub fn field_words() -> Vec<&'static str> {
    let mut words: Vec<&'static str> = vec!["true", "false", "nil"];
    words.extend(Status::ALL.map(Status::as_str));
    words.extend(SpanKind::ALL.map(SpanKind::as_str));
    words.extend(["minInt", "maxInt"]);
    words.extend(Intrinsic::UNSCOPED.iter().map(|(w, _)| *w));
    words
}

/// Every scope prefix as typed: `span.`, `resource.`, … then `span:`, `trace:`, … .
pub fn scope_prefixes() -> Vec<String> {
    AttributeScope::PREFIXES
        .iter()
        .map(|(w, _)| format!("{w}."))
        .chain(
            IntrinsicScope::ALL
                .iter()
                .map(|s| format!("{}:", s.as_str())),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_name_round_trips() {
        for (name, f) in Function::ALL {
            assert_eq!(Function::from_name(name), Some(f));
            assert_eq!(f.name(), name);
        }
        assert_eq!(FUNCTION_WORDS[0], "count");
        assert_eq!(FUNCTION_WORDS[18], "bottomk");
    }

    #[test]
    fn tokens_meaning_both_a_field_and_a_spanset_operator_bind_alike() {
        use TokenKind as T;
        for token in [T::AndAnd, T::OrOr, T::Gt, T::Lt, T::NotRegex] {
            let (field, spanset) = (binary_op(&token).unwrap(), spanset_op(&token).unwrap());
            assert_eq!(field.precedence(), spanset.precedence(), "{token:?}");
        }
        assert_eq!(top_level(&T::Caret), Some((precedence::POWER, true)));
        assert_eq!(top_level(&T::Pipe), Some((precedence::PIPE, false)));
        assert_eq!(
            top_level(&T::Descendant),
            Some((precedence::RELATION, false))
        );
        assert_eq!(top_level(&T::Comma), None);
    }

    #[test]
    fn keywords_are_literals() {
        assert_eq!(
            keyword_literal("error"),
            Some(Literal::Status(Status::Error))
        );
        assert_eq!(
            keyword_literal("consumer"),
            Some(Literal::Kind(SpanKind::Consumer))
        );
        assert_eq!(keyword_literal("maxInt"), Some(Literal::Int(i64::MAX)));
        assert_eq!(keyword_literal("nil"), None);
        assert!(field_words().contains(&"rootServiceName"));
        assert_eq!(scope_prefixes()[0], "span.");
        assert_eq!(scope_prefixes()[5], "span:");
    }
}
