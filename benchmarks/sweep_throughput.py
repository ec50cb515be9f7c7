"""Throughput of ``clbench sweep`` with 2 workers against 1 worker, in the same run.

Both sweeps run the same 8 quick runs (default stream and MLP, 8 seeds) into fresh results folders;
the script prints each sweep's wall time (whole process, worker start-up included), the throughput
ratio (target on a 2-core machine: at least 1.8x), and checks both produced identical records.

    python benchmarks/sweep_throughput.py [--runs 8] [--executor local|ray] [-- extra sweep args]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep(workers: int, runs: int, executor: str, extra: list[str]) -> tuple[float, dict[str, list]]:
    """Run one sweep in a fresh folder; return its wall seconds and run_id -> accuracy matrix."""
    folder = Path(tempfile.mkdtemp(prefix=f"clbench-sweep-{workers}w-"))
    cmd = [sys.executable, "-m", "clbench", "sweep", "--seeds", f"0-{runs - 1}", "--workers", str(workers),
           "--executor", executor, "--results", str(folder), "-q", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    matrices = {p.stem: json.loads(p.read_text())["accuracy_matrix"] for p in (folder / "runs").glob("*.json")}
    return wall, matrices


def main() -> None:
    """Run the 1-worker and the 2-worker sweep and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--executor", default="local", choices=["local", "ray"])
    parser.add_argument("extra", nargs="*", help="extra sweep arguments, after --")
    args = parser.parse_args()
    one, m1 = sweep(1, args.runs, args.executor, args.extra)
    two, m2 = sweep(2, args.runs, args.executor, args.extra)
    assert m1 == m2 and len(m1) == args.runs, "the two sweeps produced different records"
    print(f"{args.runs} runs, executor {args.executor}")
    print(f"1 worker : {one:7.2f} s  ({args.runs / one:.3f} runs/s)")
    print(f"2 workers: {two:7.2f} s  ({args.runs / two:.3f} runs/s)")
    print(f"throughput ratio 2 workers / 1 worker: {one / two:.2f}x  (target >= 1.8x on 2 cores)")
    print("records identical: yes")


if __name__ == "__main__":
    main()
