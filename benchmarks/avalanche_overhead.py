"""Whole-process cost of running an Avalanche strategy through clbench versus a plain Avalanche script.

Both processes train ``avalanche.naive`` (Avalanche's Naive, its own training loop) with the same MLP
(two hidden layers of 128, ReLU), Adam at lr 1e-3, batches of 32, the same epochs, on the very same
shifting-linear tensors, one torch thread each, and both measure forgetting:

- clbench: ``clbench run --strategy avalanche.naive -q ...`` (builds the stream itself, evaluates
  every task's test split before training and after each task with its batched ``predict``, writes
  the record);
- plain: a script a user would write to get forgetting: ``strategy.train(exp)`` then
  ``strategy.eval(test_stream)`` after each experience, with ``accuracy_metrics`` and
  ``forgetting_metrics`` and no loggers, reading the stream from a ``.pt`` file written beforehand.

Wall times include interpreter start and imports. Prints each time and the ratio clbench / plain
(target: at most 1.0). Usage::

    python benchmarks/avalanche_overhead.py [--tasks 20] [--train-size 1000] [--test-size 1000]
                                            [--epochs 5] [--repeats 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PLAIN_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from torch import nn
    from avalanche.benchmarks import tensors_benchmark
    from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.supervised import Naive

    torch.set_num_threads(1)
    path, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    data = torch.load(path)  # {"train": [(x, y), ...], "test": [(x, y), ...]}
    torch.manual_seed(seed)
    benchmark = tensors_benchmark(
        [list(t) for t in data["train"]], [list(t) for t in data["test"]], task_labels=[0] * len(data["train"])
    )
    width, n_classes = data["train"][0][0].shape[1], int(data["n_classes"])
    model = nn.Sequential(nn.Linear(width, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, n_classes))
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True), forgetting_metrics(experience=True, stream=True), loggers=[]
    )
    strategy = Naive(
        model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), criterion=nn.CrossEntropyLoss(),
        train_mb_size=32, train_epochs=epochs, eval_mb_size=1024, device="cpu", evaluator=evaluator,
    )
    for experience in benchmark.train_stream:
        strategy.train(experience)
        results = strategy.eval(benchmark.test_stream)
    print("stream accuracy", results["Top1_Acc_Stream/eval_phase/test_stream/Task000"])
    print("stream forgetting", results["StreamForgetting/eval_phase/test_stream"])
    """
)


def clbench_command(args: argparse.Namespace, results: str) -> list[str]:
    """The clbench run, as a user types it."""
    exe = Path(sys.executable).with_name("clbench")
    sets = [
        f"benchmark.n_tasks={args.tasks}",
        f"benchmark.train_size={args.train_size}",
        f"benchmark.test_size={args.test_size}",
        f"train.epochs={args.epochs}",
        "train.batch_size=32",
        "train.lr=0.001",
    ]
    cmd = [str(exe), "run", "--strategy", "avalanche.naive", "-q", "--seed", str(args.seed), "--results", results]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def write_stream(args: argparse.Namespace, path: str) -> None:
    """Save clbench's shifting-linear tensors for the plain script (not timed)."""
    import torch

    from clbench.streams.shifting_linear import ShiftingLinearOptions, generate

    opts = ShiftingLinearOptions(n_tasks=args.tasks, train_size=args.train_size, test_size=args.test_size)
    stream = generate(opts, seed=args.seed)
    torch.save(
        {
            "train": [(t.train_x, t.train_y) for t in stream.tasks],
            "test": [(t.test_x, t.test_y) for t in stream.tasks],
            "n_classes": stream.n_classes,
        },
        path,
    )


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of one subprocess (which must succeed) and its last output line."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return wall, (lines[0] if lines else "")


def main() -> None:
    """Run both processes ``--repeats`` times, alternating, and print the times and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    times: dict[str, list[float]] = {"clbench": [], "plain": []}
    with tempfile.TemporaryDirectory(prefix="clbench-overhead-") as tmp:
        data = os.path.join(tmp, "stream.pt")
        script = os.path.join(tmp, "plain_avalanche.py")
        Path(script).write_text(PLAIN_SCRIPT)
        write_stream(args, data)
        for r in range(args.repeats):
            order = ["clbench", "plain"] if r % 2 == 0 else ["plain", "clbench"]
            for which in order:
                if which == "clbench":
                    cmd = clbench_command(args, os.path.join(tmp, f"results-{r}"))
                else:
                    cmd = [sys.executable, script, data, str(args.epochs), str(args.seed)]
                wall, first = timed(cmd, env)
                times[which].append(wall)
                print(f"{which:8s} run {r}: {wall:7.2f} s   {first}", flush=True)
    c, p = statistics.median(times["clbench"]), statistics.median(times["plain"])
    size = f"{args.tasks} tasks x {args.train_size} train / {args.test_size} test, {args.epochs} epochs"
    print(f"stream: shifting-linear, {size}")
    print(f"median wall: clbench {c:.2f} s, plain Avalanche {p:.2f} s; ratio clbench/plain = {c / p:.3f}")


if __name__ == "__main__":
    main()
