#!/usr/bin/env python3
"""traceql on Grafana Tempo's own blocks, beside Tempo's recorded answer times.

    python3 benches/compare/tempo_blocks.py [--runs 3] [--binary PATH] [--only q01,m01]

For every query of shared/tempo-blocks/queries.yaml (72 searches, 8 metrics queries)
and each block version (vParquet4, vParquet5), it runs the `traceql` binary, whole
process, asking for every match and every matched span (as Tempo's recorded requests
did: limit and spss 100000, the same time window and, for metrics, step 60s):

- on Tempo's block as Tempo wrote it (`--data shared/tempo-blocks/vparquetN`);
- on the same block rewritten by `traceql convert` (into target/bench-data/);

and prints the best of --runs wall times beside `http_seconds`, the wall-clock of
Tempo's single recorded HTTP request for the same answer (one run, JSON included, on
the 2-core machine the fixtures were made on: a rough reference, not a benchmark).
The answers themselves are checked by `cargo test` (crates/exec/tests/search/
tempo_blocks.rs). It also prints the peak RSS of `{ }` (every span) per layout.

It builds the binary (the `dist` profile, or --profile) unless --binary is given.
Times are wall-clock milliseconds on whatever machine runs it; run it on an idle one.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DATA = ROOT / "target" / "bench-data"
SHARED = Path(os.environ.get("TRACEQL_SHARED_DIR", ROOT.parent / "shared"))
START, END = 1795774201, 1795776599


def build(binary, profile):
    if binary:
        return Path(binary)
    subprocess.run(["cargo", "build", "--profile", profile, "-q", "-p", "traceql"], cwd=ROOT, check=True)
    return TARGET / profile / "traceql"


def converted(binary, version):
    # Converted afresh by this binary, so the blocks have its format.
    out = DATA / f"tempo-converted-{version}"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(
        [binary, "convert", "--from", SHARED / "tempo-blocks" / f"vparquet{version[1:]}",
         "--data", out],
        check=True, stdout=subprocess.DEVNULL)
    return out


def args_for(q, store):
    common = ["--data", str(store), "--start", str(START), "--end", str(END)]
    if q["kind"] == "metrics":
        return ["query", *common, "--step", "60s", "--format", "json", q["query"]]
    return ["query", *common, "--limit", "100000", "--spss", "100000", "--format", "json",
            q["query"]]


def best(binary, argv, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        done = subprocess.run([binary, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append((time.perf_counter() - t) * 1000)
        if done.returncode not in (0, 3):  # 3: not supported yet
            sys.exit(f"traceql {' '.join(argv)} failed: {done.stderr.decode()}")
        if done.returncode == 3:
            return None
    return min(times)


def peak_rss_mb(binary, argv):
    done = subprocess.run(["/usr/bin/time", "-f", "%M", binary, *argv],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return int(done.stderr.decode().strip().splitlines()[-1]) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--binary")
    parser.add_argument("--profile", default="dist",
                        help="the cargo profile to build (default dist, the build to deploy; release builds faster)")
    parser.add_argument("--only", help="comma-separated query ids")
    a = parser.parse_args()
    if not (SHARED / "tempo-blocks").is_dir():
        sys.exit(f"{SHARED / 'tempo-blocks'} is missing (set TRACEQL_SHARED_DIR)")
    binary = build(a.binary, a.profile)
    queries = yaml.safe_load((SHARED / "tempo-blocks" / "queries.yaml").read_text())["queries"]
    if a.only:
        wanted = set(a.only.split(","))
        queries = [q for q in queries if q["id"] in wanted]
    stores = {v: (SHARED / "tempo-blocks" / f"vparquet{v[1:]}", converted(binary, v))
              for v in ("v4", "v5")}
    print("| id | query | v4 Tempo HTTP | v4 traceql on Tempo block | v4 converted "
          "| v5 Tempo HTTP | v5 traceql on Tempo block | v5 converted |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    totals = {k: 0.0 for k in ("tempo", "block", "converted")}
    slower = []
    for q in queries:
        cells = []
        for v in ("v4", "v5"):
            block, conv = stores[v]
            http = q[v]["http_seconds"] * 1000
            on_block = best(binary, args_for(q, block), a.runs)
            on_conv = best(binary, args_for(q, conv), a.runs)
            fmt = lambda ms: "not supported yet" if ms is None else f"{ms:.0f}"
            cells += [f"{http:.0f}", fmt(on_block), fmt(on_conv)]
            if on_block is not None and on_conv is not None:
                totals["tempo"] += http
                totals["block"] += on_block
                totals["converted"] += on_conv
                if on_block > http:
                    slower.append(f"{v} {q['id']} ({on_block:.0f} vs {http:.0f} ms)")
        text = q["query"].replace("|", "\\|")
        print(f"| {q['id']} | `{text}` | " + " | ".join(cells) + " |", flush=True)
    print(f"\nsum over the queries both ran (ms): Tempo HTTP {totals['tempo']:.0f}, "
          f"traceql on Tempo blocks {totals['block']:.0f}, on converted blocks "
          f"{totals['converted']:.0f}")
    print(f"slower than Tempo's recorded request on its block: {len(slower)}"
          + (": " + ", ".join(slower) if slower else ""))
    for v in ("v4", "v5"):
        block, conv = stores[v]
        every = {"kind": "search", "query": "{ }"}
        print(f"peak RSS of `{{ }}` (every span), {v}: Tempo block "
              f"{peak_rss_mb(binary, args_for(every, block)):.0f} MB, converted "
              f"{peak_rss_mb(binary, args_for(every, conv)):.0f} MB")


if __name__ == "__main__":
    main()
