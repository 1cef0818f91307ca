#!/usr/bin/env python3
"""traceql beside DuckDB on the same spans, at 1x and 10x the data.

    python3 benches/compare/duckdb_side_by_side.py            # 72,000 and 720,000 traces
    python3 benches/compare/duckdb_side_by_side.py --traces 72000 --scales 1

It builds the binary (the `dist` profile, the build to deploy, unless --profile or
--binary say otherwise), generates the store (`traceql gen --seed 1`, about 14 spans per
trace over one hour) into target/bench-data/search-<TRACES> (the store the Rust
benchmarks use), writes the same spans as one flat Parquet file with
`traceql export --format parquet`, and makes a virtual environment with DuckDB and
pyarrow from PyPI in target/bench-venv. Then, per query of the suite:

- traceql, whole process: `traceql query --format jsonl` asking for every match and
  every matched span (`--limit` and `--spss` above any count), output to a file;
- DuckDB, inside this Python process: hand-written SQL over the flat file returning
  the same information (trace id, span id, start and duration of each matched span),
  fetched as Arrow; a fresh connection per run, so no cache carries over;
- checks that both return the same (trace id, span id) pairs (for metrics, the same
  total per series);
- prints the best of --runs wall times and their ratio, and traceql's default search
  (limit 20, 3 spans per spanset) and its slowest-first search (`--order slowest`),
  whole process.

Times are wall-clock milliseconds on whatever machine runs it; run it on an idle one.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DATA = ROOT / "target" / "bench-data"

# (title, TraceQL, SQL over the view `spans` returning trace_id, span_id,
# start_unix_nano, duration_nano of every matched span).
COLS = "trace_id, span_id, start_unix_nano, duration_nano"


def where(cond):
    return f"SELECT {COLS} FROM spans WHERE {cond}"


def has_attr(list_col, key, test):
    return f"len(list_filter({list_col}, lambda a: a.key = '{key}' AND {test})) > 0"


def related(lhs, rhs, relation, negated=False):
    """Right-hand spans with (or without) a left-hand span in `relation` in their trace."""
    exists = "NOT EXISTS" if negated else "EXISTS"
    return (
        f"SELECT {', '.join('r.' + c.strip() for c in COLS.split(','))} FROM spans r "
        f"WHERE ({rhs.replace('$', 'r.')}) AND {exists} (SELECT 1 FROM spans l "
        f"WHERE l.trace_id = r.trace_id AND ({lhs.replace('$', 'l.')}) AND {relation})"
    )


CHILD = "r.nested_set_parent = l.nested_set_left"
DESCENDANT = "l.nested_set_left < r.nested_set_left AND r.nested_set_right < l.nested_set_right"
SIBLING = "r.nested_set_parent = l.nested_set_parent AND r.span_id <> l.span_id AND r.nested_set_parent >= 0"

SEARCHES = [
    ("intrinsic", "{ status = error }", where("status = 'error'")),
    ("intrinsic duration", "{ duration > 100ms }", where("duration_nano > 100000000")),
    (
        "resource && intrinsic",
        '{ resource.service.name = "checkout" && status = error }',
        where("\"resource.service.name\" = 'checkout' AND status = 'error'"),
    ),
    (
        "unscoped attribute",
        '{ .service.name = "checkout" }',
        where("\"resource.service.name\" = 'checkout'"),
    ),
    ("span int", "{ span.http.status_code >= 500 }", where('"span.http.status_code:int" >= 500')),
    ("span bool", "{ span.cache.hit = false }", where('"span.cache.hit:bool" = false')),
    ("span float", "{ span.request.size_kb > 40.5 }", where('"span.request.size_kb:float" > 40.5')),
    (
        "span string ||",
        '{ span.db.system = "redis" || span.messaging.system = "kafka" }',
        where("\"span.db.system\" = 'redis' OR \"span.messaging.system\" = 'kafka'"),
    ),
    (
        "untyped attribute",
        "{ span.retry.attempt > 0 }",
        where(has_attr("span_attributes", "retry.attempt", "a.int > 0")),
    ),
    (
        "regex",
        '{ span.http.route =~ "/product/.*" }',
        where("regexp_full_match(\"span.http.route\", '/product/.*')"),
    ),
    (
        "array",
        '{ span.feature.flags = "dark-mode" }',
        where("list_contains(\"span.feature.flags:string[]\", 'dark-mode')"),
    ),
    (
        "event name",
        '{ event:name = "exception" }',
        where("list_contains(list_transform(events, lambda e: e.name), 'exception')"),
    ),
    (
        "event attribute",
        '{ event.exception.type = "java.net.SocketTimeoutException" }',
        where(
            "len(list_filter(events, lambda e: "
            + has_attr("e.attributes", "exception.type", "a.str = 'java.net.SocketTimeoutException'")
            + ")) > 0"
        ),
    ),
    (
        "link",
        "{ kind = consumer && link:traceID != nil }",
        where("kind = 'consumer' AND len(links) > 0"),
    ),
    (
        "spanset &&",
        "{ kind = server } && { status = error }",
        f"""WITH a AS ({where("kind = 'server'")}), b AS ({where("status = 'error'")}),
        t AS (SELECT trace_id FROM a INTERSECT SELECT trace_id FROM b)
        SELECT * FROM (SELECT * FROM a UNION SELECT * FROM b) WHERE trace_id IN (SELECT trace_id FROM t)""",
    ),
    (
        "spanset ||",
        '{ resource.service.name = "email" } || { status = error }',
        where("\"resource.service.name\" = 'email' OR status = 'error'"),
    ),
    (
        "child >",
        '{ kind = server } > { span.db.system = "postgresql" }',
        related("$kind = 'server'", "$\"span.db.system\" = 'postgresql'", CHILD),
    ),
    (
        "descendant >>",
        '{ resource.service.name = "frontend" } >> { status = error }',
        related("$\"resource.service.name\" = 'frontend'", "$status = 'error'", DESCENDANT),
    ),
    (
        "sibling ~",
        '{ span.db.system = "postgresql" } ~ { span.db.system = "redis" }',
        related("$\"span.db.system\" = 'postgresql'", "$\"span.db.system\" = 'redis'", SIBLING),
    ),
    (
        "negated !>>",
        '{ kind = server } !>> { status = error }',
        related("$kind = 'server'", "$status = 'error'", DESCENDANT, negated=True),
    ),
    (
        "count() filter",
        "{ } | count() > 3",
        f"SELECT {COLS} FROM spans QUALIFY count(*) OVER (PARTITION BY trace_id) > 3",
    ),
    (
        "avg() filter",
        "{ kind = server } | avg(duration) > 20ms",
        f"SELECT {COLS} FROM spans WHERE kind = 'server' "
        "QUALIFY avg(duration_nano) OVER (PARTITION BY trace_id) > 20000000",
    ),
    (
        "by()",
        "{ status = error } | by(resource.service.name)",
        where("status = 'error'"),
    ),
    (
        "select()",
        "{ status = error } | select(span.http.route, resource.service.name)",
        f"SELECT {COLS}, \"span.http.route\", \"resource.service.name\" FROM spans WHERE status = 'error'",
    ),
    ("every span { }", "{ }", f"SELECT {COLS} FROM spans"),
    (
        "no match (metadata)",
        '{ resource.service.name = "no-such-service" }',
        where("\"resource.service.name\" = 'no-such-service'"),
    ),
    (
        "no match (scan)",
        "{ duration > 1h }",
        where("duration_nano > 3600000000000"),
    ),
]

STEP_S = 60


def bucketed(select, cond, by=None, agg="count(*)"):
    group = f', {by} AS series' if by else ", '' AS series"
    return (
        f"SELECT (start_unix_nano // {STEP_S * 10**9}) AS bucket{group}, {agg} AS v "
        f"FROM spans WHERE {cond} GROUP BY ALL"
    )


# (title, TraceQL, SQL returning bucket, series, v; and how to compare: "total" sums
# v per series on both sides, None times only).
METRICS = [
    (
        "rate() by service",
        "{ } | rate() by (resource.service.name)",
        bucketed("", "true", '"resource.service.name"'),
        "rate",
    ),
    (
        "count_over_time() errors by service",
        "{ status = error } | count_over_time() by (resource.service.name)",
        bucketed("", "status = 'error'", '"resource.service.name"'),
        "count",
    ),
    (
        "avg_over_time(duration) by route",
        "{ kind = server } | avg_over_time(duration) by (span.http.route)",
        bucketed("", "kind = 'server'", '"span.http.route"', "avg(duration_nano)"),
        None,
    ),
    (
        "quantile_over_time(duration, .99) by service",
        "{ kind = server } | quantile_over_time(duration, .99) by (resource.service.name)",
        bucketed("", "kind = 'server'", '"resource.service.name"', "quantile_cont(duration_nano, 0.99)"),
        None,
    ),
]


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def duckdb_module():
    env = TARGET / "bench-venv"
    python = env / "bin" / "python"
    if not python.exists():
        venv.create(env, with_pip=True)
        run([python, "-m", "pip", "install", "-q", "duckdb", "pyarrow"])
    if Path(sys.executable).resolve() != python.resolve() and os.environ.get("TRACEQL_BENCH_VENV") != "1":
        os.environ["TRACEQL_BENCH_VENV"] = "1"
        os.execv(python, [str(python), *sys.argv])
    import duckdb

    return duckdb


def best(runs, f):
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - started)
    return min(times) * 1e3, result


def traceql_pairs(path):
    pairs = set()
    with open(path) as f:
        for line in f:
            trace = json.loads(line)
            tid = trace["traceID"].lstrip("0")
            for spanset in trace["spanSets"]:
                for span in spanset["spans"]:
                    pairs.add((tid, span["spanID"]))
    return pairs


def metrics_totals(path, step_s, kind):
    """Per series label, the total count the series stands for."""
    response = json.load(open(path))
    totals = {}
    for series in response["series"]:
        labels = series.get("labels", [])
        label = ""
        for l in labels:
            value = l.get("value", {})
            label = next(iter(value.values()), "") if isinstance(value, dict) else str(value)
        values = [s.get("value", 0) or 0 for s in series.get("samples", [])]
        total = sum(values) * (step_s if kind == "rate" else 1)
        totals[str(label)] = round(total)
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=72_000, help="traces at 1x (default 72,000: about 1M spans)")
    parser.add_argument("--scales", default="1,10", help="comma-separated multiples of --traces (default 1,10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per query; the best counts (default 3)")
    parser.add_argument("--binary", help="a traceql binary to use instead of building one")
    parser.add_argument("--profile", default="dist",
                        help="the cargo profile to build (default dist, the build to deploy; release builds faster)")
    parser.add_argument("--only", help="run only queries whose title contains this")
    args = parser.parse_args()
    duckdb = duckdb_module()

    binary = args.binary
    if not binary:
        run(["cargo", "build", "--profile", args.profile, "-q", "-p", "traceql"], cwd=ROOT)
        binary = str(TARGET / args.profile / "traceql")

    for scale in [int(s) for s in args.scales.split(",")]:
        traces = args.traces * scale
        store = DATA / f"search-{traces}"
        if not (store / "READY").exists():
            shutil.rmtree(store, ignore_errors=True)
            run([binary, "gen", "--data", store, "--traces", str(traces), "--seed", "1"])
            (store / "READY").write_text("")
        flat = DATA / f"flat-{traces}.parquet"
        if not flat.exists():
            run([binary, "export", "--data", store, "--format", "parquet", "--output", flat])
        con = duckdb.connect()
        spans = con.execute(f"SELECT count(*) FROM '{flat}'").fetchone()[0]
        store_mb = sum(f.stat().st_size for f in store.rglob("*.parquet")) / 1e6
        print(f"\n## {spans:,} spans ({traces:,} traces): store {store_mb:.1f} MB, flat file {flat.stat().st_size / 1e6:.1f} MB")
        print(f"best of {args.runs}; traceql whole process, DuckDB {duckdb.__version__} in process; ms\n")
        print("| query | traceql all | DuckDB | ratio | traceql newest 20 | traceql slowest 20 | answers |")
        print("|---|---:|---:|---:|---:|---:|---|")
        out = DATA / "compare-out.jsonl"

        def duck(sql):
            def go():
                c = duckdb.connect()
                c.execute(f"CREATE VIEW spans AS SELECT * FROM read_parquet('{flat}')")
                return c.sql(sql).to_arrow_table()

            return go

        for title, query, sql in SEARCHES:
            if args.only and args.only not in title:
                continue
            base = [binary, "query", "--data", str(store), "--format", "jsonl"]

            def ours(extra):
                def go():
                    with open(out, "w") as f:
                        subprocess.run(base + extra + [query], stdout=f, check=True)

                return go

            t_all, _ = best(args.runs, ours(["--limit", "100000000", "--spss", "100000000"]))
            ours_pairs = traceql_pairs(out)
            t_20, _ = best(args.runs, ours([]))
            t_slow, _ = best(args.runs, ours(["--order", "slowest"]))
            t_duck, table = best(args.runs, duck(sql))
            ids = table.select(["trace_id", "span_id"]).to_pylist()
            duck_pairs = {(r["trace_id"].lstrip("0"), r["span_id"]) for r in ids}
            agree = "same" if ours_pairs == duck_pairs else (
                f"DIFFER: traceql {len(ours_pairs)}, DuckDB {len(duck_pairs)}, "
                f"only traceql {len(ours_pairs - duck_pairs)}, only DuckDB {len(duck_pairs - ours_pairs)}"
            )
            print(
                f"| `{query}` | {t_all:.0f} | {t_duck:.0f} | {t_all / max(t_duck, 1e-3):.1f}× | {t_20:.0f} | {t_slow:.0f} | {agree} ({len(duck_pairs):,} spans) |",
                flush=True,
            )

        for title, query, sql, kind in METRICS:
            if args.only and args.only not in title:
                continue
            cmd = [binary, "query", "--data", str(store), "--format", "json", "--step", f"{STEP_S}s", query]

            def ours():
                with open(out, "w") as f:
                    subprocess.run(cmd, stdout=f, check=True)

            t_ours, _ = best(args.runs, ours)
            t_duck, table = best(args.runs, duck(sql))
            if kind:
                duck_totals = {}
                for r in table.to_pylist():
                    key = "" if r["series"] is None else str(r["series"])
                    duck_totals[key] = duck_totals.get(key, 0) + r["v"]
                ours_totals = metrics_totals(out, STEP_S, kind)
                agree = "same totals" if ours_totals == duck_totals else f"DIFFER: {ours_totals} vs {duck_totals}"
            else:
                agree = "not compared (traceql's quantiles and averages per bucket are its own; times only)"
            print(f"| `{query}` (step {STEP_S}s) | {t_ours:.0f} | {t_duck:.0f} | {t_ours / max(t_duck, 1e-3):.1f}× | — | — | {agree} |", flush=True)


if __name__ == "__main__":
    main()
