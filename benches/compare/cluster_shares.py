#!/usr/bin/env python3
"""How `traceql --cluster` divides the work: 1, 2 and 4 workers on one store.

    python3 benches/compare/cluster_shares.py [--binary PATH] [--traces 72000] [--scales 1,10]
                                              [--workers 1,2,4] [--runs 5]

On two cores a speed-up cannot be shown honestly, so this shows how the work divides.
For each scale it takes the generated store of the DuckDB benchmark
(target/bench-data/search-<TRACES>, made with `traceql gen --seed 1` if missing;
72,000 traces is about 1M spans). For each number of workers it starts that many
`traceql worker` processes on loopback, each pinned to one core with `taskset`
(round robin over the machine's cores), and for each query it runs
`traceql explain --analyze --cluster …`, which reports for each task:
- the spans, bytes and row groups it scanned;
- the bytes the coordinator received from the workers (`bytes_transferred` of the
  network boundaries).

It prints per query and worker count:
- each task's bytes, and their imbalance (max/mean);
- that the shares add up to the one-process scan (spans and bytes);
- the bytes shipped to the coordinator against the bytes scanned.

It also measures the fixed cost of a round: the median wall time of a whole
`traceql query` on the cluster minus that of the same query in one process, for
`{ duration > 1h }`, which matches nothing and whose row groups the statistics mostly
rule out: what is left is planning, shipping the plan and collecting the answers.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DATA = ROOT / "target" / "bench-data"

QUERIES = [
    '{ status = error }',
    '{ resource.service.name = "frontend" } >> { status = error }',
    '{ span.http.route =~ "/api/.*" && duration > 50ms }',
    '{ kind = server } | count() > 3',
    '{ } | rate() by (resource.service.name)',
    '{ kind = server } | quantile_over_time(duration, .5, .99) by (resource.service.name)',
]

UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9}


def build(binary, profile):
    if binary:
        return Path(binary)
    subprocess.run(["cargo", "build", "--profile", profile, "-p", "traceql"], cwd=ROOT, check=True)
    return TARGET / profile / "traceql"


def store_of(binary, traces):
    store = DATA / f"search-{traces}"
    if not (store / "single-tenant").exists():
        subprocess.run([binary, "gen", "--data", store, "--traces", str(traces), "--seed", "1"],
                       check=True)
    return store


def start_workers(binary, n):
    cores = os.cpu_count() or 1
    workers = []
    for i in range(n):
        p = subprocess.Popen(
            ["taskset", "-c", str(i % cores), binary, "worker", "--listen", "127.0.0.1:0",
             "--memory-limit", "2GiB"],
            stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        workers.append((p, line.strip().rsplit("http://", 1)[1]))
    return workers


def stop(workers):
    for p, _ in workers:
        p.kill()
        p.wait()


def analyze(binary, store, query, cluster):
    argv = [binary, "explain", "--analyze", "--data", store, query]
    if cluster:
        argv[2:2] = ["--cluster", cluster]
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"{query}: {out.stderr}")
    text = out.stdout
    totals = dict(re.findall(r"^(spans scanned|bytes scanned): (\d+)$", text, re.M))
    tasks = [(int(t), int(s), int(b), int(g)) for t, s, b, g in re.findall(
        r"^task (\d+): (\d+) spans, (\d+) bytes, (\d+) row groups", text, re.M)]
    shipped = 0.0
    for line in text.splitlines():
        if "NetworkCoalesceExec" in line or "NetworkShuffleExec" in line:
            m = re.search(r"bytes_transferred=([\d.]+) ?([KMG]?B?)", line)
            if m:
                shipped += float(m.group(1)) * UNITS[m.group(2)]
    return int(totals.get("spans scanned", 0)), int(totals.get("bytes scanned", 0)), tasks, shipped


def wall(binary, store, query, cluster, runs):
    argv = [binary, "query", "--data", store, "--limit", "20", query]
    if cluster:
        argv[2:2] = ["--cluster", cluster]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--traces", type=int, default=72000)
    ap.add_argument("--scales", default="1,10")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    binary = build(args.binary, args.profile)
    for scale in [int(s) for s in args.scales.split(",")]:
        store = store_of(binary, args.traces * scale)
        print(f"\n## {args.traces * scale} traces ({store})\n")
        local = {q: analyze(binary, store, q, None) for q in QUERIES}
        print("| query | workers | tasks | bytes per task (MB) | max/mean | spans = local | "
              "bytes = local | shipped / scanned |")
        print("|---|---|---|---|---|---|---|---|")
        fixed = []
        for n in [int(w) for w in args.workers.split(",")]:
            workers = start_workers(binary, n)
            cluster = ",".join(a for _, a in workers)
            try:
                for q in QUERIES:
                    spans, scanned, tasks, shipped = analyze(binary, store, q, cluster)
                    per = [b for _, _, b, _ in tasks]
                    mean = statistics.mean(per) if per else 0
                    imbalance = f"{max(per) / mean:.3f}" if mean else "-"
                    same_spans = "yes" if spans == local[q][0] else f"no ({spans} vs {local[q][0]})"
                    same_bytes = "yes" if scanned == local[q][1] else f"no ({scanned} vs {local[q][1]})"
                    ratio = f"{100 * shipped / scanned:.2f}%" if scanned else "-"
                    shares = " / ".join(f"{b / 1e6:.1f}" for b in per) or "(coordinator)"
                    print(f"| `{q}` | {n} | {len(tasks)} | {shares} | {imbalance} | {same_spans} "
                          f"| {same_bytes} | {ratio} |")
                probe = '{ duration > 1h }'
                fixed.append((n, wall(binary, store, probe, cluster, args.runs),
                              wall(binary, store, probe, None, args.runs)))
            finally:
                stop(workers)
        print("\nFixed cost of a round (`{ duration > 1h }`, whole process, median):")
        for n, on_cluster, alone in fixed:
            print(f"- {n} worker(s): {on_cluster * 1e3:.1f} ms on the cluster, "
                  f"{alone * 1e3:.1f} ms in one process: {(on_cluster - alone) * 1e3:+.1f} ms")


if __name__ == "__main__":
    main()
