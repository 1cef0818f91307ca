//! The `traceql` binary, end to end.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde::Deserialize;

fn traceql(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_traceql"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("the traceql binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn fmt_prints_the_users_query_with_braces() {
    let out = traceql(&["fmt", r#"< .service.name = "checkout" && status = error >"#]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "{ .service.name = \"checkout\" && status = error }\n"
    );
}

#[test]
fn fmt_exit_codes_say_what_went_wrong() {
    let parse = traceql(&["fmt", "{ .a == 1 }"]);
    assert_eq!(parse.status.code(), Some(2));
    assert!(stdout(&parse).is_empty());
    let err = stderr(&parse);
    assert!(err.contains("`==` is not an operator"), "{err}");
    assert!(err.contains("query:1:6"), "{err}");
    assert!(err.contains("use `=` to compare"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour when stderr is not a terminal"
    );

    let validation = traceql(&["fmt", "{ status = \"error\" }"]);
    assert_eq!(validation.status.code(), Some(2));
    assert!(stderr(&validation).contains("status = error"));

    let unsupported = traceql(&["fmt", "{ parent.a = 1 }"]);
    assert_eq!(unsupported.status.code(), Some(3));
    assert!(stderr(&unsupported).contains("unsupported"));
}

#[test]
fn fmt_ast_prints_json() {
    let out = traceql(&["fmt", "--ast", "{ duration > 1s }"]);
    assert_eq!(
        stdout(&traceql(&["fmt", "-1 + ({} | rate())", "--ast"])),
        stdout(&traceql(&["fmt", "--ast", "-1 + ({} | rate())"]))
    );
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let filter = &json["body"]["search"]["stages"][0]["spanset"]["kind"]["filter"];
    assert_eq!(filter["kind"]["binary"]["op"], "gt");
    assert_eq!(
        filter["kind"]["binary"]["rhs"]["kind"]["literal"]["duration"],
        1_000_000_000
    );
}

#[test]
fn fmt_reads_standard_input() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_traceql"))
        .arg("fmt")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{kind=server}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "{ kind = server }\n");
}

#[test]
fn help_shows_examples() {
    let out = traceql(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("Examples:"), "{text}");
    assert!(text.contains("traceql fmt '< .service.name = \"checkout\" && status = error >'"));
}

#[derive(Deserialize)]
struct Examples {
    valid: Vec<String>,
    parse_fails: Vec<String>,
    validate_fails: Vec<String>,
    unsupported: Vec<String>,
}

/// Every conformance query through the binary: the exit code matches the expected
/// outcome, and formatting a formatted query changes nothing.
#[test]
fn fmt_agrees_with_every_conformance_query() {
    let dir = std::env::var_os("TRACEQL_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
        });
    let path = dir.join("tempo_test_examples.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance data {} is required: {e}", path.display()));
    let examples: Examples = serde_norway::from_str(&text).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (queries, expected) in [
        (&examples.valid, 0),
        (&examples.parse_fails, 2),
        (&examples.validate_fails, 2),
        (&examples.unsupported, 3),
    ] {
        for q in queries {
            checked += 1;
            let out = traceql(&["fmt", q]);
            if out.status.code() != Some(expected) {
                failures.push(format!(
                    "{q:?}: exit {:?}, expected {expected}",
                    out.status.code()
                ));
                continue;
            }
            if expected == 0 {
                let once = stdout(&out);
                let twice = stdout(&traceql(&["fmt", once.trim_end()]));
                if once != twice {
                    failures.push(format!("{q:?}: fmt gives {once:?}, then {twice:?}"));
                }
            }
        }
    }
    assert_eq!(checked, 463);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
