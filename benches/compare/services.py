#!/usr/bin/env python3
"""`traceql services` and `traceql insights` beside the metrics query
`{ } | rate() by (resource.service.name)` on the same store, at 1x and 10x the data:
wall time (best of --runs whole-process runs) and peak memory (max RSS).

    cargo build --release -p traceql
    target/release/traceql gen --data target/bench-data/search-72000 --traces 72000
    target/release/traceql gen --data target/bench-data/search-720000 --traces 720000
    python3 benches/compare/services.py --binary target/release/traceql
"""

import argparse
import subprocess
import time

COMMANDS = {
    "rate() by service": ["query", "--instant", "{ } | rate() by (resource.service.name)"],
    "services": ["services"],
    "services of errors": ["services", "{ status = error }"],
    "insights": ["insights"],
    "insights of errors": ["insights", "{ status = error }"],
}


def run(binary, store, args):
    """Wall seconds and peak RSS (MiB) of one run of `traceql ARGS --data STORE`."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", binary, *args[:1], "--data", store, *args[1:]],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return seconds, peak_kib / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/traceql")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--stores",
        nargs="+",
        default=["target/bench-data/search-72000", "target/bench-data/search-720000"],
    )
    args = parser.parse_args()
    print(f"{'store':<34} {'command':<20} {'best s':>8} {'max RSS MiB':>12} {'x rate()':>9}")
    for store in args.stores:
        base = None
        for name, command in COMMANDS.items():
            runs = [run(args.binary, store, command) for _ in range(args.runs)]
            best = min(s for s, _ in runs)
            rss = max(r for _, r in runs)
            base = base or best
            print(f"{store:<34} {name:<20} {best:>8.3f} {rss:>12.0f} {best / base:>9.2f}")


if __name__ == "__main__":
    main()
