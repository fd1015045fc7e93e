"""Run every benchmark in turn: ``python -m bench [--quick]``.

Each prints its own figures (see ``bench/RESULTS.md`` for the last recorded run and the targets). PostgreSQL
benchmarks use their own databases on 127.0.0.1:5432 (created when missing; their schemas are wiped).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

BENCHES = [
    ("ingest: AMI -> tracker -> commit, events/s and event->commit latency", ["bench.ingest"], ["--events", "20000"]),
    ("resync: 1,000 live channels", ["bench.resync"], []),
    ("push: event -> WebSocket latency at 50 calls/s", ["bench.push"], ["--seconds", "5"]),
    ("REST at 300 req/s with 1,000,000 calls while ingesting 5,000 events/s", ["bench.rest"], ["--calls", "20000"]),
    ("reports: first-week summary and findings over 1,000,000 calls", ["bench.reports"], ["--calls", "20000"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data sets: checks the benches run, not figures")
    args = parser.parse_args()
    failed = 0
    for title, module, quick_args in BENCHES:
        print(f"\n=== {title}", flush=True)
        t0 = time.perf_counter()
        command = [sys.executable, "-m", *module, *(quick_args if args.quick else [])]
        result = subprocess.run(command, check=False)
        print(f"--- {time.perf_counter() - t0:.0f} s, exit {result.returncode}", flush=True)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
