"""The recipe on an accelerator against the CPU: same accuracy matrix (up to float differences)?
How long is a training step on each?

Runs ``--model dnc --meta maml --replay prioritized`` (the article's settings, first ``--tasks``
tasks of the stream) once on the CPU and once on ``--device``, in this process, and prints the
largest difference between the two accuracy matrices and the mean time per training step (a
task's training time divided by its optimiser steps) on each, with their ratio.

    python benchmarks/device_check.py --device cuda --tasks 3
    python benchmarks/device_check.py --device cuda --tasks 2 --model mlp --meta none --replay reservoir
"""

from __future__ import annotations

import argparse
import math


def run(device: str, args: argparse.Namespace) -> dict:
    """One run's record on ``device`` (nothing written)."""
    from clbench.config import RunConfig, resolve
    from clbench.harness import execute
    from clbench.plugins import make_plugin_host

    host = make_plugin_host()
    config = RunConfig(seed=args.seed)
    for section in ("model", "meta", "replay"):
        config.set_name(section, getattr(args, section))
    config.apply_set(f"benchmark.tasks={list(range(args.tasks))}")
    config.apply_set("train.clip=1.0")
    config.apply_set("train.lr_decay=0.9")
    config.apply_set("train.lr_decay_every=10")
    config.apply_set(f"train.device={device}")
    record = execute(resolve(config, host.registry), host, results=None, threads=args.threads).record
    if record["status"] != "ok":
        raise SystemExit(f"the {device} run failed: {record['error']}")
    return record


def step_seconds(record: dict) -> float:
    """Mean seconds per training step: training time over optimiser steps (samples / batch size x epochs)."""
    train = record["config"]["train"]
    tasks = len(record["timings"]["train_s"])
    samples = 1000  # the stream's default train_size
    steps = tasks * train["epochs"] * math.ceil(samples / train["batch_size"])
    return sum(record["timings"]["train_s"]) / steps


def main() -> None:
    """Run on the CPU and on the chosen device; print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the device to check (cuda, cuda:N, mps)")
    parser.add_argument("--tasks", type=int, default=3, help="first tasks of the 20-task stream to run")
    parser.add_argument("--model", default="dnc")
    parser.add_argument("--meta", default="maml")
    parser.add_argument("--replay", default="prioritized")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the CPU run")
    args = parser.parse_args()
    cpu = run("cpu", args)
    other = run(args.device, args)
    diff = max(abs(a - b) for ra, rb in zip(cpu["accuracy_matrix"], other["accuracy_matrix"]) for a, b in zip(ra, rb))
    print(f"{args.model} + {args.meta} + {args.replay}, {args.tasks} tasks, seed {args.seed}")
    print(f"same run id: {cpu['run_id'] == other['run_id']} ({cpu['run_id']})")
    print(f"device: {other['runtime'].get('device')} ({other['runtime'].get('accelerator', '-')})")
    print(f"largest |difference| between the accuracy matrices: {diff:.4f} (test sets of 1,000: 0.001 is one sample)")
    print(f"final-row metrics cpu: latest {cpu['metrics']['latest_task_accuracy']:.4f}, earliest "
          f"{cpu['metrics']['earliest_task_accuracy']:.4f}; {args.device}: latest "
          f"{other['metrics']['latest_task_accuracy']:.4f}, earliest {other['metrics']['earliest_task_accuracy']:.4f}")  # fmt: skip
    c, g = step_seconds(cpu), step_seconds(other)
    print(f"seconds per training step: cpu {c:.4f}, {args.device} {g:.4f}; cpu / {args.device} = {c / g:.2f}x")


if __name__ == "__main__":
    main()
