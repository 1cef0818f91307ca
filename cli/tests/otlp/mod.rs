//! `traceql serve` as a trace backend, end to end: the OpenTelemetry Python SDK's OTLP
//! exporters send to it, bad bodies are refused and change nothing, and a server killed
//! with SIGKILL while exporters send keeps every acknowledged span exactly once.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::Value;

/// A free port on 127.0.0.1.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A `traceql serve --otlp-http --otlp-grpc` child process, killed when dropped.
struct Backend {
    child: Child,
    query: SocketAddr,
    http: SocketAddr,
    grpc: SocketAddr,
}

/// Where the servers of `data` write their messages.
fn log_of(data: &Path) -> PathBuf {
    data.with_extension("log")
}

impl Backend {
    fn start(data: &Path, extra: &[&str]) -> Backend {
        std::fs::create_dir_all(data).unwrap();
        let (query, http, grpc) = (free_port(), free_port(), free_port());
        let mut args = vec![
            "serve".to_string(),
            "--data".into(),
            data.display().to_string(),
            "--listen".into(),
            query.to_string(),
            "--otlp-http".into(),
            http.to_string(),
            "--otlp-grpc".into(),
            grpc.to_string(),
            "--refresh".into(),
            "1".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_traceql"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log_of(data))
                    .unwrap(),
            )
            .spawn()
            .expect("the traceql binary runs");
        let backend = Backend {
            child,
            query,
            http,
            grpc,
        };
        let started = Instant::now();
        while !(backend.up(query) && backend.up(http) && backend.up(grpc)) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        backend
    }

    /// `traceql serve` of the bundled demo store (no receivers).
    fn demo(log: &Path) -> Backend {
        let query = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_traceql"))
            .args(["serve", "--listen", &query.to_string()])
            .env_remove("TRACEQL_DATA")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("the traceql binary runs");
        let backend = Backend {
            child,
            query,
            http: query,
            grpc: query,
        };
        let started = Instant::now();
        while !backend.up(query) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        backend
    }

    /// The answer to a search of everything for `query`: its status, and its traces
    /// sorted by id (the statistics of what was read left out).
    fn search(&self, query: &str) -> (u16, Value) {
        let escaped: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let reply = self.get(&format!(
            "/api/search?q={escaped}&limit=5000&spss=100&start=0&end=4000000000"
        ));
        if reply.status != 200 {
            return (reply.status, Value::from(reply.text()));
        }
        let mut answer: Value = serde_json::from_slice(&reply.body).unwrap();
        let traces = answer["traces"].as_array_mut().unwrap();
        traces.sort_by(|a, b| a["traceID"].as_str().cmp(&b["traceID"].as_str()));
        (200, answer["traces"].take())
    }

    /// Stops the server as Ctrl-C does and checks that it ends by itself, with success,
    /// within 30 s.
    fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "the server stopped with {status}");
    }

    fn up(&self, address: SocketAddr) -> bool {
        TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
    }

    fn get(&self, path: &str) -> Reply {
        http(self.query, "GET", path, &[], &[])
    }

    fn json(&self, path: &str) -> Value {
        let reply = self.get(path);
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.text());
        serde_json::from_slice(&reply.body).unwrap()
    }

    fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("/metrics has no {name}"))
    }

    /// Waits (at most two minutes) until the heads are written to the store.
    fn wait_for_flush(&self) {
        let started = Instant::now();
        while self.metric("traceql_flushes_total") < 1.0 || self.metric("traceql_head_spans") > 0.0
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no flush in a minute"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (at most 30 s) until a search of everything finds `traces` traces: the
    /// spans acknowledged are searchable once the head is cut, every second.
    fn wait_for_traces(&self, traces: usize) {
        let started = Instant::now();
        while self.matched().len() < traces {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "spans never became searchable"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Per trace (hex id), the spans `{ }` matches, from one search of everything.
    fn matched(&self) -> BTreeMap<String, u64> {
        let found =
            self.json("/api/search?q=%7B%20%7D&limit=100000&spss=1000&start=0&end=4000000000");
        found["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let matched = t["spanSets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["matched"].as_u64().unwrap())
                    .sum();
                // Tempo's answers leave out an id's leading zeros.
                let id = t["traceID"].as_str().unwrap();
                (format!("{id:0>32}"), matched)
            })
            .collect()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// One HTTP/1.1 exchange on a connection of its own, bounded in time.
fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    try_http(address, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn try_http(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response head"))?;
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let mut body = raw[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(Reply { status, head, body })
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[line + 2..line + 2 + size]);
        body = &body[line + 4 + size..];
    }
    out
}

/// Now, in unix nanoseconds.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A request of one trace, `id`, with `spans` spans (the first the root), starting now.
fn request(id: [u8; 16], spans: usize) -> ExportTraceServiceRequest {
    request_at(id, spans, now())
}

/// A request of one trace, `id`, with `spans` spans, starting at `now` (unix ns).
fn request_at(id: [u8; 16], spans: usize, now: u64) -> ExportTraceServiceRequest {
    let span = |i: usize| Span {
        trace_id: id.to_vec(),
        span_id: [id[0], id[1], id[2], id[3], id[4], id[5], 0, i as u8 + 1].to_vec(),
        parent_span_id: if i == 0 {
            Vec::new()
        } else {
            [id[0], id[1], id[2], id[3], id[4], id[5], 0, 1].to_vec()
        },
        name: format!("op {i}"),
        kind: 2,
        start_time_unix_nano: now + i as u64,
        end_time_unix_nano: now + 1_000_000 + i as u64,
        ..Span::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("crash-test".into())),
                    }),
                    ..KeyValue::default()
                }],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans).map(span).collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn post(
    address: SocketAddr,
    content_type: &str,
    encoding: Option<&str>,
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(encoding) = encoding {
        headers.push(("Content-Encoding", encoding));
    }
    try_http(address, "POST", "/v1/traces", &headers, body)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("traceql-otlp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(log_of(&dir));
    dir
}

/// Deletes a test's store and its servers' messages.
fn clean(dir: &Path) {
    std::fs::remove_dir_all(dir).unwrap();
    let _ = std::fs::remove_file(log_of(dir));
}

/// Whether the OpenTelemetry Python SDK and its OTLP exporters can be imported; without
/// them the SDK test skips, saying so, unless `TRACEQL_REQUIRE_OTEL_SDK` is set (CI).
fn python_sdk() -> bool {
    let found = Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http.trace_exporter, \
             opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("TRACEQL_REQUIRE_OTEL_SDK").is_none(),
            "TRACEQL_REQUIRE_OTEL_SDK is set but the OpenTelemetry Python SDK is missing: \
             pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http \
             opentelemetry-exporter-otlp-proto-grpc"
        );
        eprintln!(
            "skipping: the OpenTelemetry Python SDK is not installed (pip install \
             opentelemetry-sdk opentelemetry-exporter-otlp-proto-http \
             opentelemetry-exporter-otlp-proto-grpc)"
        );
    }
    found
}

/// The hex of an id in Tempo's trace JSON (base64).
fn hex_id(text: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An OTLP/JSON attribute value as the SDK's JSON prints it.
fn plain(value: &Value) -> Value {
    let (kind, v) = value.as_object().unwrap().iter().next().unwrap();
    match kind.as_str() {
        "intValue" => Value::from(
            v.as_str()
                .map_or_else(|| v.as_i64().unwrap(), |s| s.parse().unwrap()),
        ),
        _ => v.clone(),
    }
}

/// Checks that the server returns every span the SDK recorded, with its fields.
fn check_sent(backend: &Backend, sent: &[Value], service: &str) {
    for expected in sent {
        let id = expected["traceID"].as_str().unwrap();
        let trace = backend.json(&format!("/api/v2/traces/{id}"));
        let resources = trace["trace"]["resourceSpans"].as_array().unwrap();
        let mut got: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
        for resource in resources {
            let names: Vec<&Value> = resource["resource"]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["key"] == "service.name")
                .map(|a| &a["value"]["stringValue"])
                .collect();
            assert_eq!(names, [&Value::from(service)]);
            for scope in resource["scopeSpans"].as_array().unwrap() {
                assert_eq!(scope["scope"]["name"], "traceql-test");
                for span in scope["spans"].as_array().unwrap() {
                    let events = span["events"].as_array().cloned().unwrap_or_default();
                    got.insert(
                        hex_id(span["spanId"].as_str().unwrap()),
                        (span.clone(), events),
                    );
                }
            }
        }
        let spans = expected["spans"].as_array().unwrap();
        assert_eq!(got.len(), spans.len(), "trace {id}");
        for want in spans {
            let (span, events) = &got[want["spanID"].as_str().unwrap()];
            assert_eq!(span["name"], want["name"]);
            assert_eq!(
                span["kind"],
                format!("SPAN_KIND_{}", want["kind"].as_str().unwrap())
            );
            match want["parent"].as_str() {
                Some(parent) => assert_eq!(hex_id(span["parentSpanId"].as_str().unwrap()), parent),
                None => assert!(span["parentSpanId"].as_str().is_none_or(str::is_empty)),
            }
            let attributes: BTreeMap<String, Value> = span["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| (a["key"].as_str().unwrap().to_string(), plain(&a["value"])))
                .collect();
            let want_attributes: BTreeMap<String, Value> = want["attributes"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(attributes, want_attributes, "span {}", want["spanID"]);
            let names: Vec<&Value> = events.iter().map(|e| &e["name"]).collect();
            let want_names: Vec<&Value> = want["events"].as_array().unwrap().iter().collect();
            assert_eq!(names, want_names);
        }
    }
    let query = format!(
        "/api/search?q=%7B%20resource.service.name%20%3D%20%22{service}%22%20%7D&limit=100&start=0&end=4000000000"
    );
    let found = backend.json(&query);
    // Tempo's answers leave out an id's leading zeros.
    let mut ids: Vec<String> = found["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{:0>32}", t["traceID"].as_str().unwrap()))
        .collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = sent
        .iter()
        .map(|t| t["traceID"].as_str().unwrap())
        .collect();
    want.sort_unstable();
    assert_eq!(ids, want);
}

#[test]
fn the_python_sdk_sends_over_http_and_grpc_and_every_span_comes_back_before_and_after_a_flush() {
    if !python_sdk() {
        return;
    }
    let dir = temp_dir("sdk");
    let backend = Backend::start(&dir, &["--flush-age", "3s", "--compact-every", "3600"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otlp/sdk_send.py");
    let send = |protocol: &str, endpoint: String| -> Vec<Value> {
        let out = Command::new("python3")
            .args([script, protocol, &endpoint, "5"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let over_http = send("http", format!("http://{}/v1/traces", backend.http));
    let over_grpc = send("grpc", backend.grpc.to_string());
    assert_eq!((over_http.len(), over_grpc.len()), (5, 5));
    backend.wait_for_traces(10);
    assert!(
        backend.metric("traceql_head_spans") > 0.0,
        "checked before the flush"
    );
    check_sent(&backend, &over_http, "sdk-http");
    check_sent(&backend, &over_grpc, "sdk-grpc");
    let before = backend.matched();
    backend.wait_for_flush();
    check_sent(&backend, &over_http, "sdk-http");
    check_sent(&backend, &over_grpc, "sdk-grpc");
    assert_eq!(backend.matched(), before);
    drop(backend);
    clean(&dir);
}

#[test]
fn bad_bodies_get_their_status_and_change_nothing() {
    let dir = temp_dir("bad");
    let backend = Backend::start(&dir, &["--max-request-size", "64KiB"]);
    let good = request([7; 16], 2).encode_to_vec();
    let mut bad_id = serde_json::to_value(request([8; 16], 1)).unwrap();
    bad_id["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "abcd".into();
    let zstd_bomb = zstd::encode_all(&vec![0u8; 1 << 20][..], 3).unwrap();
    // What, content type, content encoding, body, the status it gets.
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (
            "truncated protobuf",
            "application/x-protobuf",
            None,
            good[..good.len() - 3].to_vec(),
            400,
        ),
        (
            "wrong JSON types",
            "application/json",
            None,
            br#"{"resourceSpans": 5}"#.to_vec(),
            400,
        ),
        (
            "not JSON",
            "application/json",
            None,
            b"{\"resourceSpans\": [".to_vec(),
            400,
        ),
        (
            "a trace id of 2 bytes",
            "application/json",
            None,
            serde_json::to_vec(&bad_id).unwrap(),
            400,
        ),
        (
            "too large",
            "application/x-protobuf",
            None,
            vec![0u8; 100 << 10],
            413,
        ),
        (
            "too large uncompressed",
            "application/x-protobuf",
            Some("zstd"),
            zstd_bomb,
            413,
        ),
        (
            "not gzip",
            "application/x-protobuf",
            Some("gzip"),
            b"plain".to_vec(),
            400,
        ),
        (
            "an unknown encoding",
            "application/x-protobuf",
            Some("br"),
            good.clone(),
            415,
        ),
        ("text", "text/plain", None, good.clone(), 415),
    ];
    for (what, content_type, encoding, body, status) in cases {
        let reply = post(backend.http, content_type, encoding, &body).unwrap();
        assert_eq!(reply.status, status, "{what}: {}", reply.text());
        assert!(
            !reply.body.is_empty(),
            "{what}: a google.rpc.Status says why"
        );
    }
    assert_eq!(backend.metric("traceql_ingest_spans_total"), 0.0);
    // A good request after them: protobuf, gzip'd JSON.
    let reply = post(backend.http, "application/x-protobuf", None, &good).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = ExportTraceServiceResponse::decode(reply.body.as_slice()).unwrap();
    assert!(answer.partial_success.is_none());
    let json = serde_json::to_vec(&request([9; 16], 3)).unwrap();
    let mut zipped = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    zipped.write_all(&json).unwrap();
    let reply = post(
        backend.http,
        "application/json",
        Some("gzip"),
        &zipped.finish().unwrap(),
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(backend.metric("traceql_ingest_spans_total"), 5.0);
    backend.wait_for_traces(2);
    let matched = backend.matched();
    assert_eq!(
        matched
            .values()
            .copied()
            .collect::<Vec<_>>()
            .iter()
            .sum::<u64>(),
        5
    );
    backend.interrupt();
    clean(&dir);
}

#[test]
fn a_server_killed_while_exporters_send_keeps_every_acknowledged_span_exactly_once() {
    for seed in 1..=3u8 {
        let dir = temp_dir(&format!("crash-{seed}"));
        let mut backend = Backend::start(&dir, &["--flush-age", "1s", "--compact-every", "2"]);
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let senders: Vec<_> = (0..4u8)
            .map(|sender| {
                let (stop, acked, address) = (Arc::clone(&stop), Arc::clone(&acked), backend.http);
                std::thread::spawn(move || {
                    for k in 0..2_000u16 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let mut id = [0u8; 16];
                        id[..4].copy_from_slice(&[seed, sender, (k >> 8) as u8, k as u8]);
                        id[15] = 1;
                        let spans = 1 + usize::from(k % 3);
                        let body = request(id, spans).encode_to_vec();
                        match post(address, "application/x-protobuf", None, &body) {
                            Ok(reply) if reply.status == 200 => {
                                let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
                                acked.lock().unwrap().insert(hex, spans as u64);
                            }
                            Ok(reply) if reply.status == 429 || reply.status == 503 => {}
                            Ok(reply) => panic!("status {}: {}", reply.status, reply.text()),
                            // The server is gone.
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700 + 700 * u64::from(seed)));
        backend.child.kill().unwrap();
        backend.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for sender in senders {
            sender.join().unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        assert!(
            !acked.is_empty(),
            "seed {seed}: nothing was acknowledged before the kill"
        );
        drop(backend);
        let backend = Backend::start(&dir, &["--compact-every", "3600"]);
        let started = Instant::now();
        let matched = loop {
            let matched = backend.matched();
            if acked.keys().all(|id| matched.contains_key(id))
                || started.elapsed() > Duration::from_secs(30)
            {
                break matched;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        for (id, spans) in &acked {
            assert_eq!(
                matched.get(id),
                Some(spans),
                "seed {seed}: trace {id}; {} of {} found; the servers said:\n{}",
                matched.len(),
                acked.len(),
                std::fs::read_to_string(log_of(&dir)).unwrap_or_default()
            );
        }
        // Spans durable but not acknowledged when the server died may be there, once.
        for (id, spans) in &matched {
            let k = u16::from_str_radix(&id[4..8], 16).unwrap();
            assert_eq!(*spans, 1 + u64::from(k % 3), "seed {seed}: trace {id} once");
        }
        let log = std::fs::read_to_string(log_of(&dir)).unwrap_or_default();
        eprintln!(
            "seed {seed}: {} traces acknowledged, {} found after the restart; {}",
            acked.len(),
            matched.len(),
            log.lines()
                .find(|l| l.contains("replayed"))
                .unwrap_or("nothing replayed")
        );
        drop(backend);
        clean(&dir);
    }
}

#[test]
fn retention_removes_old_blocks_and_keeps_new_ones() {
    let dir = temp_dir("retention");
    let backend = Backend::start(
        &dir,
        &[
            "--retention",
            "1d",
            "--flush-age",
            "1s",
            "--compact-every",
            "1",
        ],
    );
    let send = |id: [u8; 16], at: u64| {
        let body = request_at(id, 2, at).encode_to_vec();
        let reply = post(backend.http, "application/x-protobuf", None, &body).unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
    };
    let wait_for = |want: BTreeMap<String, u64>| {
        let started = Instant::now();
        loop {
            let matched = backend.matched();
            if matched == want {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{matched:?}, not {want:?}:\n{}",
                std::fs::read_to_string(log_of(&dir)).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Spans of two days ago: searchable from the head, then written, then expired.
    send([1; 16], now() - 2 * 86_400 * 1_000_000_000);
    wait_for([("01".repeat(16), 2)].into());
    backend.wait_for_flush();
    wait_for(BTreeMap::new());
    send([2; 16], now());
    backend.wait_for_flush();
    wait_for([("02".repeat(16), 2)].into());
    drop(backend);
    clean(&dir);
}

#[test]
fn spans_sent_over_otlp_answer_as_the_same_spans_stored_before_and_after_the_flush() {
    let dir = temp_dir("differential");
    // The bundled demo store, exported as OTLP/JSON and sent as one request.
    let export = dir.with_extension("jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_traceql"))
        .args(["export", "--format", "otlp-json", "-o"])
        .arg(&export)
        .env_remove("TRACEQL_DATA")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all = ExportTraceServiceRequest::default();
    for line in std::fs::read_to_string(&export).unwrap().lines() {
        let request: ExportTraceServiceRequest = serde_json::from_str(line).unwrap();
        all.resource_spans.extend(request.resource_spans);
    }
    std::fs::remove_file(&export).unwrap();
    let stored = Backend::demo(&dir.with_extension("demo.log"));
    let live = Backend::start(&dir, &["--flush-age", "45s", "--compact-every", "3600"]);
    let reply = post(
        live.http,
        "application/x-protobuf",
        None,
        &all.encode_to_vec(),
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    live.wait_for_traces(3000);
    let queries: Vec<&str> = include_str!("../../../benches/corpus/queries.traceql")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter(|l| !l.contains("_over_time") && !l.contains("rate()") && !l.contains("compare("))
        .collect();
    assert!(queries.len() > 20);
    let compare = |when: &str| {
        let mut answered = 0;
        for query in &queries {
            let want = stored.search(query);
            let got = live.search(query);
            assert_eq!(got, want, "{when}: {query}");
            answered += usize::from(want.0 == 200 && !want.1.as_array().unwrap().is_empty());
        }
        answered
    };
    let answered = compare("from the head");
    assert!(answered > 10, "only {answered} queries found anything");
    assert!(
        live.metric("traceql_head_spans") > 0.0,
        "compared before the flush"
    );
    live.wait_for_flush();
    compare("from the store");
    drop(live);
    clean(&dir);
    let _ = std::fs::remove_file(dir.with_extension("demo.log"));
}
