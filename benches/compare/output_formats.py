#!/usr/bin/env python3
"""Every-match searches written as Arrow, CSV and JSON lines, beside DuckDB returning the
same columns, at 1x and 10x the data; with each traceql run's peak memory.

    python3 benches/compare/output_formats.py [--scales 1,10] [--runs 3] [--binary PATH]
        [--before PATH] [--only TITLE]

It uses the store and flat Parquet file of duckdb_side_by_side.py (generated the same
way into target/bench-data/ if missing) and, per search, asks traceql for every match
and every matched span (whole process, output to a file):

- `--format arrow`: an Arrow IPC stream, one row per span with the trace id, the trace's
  root service, root name, start and duration, the span id, name, start and duration;
- `--format csv` and `--format jsonl` (the same spans as text);
- with --before, `--format jsonl` from another binary (the previous version), so a
  change to the JSON path shows.

DuckDB gets the same columns from the flat file (which carries the trace's root service,
root name, start and duration on every row), at its best:

- warm: one connection for all runs, the view made once, the answer fetched as an Arrow
  table in this process (what a notebook or a service does);
- CLI: the `duckdb` command (duckdb-cli from PyPI), whole process, writing CSV to a file
  (its CLI writes no Arrow without an extension from the network).

It checks that traceql's Arrow output and DuckDB's answer hold the same (trace id, span
id) pairs, and prints the best of --runs wall times (ms) and traceql's peak RSS (MB).
Times are wall-clock on whatever machine runs it; run it on an idle one.
"""

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import duckdb_side_by_side as side  # noqa: E402

# Searches whose SQL selects the matched spans' columns directly (the side-by-side
# suite's SQL returns the content every output carries).
TITLES = [
    "intrinsic",
    "resource && intrinsic",
    "span string ||",
    "event name",
    "descendant >>",
    "count() filter",
    "every span { }",
]


def timed(cmd, out_path):
    """Runs `cmd` with stdout to `out_path`: (seconds, peak RSS in MB). The peak is GNU
    time's (`%M`): the child's own rusage would count this process's memory, which a
    fork copies before the exec."""
    report = out_path.with_suffix(".rss")
    with open(out_path, "wb") as out:
        started = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(report), *cmd], stdout=out, check=True)
        elapsed = time.perf_counter() - started
    return elapsed, int(report.read_text().split()[-1]) / 1024


def best_of(runs, cmd, out_path):
    results = [timed(cmd, out_path) for _ in range(runs)]
    return min(r[0] for r in results) * 1e3, max(r[1] for r in results)


def pairs(table):
    """The (trace id, span id) pairs of an Arrow table, trace ids without leading zeros."""
    ids = zip(table.column("trace_id").to_pylist(), table.column("span_id").to_pylist())
    return {(t.lstrip("0"), s) for t, s in ids}


def duckdb_cli():
    cli = Path(sys.executable).parent / "duckdb"
    if not cli.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "duckdb-cli"], check=True)
    return cli


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=72_000, help="traces at 1x (default 72,000: about 1M spans)")
    parser.add_argument("--scales", default="1,10", help="comma-separated multiples of --traces (default 1,10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the best counts (default 3)")
    parser.add_argument("--binary", help="a traceql binary to use instead of building one")
    parser.add_argument("--before", help="another traceql binary whose JSON lines to time beside")
    parser.add_argument("--profile", default="dist", help="the cargo profile to build (default dist)")
    parser.add_argument("--only", help="run only searches whose title contains this")
    args = parser.parse_args()
    duckdb = side.bench_venv()[0]
    import pyarrow.ipc as ipc

    cli = duckdb_cli()
    binary = args.binary
    if not binary:
        side.run(["cargo", "build", "--profile", args.profile, "-q", "-p", "traceql"], cwd=side.ROOT)
        binary = str(side.TARGET / args.profile / "traceql")
    searches = [s for s in side.SEARCHES if s[0] in TITLES and (not args.only or args.only in s[0])]
    out = side.DATA / "formats-out"

    for scale in [int(s) for s in args.scales.split(",")]:
        traces = args.traces * scale
        store = side.DATA / f"search-{traces}"
        if not (store / "READY").exists():
            shutil.rmtree(store, ignore_errors=True)
            side.run([binary, "gen", "--data", store, "--traces", str(traces), "--seed", "1"])
            (store / "READY").write_text("")
        flat = side.DATA / f"flat-{traces}.parquet"
        if not flat.exists():
            side.run([binary, "export", "--data", store, "--format", "parquet", "--output", flat])
        con = duckdb.connect()
        con.execute(f"CREATE VIEW spans AS SELECT * FROM read_parquet('{flat}')")
        spans = con.sql("SELECT count(*) FROM spans").fetchall()[0][0]
        print(f"\n## {spans:,} spans ({traces:,} traces)")
        print(f"best of {args.runs}, ms; traceql whole process (peak RSS in MB); DuckDB "
              f"{duckdb.__version__} warm in process, DuckDB CLI {cli_version(cli)} whole process\n")
        before = " | before jsonl" if args.before else ""
        print(f"| search | spans | traceql arrow | DuckDB warm arrow | traceql csv | DuckDB CLI csv | traceql jsonl{before} | answers |")
        print(f"|---|---:|---:|---:|---:|---:|---:{'|---:' if args.before else ''}|---|")
        for title, query, sql in searches:
            every = ["--limit", "100000000", "--spss", "100000000"]
            base = [binary, "query", "--data", str(store), *every]
            t_arrow, rss_arrow = best_of(args.runs, base + ["--format", "arrow", query], out)
            table = ipc.open_stream(open(out, "rb")).read_all()
            ours = pairs(table)
            t_csv, rss_csv = best_of(args.runs, base + ["--format", "csv", query], out)
            t_jsonl, rss_jsonl = best_of(args.runs, base + ["--format", "jsonl", query], out)
            t_warm, answer = side.best(args.runs, lambda: con.sql(sql).to_arrow_table())
            theirs = pairs(answer)
            csv_cmd = [str(cli), "-csv", "-c", f"CREATE VIEW spans AS SELECT * FROM read_parquet('{flat}'); {sql}"]
            t_cli, _ = best_of(args.runs, csv_cmd, out)
            cells = [
                f"`{query}`",
                f"{len(theirs):,}",
                f"{t_arrow:.0f} ({rss_arrow:.0f})",
                f"{t_warm:.0f}",
                f"{t_csv:.0f} ({rss_csv:.0f})",
                f"{t_cli:.0f}",
                f"{t_jsonl:.0f} ({rss_jsonl:.0f})",
            ]
            if args.before:
                cmd = [args.before, "query", "--data", str(store), *every, "--format", "jsonl", query]
                t_before, rss_before = best_of(args.runs, cmd, out)
                cells.append(f"{t_before:.0f} ({rss_before:.0f})")
            cells.append("same" if ours == theirs else f"DIFFER: traceql {len(ours)}, DuckDB {len(theirs)}")
            print("| " + " | ".join(cells) + " |", flush=True)


def cli_version(cli):
    return subprocess.run([str(cli), "--version"], capture_output=True, text=True).stdout.split()[0]


if __name__ == "__main__":
    main()
