#!/usr/bin/env python3
"""`traceql serve` over HTTP: Tempo's recorded requests, and latency under concurrent clients.

    python3 benches/compare/serve_tempo.py [--runs 3] [--binary PATH] [--part tempo,load,grpc]

Part `tempo`: for every query of shared/tempo-blocks/queries.yaml (72 searches, 8 metrics
queries) and each block version, a warm `traceql serve` (one per store, started once,
first request discarded) answers the request Tempo answered — `/api/search` with limit
and spss 100000, or `/api/metrics/query_range` with step 60s, over the same window — on
a reused HTTP connection, as Grafana's backend holds one. The best of --runs wall times
is printed beside `http_seconds`, Tempo's single recorded request for the same answer,
on Tempo's blocks and on the same blocks rewritten by `traceql convert`.

Part `load`: on the generated stores target/bench-data/search-72000 (1M spans) and
search-720000 (10M spans; made by benches/compare/duckdb_side_by_side.py), limit-20
`/api/search` requests of a few queries from 1, 8 and 32 concurrent clients (each
with its own connection, a fixed number of requests each), p50 and p99 per query and
concurrency, failed requests counted; then `/api/v2/traces/<id>` (protobuf) p50 and p99
over the ids the searches found.

Part `grpc`: on the same stores, each load query with limit 20 as a streamed
`tempopb.StreamingQuerier/Search` on one warm channel (what Grafana does with streaming
on), beside the same search over HTTP on a warm connection: p50 of the time to the first
message, to the end of the stream, and of the HTTP answer, over 20 requests; messages per
stream. It needs grpcio, which it installs with pip into the Python running it (run it
with target/bench-venv/bin/python).

It builds the binary (the `dist` profile, or --profile) unless --binary is given.
Times are wall-clock milliseconds on whatever machine runs it; run it on an idle one.
"""

import argparse
import http.client
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tempo_blocks import DATA, END, SHARED, START, build, converted  # noqa: E402
LOAD_QUERIES = [
    '{ resource.service.name = "checkout" && status = error }',
    '{ span.http.status_code >= 500 }',
    '{ duration > 2s }',
    '{ }',
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `traceql serve` of `store` on a free loopback port."""

    def __init__(self, binary, store):
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "serve", "--data", str(store), "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.process.stderr.readline()  # the "listening" line: the engine is open
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status, _ = self.get(self.connect(), "/api/echo")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        sys.exit(f"traceql serve {store} did not answer")

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)

    @staticmethod
    def get(connection, path, accept=None):
        connection.request("GET", path, headers={"Accept": accept} if accept else {})
        reply = connection.getresponse()
        return reply.status, reply.read()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def path_for(q):
    params = {"q": q["query"], "start": START, "end": END}
    if q["kind"] == "metrics":
        return "/api/metrics/query_range?" + urllib.parse.urlencode({**params, "step": "60s"})
    return "/api/search?" + urllib.parse.urlencode({**params, "limit": 100000, "spss": 100000})


def best(server, connection, path, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        status, body = server.get(connection, path)
        times.append((time.perf_counter() - t) * 1000)
        if status != 200:
            return None, f"{status} {body[:200]!r}"
    return min(times), None


def part_tempo(binary, runs, only):
    queries = yaml.safe_load((SHARED / "tempo-blocks" / "queries.yaml").read_text())["queries"]
    if only:
        queries = [q for q in queries if q["id"] in set(only.split(","))]
    servers = {}
    for v in ("v4", "v5"):
        servers[(v, "block")] = Server(binary, SHARED / "tempo-blocks" / f"vparquet{v[1:]}")
        servers[(v, "converted")] = Server(binary, converted(binary, v))
    connections = {k: s.connect() for k, s in servers.items()}
    for k, s in servers.items():  # warm: the first request pays for the first reads
        s.get(connections[k], path_for(queries[0]))
    print("| id | query | v4 Tempo HTTP | v4 serve, Tempo block | v4 serve, converted "
          "| v5 Tempo HTTP | v5 serve, Tempo block | v5 serve, converted |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    totals = {"tempo": 0.0, "block": 0.0, "converted": 0.0}
    at_or_below = {"block": 0, "converted": 0}
    answered = 0
    for q in queries:
        cells = []
        for v in ("v4", "v5"):
            http = q[v]["http_seconds"] * 1000
            got = {}
            for layout in ("block", "converted"):
                ms, error = best(servers[(v, layout)], connections[(v, layout)], path_for(q), runs)
                got[layout] = ms
                if error:
                    print(f"{v} {q['id']} {layout}: {error}", file=sys.stderr)
            fmt = lambda ms: "error" if ms is None else f"{ms:.0f}"
            cells += [f"{http:.0f}", fmt(got["block"]), fmt(got["converted"])]
            if None not in got.values():
                answered += 1
                totals["tempo"] += http
                for layout in ("block", "converted"):
                    totals[layout] += got[layout]
                    at_or_below[layout] += got[layout] <= http
        text = q["query"].replace("|", "\\|")
        print(f"| {q['id']} | `{text}` | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{answered} requests answered; at or below Tempo's recorded time: Tempo blocks "
          f"{at_or_below['block']}, converted {at_or_below['converted']}")
    print(f"sums (ms): Tempo HTTP {totals['tempo']:.0f}, serve on Tempo blocks "
          f"{totals['block']:.0f} ({totals['block'] / totals['tempo']:.2f} of Tempo's), "
          f"on converted {totals['converted']:.0f} ({totals['converted'] / totals['tempo']:.2f})")
    for s in servers.values():
        s.stop()


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def clients(server, path, n, requests_each, accept=None):
    """`n` clients, each on its own connection, `requests_each` requests; latencies (ms)
    and the number of failed requests."""
    latencies, failures = [], [0]
    lock = threading.Lock()

    def client():
        connection = server.connect()
        for _ in range(requests_each):
            t = time.perf_counter()
            try:
                status, _ = server.get(connection, path, accept)
            except OSError:
                status = None
                connection = server.connect()
            ms = (time.perf_counter() - t) * 1000
            with lock:
                if status == 200:
                    latencies.append(ms)
                else:
                    failures[0] += 1

    threads = [threading.Thread(target=client) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures[0]


def generated_stores(binary):
    """(name, label, server) for each generated store there is (1M and 10M spans), its
    server started; the caller stops it."""
    for name, label in (("search-72000", "1M"), ("search-720000", "10M")):
        store = DATA / name
        if not store.is_dir():
            print(f"{store} is missing: run benches/compare/duckdb_side_by_side.py first", file=sys.stderr)
            continue
        yield name, label, Server(binary, store)


def part_load(binary):
    import json
    for name, label, server in generated_stores(binary):
        connection = server.connect()
        print(f"\n{label} spans ({name}), limit-20 /api/search, ms")
        print("| query | clients | requests | p50 | p99 | failed |")
        print("|---|---:|---:|---:|---:|---:|")
        ids = []
        for query in LOAD_QUERIES:
            path = "/api/search?" + urllib.parse.urlencode({"q": query, "limit": 20})
            status, body = server.get(connection, path)  # warm
            ids += [t["traceID"] for t in json.loads(body)["traces"]]
            for n in (1, 8, 32):
                each = max(2, 64 // n) if n > 1 else 30
                latencies, failed = clients(server, path, n, each)
                print(f"| `{query}` | {n} | {n * each} | {percentile(latencies, 50):.1f} "
                      f"| {percentile(latencies, 99):.1f} | {failed} |", flush=True)
        times = []
        for trace_id in ids[:60]:
            t = time.perf_counter()
            status, _ = server.get(connection, f"/api/v2/traces/{trace_id}", "application/protobuf")
            times.append((time.perf_counter() - t) * 1000)
        print(f"/api/v2/traces/<id> (protobuf), {len(times)} ids: p50 {percentile(times, 50):.1f} ms, "
              f"p99 {percentile(times, 99):.1f} ms")
        server.stop()


def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def search_request(query, limit):
    """A `tempopb.SearchRequest`: Limit (field 4) and Query (field 8)."""
    text = query.encode()
    return b"\x20" + varint(limit) + b"\x42" + varint(len(text)) + text


def read_varint(message, i):
    """The varint at `i` of `message`, and where the next field starts."""
    value, shift = 0, 0
    while True:
        byte = message[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def traces_in(message):
    """How many `traces` (field 1) a `tempopb.SearchResponse` holds (its fields are all
    length-delimited)."""
    count, i = 0, 0
    while i < len(message):
        key, i = read_varint(message, i)
        length, i = read_varint(message, i)
        count += key >> 3 == 1
        i += length
    return count


def part_grpc(binary):
    try:
        import grpc
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "grpcio"], check=True)
        import grpc
    for name, label, server in generated_stores(binary):
        connection = server.connect()
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        search = channel.unary_stream("/tempopb.StreamingQuerier/Search")
        print(f"\n{label} spans ({name}), limit 20, 20 requests each, p50 ms")
        print("| query | gRPC first message | gRPC whole stream | messages | traces | HTTP /api/search |")
        print("|---|---:|---:|---:|---:|---:|")
        for query in LOAD_QUERIES:
            path = "/api/search?" + urllib.parse.urlencode({"q": query, "limit": 20})
            request = search_request(query, 20)
            list(search(request))  # warm
            server.get(connection, path)
            first, whole, http = [], [], []
            for _ in range(20):
                t = time.perf_counter()
                messages = []
                for message in search(request):
                    if not messages:
                        first.append((time.perf_counter() - t) * 1000)
                    messages.append(message)
                whole.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                status, _ = server.get(connection, path)
                http.append((time.perf_counter() - t) * 1000)
                if status != 200:
                    sys.exit(f"GET {path}: {status}")
            traces = sum(traces_in(m) for m in messages)
            print(f"| `{query}` | {percentile(first, 50):.1f} | {percentile(whole, 50):.1f} "
                  f"| {len(messages)} | {traces} | {percentile(http, 50):.1f} |", flush=True)
        channel.close()
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--binary")
    parser.add_argument("--profile", default="dist")
    parser.add_argument("--part", default="tempo,load")
    parser.add_argument("--only", help="comma-separated query ids (part tempo)")
    a = parser.parse_args()
    binary = build(a.binary, a.profile)
    parts = a.part.split(",")
    if "tempo" in parts:
        if not (SHARED / "tempo-blocks").is_dir():
            sys.exit(f"{SHARED / 'tempo-blocks'} is missing (set TRACEQL_SHARED_DIR)")
        part_tempo(binary, a.runs, a.only)
    if "load" in parts:
        part_load(binary)
    if "grpc" in parts:
        part_grpc(binary)


if __name__ == "__main__":
    main()
