#!/usr/bin/env python3
"""traceql serve as a trace backend: spans/s accepted over OTLP/HTTP and OTLP/gRPC with
1, 4 and 16 concurrent exporters, acknowledgement latency, limit-20 search latency while
ingesting, and the server's peak memory. Log on (it always is), loopback, one machine.

    python3 benches/compare/otlp_receive.py [--binary PATH] [--load PATH]
        [--seconds 10] [--exporters 1,4,16] [--protocols http,grpc]

Each row is a fresh `traceql serve --otlp-http --otlp-grpc` over an empty store (its
write-ahead log in the store's directory), fed by `otlp_load` (benches/src/bin) with
requests of ~500 generated spans each (realistic names, attributes and events; every
request with fresh trace ids), while one client runs limit-20 searches against the
query API every 100 ms. The load generator shares the machine's two cores with the
server: the figures are what one machine does with both on it.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DATA = ROOT / "target" / "bench-data" / "otlp-receive"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(binary, load):
    if binary and load:
        return Path(binary), Path(load)
    subprocess.run(["cargo", "build", "--release", "-p", "traceql",
                    "-p", "traceql-benches", "--bin", "traceql", "--bin", "otlp_load"],
                   cwd=ROOT, check=True)
    return Path(binary or TARGET / "release" / "traceql"), Path(load or TARGET / "release" / "otlp_load")


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for(port):
    started = time.time()
    while time.time() - started < 30:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def run(binary, load, protocol, exporters, seconds):
    shutil.rmtree(DATA, ignore_errors=True)
    query, http, grpc = free_port(), free_port(), free_port()
    server = subprocess.Popen(
        [binary, "serve", "--data", DATA, "--listen", f"127.0.0.1:{query}",
         "--otlp-http", f"127.0.0.1:{http}", "--otlp-grpc", f"127.0.0.1:{grpc}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for port in (query, http, grpc):
            wait_for(port)
        target = ["--http", f"127.0.0.1:{http}"] if protocol == "http" else ["--grpc", f"127.0.0.1:{grpc}"]
        out = subprocess.run(
            [load, *target, "--exporters", str(exporters), "--seconds", str(seconds),
             "--search", f"127.0.0.1:{query}"],
            stdout=subprocess.PIPE, check=True, text=True).stdout
        row = json.loads(out)
        row["peak_rss_mb"] = peak_rss_mb(server.pid)
        return row
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(DATA, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary")
    parser.add_argument("--load")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--exporters", default="1,4,16")
    parser.add_argument("--protocols", default="http,grpc")
    a = parser.parse_args()
    binary, load = build(a.binary, a.load)
    print("| protocol | exporters | spans/s accepted | refused requests | ack p50 ms | ack p99 ms "
          "| searches | search p50 ms | search p99 ms | server peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for protocol in a.protocols.split(","):
        for exporters in [int(e) for e in a.exporters.split(",")]:
            r = run(binary, load, protocol, exporters, a.seconds)
            print(f"| {protocol} | {exporters} | {r['spans_per_second']:,.0f} | "
                  f"{r['refused_requests']} | {r['ack_p50_ms']:.1f} | {r['ack_p99_ms']:.1f} | "
                  f"{r['searches']} | {r['search_p50_ms']:.1f} | {r['search_p99_ms']:.1f} | "
                  f"{r['peak_rss_mb']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
