//! `traceql worker` and `--cluster`, end to end on loopback: two worker processes give
//! the same answers as one process, searches ship no spans between workers, and a
//! worker that dies makes the query fail with one line naming it, never hang.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Served, repo, stderr, stdout, temp_dir, traceql, traceql_with};
use traceql_testkit::S3TestServer;

/// Partitions small enough that the test stores are shared out over the workers.
const SMALL_PARTITIONS: &[(&str, &str)] = &[("TRACEQL_CLUSTER_PARTITION_BYTES", "64KiB")];

/// A `traceql worker` child process on a free loopback port, killed when dropped.
struct Worker {
    child: Child,
    address: String,
}

impl Worker {
    fn start() -> Worker {
        Worker::start_with(&[])
    }

    /// A worker with `env` in its environment (its own credentials).
    fn start_with(env: &[(&str, String)]) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_traceql"))
            .args([
                "worker",
                "--listen",
                "127.0.0.1:0",
                "--memory-limit",
                "1GiB",
            ])
            .envs(env.iter().map(|(k, v)| (k, v)))
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

/// A server on loopback that answers every connection with an HTTP/1 page instead of
/// gRPC, for at most 30 seconds.
struct Garbage {
    address: String,
}

impl Garbage {
    fn start() -> Garbage {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ =
                            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Garbage { address }
    }
}

/// `traceql query` over `store`, on `cluster` if given, every match as JSON.
fn query(store: &Path, cluster: Option<&str>, q: &str) -> std::process::Output {
    query_limited(store, cluster, q, ALL)
}

/// A limit above the test stores' traces: every match, in one round.
const ALL: &str = "100000";

/// [`query`] with at most `limit` traces: newest first, in rounds of time windows.
fn query_limited(
    store: &Path,
    cluster: Option<&str>,
    q: &str,
    limit: &str,
) -> std::process::Output {
    let mut args = vec![
        "query",
        "--data",
        store.to_str().unwrap(),
        "--format",
        "json",
        "--limit",
        limit,
        "--spss",
        "1000",
    ];
    args.push(q);
    match cluster {
        // Small partitions: plain scans and metrics queries are shared out too.
        Some(c) => {
            args.splice(1..1, ["--cluster", c]);
            traceql_with(&args, SMALL_PARTITIONS)
        }
        None => traceql(&args),
    }
}

/// Generates 3,000 traces into `data` with `seed`, in small row groups (a small memory
/// budget caps them), so that scans have something to share out.
fn generate(data: &str, seed: &str, env: &[(&str, &str)]) {
    let out = traceql_with(
        &[
            "gen",
            "--data",
            data,
            "--traces",
            "3000",
            "--seed",
            seed,
            "--memory-limit",
            "4MiB",
        ],
        env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
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

/// What `explain --analyze` of `q` over `data` on `cluster` prints, with `env`.
fn analyzed(data: &str, cluster: &str, q: &str, env: &[(&str, &str)]) -> String {
    let args = [
        "explain",
        "--analyze",
        "--data",
        data,
        "--cluster",
        cluster,
        q,
    ];
    let out = traceql_with(&args, env);
    assert_eq!(out.status.code(), Some(0), "{q}: {}", stderr(&out));
    stdout(&out)
}

/// The first number after `prefix` on each line of `text` that starts with it.
fn numbers(text: &str, prefix: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

/// The spans each task scanned, from the `task N: S spans, …` lines of `--stats`.
fn task_spans(text: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| l.starts_with("task "))
        .map(|l| {
            let after = l.split(": ").nth(1).unwrap();
            after.split(' ').next().unwrap().parse().unwrap()
        })
        .collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

/// Whether two answers are the same, numbers equal to 12 significant digits: partial
/// sums added up in another order may differ in their last bits.
fn alike(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| alike(x, y))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| alike(v, w)))
        }
        _ => a == b,
    }
}

/// For every `step`th query of the corpus, the same answer (or error) as one process
/// gives, at most `limit` traces. Returns how many of them found something.
fn same_answers(store: &Path, cluster: &str, step: usize, limit: &str) -> usize {
    let mut matched = 0;
    for q in corpus().into_iter().step_by(step) {
        let many = query_limited(store, Some(cluster), &q, limit);
        let one = query_limited(store, None, &q, limit);
        assert_eq!(
            one.status.code(),
            many.status.code(),
            "{q}: {}",
            stderr(&many)
        );
        if one.status.success() {
            let (a, b) = (json(&stdout(&one)), json(&stdout(&many)));
            assert!(
                alike(&a, &b),
                "{q}: the cluster answered differently:\n{a}\n{b}"
            );
            let found = |key: &str| {
                a.get(key)
                    .and_then(|v| v.as_array())
                    .is_some_and(|v| !v.is_empty())
            };
            if found("traces") || found("series") {
                matched += 1;
            }
        }
    }
    matched
}

#[test]
fn a_cluster_answers_as_one_process_does_and_fails_clearly_without_a_worker() {
    let started = Instant::now();
    let dir = temp_dir("cluster");
    let store = dir.join("store");
    let data = store.to_str().unwrap();
    // Small row groups (a small memory budget caps them), so that the clustered scan
    // has runs to share out.
    generate(data, "1", &[]);

    let mut first = Worker::start();
    let second = Worker::start();
    let both = format!("{},{}", first.address, second.address);

    let matched = same_answers(&store, &both, 1, ALL);
    assert!(matched >= 15, "{matched} corpus queries found something");

    // Searches at a limit run in rounds over windows of time, whose scans split into
    // fewer pieces than partitions times tasks: each task must still get as many
    // partitions as the others. Four tasks on the two workers (each listed twice).
    let four = format!("{both},{both}");
    same_answers(&store, &four, 4, "20");

    // A search runs on the workers and only its results come back: no span shuffle.
    let explain = traceql_with(
        &[
            "explain",
            "--data",
            data,
            "--cluster",
            &both,
            "{ resource.service.name = \"frontend\" } >> { status = error }",
        ],
        SMALL_PARTITIONS,
    );
    assert_eq!(explain.status.code(), Some(0), "{}", stderr(&explain));
    let plan = stdout(&explain);
    assert!(plan.contains("NetworkCoalesceExec"), "{plan}");
    assert!(!plan.contains("NetworkShuffleExec"), "{plan}");

    // Each worker scanned its own share: the shares add up to what one process scans.
    let analyze = |cluster: Option<&str>| {
        let mut args = vec!["explain", "--analyze", "--data", data];
        if let Some(c) = cluster {
            args.extend(["--cluster", c]);
        }
        args.push("{ resource.service.name = \"frontend\" } >> { status = error }");
        let out = traceql_with(&args, SMALL_PARTITIONS);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let (alone, shared) = (analyze(None), analyze(Some(&both)));
    let tasks = task_spans(&shared);
    assert!(tasks.len() >= 2 && tasks.iter().all(|&t| t > 0), "{shared}");
    let scanned = numbers(&alone, "spans scanned: ");
    assert_eq!(numbers(&shared, "spans scanned: "), scanned);
    assert_eq!(vec![tasks.iter().sum::<u64>()], scanned);

    // Blocks that overlap in time (two generator runs over the same hour) fall back to
    // repartitioning by trace, kept in one task: still the same answers.
    let overlapping = dir.join("overlapping");
    for seed in ["1", "2"] {
        generate(overlapping.to_str().unwrap(), seed, &[]);
    }
    same_answers(&overlapping, &both, 3, ALL);

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
        json(&stdout(&alone)),
        json(&stdout(&query(&store, None, search)))
    );

    // A worker killed while a query runs on it: the whole answer (if it had finished
    // its share) or one line naming a worker, never part of an answer, never a hang.
    let slow = "{ } | quantile_over_time(duration, .5, .99) by (resource.service.name)";
    let expected = json(&stdout(&query(&store, None, slow)));
    for delay in [100, 300] {
        let mut doomed = Worker::start();
        let pair = format!("{},{}", doomed.address, second.address);
        let running = Command::new(env!("CARGO_BIN_EXE_traceql"))
            .args([
                "query",
                "--cluster",
                &pair,
                "--data",
                data,
                "--format",
                "json",
                slow,
            ])
            .envs(SMALL_PARTITIONS.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let asked = Instant::now();
        std::thread::sleep(Duration::from_millis(delay));
        doomed.kill();
        let out = running.wait_with_output().unwrap();
        assert!(asked.elapsed() < Duration::from_secs(30), "no hang");
        if out.status.success() {
            assert!(alike(&json(&stdout(&out)), &expected), "a whole answer");
        } else {
            // The metrics query shuffles partial aggregates between the workers: the
            // survivor may lose its stream from the killed one first, and the error
            // then names the survivor (whose stream broke), not the killed worker.
            let err = stderr(&out);
            assert!(
                err.contains(&doomed.address) || err.contains(&second.address),
                "the error names a worker: {err}"
            );
            assert!(stdout(&out).is_empty(), "nothing partial printed");
        }
    }

    // A "worker" that answers garbage: one clear line naming it, no hang.
    let garbage = Garbage::start();
    let asked = Instant::now();
    let mixed = format!("{},{}", garbage.address, second.address);
    let out = query(&store, Some(&mixed), search);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains(&garbage.address),
        "the error names the worker: {err}"
    );
    assert!(asked.elapsed() < Duration::from_secs(30), "no hang");

    // The demo store lives in the coordinator: refused before anything is sent.
    let demo = traceql(&["query", "--cluster", &second.address, "{ }"]);
    assert_eq!(demo.status.code(), Some(2));
    assert!(stderr(&demo).contains("--data"), "{}", stderr(&demo));
    eprintln!("cluster test took {:?}", started.elapsed());
}

/// Workers read a bucket with their own credentials (the coordinator's never reach
/// them) and answer as one process does.
#[test]
fn a_cluster_reads_a_bucket_with_the_workers_own_credentials() {
    let server = S3TestServer::start().expect("moto server");
    server.create_bucket("cluster").unwrap();
    let data = "s3://cluster/traces";
    let env = server.env();
    let env_str: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    generate(data, "1", &env_str);
    let workers = [Worker::start_with(&env), Worker::start_with(&env)];
    let cluster = format!("{},{}", workers[0].address, workers[1].address);
    for q in [
        "{ resource.service.name = \"frontend\" } >> { status = error }",
        "{ name =~ \"GET .*\" && duration > 1ms } | count() > 2",
        "{ kind = server } | quantile_over_time(duration, .5, .99) by (resource.service.name)",
    ] {
        let run = |cluster: Option<&str>| {
            let mut args = vec![
                "query", "--data", data, "--limit", "1000", "--format", "json",
            ];
            if let Some(c) = cluster {
                args.extend(["--cluster", c]);
            }
            args.push(q);
            let mut env = server.env();
            env.push((SMALL_PARTITIONS[0].0, SMALL_PARTITIONS[0].1.into()));
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let out = traceql_with(&args, &env);
            assert_eq!(out.status.code(), Some(0), "{q}: {}", stderr(&out));
            json(&stdout(&out))
        };
        let (one, many) = (run(None), run(Some(&cluster)));
        assert!(alike(&one, &many), "{q}:\n{one}\n{many}");
    }
    let mut env = server.env();
    env.push((SMALL_PARTITIONS[0].0, SMALL_PARTITIONS[0].1.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let q = "{ resource.service.name = \"frontend\" } >> { status = error }";
    let text = analyzed(data, &cluster, q, &env);
    assert!(text.contains("NetworkCoalesceExec"), "{text}");
    assert!(text.contains("task 1: "), "both workers scanned: {text}");
}

/// Grafana Tempo's blocks answer on a cluster as in one process (which the engine's
/// tests hold to Tempo's recorded answers), on a local store and in a bucket: their row
/// groups are dealt to the workers, and the shares add up to the one-process scan.
#[test]
fn tempo_blocks_answer_alike_on_a_cluster() {
    let blocks = traceql_testkit::require_shared!(dir("tempo-blocks"));
    let server = S3TestServer::start().expect("moto server");
    server.create_bucket("tempo").unwrap();
    server
        .upload_dir("tempo", &blocks.join("vparquet5"))
        .unwrap();
    let env = server.env();
    let workers = [Worker::start_with(&env), Worker::start_with(&env)];
    let cluster = format!("{},{}", workers[0].address, workers[1].address);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend(SMALL_PARTITIONS);
    let run = |data: &str, cluster: Option<&str>, q: &str| {
        let mut args = vec!["query", "--data", data, "--format", "json", "--limit", ALL];
        if let Some(c) = cluster {
            args.extend(["--cluster", c]);
        }
        args.push(q);
        let out = traceql_with(&args, &env);
        assert_eq!(out.status.code(), Some(0), "{q}: {}", stderr(&out));
        json(&stdout(&out))
    };
    let v4 = blocks.join("vparquet4");
    let v5 = blocks.join("vparquet5");
    for data in [v4.to_str().unwrap(), v5.to_str().unwrap(), "s3://tempo"] {
        for q in [
            "{ status = error } >> { }",
            "{ span.http.route =~ \"/api/.*\" }",
            "{ } | rate() by (resource.service.name)",
            "{ kind = server } | quantile_over_time(duration, .5, .9) by (name)",
        ] {
            let (one, many) = (run(data, None, q), run(data, Some(&cluster), q));
            assert!(alike(&one, &many), "{data} {q}:\n{one}\n{many}");
        }
        let text = analyzed(data, &cluster, "{ status = error } >> { }", &env);
        let (total, shares) = (numbers(&text, "spans scanned: "), task_spans(&text));
        assert!(shares.len() == 2 && shares.iter().all(|&n| n > 0), "{text}");
        assert_eq!(vec![shares.iter().sum::<u64>()], total, "{text}");
    }
}

/// `text` percent-encoded for a query string.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `traceql serve --cluster` answers queries that run at the same time, each with field
/// expressions of its own shipped to the workers, as a server without workers does.
#[test]
fn serve_on_a_cluster_answers_concurrent_queries_alike() {
    let dir = temp_dir("cluster-serve");
    let store = dir.join("store");
    let data = store.to_str().unwrap();
    generate(data, "3", &[]);
    let workers = [Worker::start(), Worker::start()];
    let cluster = format!("{},{}", workers[0].address, workers[1].address);
    let alone = Served::start(&["--data", data], &[]);
    let shared = Served::start(&["--data", data, "--cluster", &cluster], SMALL_PARTITIONS);
    let queries = [
        "{ name =~ \"GET .*\" && duration > 1ms }",
        "{ duration * 2 > 40ms }",
        "{ span.http.status_code >= 500 || name =~ \".*cart.*\" } >> { status = error }",
        "{ resource.service.name =~ \"check.*\" } | count() > 1",
    ];
    let paths: Vec<String> = queries
        .iter()
        .map(|q| format!("/api/search?q={}&limit=10000&spss=100", encoded(q)))
        .collect();
    let traces = |body: &str| json(body)["traces"].clone();
    let want: Vec<serde_json::Value> = paths.iter().map(|p| traces(&alone.get(p))).collect();
    assert!(
        want.iter()
            .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
            .count()
            >= 3,
        "the queries find something: {want:?}"
    );
    std::thread::scope(|scope| {
        for offset in 0..4 {
            let (paths, want, shared) = (&paths, &want, &shared);
            scope.spawn(move || {
                for round in 0..2 {
                    for i in 0..paths.len() {
                        let k = (i + offset + round) % paths.len();
                        let got = traces(&shared.get(&paths[k]));
                        assert!(alike(&got, &want[k]), "{}:\n{got}\n{}", queries[k], want[k]);
                    }
                }
            });
        }
    });
    // Taking spans needs this process's memory, which workers cannot read.
    let refused = traceql(&["serve", "--data", data, "--cluster", &cluster, "--otlp"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("not supported yet"),
        "{}",
        stderr(&refused)
    );
}

/// Stores of the differential tests' random traces, in blocks of 6 spans where rare
/// attributes are typed columns in some blocks and list entries in others, written
/// under `dir`: one per seed.
fn random_stores(dir: &Path, seeds: std::ops::Range<u64>) -> Vec<(u64, std::path::PathBuf)> {
    use traceql_format::block::BlockOptions;
    let options = BlockOptions {
        spans_per_block: 6,
        typed_min_fraction: 0.3,
        ..BlockOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    seeds
        .map(|seed| {
            let mut traces: std::collections::BTreeMap<[u8; 16], Vec<_>> = Default::default();
            for span in traceql_gen::random::traces(seed) {
                traces.entry(span.trace_id).or_default().push(span);
            }
            let at = dir.join(format!("seed-{seed}"));
            let store = traceql_exec::store::Store::local(&at, true).unwrap();
            let mut n = 0;
            let write = traceql_exec::ingest::write_traces(
                &store,
                traces.into_values(),
                &options,
                || {
                    n += 1;
                    format!("00000000-0000-0000-0000-{n:012}")
                },
                &|_| {},
            );
            runtime.block_on(write).unwrap();
            (seed, at)
        })
        .collect()
}

/// The differential tests' generated queries over their random traces answer on a
/// cluster as in one process (which those tests hold to the reference evaluator), with
/// every scan shared out over both workers.
#[test]
fn generated_queries_answer_alike_on_a_cluster() {
    let dir = temp_dir("cluster-random");
    let workers = [Worker::start(), Worker::start()];
    let cluster = format!("{},{}", workers[0].address, workers[1].address);
    let every_scan_shared = [("TRACEQL_CLUSTER_PARTITION_BYTES", "1")];
    let (mut compared, mut found) = (0, 0);
    for (seed, store) in random_stores(&dir, 0..6) {
        let mut rng = traceql_gen::Rng::new(seed ^ 0x5eed);
        for _ in 0..8 {
            let q = traceql_gen::random::query(&mut rng);
            let run = |cluster: Option<&str>| {
                let data = store.to_str().unwrap();
                let mut args = vec!["query", "--data", data, "--format", "json"];
                args.extend(["--limit", ALL, "--spss", "1000"]);
                if let Some(c) = cluster {
                    args.extend(["--cluster", c]);
                }
                args.push(&q);
                traceql_with(&args, &every_scan_shared)
            };
            let (one, many) = (run(None), run(Some(&cluster)));
            assert_eq!(
                one.status.code(),
                many.status.code(),
                "seed {seed}: {q}: {}",
                stderr(&many)
            );
            if !one.status.success() {
                continue;
            }
            let (a, b) = (json(&stdout(&one)), json(&stdout(&many)));
            assert!(alike(&a, &b), "seed {seed}: {q}:\n{a}\n{b}");
            compared += 1;
            found += usize::from(a["traces"].as_array().is_some_and(|t| !t.is_empty()));
        }
    }
    assert!(
        compared >= 30 && found >= 10,
        "{compared} compared, {found} found"
    );
}

/// Every query recorded against Grafana Tempo in `../shared/tempo-blocks` (searches and
/// metrics, both block versions) answers through `traceql serve --cluster` as through a
/// server without workers, whose answers the engine's tests hold to Tempo's.
#[test]
fn tempo_recorded_queries_answer_alike_through_serve_on_a_cluster() {
    let blocks = traceql_testkit::require_shared!(dir("tempo-blocks"));
    let text = std::fs::read_to_string(blocks.join("queries.yaml")).unwrap();
    let recorded: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let queries: Vec<(String, String)> = recorded["queries"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|q| {
            let field = |k: &str| q[k].as_str().unwrap().to_string();
            (field("kind"), field("query"))
        })
        .collect();
    assert!(queries.len() >= 50, "{} queries", queries.len());
    let window = "start=1795774201&end=1795776599";
    let workers = [Worker::start(), Worker::start()];
    let cluster = format!("{},{}", workers[0].address, workers[1].address);
    for version in ["vparquet4", "vparquet5"] {
        let data = blocks.join(version);
        let data = data.to_str().unwrap();
        let alone = Served::start(&["--data", data], &[]);
        let shared = Served::start(&["--data", data, "--cluster", &cluster], SMALL_PARTITIONS);
        for (kind, q) in &queries {
            let (path, part) = match kind.as_str() {
                "search" => (
                    format!(
                        "/api/search?q={}&{window}&limit=100000&spss=100000",
                        encoded(q)
                    ),
                    "traces",
                ),
                _ => (
                    format!(
                        "/api/metrics/query_range?q={}&{window}&step=60s",
                        encoded(q)
                    ),
                    "series",
                ),
            };
            // The answer without the counts of what was read, and without exemplars.
            let answer = |served: &Served| {
                let mut answer = json(&served.get(&path))[part].take();
                for series in answer.as_array_mut().into_iter().flatten() {
                    if let Some(series) = series.as_object_mut() {
                        series.remove("exemplars");
                    }
                }
                answer
            };
            let (one, many) = (answer(&alone), answer(&shared));
            assert!(!one.is_null(), "{version} {q}: no {part}");
            assert!(alike(&one, &many), "{version} {q}:\n{one}\n{many}");
        }
    }
}
