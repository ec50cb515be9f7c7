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
from typing import TYPE_CHECKING, Any

from clbench import __version__
from clbench.components import BuildContext, Learner, PrefersEvalBatchSize, TaskStream, derive_seed
from clbench.config import ResolvedConfig
from clbench.errors import NonFiniteLoss, UserError
from clbench.interrupts import reraise_interrupt
from clbench.metrics import CONVENTIONS, compute_all
from clbench.plugins import PluginHost
from clbench.records import SCHEMA_VERSION, MalformedRecord, save_record, strict_json

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from clbench.config import TrainConfig


@dataclass
class RunContext:
    """What lifecycle hooks see of a run.

    ``stream`` and ``learner`` are set once built (None before, and when building failed);
    ``generator`` is the run's torch generator (data order, replay draws). ``extras`` is saved in
    the record: hooks may add JSON-serialisable data under their own key.
    """

    config: ResolvedConfig
    run_id: str
    host: PluginHost
    stream: TaskStream | None = None
    learner: Learner | None = None
    generator: torch.Generator | None = None
    accuracy_matrix: list[list[float]] = field(default_factory=list)
    init_accuracy: list[float] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    hook_errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def train(self) -> TrainConfig:
        """The run's :class:`clbench.config.TrainConfig`."""
        return self.config.train

    def build_context(self) -> BuildContext:
        """The :class:`~clbench.components.BuildContext` handed to factories: the seed, the train
        settings, the stream once built, a model builder and this run's ``extras``."""
        return BuildContext(
            seed=self.config.seed,
            train=self.config.train,
            stream=self.stream,
            make_model=self.build_model if self.stream is not None else None,
            extras=self.extras,
            generator=self.generator if self.stream is not None else None,
        )

    def build_model(self) -> Any:
        """Build the configured model for this run's stream."""
        comp = self.config.components["model"]
        return comp.factory(self.config.options["model"], self.build_context())

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


def build_stream(ctx: RunContext) -> TaskStream:
    """The run's task stream, from its benchmark; checked for consistent shapes."""
    bench = ctx.config.components["benchmark"]
    stream = bench.factory(ctx.config.options["benchmark"], ctx.build_context())
    _check_stream(stream, bench.name)
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
    return ComposedLearner(model, meta, replay, cfg.train, ctx.generator, on_epoch_end=epoch_hook)


def eval_batch_size(ctx: RunContext) -> int:
    """``train.eval_batch_size``, else the model's preference (:class:`PrefersEvalBatchSize`), else 1024.

    Memory models are faster in small batches (their per-sample state stays in cache)."""
    if ctx.config.train.eval_batch_size:
        return ctx.config.train.eval_batch_size
    model = ctx.learner.model if ctx.learner is not None else None
    if isinstance(model, PrefersEvalBatchSize) and model.eval_batch_size:
        return int(model.eval_batch_size)
    return 1024


#: Salt of the generator that test-time adaptation draws from (see :func:`evaluate_all`).
ADAPT_SALT_ROW = 1_009


def evaluate_all(ctx: RunContext, row: int) -> tuple[list[float], list[float] | None]:
    """Test accuracy on every task of the stream, in order; and the adapted accuracies, when the
    learner adapts at test time (else None). ``row`` is -1 at init, else the task just trained."""
    import torch

    from clbench.training import accuracy

    learner, stream = ctx.learner, ctx.stream
    assert learner is not None and stream is not None
    bs = eval_batch_size(ctx)
    plain: list[float] = []
    adapted: list[float] = []
    for index, task in enumerate(stream.tasks):
        plain.append(accuracy(learner.predict, task.test_x, task.test_y, bs))
        # adaptation draws from its own generator, so plain results do not depend on it
        g = torch.Generator().manual_seed(derive_seed(ctx.config.seed, (row + 1) * ADAPT_SALT_ROW + index))
        predictor = learner.adapted_predictor(index, stream, g)
        if predictor is not None:
            adapted.append(accuracy(predictor, task.test_x, task.test_y, bs))
    return plain, (adapted if adapted else None)


def new_record(config: ResolvedConfig, host: PluginHost, threads: int, started: _dt.datetime) -> dict[str, Any]:
    """The record of a run that is starting: status ``running``, no results yet."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": config.run_id,
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


def train_and_evaluate(ctx: RunContext, record: dict[str, Any], timings: dict[str, Any]) -> None:
    """The loop: evaluate at init, then per task train, evaluate every task, notify the hooks; fill
    the record's results (accuracy matrices, metrics, train statistics) and set it ``ok``."""
    assert ctx.learner is not None and ctx.stream is not None
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

    started = _dt.datetime.now(_dt.timezone.utc)
    t_start = time.perf_counter()
    ctx = RunContext(config=config, run_id=config.run_id, host=host, extras=dict(extras or {}))
    record = new_record(config, host, threads, started)
    # start_unix: when the run started, to the microsecond (started_at is for people)
    timings: dict[str, Any] = {"start_unix": started.timestamp(), "train_s": [], "eval_s": []}
    torch.set_num_threads(threads)
    ctx.generator = torch.Generator().manual_seed(config.seed)
    for phase in ("build", "run"):
        t0 = time.perf_counter()
        try:
            if phase == "build":
                ctx.stream = build_stream(ctx)
                ctx.learner = build_learner(ctx)
                timings["build_s"] = time.perf_counter() - t0
            else:
                train_and_evaluate(ctx, record, timings)
        except UserError:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit from a plugin too: only the user's interrupt stops a run
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
    except MalformedRecord as exc:
        return RunResult(record, None, str(exc), write_failed=True)
    return RunResult(record, saved.path, saved.note)
