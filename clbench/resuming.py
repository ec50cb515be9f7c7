"""A run's progress and its checkpoints: what the harness saves after each task and how a run
started again picks up from it (the file format is :mod:`clbench.checkpoints`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clbench.checkpoints import Checkpoint, CheckpointError, load_checkpoint, restore_rng, rng_state, save_checkpoint
from clbench.errors import describe_error

if TYPE_CHECKING:  # pragma: no cover
    from clbench.components import Learner
    from clbench.harness import RunContext


@dataclass
class Progress:
    """What a run has computed so far: what a checkpoint saves and a resumed run starts from.

    ``adapted_init`` and ``adapted_rows`` hold the accuracies after test-time adaptation, when the
    learner adapts; ``train_stats`` one entry per trained task.
    """

    tasks_done: int = 0
    adapted_init: list[float] | None = None
    adapted_rows: list[list[float]] = field(default_factory=list)
    train_stats: list[Any] = field(default_factory=list)


def save_run_checkpoint(ctx: RunContext, progress: Progress, timings: dict[str, Any]) -> None:
    """Save the checkpoint after the task just done. One that cannot be written (a full disk, a
    folder made read-only) does not cost the run: it is noted once in ``hook_errors`` (which
    ``clbench run`` shows as a warning), and the run goes on without checkpoints."""
    assert ctx.checkpoint is not None
    t0 = time.perf_counter()
    try:
        save_checkpoint(ctx.checkpoint, checkpoint_of(ctx, progress, timings))
    except OSError as exc:
        error = f"could not save the checkpoint {ctx.checkpoint}: {exc.strerror or exc}; the run goes on without"
        ctx.hook_errors.append({"plugin": "clbench", "hook": "checkpoint", "error": error})
        ctx.checkpoint = None
        return
    timings.setdefault("checkpoint_s", []).append(time.perf_counter() - t0)


def checkpoint_of(ctx: RunContext, progress: Progress, timings: dict[str, Any]) -> Checkpoint:
    """The checkpoint of a run after ``progress.tasks_done`` tasks: results so far, learner, generator."""
    assert ctx.learner is not None
    return Checkpoint(
        run_id=ctx.run_id,
        tasks_done=progress.tasks_done,
        progress={
            "accuracy_matrix": ctx.accuracy_matrix,
            "init_accuracy": ctx.init_accuracy,
            "adapted_init": progress.adapted_init,
            "adapted_rows": progress.adapted_rows,
            "train_stats": progress.train_stats,
            "timings": {**timings, "elapsed_s": elapsed(ctx, timings)},
            "extras": ctx.extras,
            "hook_errors": ctx.hook_errors,
        },
        learner=ctx.learner.state_dict(),
        rng=rng_state(ctx.generator),
    )


def elapsed(ctx: RunContext, timings: dict[str, Any]) -> float:
    """Seconds this run has taken so far, the time before any resumption included."""
    return float(timings.get("elapsed_before_s", 0.0)) + (time.perf_counter() - ctx.t_start)


def resume(ctx: RunContext, timings: dict[str, Any], progress: Progress, rebuild: Callable[[], Learner]) -> str | None:
    """Load the run's checkpoint, when there is one, into the freshly built learner and the run's
    state; returns a one-line note of what happened (resumed, or why the checkpoint was not used),
    or None when there was no checkpoint. ``rebuild()`` gives a fresh learner when loading the
    saved state into this one failed half-way."""
    assert ctx.learner is not None and ctx.checkpoint is not None
    try:
        # loaded to the CPU: generator states must stay CPU tensors; the model, the optimiser and the
        # replay storage copy their tensors to the run's device as they load them
        saved = load_checkpoint(ctx.checkpoint, ctx.run_id)
    except CheckpointError as exc:
        return f"checkpoint not used ({exc}); the run starts from the first task"
    if saved is None:
        return None
    if not ctx.learner.resumable:
        return f"{type(ctx.learner).__name__} cannot resume from a checkpoint; the run starts again from the first task"
    state = saved.progress
    try:
        ctx.learner.load_state_dict(saved.learner)
    except Exception as exc:  # noqa: BLE001 - e.g. written by an incompatible version of a plugin
        ctx.learner = rebuild()  # a learner untouched by the failed load
        return f"checkpoint not used ({describe_error(exc)}); the run starts from the first task"
    restore_rng(saved.rng, ctx.generator)
    ctx.accuracy_matrix = [list(map(float, row)) for row in state["accuracy_matrix"]]
    ctx.init_accuracy = list(map(float, state["init_accuracy"]))
    ctx.extras.update(state["extras"])
    ctx.hook_errors.extend(state["hook_errors"])
    progress.tasks_done = ctx.resumed_from = saved.tasks_done
    progress.adapted_init = state["adapted_init"]
    progress.adapted_rows = state["adapted_rows"]
    progress.train_stats = state["train_stats"]
    before = dict(state["timings"])
    kept = ("train_s", "eval_s", "init_eval_s", "checkpoint_s", "resumed_after_task")
    timings.update({k: before[k] for k in kept if k in before})
    timings["elapsed_before_s"] = float(before.get("elapsed_s", 0.0))
    timings["resumed_after_task"] = [*timings.get("resumed_after_task", []), saved.tasks_done - 1]
    return (
        f"resumed from the checkpoint after task {saved.tasks_done} of {len(ctx.stream.tasks) if ctx.stream else '?'}"
    )
