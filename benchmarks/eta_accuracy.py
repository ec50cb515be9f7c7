"""How true the run's time-remaining estimate is, replayed from the timings of real records.

For each record (default: the recipe's full-length runs in ``results/verdict``), the per-task
training and evaluation times are replayed epoch by epoch (a task's training time spread evenly
over its epochs) through the progress bar's estimator (:meth:`clbench.progress.ProgressPlugin`)
and through the average-since-start estimate that progress bars use by default. At a few points
of the run it prints each estimate divided by the true time left: 1.00 is exact.

    python benchmarks/eta_accuracy.py [RESULTS_DIR] [--model dnc --meta maml --replay prioritized]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clbench.progress import ProgressPlugin

POINTS = (0.03, 0.1, 0.25, 0.5, 0.75, 0.9)


def replay(train_s: list[float], eval_s: list[float], epochs: int) -> list[tuple[float, float, float, float]]:
    """(fraction done, true seconds left, clbench's estimate, average-since-start estimate) after
    every epoch of a run with these per-task times."""
    bar = ProgressPlugin()
    bar._epochs, bar._tasks = epochs, len(train_s)
    total_epochs = epochs * len(train_s)
    total = sum(train_s) + sum(eval_s)
    elapsed, rows = 0.0, []
    for train, evaluation in zip(train_s, eval_s):
        for _ in range(epochs):
            bar._epoch_s.append(train / epochs)
            bar._done += 1
            elapsed += train / epochs
            if bar._done % epochs == 0:  # the task's evaluation follows its last epoch
                bar._eval_s.append(evaluation)
                elapsed += evaluation
            left = total - elapsed
            average = elapsed / bar._done * (total_epochs - bar._done)
            rows.append((bar._done / total_epochs, left, bar.remaining_seconds() or 0.0, average))
    return rows


def main() -> None:
    """Print the ratios for every matching record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results/verdict")
    parser.add_argument("--model", default="dnc")
    parser.add_argument("--meta", default="maml")
    parser.add_argument("--replay", default="prioritized")
    args = parser.parse_args()
    print(f"estimate / true time left, replayed from {args.results} ({args.model} + {args.meta} + {args.replay})")
    print(f"{'record':18s} {'estimator':>18s} " + " ".join(f"{p:>6.0%}" for p in POINTS))
    for path in sorted(Path(args.results, "runs").glob("*.json")):
        record = json.loads(path.read_text())
        cfg = record.get("config") or {}
        names = [(cfg.get(s) or {}).get("name") for s in ("model", "meta", "replay")]
        if record.get("status") != "ok" or names != [args.model, args.meta, args.replay] or cfg.get("strategy"):
            continue
        replay_fifo = (cfg["replay"]["options"] or {}).get("storage", "reservoir")
        timings = record["timings"]
        rows = replay(timings["train_s"], timings["eval_s"], int(cfg["train"]["epochs"]))
        for label, column in (("clbench (recent)", 2), ("average since start", 3)):
            cells = []
            for point in POINTS:
                fraction, left, *estimates = min(rows, key=lambda r: abs(r[0] - point))
                cells.append(f"{[None, None, *estimates][column] / left:6.2f}" if left > 0 else "   n/a")
            print(f"{path.stem} {label:>18s} " + " ".join(cells) + f"   seed {record['seed']}, storage {replay_fifo}")


if __name__ == "__main__":
    main()
