"""Times ``clbench run`` (mlp, no meta, no replay, default stream, 5 epochs, batch 32) against a
hand-written PyTorch loop doing identical work (``hand_loop.py``), in the same run.

Both run as fresh processes, alternately, ``--repeats`` times each; the script prints the median
whole-process wall time of each and their ratio (target: clbench at most 1.1x the hand loop), and
the in-process compute time (stream + training + evaluation, imports excluded) of each.

    python benchmarks/harness_overhead.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str]) -> tuple[float, str]:
    """Wall seconds of one subprocess and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, proc.stdout


def main() -> None:
    """Alternate the two commands and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = tempfile.mkdtemp(prefix="clbench-overhead-")
    clbench = [
        sys.executable,
        "-m",
        "clbench",
        "run",
        "--seed",
        str(args.seed),
        "--quiet",
        "--json",
        "--set",
        "train.epochs=5",
        "--set",
        "train.batch_size=32",
        "--results",
        results,
    ]
    hand = [sys.executable, str(HERE / "hand_loop.py"), "--seed", str(args.seed)]
    walls: dict[str, list[float]] = {"clbench": [], "hand": []}
    inner: dict[str, list[float]] = {"clbench": [], "hand": []}
    acc = {}
    for _ in range(args.repeats):
        w, out = timed(clbench)
        rec = json.loads(out)
        walls["clbench"].append(w)
        inner["clbench"].append(rec["timings"]["total_s"])  # stream, set-up, training, evaluation
        acc["clbench"] = rec["metrics"]["avg_accuracy"]
        w, out = timed(hand)
        summary = json.loads(out)
        walls["hand"].append(w)
        inner["hand"].append(summary["seconds"])
        acc["hand"] = summary["avg_accuracy"]
    med = {k: statistics.median(v) for k, v in walls.items()}
    med_inner = {k: statistics.median(v) for k, v in inner.items()}
    print(f"repeats: {args.repeats} each, alternating; seed {args.seed}; torch threads 1")
    print(f"{'':<10} {'process wall s':>15} {'compute s':>10} {'avg_accuracy':>13}")
    for k in ("hand", "clbench"):
        print(f"{k:<10} {med[k]:>15.3f} {med_inner[k]:>10.3f} {acc[k]:>13.4f}")
    print(f"ratio clbench/hand, whole process: {med['clbench'] / med['hand']:.3f}  (target <= 1.10)")
    print(f"ratio clbench/hand, compute only:  {med_inner['clbench'] / med_inner['hand']:.3f}")


if __name__ == "__main__":
    main()
