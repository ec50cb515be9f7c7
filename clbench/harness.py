"""The harness: builds a run's components, trains task by task, evaluates, and writes the record.

For a stream of T tasks the harness evaluates every task's test split once before training
(``init_accuracy``, for forward transfer) and after training on each task (row i of the accuracy
matrix R). Lifecycle hooks are called around each phase; each phase is timed.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import platform
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clbench import __version__
from clbench.config import ResolvedConfig
from clbench.errors import NonFiniteLoss, UserError
from clbench.interrupts import reraise_interrupt
from clbench.metrics import CONVENTIONS, compute_all
from clbench.plugins import PluginHost
from clbench.records import SCHEMA_VERSION, save_record, strict_json


@dataclass
class RunContext:
    """What lifecycle hooks and strategy factories see of a run.

    ``extras`` is saved in the record: hooks may add JSON-serialisable data under their own key.
    """

    config: ResolvedConfig
    run_id: str
    host: PluginHost
    stream: Any = None
    learner: Any = None
    generator: Any = None
    accuracy_matrix: list[list[float]] = field(default_factory=list)
    init_accuracy: list[float] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    hook_errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def train(self) -> Any:
        """The run's :class:`clbench.config.TrainConfig`."""
        return self.config.train

    def build_model(self) -> Any:
        """Build the configured model for this run's stream (strategies call this)."""
        comp, opts, s = self.config.components["model"], self.config.options["model"], self.stream
        return comp.factory(
            opts, input_shape=tuple(s.input_shape), n_classes=s.n_classes, sequence_steps=s.sequence_steps
        )

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin; failures are collected in ``hook_errors``."""
        self.host.call_observers(hook, self.hook_errors, context=self, **kwargs)


def versions(host: PluginHost) -> dict[str, Any]:
    """Versions worth recording: clbench, torch, python and every loaded plugin."""
    import torch

    return {
        "clbench": __version__,
        "torch": str(torch.__version__),  # a str subclass of torch's: keep records plain
        "python": platform.python_version(),
        "plugins": host.plugin_versions(),
    }


def _check_stream(stream: Any, name: str) -> None:
    if not getattr(stream, "tasks", None):
        raise ValueError(f"benchmark {name!r} produced no tasks")
    for task in stream.tasks:
        if task.train_x.shape[0] != task.train_y.shape[0] or task.test_x.shape[0] != task.test_y.shape[0]:
            raise ValueError(f"benchmark {name!r}: task {task.id} has x and y of different lengths")
        if tuple(task.train_x.shape[1:]) != tuple(stream.input_shape):
            raise ValueError(f"benchmark {name!r}: task {task.id} inputs are not of shape {stream.input_shape}")


def build_learner(ctx: RunContext) -> Any:
    """The learner of a run: the strategy when one is named, else model x meta x replay."""
    import torch

    from clbench.training import ComposedLearner

    cfg, stream = ctx.config, ctx.stream
    torch.manual_seed(cfg.seed)
    if "strategy" in cfg.components:
        comp = cfg.components["strategy"]
        return comp.factory(cfg.options["strategy"], context=ctx)
    model = ctx.build_model()
    meta = cfg.components["meta"].factory(cfg.options["meta"])
    replay = cfg.components["replay"].factory(
        cfg.options["replay"], input_shape=tuple(stream.input_shape), train=cfg.train
    )
    epoch_hook = None
    if ctx.host.pm.hook.clbench_epoch_end.get_hookimpls():

        def epoch_hook(task_index: int, epoch: int, loss: float) -> None:
            ctx.notify("clbench_epoch_end", task_index=task_index, epoch=epoch, loss=loss)

    return ComposedLearner(model, meta, replay, cfg.train, ctx.generator, on_epoch_end=epoch_hook)


def eval_batch_size(ctx: RunContext) -> int:
    """``train.eval_batch_size``, else the model's ``eval_batch_size`` attribute, else 1024.

    Memory models are faster in small batches (their per-sample state stays in cache)."""
    if ctx.config.train.eval_batch_size:
        return ctx.config.train.eval_batch_size
    model = getattr(ctx.learner, "model", None)
    return int(getattr(model, "eval_batch_size", 0) or 1024)


def evaluate_all(ctx: RunContext, row: int) -> tuple[list[float], list[float] | None]:
    """Test accuracy on every task of the stream, in order; and the adapted accuracies, when the
    learner adapts at test time (else None). ``row`` is -1 at init, else the task just trained."""
    import torch

    from clbench.training import accuracy

    learner, stream = ctx.learner, ctx.stream
    bs = eval_batch_size(ctx)
    plain: list[float] = []
    adapted: list[float] = []
    for index, task in enumerate(stream.tasks):
        learner.eval_mode_for(index, stream)
        plain.append(accuracy(learner.predict, task.test_x, task.test_y, bs))
        # adaptation draws from its own generator, so plain results do not depend on it
        g = torch.Generator().manual_seed(ctx.config.seed * 1_000_003 + (row + 1) * 1_009 + index)
        predictor = learner.adapted_predictor(index, stream, g)
        if predictor is not None:
            adapted.append(accuracy(predictor, task.test_x, task.test_y, bs))
    return plain, (adapted if adapted else None)


def execute(
    config: ResolvedConfig,
    host: PluginHost,
    *,
    results: str | Path | None = "results",
    threads: int = 1,
    extras: dict[str, Any] | None = None,
) -> RunResult:
    """Run one configuration and return its record; write it under ``results`` (None: don't).

    Bad input found while composing the run (before training) raises :class:`UserError` and
    writes nothing. An error during the run gives a record with status ``failed`` and the reason;
    a failed record never replaces a complete one already on disk.
    """
    import torch

    run_id = config.run_id
    started = _dt.datetime.now(_dt.timezone.utc)
    t_start = time.perf_counter()
    ctx = RunContext(config=config, run_id=run_id, host=host, extras=dict(extras or {}))
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "status": "running",
        "error": None,
        "config": config.canonical(),
        "seed": config.seed,
        "versions": versions(host),
        "accuracy_matrix": [],
        "init_accuracy": [],
        "metrics": {},
        "metric_conventions": CONVENTIONS,
        "timings": {},
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": None,
        "runtime": {"threads": threads, "platform": platform.platform()},
    }
    # start_unix: when the run started, to the microsecond (started_at is for people)
    timings: dict[str, Any] = {"start_unix": started.timestamp(), "train_s": [], "eval_s": []}
    torch.set_num_threads(threads)
    ctx.generator = torch.Generator().manual_seed(config.seed)

    t0 = time.perf_counter()
    try:
        bench = config.components["benchmark"]
        ctx.stream = bench.factory(config.options["benchmark"], seed=config.seed)
        _check_stream(ctx.stream, bench.name)
        ctx.learner = build_learner(ctx)
    except UserError:
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a plugin too: only the user's interrupt stops a run
        reraise_interrupt(exc)
        return _finish_failed(ctx, record, timings, exc, t_start, results)
    timings["build_s"] = time.perf_counter() - t0

    try:
        ctx.notify("clbench_run_start")
        t0 = time.perf_counter()
        ctx.init_accuracy, adapted_init = evaluate_all(ctx, -1)
        adapted_rows: list[list[float]] = []
        timings["init_eval_s"] = time.perf_counter() - t0
        ctx.notify("clbench_evaluation_done", after_task=-1, accuracies=list(ctx.init_accuracy))
        stats = []
        for i in range(len(ctx.stream.tasks)):
            ctx.notify("clbench_task_start", task_index=i)
            t0 = time.perf_counter()
            stats.append(ctx.learner.train_task(i, ctx.stream))
            check_finite_loss(stats[-1], i)
            train_s = time.perf_counter() - t0
            timings["train_s"].append(train_s)
            ctx.notify("clbench_task_end", task_index=i, train_seconds=train_s)
            t0 = time.perf_counter()
            row, adapted_row = evaluate_all(ctx, i)
            if adapted_row is not None:
                adapted_rows.append(adapted_row)
            timings["eval_s"].append(time.perf_counter() - t0)
            ctx.accuracy_matrix.append(row)
            ctx.notify("clbench_evaluation_done", after_task=i, accuracies=list(row))
        record["train_stats"] = stats
        record["metrics"] = compute_all(ctx.accuracy_matrix, ctx.init_accuracy)
        if adapted_init is not None and len(adapted_rows) == len(ctx.accuracy_matrix):
            record["adapted_init_accuracy"] = adapted_init
            record["adapted_accuracy_matrix"] = adapted_rows
            record["adapted_metrics"] = compute_all(adapted_rows, adapted_init)
        record["status"] = "ok"
    except UserError:
        raise
    except BaseException as exc:  # noqa: BLE001 - contained: reraise_interrupt lets the user's interrupt through
        reraise_interrupt(exc)
        return _finish_failed(ctx, record, timings, exc, t_start, results)
    return _finish(ctx, record, timings, t_start, results)


def check_finite_loss(stats: Any, task_index: int) -> None:
    """Raise :class:`NonFiniteLoss` when a task's training statistics (``{"loss": [per epoch]}``)
    hold a NaN or infinite loss: the run diverged, and its accuracies would be meaningless."""
    losses = stats.get("loss") if isinstance(stats, dict) else None
    for epoch, loss in enumerate(losses or []):
        if isinstance(loss, (int, float)) and not math.isfinite(loss):
            raise NonFiniteLoss(task_index, epoch, float(loss))


def _finish_failed(
    ctx: RunContext, record: dict, timings: dict, exc: BaseException, t_start: float, results: Any
) -> RunResult:
    record["status"] = "failed"
    record["error"] = describe_error(exc)
    record["traceback"] = traceback.format_exc()
    return _finish(ctx, record, timings, t_start, results)


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, on one line."""
    return " ".join(f"{type(exc).__name__}: {exc}".split()) or type(exc).__name__


@dataclass
class RunResult:
    """A finished run: its record, where it was written (None: not written) and why not."""

    record: dict[str, Any]
    path: Path | None
    note: str | None = None
    write_failed: bool = False


def _serialisable_extras(ctx: RunContext) -> dict[str, Any]:
    out = {}
    for key, value in ctx.extras.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError, RecursionError) as exc:
            ctx.hook_errors.append({"plugin": str(key), "hook": "extras", "error": f"not JSON-serialisable: {exc}"})
            continue
        out[key] = strict_json(value)
    return out


def _finish(ctx: RunContext, record: dict, timings: dict, t_start: float, results: Any) -> RunResult:
    record["accuracy_matrix"] = ctx.accuracy_matrix
    record["init_accuracy"] = ctx.init_accuracy
    if ctx.stream is not None:
        record["benchmark_info"] = dict(getattr(ctx.stream, "info", {}) or {})
    # hooks see a copy: a plugin's own data goes under its key in context.extras
    ctx.notify("clbench_run_end", record=copy.deepcopy(record))
    timings["total_s"] = time.perf_counter() - t_start
    record["timings"] = timings
    record["duration_s"] = timings["total_s"]
    record["extras"] = _serialisable_extras(ctx)
    record["hook_errors"] = ctx.hook_errors
    if results is None:
        return RunResult(record, None)
    try:
        saved = save_record(results, record)
    except OSError as exc:  # a full disk, a folder made read-only meanwhile: keep the results on screen
        return RunResult(record, None, f"could not write the record: {exc.strerror or exc}", write_failed=True)
    return RunResult(record, saved.path, saved.note)
