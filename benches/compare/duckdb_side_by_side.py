#!/usr/bin/env python3
"""traceql beside DuckDB at its best on the same spans, at 1x and 10x the data.

    python3 benches/compare/duckdb_side_by_side.py            # 72,000 and 720,000 traces
    python3 benches/compare/duckdb_side_by_side.py --traces 72000 --scales 1

It builds the binaries (the `dist` profile, the build to deploy, unless --profile or
--binary say otherwise), generates the store (`traceql gen --seed 1`, about 14 spans per
trace over one hour) into target/bench-data/search-<TRACES> (the store the Rust
benchmarks use), writes the same spans as one flat Parquet file with
`traceql export --format parquet` (one column per attribute the store types, the rest in
key/value lists; the trace's root service, root name, start and duration on every row,
as in our blocks), and makes a virtual environment with DuckDB, its CLI and pyarrow from
PyPI in target/bench-venv. Then, per query of the suite, two pairings:

- **cold**, what a user at a terminal runs: `traceql query --format jsonl` asking for
  every match and every matched span, whole process, against the `duckdb` CLI, whole
  process, writing the same matches as CSV with `COPY … TO` (its fast writer; the CLI's
  `-csv` row printer took 2.1 s for 1M spans where `COPY` takes a fraction); both
  outputs to a file;
- **warm**, what a service or a notebook has: a DuckDB connection kept open (the view
  made once, one run to warm up) against the traceql Engine API on an engine kept open
  (`benches/src/bin/warm_engine.rs`, one run to warm up), each building its whole answer
  in memory as Arrow (DuckDB's `to_arrow_table()`; traceql's `Engine::search_batches`,
  every match straight from the plan, and `Engine::metrics` for metrics queries).

Both sides produce the same content: for each matched span its trace id, span id, name,
start and duration, the trace's root service, root name, start and duration, and the
typed attribute columns the query names (traceql also prints the attributes it finds in
key/value lists; DuckDB is not asked to). The script checks that both sides return the
same (trace id, span id) pairs (for metrics, the same total per series), and prints the
best of --runs wall times, their ratios, and traceql's default search (newest 20, 3
spans per spanset), whole process.

Times are wall-clock milliseconds on whatever machine runs it; run it on an idle one.
"""

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
DATA = ROOT / "target" / "bench-data"

# (title, TraceQL, SQL over the view `spans` returning, for every matched span, what
# traceql prints of it: COLS and the typed attribute columns the query names).
COLS = (
    "trace_id, span_id, name, start_unix_nano, duration_nano, trace_root_service, "
    "trace_root_name, trace_start_unix_nano, trace_duration_nano"
)


def named(cond, prefix=""):
    """The columns `cond` names that traceql prints beside the fixed ones, as a select
    list starting with a comma (empty if none)."""
    columns = []
    for column in re.findall(r'"([^"]+)"', cond) + re.findall(r"\b(status|kind)\b", cond):
        quoted = f'{prefix}"{column}"'
        if quoted not in columns:
            columns.append(quoted)
    return "".join(", " + c for c in columns)


def where(cond):
    return f"SELECT {COLS}{named(cond)} FROM spans WHERE {cond}"


def has_attr(list_col, key, test):
    return f"len(list_filter({list_col}, lambda a: a.key = '{key}' AND {test})) > 0"


def related(lhs, rhs, relation, negated=False):
    """Right-hand spans with (or without) a left-hand span in `relation` in their trace."""
    exists = "NOT EXISTS" if negated else "EXISTS"
    fixed = ", ".join("r." + c.strip() for c in COLS.split(","))
    return (
        f"SELECT {fixed}{named(rhs.replace('$', ''), 'r.')} FROM spans r "
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
        f"SELECT {COLS}, kind FROM spans WHERE kind = 'server' "
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
        f"SELECT {COLS}, status, \"span.http.route\", \"resource.service.name\" FROM spans WHERE status = 'error'",
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


def bench_venv():
    """DuckDB, its CLI and pyarrow in target/bench-venv; re-runs this script there."""
    env = TARGET / "bench-venv"
    python = env / "bin" / "python"
    if not python.exists():
        venv.create(env, with_pip=True)
    if not (env / "bin" / "duckdb").exists():
        run([python, "-m", "pip", "install", "-q", "duckdb", "duckdb-cli", "pyarrow"])
    if Path(sys.executable).resolve() != python.resolve() and os.environ.get("TRACEQL_BENCH_VENV") != "1":
        os.environ["TRACEQL_BENCH_VENV"] = "1"
        os.execv(python, [str(python), *sys.argv])
    import duckdb

    return duckdb, env / "bin" / "duckdb"


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


def csv_pairs(path):
    with open(path, newline="") as f:
        return {(r["trace_id"].lstrip("0"), r["span_id"]) for r in csv.DictReader(f)}


def csv_totals(path):
    totals = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            key = r["series"] if r["series"] not in (None, "NULL") else ""
            totals[key] = totals.get(key, 0) + float(r["v"])
    return {k: round(v) for k, v in totals.items()}


def agreement(ours, theirs):
    if ours == theirs:
        return "same"
    if isinstance(ours, set):
        return (
            f"DIFFER: traceql {len(ours)}, DuckDB {len(theirs)}, "
            f"only traceql {len(ours - theirs)}, only DuckDB {len(theirs - ours)}"
        )
    return f"DIFFER: {ours} vs {theirs}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=72_000, help="traces at 1x (default 72,000: about 1M spans)")
    parser.add_argument("--scales", default="1,10", help="comma-separated multiples of --traces (default 1,10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per query; the best counts (default 3)")
    parser.add_argument("--binary", help="a traceql binary to use instead of building one")
    parser.add_argument("--warm-binary", help="a warm_engine binary to use instead of building one")
    parser.add_argument("--profile", default="dist",
                        help="the cargo profile to build (default dist, the build to deploy; release builds faster)")
    parser.add_argument("--only", help="run only queries whose title contains this")
    args = parser.parse_args()
    duckdb, duckdb_cli = bench_venv()

    binary, warm_binary = args.binary, args.warm_binary
    if not binary or not warm_binary:
        run(["cargo", "build", "--profile", args.profile, "-q", "-p", "traceql",
             "-p", "traceql-benches", "--bin", "traceql", "--bin", "warm_engine"], cwd=ROOT)
        binary = binary or str(TARGET / args.profile / "traceql")
        warm_binary = warm_binary or str(TARGET / args.profile / "warm_engine")
    cli_version = subprocess.run([duckdb_cli, "--version"], capture_output=True, text=True).stdout.strip()

    searches = [(t, q, sql) for t, q, sql in SEARCHES if not args.only or args.only in t]
    metrics = [(t, q, sql, k) for t, q, sql, k in METRICS if not args.only or args.only in t]
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
        view = f"CREATE VIEW spans AS SELECT * FROM read_parquet('{flat}')"
        con = duckdb.connect()
        con.execute(view)
        spans = con.sql("SELECT count(*) FROM spans").fetchall()[0][0]
        store_mb = sum(f.stat().st_size for f in store.rglob("*.parquet")) / 1e6
        print(f"\n## {spans:,} spans ({traces:,} traces): store {store_mb:.1f} MB, flat file {flat.stat().st_size / 1e6:.1f} MB")
        print(f"best of {args.runs}; cold: whole processes (traceql CLI, DuckDB CLI {cli_version}); "
              f"warm: traceql's Engine API and DuckDB {duckdb.__version__}'s Python API, each kept open; ms\n")
        print("| query | matched | traceql cold | DuckDB CLI | ratio | traceql warm | DuckDB warm | ratio | traceql newest 20 | answers |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        out = DATA / "compare-out.jsonl"
        duck_out = DATA / "compare-out.csv"

        def duck_cold(sql):
            def go():
                copy = f"COPY ({sql}) TO '{duck_out}' (HEADER)"
                subprocess.run([duckdb_cli, "-c", f"{view}; {copy}"], stdout=subprocess.DEVNULL, check=True)

            return go

        def duck_warm(sql):
            con.sql(sql).to_arrow_table()  # warm-up
            return best(args.runs, lambda: con.sql(sql).to_arrow_table())[0]

        # The warm traceql side: one engine over every query of this scale.
        with tempfile.NamedTemporaryFile("w", suffix=".traceql", delete=False) as f:
            f.write("\n".join([q for _, q, _ in searches] + [q for _, q, _, _ in metrics]) + "\n")
            query_file = f.name
        warm = {}
        answer = subprocess.run(
            [warm_binary, "--data", store, "--queries", query_file, "--runs", str(args.runs), "--step", str(STEP_S)],
            capture_output=True, text=True, check=True,
        )
        for line in answer.stdout.splitlines():
            record = json.loads(line)
            warm[record["query"]] = record
        os.unlink(query_file)

        for title, query, sql in searches:
            base = [binary, "query", "--data", str(store), "--format", "jsonl"]

            def ours(extra):
                def go():
                    with open(out, "w") as f:
                        subprocess.run(base + extra + [query], stdout=f, check=True)

                return go

            t_cold, _ = best(args.runs, ours(["--limit", "100000000", "--spss", "100000000"]))
            ours_pairs = traceql_pairs(out)
            t_20, _ = best(args.runs, ours([]))
            t_duck_cold, _ = best(args.runs, duck_cold(sql))
            duck_pairs = csv_pairs(duck_out)
            t_duck_warm = duck_warm(sql)
            t_warm = warm[query]["best_ms"]
            agree = agreement(ours_pairs, duck_pairs)
            if warm[query].get("spans") != len(ours_pairs):
                agree += f"; warm engine found {warm[query].get('spans')} spans"
            print(
                f"| `{query}` | {len(duck_pairs):,} spans | {t_cold:.0f} | {t_duck_cold:.0f} | {t_cold / max(t_duck_cold, 1e-3):.2f}× "
                f"| {t_warm:.1f} | {t_duck_warm:.1f} | {t_warm / max(t_duck_warm, 1e-3):.2f}× | {t_20:.0f} | {agree} |",
                flush=True,
            )

        for title, query, sql, kind in metrics:
            cmd = [binary, "query", "--data", str(store), "--format", "json", "--step", f"{STEP_S}s", query]

            def ours():
                with open(out, "w") as f:
                    subprocess.run(cmd, stdout=f, check=True)

            t_cold, _ = best(args.runs, ours)
            t_duck_cold, _ = best(args.runs, duck_cold(sql))
            t_duck_warm = duck_warm(sql)
            t_warm = warm[query]["best_ms"]
            if kind:
                agree = agreement(metrics_totals(out, STEP_S, kind), csv_totals(duck_out))
            else:
                agree = "not compared (traceql's quantiles and averages per bucket are its own; times only)"
            print(
                f"| `{query}` (step {STEP_S}s) | {warm[query].get('series')} series | {t_cold:.0f} | {t_duck_cold:.0f} "
                f"| {t_cold / max(t_duck_cold, 1e-3):.2f}× | {t_warm:.1f} | {t_duck_warm:.1f} "
                f"| {t_warm / max(t_duck_warm, 1e-3):.2f}× | — | {agree} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
