//! `traceql worker` and `--cluster`, end to end on loopback: two worker processes give
//! the same answers as one process, searches ship no spans between workers, and a
//! worker that dies makes the query fail with one line naming it, never hang.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{repo, stderr, stdout, temp_dir, traceql};

/// A `traceql worker` child process on a free loopback port, killed when dropped.
struct Worker {
    child: Child,
    address: String,
}

impl Worker {
    fn start() -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_traceql"))
            .args([
                "worker",
                "--listen",
                "127.0.0.1:0",
                "--memory-limit",
                "1GiB",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the traceql binary runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .rsplit("http://")
            .next()
            .filter(|a| a.starts_with("127.0.0.1:"))
            .unwrap_or_else(|| panic!("worker said {line:?}"))
            .to_string();
        Worker { child, address }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `traceql query` over `store`, on `cluster` if given, every match as JSON.
fn query(store: &Path, cluster: Option<&str>, q: &str) -> std::process::Output {
    let mut args = vec![
        "query",
        "--data",
        store.to_str().unwrap(),
        "--format",
        "json",
        "--limit",
        "100000",
        "--spss",
        "1000",
    ];
    if let Some(c) = cluster {
        args.extend(["--cluster", c]);
    }
    args.push(q);
    traceql(&args)
}

/// The queries of the benchmark corpus.
fn corpus() -> Vec<String> {
    std::fs::read_to_string(repo().join("benches/corpus/queries.traceql"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// `json` without its `inspectedBytes` line.
fn without_bytes(json: &str) -> String {
    json.lines()
        .filter(|l| !l.contains("\"inspectedBytes\""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// For every query of the corpus, the same answer (or error) as one process gives, or a
/// "not supported yet" refusal naming what cannot be shipped (field expressions). Returns
/// how many queries the cluster answered and how many of those matched traces.
fn same_answers(store: &Path, cluster: &str) -> (usize, usize) {
    let (mut answered, mut matched) = (0, 0);
    for q in corpus() {
        let many = query(store, Some(cluster), &q);
        if many.status.code() == Some(3) {
            let err = stderr(&many);
            assert!(
                err.contains("on a cluster is not supported yet"),
                "{q}: {err}"
            );
            continue;
        }
        let one = query(store, None, &q);
        assert_eq!(
            one.status.code(),
            many.status.code(),
            "{q}: {}",
            stderr(&many)
        );
        answered += 1;
        if one.status.success() {
            // Bytes read differ: workers read footers and page indexes without the
            // coordinator's cache. Everything else must be the same.
            let (a, b) = (without_bytes(&stdout(&one)), without_bytes(&stdout(&many)));
            assert_eq!(a, b, "{q}: the cluster answered differently");
            if a.contains("\"traceID\"") {
                matched += 1;
            }
        }
    }
    (answered, matched)
}

#[test]
fn a_cluster_answers_as_one_process_does_and_fails_clearly_without_a_worker() {
    let started = Instant::now();
    let dir = temp_dir("cluster");
    let store = dir.join("store");
    let data = store.to_str().unwrap();
    // Small row groups (a small memory budget caps them), so that the clustered scan
    // has runs to share out.
    let out = traceql(&[
        "gen",
        "--data",
        data,
        "--traces",
        "3000",
        "--memory-limit",
        "4MiB",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let mut first = Worker::start();
    let second = Worker::start();
    let both = format!("{},{}", first.address, second.address);

    let (answered, matched) = same_answers(&store, &both);
    assert!(
        answered >= 20 && matched >= 10,
        "answered {answered}, {matched} with traces"
    );

    // A search runs on the workers and only its results come back: no span shuffle.
    let explain = traceql(&[
        "explain",
        "--data",
        data,
        "--cluster",
        &both,
        "{ resource.service.name = \"frontend\" } >> { status = error }",
    ]);
    assert_eq!(explain.status.code(), Some(0), "{}", stderr(&explain));
    let plan = stdout(&explain);
    assert!(plan.contains("NetworkCoalesceExec"), "{plan}");
    assert!(!plan.contains("NetworkShuffleExec"), "{plan}");

    // Blocks that overlap in time (two generator runs over the same hour) fall back to
    // repartitioning by trace, kept in one task: still the same answers.
    let overlapping = dir.join("overlapping");
    for seed in ["1", "2"] {
        let out = traceql(&[
            "gen",
            "--data",
            overlapping.to_str().unwrap(),
            "--traces",
            "1500",
            "--seed",
            seed,
            "--memory-limit",
            "4MiB",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    same_answers(&overlapping, &both);

    // A worker that is gone: one clear line naming it, quickly; the next query without
    // it works.
    let gone = first.address.clone();
    first.kill();
    let asked = Instant::now();
    let search = "{ resource.service.name = \"frontend\" } >> { status = error }";
    let out = query(&store, Some(&both), search);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains(&gone), "the error names the worker: {err}");
    assert!(asked.elapsed() < Duration::from_secs(30), "no hang");
    let alone = query(&store, Some(&second.address), search);
    assert_eq!(alone.status.code(), Some(0), "{}", stderr(&alone));
    assert_eq!(
        without_bytes(&stdout(&alone)),
        without_bytes(&stdout(&query(&store, None, search)))
    );

    // The demo store lives in the coordinator: refused before anything is sent.
    let demo = traceql(&["query", "--cluster", &second.address, "{ }"]);
    assert_eq!(demo.status.code(), Some(2));
    assert!(stderr(&demo).contains("--data"), "{}", stderr(&demo));
    eprintln!(
        "cluster test: {answered} corpus queries answered alike, took {:?}",
        started.elapsed()
    );
}
