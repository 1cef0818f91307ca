#!/usr/bin/env python3
"""Ingest, gen and compact at 1x and 10x the spans: spans/s and peak memory, whole process.

    python3 benches/compare/ingest_scale.py [--binary PATH] [--traces 72000] [--scales 1,10]

For each scale it takes the generated store of the DuckDB benchmark
(target/bench-data/search-<TRACES>, made with `traceql gen --seed 1` if missing), writes
its spans as the OpenTelemetry Collector's file exporter would (`traceql export`):
OTLP/JSON lines, the same gzip- and zstd-compressed, and length-prefixed OTLP/protobuf
(the exporter's `format: proto`). Then, each in a fresh store, whole process under
`/usr/bin/time`:

- `traceql ingest` of each input (default memory limit, 1 GiB);
- `traceql compact` of the JSON-lines store (joins what the memory limit split);
- `traceql gen` of the same number of traces.

It prints spans/s, wall seconds and peak RSS per row, and the 10x/1x time ratio. The
inputs are kept in target/bench-data/ingest-<TRACES>/ (several GB at 10x).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DATA = ROOT / "target" / "bench-data"


def build(binary, profile):
    if binary:
        return Path(binary)
    subprocess.run(["cargo", "build", "--profile", profile, "-p", "traceql"], cwd=ROOT, check=True)
    return TARGET / profile / "traceql"


def timed(argv):
    """Runs argv; returns (wall seconds, peak RSS MB, stdout)."""
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *map(str, argv)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, argv))} failed:\n{done.stderr}")
    wall, rss = done.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024, done.stdout


def spans_in(binary, store):
    out = subprocess.run([binary, "blocks", "--data", store, "--format", "json"],
                         stdout=subprocess.PIPE, check=True, text=True).stdout
    return sum(b["spans"] for b in json.loads(out))


def inputs(binary, traces):
    store = DATA / f"search-{traces}"
    if not (store / "READY").exists():
        shutil.rmtree(store, ignore_errors=True)
        subprocess.run([binary, "gen", "--data", store, "--traces", str(traces),
                        "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
        (store / "READY").write_text("")
    out = DATA / f"ingest-{traces}"
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "OTLP/JSON lines": out / "spans.jsonl",
        "OTLP/JSON lines, gzip": out / "spans.jsonl.gz",
        "OTLP/JSON lines, zstd": out / "spans.jsonl.zst",
        "OTLP/protobuf (framed)": out / "spans.pb",
    }
    if not files["OTLP/JSON lines"].exists():
        subprocess.run([binary, "export", "--data", store, "--format", "otlp-json",
                        "--output", files["OTLP/JSON lines"]], check=True)
    if not files["OTLP/protobuf (framed)"].exists():
        subprocess.run([binary, "export", "--data", store, "--format", "otlp-proto",
                        "--output", files["OTLP/protobuf (framed)"]], check=True)
    for name, tool in [("OTLP/JSON lines, gzip", ["gzip", "-c", "-6"]),
                       ("OTLP/JSON lines, zstd", ["zstd", "-c", "-q", "-3", "-T2"])]:
        if not files[name].exists():
            with open(files[name], "wb") as f:
                subprocess.run([*tool, files["OTLP/JSON lines"]], stdout=f, check=True)
    return store, files


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary")
    parser.add_argument("--profile", default="dist",
                        help="the cargo profile to build (default dist, the build to deploy; release builds faster)")
    parser.add_argument("--traces", type=int, default=72000)
    parser.add_argument("--scales", default="1,10")
    a = parser.parse_args()
    binary = build(a.binary, a.profile)
    rows = {}
    for scale in [int(s) for s in a.scales.split(",")]:
        traces = a.traces * scale
        source, files = inputs(binary, traces)
        spans = spans_in(binary, source)
        work = DATA / f"ingest-{traces}" / "stores"
        for name, path in files.items():
            shutil.rmtree(work, ignore_errors=True)
            wall, rss, _ = timed([binary, "ingest", "--data", work, path])
            size = path.stat().st_size / 1e6
            rows[(name, scale)] = (spans, wall, rss, f"{size:,.0f} MB input")
            print(f"{name} {scale}x: {wall:.1f} s, {rss:,.0f} MB", file=sys.stderr, flush=True)
            if name == "OTLP/JSON lines":
                blocks = len(json.loads(subprocess.run(
                    [binary, "blocks", "--data", work, "--format", "json"],
                    stdout=subprocess.PIPE, check=True, text=True).stdout))
                wall, rss, _ = timed([binary, "compact", "--data", work])
                after = len(json.loads(subprocess.run(
                    [binary, "blocks", "--data", work, "--format", "json"],
                    stdout=subprocess.PIPE, check=True, text=True).stdout))
                rows[("compact (after JSON lines)", scale)] = (
                    spans, wall, rss, f"{blocks} -> {after} blocks")
                print(f"compact {scale}x: {wall:.1f} s, {rss:,.0f} MB", file=sys.stderr,
                      flush=True)
        shutil.rmtree(work, ignore_errors=True)
        wall, rss, _ = timed([binary, "gen", "--data", work, "--traces", str(traces),
                              "--seed", "1"])
        rows[("gen", scale)] = (spans, wall, rss, "")
        print(f"gen {scale}x: {wall:.1f} s, {rss:,.0f} MB", file=sys.stderr, flush=True)
        shutil.rmtree(work, ignore_errors=True)

    scales = sorted({s for _, s in rows})
    print("| what | scale | spans | wall s | spans/s | peak RSS MB | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for (name, scale), (spans, wall, rss, note) in rows.items():
        print(f"| {name} | {scale}x | {spans:,} | {wall:.1f} | {spans / wall:,.0f} | "
              f"{rss:,.0f} | {note} |")
    if len(scales) == 2:
        lo, hi = scales
        print(f"\ntime at {hi}x / time at {lo}x:")
        for name in dict.fromkeys(n for n, _ in rows):
            if (name, lo) in rows and (name, hi) in rows:
                print(f"  {name}: {rows[(name, hi)][1] / rows[(name, lo)][1]:.1f}")


if __name__ == "__main__":
    main()
