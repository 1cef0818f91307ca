//! Tempo's parser and validator suite (`shared/conformance/tempo_test_examples.yaml`):
//! every query must have the expected outcome, and every valid or unsupported query
//! must print to canonical text that parses back to the same AST.

use serde::Deserialize;
use traceql_parser::{ErrorKind, parse, validate};

use crate::assert_round_trip;

#[derive(Deserialize)]
struct Examples {
    valid: Vec<String>,
    parse_fails: Vec<String>,
    validate_fails: Vec<String>,
    unsupported: Vec<String>,
}

/// Tempo's examples, or `None` (announced) when the shared data are absent.
fn examples() -> Option<Examples> {
    let path = traceql_testkit::conformance("tempo_test_examples.yaml")?;
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Some(serde_norway::from_str(&text).expect("tempo_test_examples.yaml is valid YAML"))
}

fn check_all(name: &str, queries: &[String], check: impl Fn(&str) -> Result<(), String>) {
    let failures: Vec<String> = queries.iter().filter_map(|q| check(q).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} `{name}` queries failed:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}

#[test]
fn the_suite_has_every_section() {
    let Some(e) = examples() else {
        return;
    };
    let total = e.valid.len() + e.parse_fails.len() + e.validate_fails.len() + e.unsupported.len();
    assert_eq!(total, 463, "the conformance suite has 463 queries");
}

#[test]
fn valid_queries_parse_validate_and_round_trip() {
    let Some(suite) = examples() else {
        return;
    };
    check_all("valid", &suite.valid, |q| {
        let ast = parse(q).map_err(|e| format!("{q:?}: {e}"))?;
        validate(&ast).map_err(|e| format!("{q:?}: validation: {e}"))?;
        assert_round_trip(q)
    });
}

#[test]
fn parse_failures_are_parse_errors() {
    let Some(suite) = examples() else {
        return;
    };
    check_all("parse_fails", &suite.parse_fails, |q| match parse(q) {
        Ok(ast) => Err(format!("{q:?}: parsed as {ast}")),
        Err(e) if e.kind == ErrorKind::Parse => Ok(()),
        Err(e) => Err(format!("{q:?}: wrong kind {:?}", e.kind)),
    });
}

#[test]
fn validation_failures_are_validation_errors() {
    let Some(suite) = examples() else {
        return;
    };
    check_all("validate_fails", &suite.validate_fails, |q| {
        let ast = parse(q).map_err(|e| format!("{q:?}: parse failed: {e}"))?;
        match validate(&ast) {
            Ok(()) => Err(format!("{q:?}: validated")),
            Err(e) if e.kind == ErrorKind::Validation => Ok(()),
            Err(e) => Err(format!("{q:?}: wrong kind {:?}: {e}", e.kind)),
        }
    });
}

#[test]
fn unsupported_queries_parse_round_trip_and_are_unsupported() {
    let Some(suite) = examples() else {
        return;
    };
    check_all("unsupported", &suite.unsupported, |q| {
        let ast = parse(q).map_err(|e| format!("{q:?}: parse failed: {e}"))?;
        match validate(&ast) {
            Ok(()) => Err(format!("{q:?}: validated")),
            Err(e) if e.kind == ErrorKind::Unsupported && e.message.contains("not supported") => {
                assert_round_trip(q)
            }
            Err(e) => Err(format!("{q:?}: wrong kind {:?}: {e}", e.kind)),
        }
    });
}
