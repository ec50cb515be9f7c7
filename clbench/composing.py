"""Composing a run: its task stream (from the benchmark) and its learner (a strategy, or model x
meta-learner x replay), built from the run's resolved config in :class:`clbench.harness.RunContext`.

Before the benchmark builds its stream, torch's, numpy's and Python's global generators are seeded
with the run seed; before the learner is built, torch's again (model initialisation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clbench.components import Learner, TaskStream
from clbench.scenarios import check_stream as check_scenario

if TYPE_CHECKING:  # pragma: no cover
    from clbench.harness import RunContext


def _check_stream(stream: Any, name: str) -> None:
    """A :class:`ValueError` naming benchmark ``name`` when ``stream`` has no tasks, x and y of
    different lengths, inputs of another shape than it declares, or an inconsistent scenario."""
    if not getattr(stream, "tasks", None):
        raise ValueError(f"benchmark {name!r} produced no tasks")
    for task in stream.tasks:
        if task.train_x.shape[0] != task.train_y.shape[0] or task.test_x.shape[0] != task.test_y.shape[0]:
            raise ValueError(f"benchmark {name!r}: task {task.id} has x and y of different lengths")
        if tuple(task.train_x.shape[1:]) != tuple(stream.input_shape):
            raise ValueError(f"benchmark {name!r}: task {task.id} inputs are not of shape {stream.input_shape}")
    try:
        check_scenario(stream)
    except ValueError as exc:
        raise ValueError(f"benchmark {name!r}: {exc}") from None


def seed_global_generators(seed: int) -> None:
    """Seed torch's, numpy's and Python's global generators with ``seed`` (0 to 2**32-1).

    Called before the benchmark builds its stream, so that a stream drawn from a global
    generator does not depend on the process's history (a sweep worker runs many runs)."""
    import random

    import numpy as np
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def build_stream(ctx: RunContext) -> TaskStream:
    """The run's task stream, from its benchmark; checked for consistent shapes. The global
    generators are seeded with the run seed first (:func:`seed_global_generators`)."""
    bench = ctx.config.components["benchmark"]
    seed_global_generators(ctx.config.seed)
    stream = bench.factory(ctx.config.options["benchmark"], ctx.build_context())
    _check_stream(stream, bench.name)
    if ctx.device is not None and ctx.device.type != "cpu":  # once, not per batch
        for task in stream.tasks:
            task.train_x, task.train_y = task.train_x.to(ctx.device), task.train_y.to(ctx.device)
            task.test_x, task.test_y = task.test_x.to(ctx.device), task.test_y.to(ctx.device)
    return stream


def build_learner(ctx: RunContext) -> Learner:
    """The learner of a run: the strategy when one is named, else model x meta x replay."""
    import torch

    from clbench.training import ComposedLearner

    cfg = ctx.config
    torch.manual_seed(cfg.seed)  # model initialisation
    build = ctx.build_context()
    if "strategy" in cfg.components:
        return cfg.components["strategy"].factory(cfg.options["strategy"], build)
    model = ctx.build_model()
    meta = cfg.components["meta"].factory(cfg.options["meta"], build)
    replay = cfg.components["replay"].factory(cfg.options["replay"], build)
    epoch_hook = None
    if ctx.host.has_observers("clbench_epoch_end"):

        def epoch_hook(task_index: int, epoch: int, loss: float) -> None:
            ctx.notify("clbench_epoch_end", task_index=task_index, epoch=epoch, loss=loss)

    assert ctx.generator is not None
    return ComposedLearner(
        model, meta, replay, cfg.train, ctx.generator, on_epoch_end=epoch_hook, criterion=build.criterion()
    )
