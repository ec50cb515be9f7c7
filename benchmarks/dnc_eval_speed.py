"""Time the DNC's evaluation: the compiled (numba) inference path against the torch path.

Both paths evaluate the same default DNC (128 x 64 memory, 4 read heads, controller 64) on
shifting-linear-shaped inputs (8 steps of 4 features, 5 classes) under ``torch.inference_mode``,
at the evaluation batch size clbench uses for the DNC (64), interleaved batch by batch in one
process so that load from elsewhere hits both alike. It prints samples per second for each, the
ratio, and what evaluating a default run's 21 x 20 x 1,000 test samples takes at each speed.

``--run`` also times the whole default command of issue 4 in a fresh process,
``clbench run --model dnc --set train.epochs=1`` (records go to a temporary folder), and prints its
wall-clock time and the training and evaluation seconds from its record::

    PYTHONPATH=.:plugins python benchmarks/dnc_eval_speed.py --run
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64, help="evaluation batch size (clbench's default for the DNC)")
    p.add_argument("--batches", type=int, default=40, help="timed batches per path")
    p.add_argument("--threads", type=int, default=1, help="torch (and numba) threads")
    p.add_argument("--run", action="store_true", help="also time `clbench run --model dnc --set train.epochs=1`")
    return p.parse_args(argv)


def time_paths(batch: int, batches: int, threads: int) -> dict[str, list[float]]:
    """Seconds per batch of each path, interleaved; also checks that both give the same outputs."""
    import torch

    from clbench_memory import DNC, compiled

    if not compiled.available():
        raise SystemExit("numba is not installed: there is no compiled path to time")
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = DNC(input_size=4, output_size=5).eval()
    x = torch.randn(batches + 1, batch, 8, 4)  # [batches, B, T, features]
    times: dict[str, list[float]] = {"compiled": [], "torch": []}
    with torch.inference_mode():
        for path in times:  # warm-up; the first compiled call may compile the kernel
            model.compiled_inference = path == "compiled"
            model(x[0])
        model.compiled_inference = True
        fast = model(x[1])
        model.compiled_inference = False
        slow = model(x[1])
        if not torch.allclose(fast, slow, atol=1e-5):
            raise SystemExit(f"paths disagree: max difference {float((fast - slow).abs().max()):.3g}")
        for i in range(1, batches + 1):
            for path in ("compiled", "torch") if i % 2 else ("torch", "compiled"):
                model.compiled_inference = path == "compiled"
                start = time.perf_counter()
                model(x[i])
                times[path].append(time.perf_counter() - start)
    return times


def time_default_run() -> None:
    """Run ``clbench run --model dnc --set train.epochs=1`` in a fresh process and report its times."""
    with tempfile.TemporaryDirectory() as results:
        command = [sys.executable, "-m", "clbench.cli", "run", "--model", "dnc", "--set", "train.epochs=1",
                   "--results", results, "--quiet", "--json"]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"clbench run failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        record = json.loads(done.stdout)
    t = record["timings"]
    evaluation = t["init_eval_s"] + sum(t["eval_s"])
    print(f"\nclbench run --model dnc --set train.epochs=1: {wall:.1f} s wall-clock (status {record['status']})")
    print(f"  training {sum(t['train_s']):.1f} s, evaluation {evaluation:.1f} s, model build {t['build_s']:.1f} s")
    print(f"  avg_accuracy {record['metrics']['avg_accuracy']:.4f}; target: under 180 s")


def main(argv: list[str] | None = None) -> None:
    """Print both paths' evaluation speed and their ratio (and, with --run, a default run's time)."""
    args = parse_args(argv)
    print(
        f"load average {os.getloadavg()[0]:.2f}; batch {args.batch}, {args.batches} batches, {args.threads} thread(s)"
    )
    times = time_paths(args.batch, args.batches, args.threads)
    rate = {path: args.batch / statistics.median(seconds) for path, seconds in times.items()}
    samples = 21 * 20 * 1000  # evaluations (before training, after each of 20 tasks) x tasks x test samples
    for path, per_second in rate.items():
        print(f"{path:>8}: {per_second:7.0f} samples/s  (a default run's evaluation: {samples / per_second:5.0f} s)")
    print(f"ratio compiled / torch: {rate['compiled'] / rate['torch']:.2f}x")
    if args.run:
        time_default_run()


if __name__ == "__main__":
    main()
