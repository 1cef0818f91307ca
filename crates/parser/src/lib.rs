//! TraceQL, the trace query language of Grafana Tempo: parser, syntax tree, canonical
//! printer, validation and diagnostics.
//!
//! ```
//! let query = traceql_parser::parse("< .service.name = \"checkout\" && status = error >")?;
//! traceql_parser::validate(&query)?;
//! assert_eq!(query.to_string(), "{ .service.name = \"checkout\" && status = error }");
//! # Ok::<(), traceql_parser::Error>(())
//! ```
//!
//! Errors carry their position; [`Error::render`] prints them with the source line, an
//! underline and a hint:
//!
//! ```
//! let err = traceql_parser::parse("{ .a == 1 }").unwrap_err();
//! assert_eq!(err.kind, traceql_parser::ErrorKind::Parse);
//! assert!(err.render("{ .a == 1 }", false).contains("use `=` to compare"));
//! ```

pub mod ast;
mod duration;
mod error;
pub mod highlight;
mod lexer;
mod parser;
mod print;
mod span;
mod suggest;
mod validate;
pub mod vocab;

pub use ast::Query;
pub use duration::parse_duration;
pub use error::{Error, ErrorKind, Label};
pub use parser::{MAX_NESTING, MAX_TREE_DEPTH, parse, parse_field_expr};
pub use span::Span;
pub use validate::{check_supported, compile_regex, validate};

/// Parses and validates a query: the check to run before executing one.
pub fn parse_and_validate(src: &str) -> Result<Query, Error> {
    let query = parse(src)?;
    validate(&query)?;
    Ok(query)
}
