//! The parser's integration tests, in one binary.

mod canonical;
mod conformance;
mod diagnostics;
mod properties;
mod strategies;

use traceql_parser::parse;

/// Parses, prints, parses again: both ASTs must be equal and printing idempotent.
pub fn assert_round_trip(query: &str) -> Result<(), String> {
    let ast = parse(query).map_err(|e| format!("{query:?}: parse failed: {e}"))?;
    let printed = ast.to_string();
    let again = parse(&printed)
        .map_err(|e| format!("{query:?}: printed {printed:?} does not parse: {e}"))?;
    if again != ast {
        return Err(format!(
            "{query:?}: printed {printed:?} parses to a different AST"
        ));
    }
    if again.to_string() != printed {
        return Err(format!(
            "{query:?}: printing is not idempotent: {printed:?} then {:?}",
            again.to_string()
        ));
    }
    Ok(())
}
