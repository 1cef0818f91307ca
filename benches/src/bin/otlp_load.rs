//! Sends OTLP export requests to a `traceql serve --otlp` as fast as it acknowledges
//! them, from several exporters at once, and reports what was accepted and how long
//! each acknowledgement took; meanwhile, optionally, runs limit-20 searches against the
//! query API and reports their latency.
//!
//! ```text
//! otlp_load (--http ADDR | --grpc ADDR) [--exporters N] [--seconds S]
//!           [--spans-per-request N] [--search ADDR]
//! ```
//!
//! Requests hold generated traces (`traceql-gen`: realistic names, attributes, events),
//! each sent with fresh trace ids. Prints one line of JSON.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use traceql_exec::otlp::request_from_spans;
use traceql_gen::Generator;

/// Where requests go.
#[derive(Clone, Copy)]
enum Target {
    Http(SocketAddr),
    Grpc(SocketAddr),
}

struct Args {
    target: Target,
    exporters: usize,
    seconds: f64,
    spans_per_request: usize,
    search: Option<SocketAddr>,
}

fn args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut target = None;
    let (mut exporters, mut seconds, mut spans_per_request, mut search) = (1, 10.0, 500, None);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--http" => target = Some(Target::Http(value().parse().expect("an address"))),
            "--grpc" => target = Some(Target::Grpc(value().parse().expect("an address"))),
            "--exporters" => exporters = value().parse().expect("a number"),
            "--seconds" => seconds = value().parse().expect("a number"),
            "--spans-per-request" => spans_per_request = value().parse().expect("a number"),
            "--search" => search = Some(value().parse().expect("an address")),
            other => panic!("unknown flag {other}"),
        }
    }
    Args {
        target: target.expect("--http ADDR or --grpc ADDR"),
        exporters,
        seconds,
        spans_per_request,
        search,
    }
}

/// Requests of about `spans` spans each, from generated traces.
fn requests(count: usize, spans: usize) -> Vec<ExportTraceServiceRequest> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut generator = Generator::new(7, now - 60_000_000_000, 1_000_000);
    (0..count)
        .map(|_| {
            let mut batch = Vec::new();
            while batch.len() < spans {
                batch.extend(generator.next_trace());
            }
            request_from_spans(&batch)
        })
        .collect()
}

/// Gives every trace of `request` an id of `round`; returns its spans.
fn renew(request: &mut ExportTraceServiceRequest, round: u64) -> usize {
    let mut spans = 0;
    for rs in &mut request.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                span.trace_id[..8].copy_from_slice(&round.to_le_bytes());
                spans += 1;
            }
        }
    }
    spans
}

/// One exporter's results.
#[derive(Default)]
struct Sent {
    spans: u64,
    refused: u64,
    latencies: Vec<Duration>,
}

fn http_exporter(
    address: SocketAddr,
    mut requests: Vec<ExportTraceServiceRequest>,
    first_round: u64,
    stop: &AtomicBool,
) -> Sent {
    let mut sent = Sent::default();
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_nodelay(true).unwrap();
    let mut round = first_round;
    let mut buffer = vec![0u8; 1 << 16];
    while !stop.load(Ordering::Relaxed) {
        for request in &mut requests {
            round += 1;
            let spans = renew(request, round);
            let body = request.encode_to_vec();
            let head = format!(
                "POST /v1/traces HTTP/1.1\r\nHost: load\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let started = Instant::now();
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body).unwrap();
            let status = read_response(&mut stream, &mut buffer);
            sent.latencies.push(started.elapsed());
            if status == 200 {
                sent.spans += spans as u64;
            } else {
                sent.refused += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    sent
}

/// Reads one HTTP/1.1 response with a Content-Length; its status.
fn read_response(stream: &mut TcpStream, buffer: &mut [u8]) -> u16 {
    let mut read = 0;
    loop {
        let n = stream.read(&mut buffer[read..]).unwrap();
        assert!(n > 0, "the server closed the connection");
        read += n;
        if let Some(end) = buffer[..read].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let status = head.split(' ').nth(1).unwrap().parse().unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            let mut have = read - end - 4;
            while have < length {
                have += stream.read(&mut buffer[..]).unwrap();
            }
            return status;
        }
    }
}

async fn grpc_exporter(
    address: SocketAddr,
    mut requests: Vec<ExportTraceServiceRequest>,
    first_round: u64,
    stop: Arc<AtomicBool>,
) -> Sent {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut client = tonic::client::Grpc::new(channel);
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let mut sent = Sent::default();
    let mut round = first_round;
    while !stop.load(Ordering::Relaxed) {
        for request in &mut requests {
            round += 1;
            let spans = renew(request, round);
            client.ready().await.unwrap();
            let started = Instant::now();
            let answer: Result<
                tonic::Response<
                    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
                >,
                _,
            > = client
                .unary(
                    tonic::Request::new(request.clone()),
                    path.clone(),
                    tonic_prost::ProstCodec::default(),
                )
                .await;
            sent.latencies.push(started.elapsed());
            match answer {
                Ok(_) => sent.spans += spans as u64,
                Err(_) => {
                    sent.refused += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    sent
}

/// Limit-20 searches, one after another, until stopped: their latencies.
fn searcher(address: SocketAddr, stop: &AtomicBool, done: &AtomicU64) -> Vec<Duration> {
    let queries = [
        "%7B%20status%20%3D%20error%20%7D",
        "%7B%20resource.service.name%20%3D%20%22checkout%22%20%7D",
        "%7B%20duration%20%3E%20100ms%20%7D",
    ];
    let mut latencies = Vec::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut stream = TcpStream::connect(address).unwrap();
        let request = format!(
            "GET /api/search?q={}&limit=20 HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n",
            queries[i % queries.len()]
        );
        i += 1;
        let started = Instant::now();
        stream.write_all(request.as_bytes()).unwrap();
        let mut all = Vec::new();
        loop {
            let n = stream.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buffer[..n]);
        }
        latencies.push(started.elapsed());
        done.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
    }
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let args = args();
    let per_exporter = 40;
    let all = requests(per_exporter * args.exporters, args.spans_per_request);
    let bytes: usize = all.iter().map(Message::encoded_len).sum();
    let spans: usize = all
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    let stop = Arc::new(AtomicBool::new(false));
    let searches = Arc::new(AtomicU64::new(0));
    let search = args.search.map(|address| {
        let (stop, searches) = (Arc::clone(&stop), Arc::clone(&searches));
        std::thread::spawn(move || searcher(address, &stop, &searches))
    });
    let started = Instant::now();
    let mut chunks = all
        .chunks(per_exporter)
        .map(<[_]>::to_vec)
        .collect::<Vec<_>>();
    let results: Vec<Sent> = match args.target {
        Target::Http(address) => {
            let handles: Vec<_> = chunks
                .drain(..)
                .enumerate()
                .map(|(i, requests)| {
                    let stop = Arc::clone(&stop);
                    std::thread::spawn(move || {
                        http_exporter(address, requests, (i as u64) << 40, &stop)
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_secs_f64(args.seconds));
            stop.store(true, Ordering::Relaxed);
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        }
        Target::Grpc(address) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let tasks: Vec<_> = chunks
                    .drain(..)
                    .enumerate()
                    .map(|(i, requests)| {
                        tokio::spawn(grpc_exporter(
                            address,
                            requests,
                            (i as u64) << 40,
                            Arc::clone(&stop),
                        ))
                    })
                    .collect();
                tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
                stop.store(true, Ordering::Relaxed);
                let mut results = Vec::new();
                for task in tasks {
                    results.push(task.await.unwrap());
                }
                results
            })
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let searched = search.map(|h| h.join().unwrap()).unwrap_or_default();
    let accepted: u64 = results.iter().map(|r| r.spans).sum();
    let refused: u64 = results.iter().map(|r| r.refused).sum();
    let mut latencies: Vec<Duration> = results.into_iter().flat_map(|r| r.latencies).collect();
    latencies.sort_unstable();
    let mut search_latencies = searched;
    search_latencies.sort_unstable();
    println!(
        "{{\"exporters\":{},\"seconds\":{elapsed:.2},\"accepted_spans\":{accepted},\"spans_per_second\":{:.0},\"refused_requests\":{refused},\"ack_p50_ms\":{:.2},\"ack_p99_ms\":{:.2},\"bytes_per_span\":{:.0},\"searches\":{},\"search_p50_ms\":{:.1},\"search_p99_ms\":{:.1}}}",
        args.exporters,
        accepted as f64 / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        bytes as f64 / spans as f64,
        search_latencies.len(),
        percentile(&search_latencies, 0.5),
        percentile(&search_latencies, 0.99),
    );
}
