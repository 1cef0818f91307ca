//! The `traceql` binary, end to end.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde::Deserialize;
use traceql_testkit::{S3TestServer, require_shared};

#[path = "otlp/mod.rs"]
mod otlp;

#[path = "cluster/mod.rs"]
mod cluster;

fn traceql(args: &[&str]) -> Output {
    traceql_with(args, &[])
}

/// Runs the binary with extra environment variables (and `NO_COLOR` unset).
fn traceql_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_traceql"));
    command.args(args).env_remove("NO_COLOR");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the traceql binary runs")
}

/// Runs the binary with `input` on its standard input.
fn traceql_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_traceql"))
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the traceql binary runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
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
    let out = traceql_stdin(&["fmt"], b"{kind=server}\n");
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
    let path = require_shared!(conformance("tempo_test_examples.yaml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
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

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("traceql-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn blocks_json(store: &std::path::Path) -> serde_json::Value {
    let out = traceql(&[
        "blocks",
        "--data",
        store.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn blocks_lists_the_bundled_demo_store_from_any_directory() {
    let dir = temp_dir("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_traceql"))
        .args(["blocks", "--format", "json"])
        .current_dir(&dir)
        .env_remove("TRACEQL_DATA")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let blocks: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let blocks = blocks.as_array().unwrap();
    assert!(!blocks.is_empty());
    for b in blocks {
        for key in [
            "id",
            "traces",
            "spans",
            "start",
            "end",
            "bytes",
            "typed_columns",
        ] {
            assert!(b.get(key).is_some(), "{key} missing in {b}");
        }
    }
    let spans: u64 = blocks.iter().map(|b| b["spans"].as_u64().unwrap()).sum();
    assert!(spans > 10_000, "{spans}");
}

#[test]
fn gen_is_deterministic_and_made_the_demo_store() {
    let dir = temp_dir("gen");
    let store = dir.join("store");
    let out = traceql(&[
        "gen",
        "--data",
        store.to_str().unwrap(),
        "--traces",
        "3000",
        "--seed",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("3000 traces"), "{}", stdout(&out));
    let ours = blocks_json(&store);
    let demo = blocks_json(&repo().join("testdata/demo"));
    assert_eq!(
        ours, demo,
        "testdata/demo is `traceql gen --traces 3000 --seed 1`"
    );
    let id = ours[0]["id"].as_str().unwrap();
    let read = |root: &std::path::Path| {
        std::fs::read(root.join("single-tenant").join(id).join("data.parquet")).unwrap()
    };
    assert!(
        read(&store) == read(&repo().join("testdata/demo")),
        "the data files differ"
    );
}

#[test]
fn ingest_reports_what_it_wrote_and_refuses_bad_input() {
    let dir = temp_dir("ingest");
    let otlp = repo().join("testdata/otlp");
    let file = |name: &str| otlp.join(name).to_str().unwrap().to_string();
    let pb = dir.join("pb");
    let out = traceql(&[
        "ingest",
        "--data",
        pb.to_str().unwrap(),
        &file("sdk-1.binpb"),
        &file("sdk-2.binpb"),
        &file("sdk-3.binpb"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("4 traces, 8 spans, 1 blocks"),
        "{}",
        stdout(&out)
    );
    let json = dir.join("json");
    let out = traceql(&[
        "ingest",
        "--data",
        json.to_str().unwrap(),
        &file("sdk.jsonl"),
    ]);
    assert!(
        stdout(&out).contains("4 traces, 8 spans, 1 blocks"),
        "{}",
        stdout(&out)
    );

    let whole = std::fs::read(otlp.join("sdk-3.binpb")).unwrap();
    let truncated = dir.join("truncated.binpb");
    std::fs::write(&truncated, &whole[..whole.len() - 7]).unwrap();
    let before = blocks_json(&pb);
    let out = traceql(&[
        "ingest",
        "--data",
        pb.to_str().unwrap(),
        &file("sdk-1.binpb"),
        truncated.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("truncated.binpb"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(blocks_json(&pb), before, "the store changed");

    let out = traceql(&[
        "ingest",
        "--skip-invalid",
        "--data",
        pb.to_str().unwrap(),
        &file("sdk-1.binpb"),
        truncated.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("skipped 1 invalid records"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("truncated.binpb"));

    let out = traceql(&[
        "ingest",
        "--data",
        pb.to_str().unwrap(),
        dir.join("missing.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.json"), "{}", stderr(&out));
}

/// Spans and traces in the visible blocks of `store` (a trace in two blocks counts
/// twice).
fn visible(store: &std::path::Path) -> (u64, u64) {
    let blocks = blocks_json(store);
    let sum = |key: &str| {
        blocks
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[key].as_u64().unwrap())
            .sum()
    };
    (sum("spans"), sum("traces"))
}

/// What a search for every span answers on `store`: the spans it returns, and how
/// many of them are distinct (trace id, span id) pairs.
fn answered(store: &std::path::Path) -> (usize, usize) {
    let out = traceql(&[
        "query",
        "--data",
        store.to_str().unwrap(),
        "--limit",
        "1000000",
        "--spss",
        "1000000",
        "--format",
        "jsonl",
        "{ }",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut spans = Vec::new();
    for line in stdout(&out).lines() {
        let trace: serde_json::Value = serde_json::from_str(line).unwrap();
        for set in trace["spanSets"].as_array().unwrap() {
            for span in set["spans"].as_array().unwrap() {
                spans.push((trace["traceID"].to_string(), span["spanID"].to_string()));
            }
        }
    }
    let total = spans.len();
    spans.sort();
    spans.dedup();
    (total, spans.len())
}

/// How many `meta.json` files lie under `dir`: visible blocks and hidden ones.
fn meta_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| match p.is_dir() {
            true => meta_files(&p),
            false => usize::from(p.file_name().is_some_and(|f| f == "meta.json")),
        })
        .sum()
}

/// `args` as the binary takes them.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs the binary with `args` to the end and returns how long it took.
fn timed(args: &[&str]) -> std::time::Duration {
    let started = std::time::Instant::now();
    let out = traceql(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    started.elapsed()
}

/// Starts the binary with `args` and kills it (SIGKILL) after `after`.
fn killed(args: &[&str], after: std::time::Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_traceql"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
}

/// `gen`, `ingest` and `compact`, each killed at moments drawn from several seeds:
/// the store stays readable and shows every span exactly once (a run's whole output
/// or none of it; the old blocks or the compacted ones), and the next run cleans up
/// what the killed one left.
#[test]
fn killed_gen_ingest_and_compact_show_every_span_exactly_once() {
    let dir = temp_dir("kill");
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let gen_args =
        |store: &str| ["gen", "--data", store, "--traces", "1000", "--seed", "9"].map(String::from);
    let ingest_args = |store: &str| {
        let input = path("input.jsonl");
        [
            "ingest",
            "--data",
            store,
            "--memory-limit",
            "512KiB",
            &input,
        ]
        .map(String::from)
    };
    let compact_args =
        |store: &str| ["compact", "--data", store, "--memory-limit", "24MiB"].map(String::from);

    // Uninterrupted runs: what every store must end up holding, and how long each
    // command takes.
    let reference = path("reference");
    let gen_time = timed(&strs(&gen_args(&reference)));
    let (spans, traces) = visible(&dir.join("reference"));
    assert!(spans > 5_000);
    timed(&[
        "export",
        "--data",
        &reference,
        "--format",
        "otlp-json",
        "--output",
        &path("input.jsonl"),
    ]);
    let ingested = path("ingested");
    let ingest_time = timed(&strs(&ingest_args(&ingested)));
    assert_eq!(visible(&dir.join("ingested")).0, spans);
    let before = blocks_json(&dir.join("ingested")).as_array().unwrap().len();
    let compact_time = timed(&strs(&compact_args(&ingested)));
    let after = blocks_json(&dir.join("ingested")).as_array().unwrap().len();
    assert!(
        after < before,
        "compaction merged nothing: {before} -> {after} blocks"
    );
    assert_eq!(visible(&dir.join("ingested")), (spans, traces));

    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut moment = |of: std::time::Duration| {
        // A small linear congruential generator: moments in (0, 1) of a run.
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        of.mul_f64(((state >> 33) % 1000) as f64 / 1000.0)
    };
    for seed in 0..4 {
        let store = path(&format!("store-{seed}"));
        let store_dir = dir.join(format!("store-{seed}"));
        killed(&strs(&gen_args(&store)), moment(gen_time));
        if store_dir.exists() {
            let seen = visible(&store_dir);
            assert!(seen == (0, 0) || seen == (spans, traces), "gen: {seen:?}");
        }
        let _ = std::fs::remove_dir_all(&store_dir);

        killed(&strs(&ingest_args(&store)), moment(ingest_time));
        let seen = if store_dir.exists() {
            visible(&store_dir).0
        } else {
            0
        };
        assert!(
            seen == 0 || seen == spans,
            "ingest (seed {seed}): {seen} spans"
        );
        if seen == 0 {
            timed(&strs(&ingest_args(&store)));
            assert_eq!(visible(&store_dir).0, spans);
            // The killed run's hidden blocks are gone.
            let blocks = blocks_json(&store_dir).as_array().unwrap().len();
            assert_eq!(meta_files(&store_dir), blocks, "seed {seed}");
        }

        killed(&strs(&compact_args(&store)), moment(compact_time));
        let seen = visible(&store_dir).0;
        assert_eq!(seen, spans, "compact (seed {seed})");
        // Queries see each span once.
        assert_eq!(
            answered(&store_dir),
            (spans as usize, spans as usize),
            "seed {seed}"
        );
        timed(&strs(&compact_args(&store)));
        assert_eq!(visible(&store_dir), (spans, traces), "seed {seed}");
    }
}

#[test]
fn query_answers_the_users_example_on_the_demo_store() {
    let out = traceql(&[
        "query",
        r#"< .service.name = "checkout" && status = error >"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("POST /checkout"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour when stdout is not a terminal"
    );

    let spans = traceql(&[
        "query",
        "--spans",
        "--limit",
        "2",
        r#"< .service.name = "checkout" && status = error >"#,
    ]);
    assert!(
        stdout(&spans).contains("status=error"),
        "{}",
        stdout(&spans)
    );

    let csv = traceql(&[
        "query",
        "--format",
        "csv",
        "--limit",
        "2",
        "{ status = error }",
    ]);
    let csv = stdout(&csv);
    assert!(csv.starts_with("trace_id,root_service,root_name,"), "{csv}");
    assert!(csv.lines().count() >= 3, "{csv}");
    let jsonl = traceql(&[
        "query",
        "--format",
        "jsonl",
        "--limit",
        "3",
        "{ status = error }",
    ]);
    let lines: Vec<serde_json::Value> = stdout(&jsonl)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|t| t["traceID"].is_string()));
    assert!(text.trim_end().ends_with("traces"), "{text}");

    let json = traceql(&[
        "query",
        "--format",
        "json",
        "--limit",
        "2",
        "--spss",
        "1",
        "{ status = error }",
    ]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let response: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let traces = response["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 2);
    let starts: Vec<u64> = traces
        .iter()
        .map(|t| t["startTimeUnixNano"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(starts[0] >= starts[1], "newest first: {starts:?}");
    for trace in traces {
        for set in trace["spanSets"].as_array().unwrap() {
            assert_eq!(set["spans"].as_array().unwrap().len(), 1);
            assert!(set["matched"].as_u64().unwrap() >= 1);
        }
    }
}

#[test]
fn query_errors_have_exit_codes_and_stats_go_to_stderr() {
    let invalid = traceql(&["query", "{ status = \"error\" }"]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(
        stderr(&invalid).contains("status = error"),
        "{}",
        stderr(&invalid)
    );

    let unsupported = traceql(&["query", "{ parent.http.method = \"GET\" }"]);
    assert_eq!(unsupported.status.code(), Some(3));
    assert!(stderr(&unsupported).contains("not supported yet"));

    let missing = traceql(&["query", "--data", "/nonexistent/store", "{ }"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stderr(&missing).lines().count(), 1, "{}", stderr(&missing));

    // A limit of none would print nothing and succeed: refused, as Tempo refuses it.
    let no_limit = traceql(&["query", "--limit", "0", "{ }"]);
    assert_eq!(no_limit.status.code(), Some(2));
    assert!(
        stderr(&no_limit).contains("at least 1"),
        "{}",
        stderr(&no_limit)
    );

    let bad_time = traceql(&["query", "--start", "yesterday", "{ }"]);
    assert_eq!(bad_time.status.code(), Some(1));
    assert!(stderr(&bad_time).contains("RFC 3339"));

    let stats = traceql(&["query", "--stats", "--limit", "1", "{ kind = server }"]);
    assert_eq!(stats.status.code(), Some(0));
    let err = stderr(&stats);
    for line in [
        "spans scanned:",
        "bytes scanned:",
        "row groups pruned:",
        "planning:",
        "execution:",
    ] {
        assert!(err.contains(line), "{err}");
    }
}

#[test]
fn trace_shows_the_whole_trace() {
    let out = traceql(&["trace", "9cd3aded5780380407a67f88147d4b87"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("trace 9cd3aded5780380407a67f88147d4b87 · 17 spans"),
        "{text}"
    );
    // Header, axis, 17 spans, legend, then the trace's insights.
    let waterfall: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("No N+1"))
        .collect();
    assert_eq!(waterfall.len(), 20, "{text}");
    assert!(text.contains("Where the time went"), "{text}");
    assert!(
        text.contains("✗ UNAVAILABLE"),
        "errors show their status:\n{text}"
    );
    assert!(
        text.contains("* GET /"),
        "the root is on the critical path:\n{text}"
    );

    let json = traceql(&[
        "trace",
        "--format",
        "json",
        "9cd3aded5780380407a67f88147d4b87",
    ]);
    let request: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let spans: usize = request["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["scopeSpans"].as_array().unwrap())
        .map(|s| s["spans"].as_array().unwrap().len())
        .sum();
    assert_eq!(spans, 17);

    assert_eq!(traceql(&["trace", "not-hex"]).status.code(), Some(2));
    let unknown = traceql(&["trace", "1234"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("not found"));
}

#[test]
fn explain_shows_the_span_set_operators() {
    let out = traceql(&[
        "explain",
        "{ kind = server } >> { status = error } | count() > 1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for part in [
        "logical plan:",
        "Structural:",
        ">>",
        "AggregateFilter:",
        "count() > 1",
        "physical plan:",
        "StructuralExec",
        "{ kind = server }",
    ] {
        assert!(text.contains(part), "missing {part}:\n{text}");
    }
}

#[test]
fn explain_analyze_runs_the_query_and_counts_each_operators_rows() {
    let query = "{ resource.service.name = \"frontend\" } >> { status = error }";
    let search = traceql(&[
        "query", "--format", "json", "--limit", "100000", "--spss", "100000", query,
    ]);
    assert_eq!(search.status.code(), Some(0), "{}", stderr(&search));
    let response: serde_json::Value = serde_json::from_str(&stdout(&search)).unwrap();
    let matched: u64 = response["traces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["spanSets"].as_array().unwrap())
        .map(|s| s["matched"].as_u64().unwrap())
        .sum();
    assert!(matched > 0);

    let out = traceql(&["explain", "--analyze", query]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let ran = text
        .split("physical plan, as it ran:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no analysed plan:\n{text}"));
    // The plan's top operator returns exactly the matched spans of the search.
    let top = ran.lines().next().unwrap_or_default();
    assert!(
        top.contains(&format!("output_rows={matched},")),
        "top operator should return {matched} rows: {top}"
    );
    let structural = ran
        .lines()
        .find(|l| l.contains("StructuralExec"))
        .unwrap_or_else(|| panic!("no StructuralExec:\n{ran}"));
    assert!(structural.contains("elapsed_compute="), "{structural}");
    assert!(structural.contains("output_batches="), "{structural}");
    assert!(
        text.contains("totals:\n") && text.contains("spans scanned: "),
        "{text}"
    );

    let metrics = traceql(&[
        "explain",
        "--analyze",
        "{ status = error } | rate() by (resource.service.name)",
    ]);
    assert_eq!(metrics.status.code(), Some(0), "{}", stderr(&metrics));
    assert!(
        stdout(&metrics).contains("AggregateExec"),
        "{}",
        stdout(&metrics)
    );
}

#[test]
fn a_query_over_its_memory_limit_fails_naming_the_limit() {
    let query = "{ } | rate() by (resource.service.name)";
    let small = traceql(&["query", "--memory-limit", "64KiB", query]);
    assert_eq!(small.status.code(), Some(1), "{}", stdout(&small));
    let message = stderr(&small);
    assert!(
        message.contains("needs more memory than its limit of 64.0 KiB"),
        "{message}"
    );
    assert!(message.contains("--memory-limit"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
    assert!(stdout(&small).is_empty());

    let enough = traceql(&["query", "--memory-limit", "256MiB", query]);
    assert_eq!(enough.status.code(), Some(0), "{}", stderr(&enough));

    let bad = traceql(&["query", "--memory-limit", "lots", query]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("not a size"), "{}", stderr(&bad));
}

#[test]
fn trace_waterfall_snapshot() {
    let out = traceql_with(
        &["trace", "9cd3aded5780380407a67f88147d4b87"],
        &[("COLUMNS", "110")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("waterfall", stdout(&out));
}

#[test]
fn repl_reads_queries_and_commands_from_a_pipe() {
    let out = traceql_stdin(
        &["repl"],
        b"\\limit 2\n{ status = error }\n{ status = \"x\" }\n\\format jsonl\n{ kind = server }\n{ } | count_over_time() by (status)\n\\instant\n{ } | rate()\n\\bogus\n\\q\n{ }\n",
    );
    assert_eq!(out.status.code(), Some(0));
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(text.contains("2 traces"), "{text}");
    assert!(
        err.contains("cannot compare a status with a string"),
        "{err}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("{\"traceID\""))
            .count(),
        2,
        "{text}"
    );
    assert!(err.contains("unknown command \\bogus"), "{err}");
    assert!(
        text.contains("{\"labels\":{\"status\":\"error\"},\"samples\":["),
        "metrics in the REPL: {text}"
    );
    let instant: serde_json::Value = text
        .lines()
        .filter(|l| l.contains("\"__name__\":\"rate\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .next()
        .expect("the instant rate");
    assert_eq!(instant["samples"].as_array().unwrap().len(), 1, "{instant}");
    assert_eq!(
        text.matches("traces").count(),
        1,
        "nothing runs after \\q: {text}"
    );
}

#[cfg(unix)]
#[test]
fn repl_in_a_terminal_completes_continues_survives_errors_and_ctrl_c() {
    // A store large enough that a heavy search outlasts the Ctrl-C sent at it.
    let store = temp_dir("repl-store");
    let generated = traceql(&[
        "gen",
        "--data",
        store.to_str().unwrap(),
        "--traces",
        "15000",
        "--seed",
        "4",
    ]);
    assert_eq!(generated.status.code(), Some(0), "{}", stderr(&generated));
    let history = temp_dir("repl-history").join("history");
    let mut command = Command::new(env!("CARGO_BIN_EXE_traceql"));
    command
        .args(["repl", "--data", store.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env("COLUMNS", "140")
        .env("TRACEQL_HISTORY", &history);
    let mut p = rexpect::session::spawn_command(command, Some(60_000)).unwrap();
    p.exp_string("Tab completes").unwrap();
    p.exp_string("traceql> ").unwrap();
    // Completion of an attribute name from the store, then of one of its values.
    p.send("{ resource.service.na\t").unwrap();
    p.flush().unwrap();
    p.exp_string("resource.service.name").unwrap();
    p.send(" = \"check\t").unwrap();
    p.flush().unwrap();
    p.exp_string("\"checkout\"").unwrap();
    // A trailing operator continues the query on the next line.
    p.send_line(" &&").unwrap();
    p.send_line("status = error }").unwrap();
    p.exp_string(" traces").unwrap();
    // An error shows the diagnostic and the prompt comes back.
    p.send_line("{ status = \"x\" }").unwrap();
    p.exp_string("cannot compare a status with a string")
        .unwrap();
    p.exp_string("traceql> ").unwrap();
    // Ctrl-C cancels a long search, not the REPL.
    p.send_line("\\limit 1000000").unwrap();
    p.exp_string("traceql> ").unwrap();
    p.send_line("\\spss 1000000").unwrap();
    p.exp_string("traceql> ").unwrap();
    p.send_line("{ } >> { } | by(name) | count() > 1").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send_control('c').unwrap();
    p.exp_string("cancelled").unwrap();
    p.exp_string("traceql> ").unwrap();
    p.send_line("\\limit 1").unwrap();
    p.exp_string("traceql> ").unwrap();
    p.send_line("{ status = error }").unwrap();
    p.exp_string("1 trace").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("{ status = error }"), "{saved}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = traceql(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            stdout(&out).contains("repl"),
            "{shell} completes subcommands"
        );
    }
}

/// Runs the binary with the AWS settings of `server` in its environment.
fn traceql_s3(server: &S3TestServer, args: &[&str]) -> Output {
    let env = server.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    traceql_with(args, &env)
}

#[test]
fn s3_stores_answer_like_local_ones() {
    let server = S3TestServer::start().expect("moto server");
    server.create_bucket("cli").unwrap();
    let local = temp_dir("s3-parity");
    let local = local.to_str().unwrap();
    let remote = "s3://cli/gen";
    let otlp = repo().join("testdata/otlp/sdk-all.binpb.zst");
    for data in [local, remote] {
        for args in [
            vec![
                "gen",
                "--data",
                data,
                "--traces",
                "400",
                "--seed",
                "5",
                "--block-spans",
                "1500",
            ],
            vec!["ingest", "--data", data, otlp.to_str().unwrap()],
            // Merges the small blocks: transactions on S3 as on disk.
            vec!["compact", "--data", data],
        ] {
            let out = traceql_s3(&server, &args);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
            if args[0] == "compact" {
                assert!(
                    stdout(&out).contains("1 groups"),
                    "{data}: {}",
                    stdout(&out)
                );
            }
        }
    }
    let spans = |data: &str| -> u64 {
        let out = traceql_s3(&server, &["blocks", "--data", data, "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let blocks: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
        blocks.iter().map(|b| b["spans"].as_u64().unwrap()).sum()
    };
    assert_eq!(spans(remote), spans(local));
    for query in [
        "{ status = error }",
        "{ resource.service.name = \"checkout\" } >> { status = error }",
        "{ kind = server } | count() > 3",
        "{ resource.service.name = \"sdk-sample\" }",
    ] {
        let run = |data: &str| {
            let out = traceql_s3(
                &server,
                &[
                    "query", "--data", data, "--limit", "1000", "--format", "json", query,
                ],
            );
            assert_eq!(out.status.code(), Some(0), "{query}: {}", stderr(&out));
            let mut json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            json.as_object_mut().unwrap().remove("metrics");
            json
        };
        assert_eq!(run(remote), run(local), "{query}");
    }
    let out = traceql_s3(
        &server,
        &[
            "query", "--data", remote, "--stats", "--format", "jsonl", "{ }",
        ],
    );
    let id = stdout(&out).lines().next().map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["traceID"].as_str().unwrap().to_string()
    });
    let stats = stderr(&out);
    assert!(stats.contains("store requests: "), "{stats}");
    assert!(!stats.contains("bytes fetched: 0\n"), "{stats}");
    let id = id.expect("a trace");
    let trace = |data: &str| stdout(&traceql_s3(&server, &["trace", "--data", data, &id]));
    assert_eq!(trace(remote), trace(local));

    // The endpoint can also be given as a flag; plain http is then allowed.
    let flagged = traceql_with(
        &[
            "blocks",
            "--data",
            remote,
            "--s3-endpoint",
            &server.endpoint(),
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert_eq!(flagged.status.code(), Some(0), "{}", stderr(&flagged));
}

#[test]
fn s3_errors_are_one_line() {
    let server = S3TestServer::start().expect("moto server");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        format!("http://127.0.0.1:{port}")
    };
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["query", "--data", "s3://no-such-bucket/p", "{ }"],
            "the bucket does not exist",
        ),
        (
            vec!["blocks", "--data", "s3://b/p", "--s3-endpoint", &closed],
            "cannot reach the endpoint: connection refused (after 3 retries)",
        ),
        (
            vec!["gen", "--data", "s3://no-such-bucket/p", "--traces", "5"],
            "the bucket does not exist",
        ),
        (
            vec!["query", "--data", "ftp://host/x", "{ }"],
            "not supported",
        ),
    ];
    for (args, expected) in cases {
        let out = traceql_s3(&server, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
}

#[test]
fn query_runs_metrics_queries() {
    let json = traceql(&[
        "query",
        "--format",
        "json",
        "--step",
        "5m",
        "{ status = error } | rate() by (resource.service.name)",
    ]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let value: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let series = value["series"].as_array().unwrap();
    assert!(series.len() > 5, "one series per service");
    for s in series {
        let label = &s["labels"][0];
        assert_eq!(label["key"], "resource.service.name");
        assert!(label["value"]["stringValue"].is_string(), "{label}");
        for sample in s["samples"].as_array().unwrap() {
            let ms: u64 = sample["timestampMs"].as_str().unwrap().parse().unwrap();
            assert_eq!(ms % 300_000, 0, "samples sit on 5-minute bucket ends");
            assert!(sample["value"].as_f64().unwrap() >= 0.0);
        }
    }

    let table = traceql(&["query", "{ } | quantile_over_time(duration, .5, .99)"]);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(
        text.contains("p=0.99") && !text.contains("__name__"),
        "{text}"
    );
    assert!(
        text.chars().any(|c| ('▁'..='█').contains(&c)),
        "a sparkline: {text}"
    );
    assert!(text.contains("2 series"), "{text}");

    let instant = traceql(&[
        "query",
        "--instant",
        "--format",
        "jsonl",
        "({ status = error } | count_over_time()) / ({ } | count_over_time())",
    ]);
    assert_eq!(instant.status.code(), Some(0), "{}", stderr(&instant));
    let line: serde_json::Value = serde_json::from_str(stdout(&instant).trim()).unwrap();
    let samples = line["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 1, "one value for the whole range");
    let ratio = samples[0][1].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio < 0.2, "error share {ratio}");

    let bad_step = traceql(&["query", "--step", "soon", "{ } | rate()"]);
    assert_eq!(bad_step.status.code(), Some(1));
    let compare = traceql(&[
        "query",
        "--instant",
        "--format",
        "jsonl",
        "{ } | compare({ status = error }, 3)",
    ]);
    assert_eq!(compare.status.code(), Some(0), "{}", stderr(&compare));
    assert!(
        stdout(&compare).contains("\"__meta_type\":\"selection_total\""),
        "{}",
        stdout(&compare)
    );
}

#[test]
fn export_writes_the_demo_store_whole_or_not_at_all() {
    let dir = temp_dir("export");
    let out = dir.join("spans.jsonl");
    let o = traceql(&[
        "export",
        "--format",
        "otlp-json",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let demo = blocks_json(&repo().join("testdata/demo"));
    let spans: u64 = demo
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["spans"].as_u64().unwrap())
        .sum();
    assert!(
        stderr(&o).contains(&format!("exported {spans} spans")),
        "{}",
        stderr(&o)
    );
    // Every line is a request; together they hold every span.
    let text = std::fs::read_to_string(&out).unwrap();
    let exported: usize = text
        .lines()
        .map(|line| {
            let request: serde_json::Value = serde_json::from_str(line).unwrap();
            request["resourceSpans"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r["scopeSpans"].as_array().unwrap())
                .map(|s| s["spans"].as_array().unwrap().len())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(exported as u64, spans);
    // A failed export leaves no file behind.
    let nowhere = dir.join("missing-dir").join("spans.parquet");
    let o = traceql(&[
        "export",
        "--format",
        "parquet",
        "--output",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
    assert!(!dir.join("missing-dir").exists());
    let leftovers = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(leftovers, 1, "only the complete export");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn order_slowest_gives_the_same_traces_in_query_and_repl() {
    let query = traceql(&[
        "query", "--order", "slowest", "--limit", "3", "--format", "jsonl", "{ }",
    ]);
    assert!(query.status.success(), "{}", stderr(&query));
    let repl = traceql_stdin(
        &["repl"],
        b"\\format jsonl\n\\limit 3\n\\order slowest\n{ }\n\\order fastest\n",
    );
    assert_eq!(stdout(&repl).trim(), stdout(&query).trim());
    assert!(
        stderr(&repl).contains("usage: \\order newest|oldest|slowest"),
        "{}",
        stderr(&repl)
    );
    let durations: Vec<u64> = stdout(&query)
        .lines()
        .map(|l| {
            let trace: serde_json::Value = serde_json::from_str(l).unwrap();
            trace["durationMs"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(durations.len(), 3);
    assert!(durations.windows(2).all(|w| w[0] >= w[1]), "{durations:?}");
    // The slowest trace of the whole demo store, not of its newest traces.
    let every = traceql(&["query", "--limit", "100000", "--format", "jsonl", "{ }"]);
    let longest = stdout(&every)
        .lines()
        .map(|l| {
            let trace: serde_json::Value = serde_json::from_str(l).unwrap();
            trace["durationMs"].as_u64().unwrap()
        })
        .max()
        .unwrap();
    assert_eq!(durations[0], longest);
    let bad = traceql(&["query", "--order", "fastest", "{ }"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("use newest, oldest, slowest"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn arrow_output_holds_every_shown_span_of_the_json_lines_output() {
    use arrow::array::{Array, AsArray, DictionaryArray, StringArray};
    use arrow::datatypes::UInt32Type;
    let query = r#"{ status = error } | select(span.http.route)"#;
    let args = |format| ["query", "--format", format, "--limit", "500", query];
    let arrow = traceql(&args("arrow"));
    assert_eq!(arrow.status.code(), Some(0), "{}", stderr(&arrow));
    let reader = arrow::ipc::reader::StreamReader::try_new(arrow.stdout.as_slice(), None)
        .expect("an Arrow IPC stream");
    let mut rows: Vec<(String, String, String, Option<String>)> = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .clone()
        };
        let dictionary = |name: &str| {
            let column = batch.column_by_name(name).unwrap();
            let column = column
                .as_any()
                .downcast_ref::<DictionaryArray<UInt32Type>>();
            let column = column.unwrap();
            let values = column.values().as_string::<i32>().clone();
            (0..column.len())
                .map(|i| {
                    column
                        .is_valid(i)
                        .then(|| values.value(column.keys().value(i) as usize).to_string())
                })
                .collect::<Vec<_>>()
        };
        let (trace, span): (StringArray, StringArray) = (text("trace_id"), text("span_id"));
        let (names, routes) = (dictionary("name"), dictionary("http.route"));
        for i in 0..batch.num_rows() {
            rows.push((
                trace.value(i).to_string(),
                span.value(i).to_string(),
                names[i].clone().unwrap_or_default(),
                routes[i].clone(),
            ));
        }
    }
    let jsonl = traceql(&args("jsonl"));
    let mut want = Vec::new();
    for line in stdout(&jsonl).lines() {
        let trace: serde_json::Value = serde_json::from_str(line).unwrap();
        for set in trace["spanSets"].as_array().unwrap() {
            for span in set["spans"].as_array().unwrap() {
                let route = span["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["key"] == "http.route")
                    .map(|a| a["value"]["stringValue"].as_str().unwrap().to_string());
                want.push((
                    trace["traceID"].as_str().unwrap().to_string(),
                    span["spanID"].as_str().unwrap().to_string(),
                    span["name"].as_str().unwrap_or_default().to_string(),
                    route,
                ));
            }
        }
    }
    assert!(want.len() > 10, "the demo store has errors to show");
    assert!(
        want.iter().any(|r| r.3.is_some()),
        "some spans have a route"
    );
    assert_eq!(rows, want);
}

#[test]
fn every_command_takes_the_formats_that_fit_it() {
    let trace = traceql(&[
        "trace",
        "--format",
        "csv",
        "9cd3aded5780380407a67f88147d4b87",
    ]);
    assert_eq!(trace.status.code(), Some(2), "clap refuses it");
    assert!(
        stderr(&trace).contains("[possible values: waterfall, json]"),
        "{}",
        stderr(&trace)
    );
    let blocks = traceql(&["blocks", "--format", "arrow"]);
    assert_eq!(blocks.status.code(), Some(2));
    let metrics = traceql(&["query", "--format", "arrow", "{ } | rate()"]);
    assert_eq!(metrics.status.code(), Some(1));
    assert!(
        stderr(&metrics).contains("--format arrow is not supported yet for metrics queries"),
        "{}",
        stderr(&metrics)
    );
}

/// A `traceql serve` child process on a free loopback port, killed when dropped.
struct Served {
    child: std::process::Child,
    address: String,
}

impl Served {
    /// `traceql serve` with `args` and `env`, once it says where it listens.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let mut child = Command::new(env!("CARGO_BIN_EXE_traceql"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the traceql binary runs");
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("serve said {line:?}"))
            .to_string();
        Served { child, address }
    }

    /// The whole reply to `GET path`, status line and headers included.
    fn reply(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    }

    /// The body of the reply to `GET path`, which must be 200.
    fn get(&self, path: &str) -> String {
        let reply = self.reply(path);
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {reply}");
        body.to_string()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_answers_tempos_api_on_loopback_and_refuses_a_taken_port() {
    let served = Served::start(&[], &[]);
    assert!(
        served.address.starts_with("127.0.0.1:"),
        "{}",
        served.address
    );
    let echo = served.reply("/api/echo");
    let search = served.reply("/api/search?q=%7B+status+%3D+error+%7D&limit=2");
    let taken = traceql(&["serve", "--listen", &served.address]);
    drop(served);
    assert!(
        echo.starts_with("HTTP/1.1 200") && echo.ends_with("echo\n"),
        "{echo}"
    );
    assert!(search.starts_with("HTTP/1.1 200"), "{search}");
    assert!(search.contains("\"spanSets\""), "{search}");
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        stderr(&taken).contains("cannot listen on"),
        "{}",
        stderr(&taken)
    );
}

#[test]
fn services_prints_the_graph_as_a_table_json_dot_and_mermaid() {
    let json = traceql(&["services", "--format", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let graph: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let edges = graph["edges"].as_array().unwrap();
    assert!(edges.len() > 10, "{} edges", edges.len());
    for field in [
        "client",
        "server",
        "connectionType",
        "requests",
        "failed",
        "serverLatencyMs",
    ] {
        assert!(edges[0].get(field).is_some(), "{field} in {}", edges[0]);
    }
    let edge = |client: &str, server: &str| {
        edges
            .iter()
            .find(|e| e["client"] == client && e["server"] == server)
            .unwrap_or_else(|| panic!("{client} -> {server}"))
    };
    assert_eq!(edge("user", "frontend")["connectionType"], "virtual_node");
    assert_eq!(edge("frontend", "api-gateway")["connectionType"], "");
    // Busiest first.
    let requests: Vec<u64> = edges
        .iter()
        .map(|e| e["requests"].as_u64().unwrap())
        .collect();
    assert!(requests.windows(2).all(|w| w[0] >= w[1]), "{requests:?}");

    let table = traceql_with(&["services"], &[("COLUMNS", "160")]);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    assert!(stdout(&table).contains("api-gateway"), "{}", stdout(&table));

    let dot = stdout(&traceql(&["services", "--format", "dot"]));
    assert!(dot.starts_with("digraph services {"), "{dot}");
    assert!(dot.contains("\"user\" -> \"frontend\""), "{dot}");
    let mermaid = stdout(&traceql(&["services", "--format", "mermaid"]));
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    assert_eq!(
        mermaid.lines().filter(|l| l.contains("-->")).count(),
        edges.len()
    );

    // Only the traces a query matches: fewer requests.
    let failed = traceql(&["services", "--format", "json", "{ status = error }"]);
    assert_eq!(failed.status.code(), Some(0), "{}", stderr(&failed));
    let failed: serde_json::Value = serde_json::from_str(&stdout(&failed)).unwrap();
    let total = |g: &serde_json::Value| -> u64 {
        g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["requests"].as_u64().unwrap())
            .sum()
    };
    assert!(0 < total(&failed) && total(&failed) < total(&graph));

    let bad = traceql(&["services", "{ status = }"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("expected a value"),
        "{}",
        stderr(&bad)
    );
    let metrics = traceql(&["services", "{ } | rate()"]);
    assert_eq!(metrics.status.code(), Some(2), "{}", stderr(&metrics));
}

#[test]
fn insights_find_repeated_calls_and_show_where_the_time_went() {
    // The demo data's traces retry failed calls in sequence: with a low bar, those are
    // runs of repeated calls.
    let out = traceql(&[
        "insights",
        "--format",
        "json",
        "--min-repeats",
        "2",
        "--n-plus-one-calls",
        "1ms",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let insights: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let findings = insights["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for field in ["kind", "traceID", "service", "pattern", "count", "totalMs"] {
        assert!(
            findings[0].get(field).is_some(),
            "{field} in {}",
            findings[0]
        );
    }
    assert!(findings.iter().all(|f| f["count"].as_u64().unwrap() >= 2));
    let shares: f64 = insights["criticalPath"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["share"].as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 1e-9, "{shares}");

    // At the default thresholds the demo data has no N+1 runs.
    let none = traceql(&["insights"]);
    assert_eq!(none.status.code(), Some(0), "{}", stderr(&none));
    assert!(
        stdout(&none).contains("no N+1 queries"),
        "{}",
        stdout(&none)
    );

    // One trace's findings under its waterfall.
    let id = findings[0]["traceID"].as_str().unwrap();
    let trace = traceql(&[
        "trace",
        id,
        "--min-repeats",
        "2",
        "--n-plus-one-calls",
        "1ms",
    ]);
    assert_eq!(trace.status.code(), Some(0), "{}", stderr(&trace));
    let text = stdout(&trace);
    assert!(text.contains("n_plus_one_calls"), "{text}");
    assert!(text.contains("Where the time went"), "{text}");

    let bad = traceql(&["insights", "--slow-db", "soon"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
}
