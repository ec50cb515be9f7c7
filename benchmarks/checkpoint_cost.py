"""What per-task checkpoints cost: their share of a run's time.

Runs a configuration with checkpoints (saved after every task but the last, as ``clbench run``
does) and without, alternating, in fresh subprocesses of ``clbench run``, and prints:

- the time the run itself measured saving its checkpoints (``timings.checkpoint_s``) as a share of
  its duration: the direct cost, free of machine noise;
- the median wall time of the runs with and without checkpoints, and their ratio (noisy on a busy
  machine; the target is at most 2% for the default run and for the recipe's).

    python benchmarks/checkpoint_cost.py                     # the default run (mlp, 20 tasks)
    python benchmarks/checkpoint_cost.py --recipe --tasks 4  # dnc + maml + prioritized, first 4 tasks
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

CLBENCH = str(Path(sys.executable).with_name("clbench"))


def one_run(args: list[str], folder: Path, checkpoints: bool) -> tuple[float, dict]:
    """Wall seconds of one ``clbench run`` (fresh process) and its record."""
    cmd = [CLBENCH, "run", *args, "--results", str(folder), "--json", "-q"]
    cmd.append("--keep-checkpoints" if checkpoints else "--no-checkpoints")  # kept: their size is reported
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return wall, json.loads(proc.stdout)


def main() -> None:
    """Alternate runs with and without checkpoints; print the shares."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", action="store_true", help="dnc + maml + prioritized instead of the default run")
    parser.add_argument("--tasks", type=int, default=20, help="first tasks of the stream to run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind")
    opts = parser.parse_args()
    args = ["--set", f"benchmark.tasks={list(range(opts.tasks))}".replace(" ", "")]
    if opts.recipe:
        args += ["--model", "dnc", "--meta", "maml", "--replay", "prioritized"]
    walls: dict[bool, list[float]] = {True: [], False: []}
    shares, sizes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(opts.repeats):
            for checkpoints in (True, False):
                folder = Path(tmp, f"{checkpoints}-{i}")
                wall, record = one_run(args, folder, checkpoints)
                walls[checkpoints].append(wall)
                if checkpoints:
                    saved = record["timings"].get("checkpoint_s", [])
                    shares.append(sum(saved) / record["duration_s"])
                    sizes += [p.stat().st_size for p in (folder / "checkpoints").glob("*.pt")]
                else:
                    assert "checkpoint_s" not in record["timings"], "the run without checkpoints saved some"
    name = "dnc + maml + prioritized" if opts.recipe else "the default run (mlp)"
    print(f"{name}, {opts.tasks} tasks, {opts.repeats} runs each way, {len(saved)} checkpoints a run")
    print(f"checkpoint saving, measured inside the run: {statistics.median(shares):.2%} of its duration "
          f"(median; max {max(shares):.2%}); last checkpoint {max(sizes) / 1e6:.2f} MB")  # fmt: skip
    w, wo = statistics.median(walls[True]), statistics.median(walls[False])
    print(f"wall time (median of fresh processes): with {w:.2f} s, without {wo:.2f} s, ratio {w / wo:.3f}")


if __name__ == "__main__":
    main()
