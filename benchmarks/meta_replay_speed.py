"""Speed of the meta-learners and replay buffers (clbench issue 3).

Part 1 - the cost of one training step of ``maml``, ``fomaml`` and ``reptile`` relative to a plain
step (meta ``none``), on the same model (``mlp`` with its default options: 32 -> 128 -> 128 -> 5 on
the default shifting-linear shapes), the same current batch (32 samples, the default
``train.batch_size``), the default Adam optimiser, ``torch.set_num_threads(1)``.

"One step" is everything the training loop does per batch except adding the batch to the buffer:
the loop's replay draw (when there is a buffer), ``meta.step`` (forward and backward passes, inner
loop, internal replay draws, priority refresh, optimiser step) and the loop's priority update.

- Without replay every learner sees the same 32 samples: plain = one Adam step on 32; maml /
  fomaml with M=1 = one inner step on 16 support samples, query loss on the other 16, one Adam
  step; reptile = two Adam steps on 16 + 16 samples, then the interpolation.
- With a reservoir buffer holding 4 earlier tasks (default settings): plain = one Adam step on
  32 current + 32 replay samples; maml / fomaml with the default M=4 = the current task plus 3
  tasks of 32 replay samples each (128 samples, 4 inner problems); reptile = 2 Adam steps on the
  shuffled 64 samples.

Times are thread CPU time (``time.thread_time``), so other processes on the machine disturb them
little; configurations are interleaved round by round and the best round counts.

Part 2 - add / sample cost of each buffer at capacity 10,000 once full (after 20,000 samples of
20 tasks): ``add`` of a batch of 32 with losses, ``sample(32)`` and ``sample(32, task=t)`` (a task's
slots are found by a scan of the storage that is cached until the next write: "cached" is a draw in
a later epoch, "after add" the first draw after an add, as in a task's first epoch).

Run: ``python benchmarks/meta_replay_speed.py [--rounds 10] [--steps 40]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

from clbench.components import BuildContext
from clbench.config import TrainConfig
from clbench.plugins import make_plugin_host
from clbench.training import build_optimizer

TARGETS = {"maml": 4.5, "fomaml": 2.2}


def build(registry: Any, kind: str, name: str, **options: Any) -> Any:
    """A registered component's factory and validated options."""
    comp = registry.get(kind, name)
    return comp.factory, comp.options(**options)


def stream_tasks(registry: Any, n_tasks: int) -> Any:
    """The default shifting-linear stream, ``n_tasks`` tasks."""
    factory, opts = build(registry, "benchmarks", "shifting-linear", n_tasks=n_tasks)
    return factory(opts, BuildContext(seed=0, train=TrainConfig()))


def step_runner(registry: Any, stream: Any, meta_name: str, replay_name: str, meta_opts: dict) -> Callable[[], None]:
    """A closure doing one training-loop step (see the module doc) on a fixed current batch."""
    train = TrainConfig()
    torch.manual_seed(0)
    mf, mo = build(registry, "models", "mlp")
    ctx = BuildContext(seed=0, train=train, stream=stream)
    model = mf(mo, ctx)
    meta_f, meta_o = build(registry, "meta", meta_name, **meta_opts)
    meta = meta_f(meta_o, ctx)
    rf, ro = build(registry, "replay", replay_name)
    replay = rf(ro, ctx)
    if replay is not None:
        for task in stream.tasks[:-1]:
            for start in range(0, task.train_x.shape[0], 32):
                replay.add(task.train_x[start : start + 32], task.train_y[start : start + 32], task.id, torch.rand(32))
    meta.check_compatible(replay)
    meta.bind(model, build_optimizer(model.parameters(), train), train)
    current = stream.tasks[-1]
    x, y = current.train_x[:32], current.train_y[:32]
    g = torch.Generator().manual_seed(0)

    def one() -> None:
        rb = replay.sample(replay.batch_size, g) if replay is not None and len(replay) else None
        result = meta.step(x, y, current.id, replay, rb, g)
        if rb is not None and result.replay_loss is not None:
            replay.update_priorities(rb.index, result.replay_loss)

    return one


def time_steps(runners: dict[str, Callable[[], None]], rounds: int, steps: int) -> dict[str, float]:
    """Best-round seconds per step of each runner (thread CPU time), rounds interleaved."""
    for run in runners.values():
        for _ in range(10):
            run()
    best = {name: float("inf") for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            t0 = time.thread_time()
            for _ in range(steps):
                run()
            best[name] = min(best[name], (time.thread_time() - t0) / steps)
    return best


def step_costs(registry: Any, rounds: int, steps: int) -> None:
    """Print part 1."""
    stream = stream_tasks(registry, 5)
    groups = {
        "no replay: every learner sees the same 32 samples": (
            "none",
            {
                "none (plain)": ("none", {}),
                "maml   M=1": ("maml", {"meta_batch": 1}),
                "fomaml M=1": ("fomaml", {"meta_batch": 1}),
                "reptile (K=2)": ("reptile", {}),
            },
        ),
        "reservoir replay, 4 earlier tasks held": (
            "reservoir",
            {
                "none (plain), 32 + 32 replay": ("none", {}),
                "maml   M=4 (default), 4 x 32": ("maml", {}),
                "fomaml M=4 (default), 4 x 32": ("fomaml", {}),
                "maml   M=1 (buffer unused)": ("maml", {"meta_batch": 1}),
                "fomaml M=1 (buffer unused)": ("fomaml", {"meta_batch": 1}),
                "reptile (K=2), 32 + 32 replay": ("reptile", {}),
            },
        ),
    }
    print("Part 1: one training step relative to a plain step (mlp 32-128-128-5, batch 32, Adam, 1 thread)")
    for title, (replay, rows) in groups.items():
        runners = {label: step_runner(registry, stream, m, replay, o) for label, (m, o) in rows.items()}
        best = time_steps(runners, rounds, steps)
        base = best[next(iter(rows))]
        print(f"\n  {title}")
        print(f"  {'step':34s} {'us/step':>9s} {'x plain':>8s}  target")
        for label, (meta, _) in rows.items():
            target = TARGETS.get(meta)
            note = f"<= {target}x {'ok' if best[label] / base <= target else 'MISSED'}" if target else ""
            print(f"  {label:34s} {best[label] * 1e6:9.0f} {best[label] / base:8.2f}  {note}")


def time_buffer(buf: Any, x: torch.Tensor, y: torch.Tensor, repeats: int) -> dict[str, float]:
    """Best-of-5 seconds per call of add, sample, sample by task, and sample by task right after an
    (untimed) add."""
    g = torch.Generator().manual_seed(0)
    loss = torch.rand(x.shape[0])

    def by_task() -> Any:
        return buf.sample(32, g, task=int(torch.randint(20, (1,), generator=g)))

    ops = {"add": lambda: buf.add(x, y, 19, loss), "sample": lambda: buf.sample(32, g), "task": by_task}
    best = {k: float("inf") for k in (*ops, "task after add")}
    for _ in range(5):
        for k, op in ops.items():
            t0 = time.thread_time()
            for _ in range(repeats):
                op()
            best[k] = min(best[k], (time.thread_time() - t0) / repeats)
        spent = 0.0
        for _ in range(repeats):
            buf.add(x, y, 19, loss)
            t0 = time.thread_time()
            by_task()
            spent += time.thread_time() - t0
        best["task after add"] = min(best["task after add"], spent / repeats)
    return best


def buffer_costs(registry: Any, repeats: int) -> None:
    """Print part 2."""
    stream = stream_tasks(registry, 20)
    train = TrainConfig()
    print("\nPart 2: buffer cost at capacity 10,000, full (20,000 samples of 20 tasks offered), batches of 32")
    print(f"  {'':16s} {'add':>8s} {'add':>14s} {'sample':>10s} {'sample task=t':>15s} {'sample task=t':>15s}")
    print(f"  {'buffer':16s} {'us':>8s} {'samples/s':>14s} {'us':>10s} {'cached, us':>15s} {'after add, us':>15s}")
    for name in ("fifo", "reservoir", "prioritized", "class-balanced"):
        factory, opts = build(registry, "replay", name, seed=0)
        buf = factory(opts, BuildContext(seed=0, train=train, stream=stream))
        for task in stream.tasks:
            for s in range(0, task.train_x.shape[0], 32):
                buf.add(task.train_x[s : s + 32], task.train_y[s : s + 32], task.id, torch.rand(32))
        assert len(buf) == buf.capacity
        best = time_buffer(buf, stream.tasks[0].train_x[:32], stream.tasks[0].train_y[:32], repeats)
        print(
            f"  {name:16s} {best['add'] * 1e6:8.1f} {32 / best['add']:14,.0f} {best['sample'] * 1e6:10.1f} "
            f"{best['task'] * 1e6:15.1f} {best['task after add'] * 1e6:15.1f}"
        )


def main() -> None:
    """Parse the arguments and print both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="interleaved timing rounds (best counts)")
    parser.add_argument("--steps", type=int, default=40, help="steps per round and configuration")
    parser.add_argument("--buffer-repeats", type=int, default=200, help="calls per timing of a buffer operation")
    args = parser.parse_args()
    torch.set_num_threads(1)
    registry = make_plugin_host().registry
    print(f"torch {torch.__version__}, timing: thread CPU time, best of {args.rounds} interleaved rounds\n")
    step_costs(registry, args.rounds, args.steps)
    buffer_costs(registry, args.buffer_repeats)


if __name__ == "__main__":
    main()
