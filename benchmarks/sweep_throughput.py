"""Throughput of ``clbench sweep`` with 2 workers against 1 worker, in the same run.

Both sweeps run the same 8 quick runs (default stream and MLP, 8 seeds) into fresh results folders;
the script prints each sweep's wall time (whole process, worker start-up included), the throughput
ratio (target on a 2-core machine: at least 1.8x), and checks both produced identical records. It
also splits each sweep's time into the run phase (first run's start to last run's end, from the
records) and the fixed start-up around it (the ``clbench`` process, the pool's fork server
importing torch), which no number of workers can shorten.

    python benchmarks/sweep_throughput.py [--runs 8] [--repeats 3] [--executor local|ray] [-- extra sweep args]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep(workers: int, runs: int, executor: str, extra: list[str]) -> tuple[float, dict[str, list], float, float]:
    """Run one sweep in a fresh folder; return its wall seconds, run_id -> accuracy matrix, the
    mean duration of one run inside its worker, and the run phase: seconds from the first run's
    start to the last run's end (from the records)."""
    folder = Path(tempfile.mkdtemp(prefix=f"clbench-sweep-{workers}w-"))
    cmd = [
        sys.executable,
        "-m",
        "clbench",
        "sweep",
        "--seeds",
        f"0-{runs - 1}",
        "--workers",
        str(workers),
        "--executor",
        executor,
        "--results",
        str(folder),
        "-q",
        *extra,
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    records = [json.loads(p.read_text()) for p in (folder / "runs").glob("*.json")]
    matrices = {r["run_id"]: r["accuracy_matrix"] for r in records}
    starts = [r["timings"]["start_unix"] for r in records]
    ends = [r["timings"]["start_unix"] + r["duration_s"] for r in records]
    return wall, matrices, sum(r["duration_s"] for r in records) / max(1, len(records)), max(ends) - min(starts)


def main() -> None:
    """Run the 1-worker and the 2-worker sweep (``--repeats`` times, alternating which goes first)
    and print each pair's ratio and the median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="pairs of sweeps; the order alternates")
    parser.add_argument("--executor", default="local", choices=["local", "ray"])
    parser.add_argument("extra", nargs="*", help="extra sweep arguments, after --")
    args = parser.parse_args()
    print(f"{args.runs} runs, executor {args.executor}; load average before: {os.getloadavg()[0]:.2f}")
    ratios, phase_ratios = [], []
    for rep in range(args.repeats):
        results = {}
        for workers in (1, 2) if rep % 2 == 0 else (2, 1):
            results[workers] = sweep(workers, args.runs, args.executor, args.extra)
        (one, m1, run1, phase1), (two, m2, run2, phase2) = results[1], results[2]
        assert m1 == m2 and len(m1) == args.runs, "the two sweeps produced different records"
        ratios.append(one / two)
        phase_ratios.append(phase1 / phase2)
        print(
            f"pair {rep + 1}: 1 worker {one:6.2f} s ({args.runs / one:.3f} runs/s), 2 workers {two:6.2f} s "
            f"({args.runs / two:.3f} runs/s): ratio {one / two:.2f}x"
        )
        print(
            f"  mean run inside its worker: {run1:.2f} s alone, {run2:.2f} s two at a time "
            f"({(run2 / run1 - 1) * 100:+.1f}%: the cost of sharing the machine)"
        )
        print(
            f"  run phase (first run's start to last run's end): {phase1:.2f} s and {phase2:.2f} s: "
            f"ratio {phase1 / phase2:.2f}x; before and after it (process start, the pool's fork server "
            f"importing torch): {one - phase1:.2f} s and {two - phase2:.2f} s"
        )
    print(
        f"throughput ratio 2 workers / 1 worker, whole processes: median {statistics.median(ratios):.2f}x "
        f"(target >= 1.8x on 2 cores); run phase only: median {statistics.median(phase_ratios):.2f}x"
    )
    print("records identical: yes")


if __name__ == "__main__":
    main()
