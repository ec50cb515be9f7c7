"""Throughput of ``clbench sweep`` with 2 workers against 1 worker, in the same run.

Both sweeps run the same 8 quick runs (default stream and MLP, 8 seeds) into fresh results folders;
the script prints each sweep's wall time (whole process, worker start-up included), the throughput
ratio (target on a 2-core machine: at least 1.8x), and checks both produced identical records.

    python benchmarks/sweep_throughput.py [--runs 8] [--executor local|ray] [-- extra sweep args]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep(workers: int, runs: int, executor: str, extra: list[str]) -> tuple[float, dict[str, list], float]:
    """Run one sweep in a fresh folder; return its wall seconds, run_id -> accuracy matrix, and the
    mean duration of one run inside its worker (from the records)."""
    folder = Path(tempfile.mkdtemp(prefix=f"clbench-sweep-{workers}w-"))
    cmd = [sys.executable, "-m", "clbench", "sweep", "--seeds", f"0-{runs - 1}", "--workers", str(workers),
           "--executor", executor, "--results", str(folder), "-q", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    records = [json.loads(p.read_text()) for p in (folder / "runs").glob("*.json")]
    matrices = {r["run_id"]: r["accuracy_matrix"] for r in records}
    return wall, matrices, sum(r["duration_s"] for r in records) / max(1, len(records))


def main() -> None:
    """Run the 1-worker and the 2-worker sweep and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--executor", default="local", choices=["local", "ray"])
    parser.add_argument("extra", nargs="*", help="extra sweep arguments, after --")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    one, m1, run1 = sweep(1, args.runs, args.executor, args.extra)
    two, m2, run2 = sweep(2, args.runs, args.executor, args.extra)
    assert m1 == m2 and len(m1) == args.runs, "the two sweeps produced different records"
    print(f"{args.runs} runs, executor {args.executor}")
    print(f"1 worker : {one:7.2f} s  ({args.runs / one:.3f} runs/s)")
    print(f"2 workers: {two:7.2f} s  ({args.runs / two:.3f} runs/s)")
    print(f"throughput ratio 2 workers / 1 worker: {one / two:.2f}x  (target >= 1.8x on 2 cores)")
    print(f"mean run inside its worker: {run1:.2f} s alone, {run2:.2f} s two at a time "
          f"({(run2 / run1 - 1) * 100:+.1f}%: the cost of sharing the machine)")
    print(f"outside the runs (start-up, spawning workers, writing records): {one - args.runs * run1:.2f} s "
          f"with 1 worker, {two - args.runs * run2 / 2:.2f} s with 2")
    print("records identical: yes")


if __name__ == "__main__":
    main()
