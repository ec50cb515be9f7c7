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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clbench import __version__
from clbench.checkpoints import checkpoint_path
from clbench.components import BuildContext, Learner, PrefersEvalBatchSize, TaskStream, derive_seed
from clbench.composing import build_learner, build_stream
from clbench.config import ResolvedConfig
from clbench.devices import describe_device, resolve_device
from clbench.errors import NonFiniteLoss, UserError, describe_error
from clbench.interrupts import Interrupted, interrupt_in
from clbench.loggers import OpenLoggers, open_loggers
from clbench.metrics import CONVENTIONS, compute_all
from clbench.plugins import PluginHost
from clbench.records import SCHEMA_VERSION, MalformedRecord, save_record, strict_json
from clbench.resuming import Progress, elapsed, resume, save_run_checkpoint
from clbench.scenarios import eval_mask

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
    #: Where this run's checkpoint is saved after each task (None: no checkpoints).
    checkpoint: Path | None = None
    #: Where the run computes (``train.device`` resolved; None: the CPU).
    device: torch.device | None = None
    #: Tasks restored from a checkpoint when the run resumed (0: a fresh run).
    resumed_from: int = 0
    #: ``time.perf_counter()`` when this process started the run.
    t_start: float = field(default_factory=time.perf_counter)
    #: The results folder the run belongs to (loggers write beside the records; None: none).
    results_dir: Path | None = None
    #: The sweep the run is part of (its name; loggers make it one experiment); None for ``clbench run``.
    experiment: str | None = None
    #: The run's label (a sweep variant's), when it has one.
    label: str | None = None
    #: The loggers this run opened (``train.log``).
    loggers: OpenLoggers = field(default_factory=OpenLoggers)

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
            device=self.device,
        )

    def build_model(self) -> Any:
        """Build the configured model for this run's stream, on the run's device."""
        comp = self.config.components["model"]
        model = comp.factory(self.config.options["model"], self.build_context())
        return model.to(self.device) if self.device is not None and self.device.type != "cpu" else model

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin; failures are collected in ``hook_errors``."""
        self.host.call_observers(hook, self.hook_errors, context=self, **kwargs)


def versions(host: PluginHost) -> dict[str, Any]:
    """Versions worth recording: clbench, the commit of its checkout (None when it is not run
    from one, see :mod:`clbench.provenance`), torch, python and every loaded plugin."""
    import torch

    from clbench.provenance import source_commit

    return {
        "clbench": __version__,
        "commit": source_commit(),
        "torch": str(torch.__version__),  # a str subclass of torch's: keep records plain
        "python": platform.python_version(),
        "plugins": host.plugin_versions(),
    }


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
        mask = eval_mask(stream, task)
        plain.append(accuracy(learner.predict, task.test_x, task.test_y, bs, mask))
        # adaptation draws from its own generator, so plain results do not depend on it
        g = torch.Generator().manual_seed(derive_seed(ctx.config.seed, (row + 1) * ADAPT_SALT_ROW + index))
        predictor = learner.adapted_predictor(index, stream, g)
        if predictor is not None:
            adapted.append(accuracy(predictor, task.test_x, task.test_y, bs, mask))
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


def train_and_evaluate(ctx: RunContext, record: dict[str, Any], timings: dict[str, Any], progress: Progress) -> None:
    """The loop: evaluate at init (unless resumed), then per task train, evaluate every task, notify
    the hooks and save a checkpoint; fill the record's results (accuracy matrices, metrics, train
    statistics) and set it ``ok``. A resumed run starts at task ``progress.tasks_done``."""
    assert ctx.learner is not None and ctx.stream is not None
    ctx.notify("clbench_run_start")
    if progress.tasks_done == 0:
        t0 = time.perf_counter()
        ctx.init_accuracy, progress.adapted_init = evaluate_all(ctx, -1)
        timings["init_eval_s"] = time.perf_counter() - t0
        ctx.notify("clbench_evaluation_done", after_task=-1, accuracies=list(ctx.init_accuracy))
    for i in range(progress.tasks_done, len(ctx.stream.tasks)):
        ctx.notify("clbench_task_start", task_index=i)
        t0 = time.perf_counter()
        progress.train_stats.append(ctx.learner.train_task(i, ctx.stream))
        check_finite_loss(progress.train_stats[-1], i)
        train_s = time.perf_counter() - t0
        timings["train_s"].append(train_s)
        if not ctx.learner.reports_epochs:
            report_epochs(ctx, i, progress.train_stats[-1])
        ctx.notify("clbench_task_end", task_index=i, train_seconds=train_s)
        t0 = time.perf_counter()
        row, adapted_row = evaluate_all(ctx, i)
        if adapted_row is not None:
            progress.adapted_rows.append(adapted_row)
        timings["eval_s"].append(time.perf_counter() - t0)
        ctx.accuracy_matrix.append(row)
        progress.tasks_done = i + 1
        ctx.notify("clbench_evaluation_done", after_task=i, accuracies=list(row))
        if ctx.checkpoint is not None and ctx.learner.resumable and i + 1 < len(ctx.stream.tasks):
            save_run_checkpoint(ctx, progress, timings)
    record["train_stats"] = progress.train_stats
    record["metrics"] = compute_all(ctx.accuracy_matrix, ctx.init_accuracy)
    adapted_init = progress.adapted_init
    if adapted_init is not None and len(progress.adapted_rows) == len(ctx.accuracy_matrix):
        record["adapted_init_accuracy"] = adapted_init
        record["adapted_accuracy_matrix"] = progress.adapted_rows
        record["adapted_metrics"] = compute_all(progress.adapted_rows, adapted_init)
    record["status"] = "ok"


def execute(
    config: ResolvedConfig,
    host: PluginHost,
    *,
    results: str | Path | None = "results",
    threads: int = 1,
    extras: dict[str, Any] | None = None,
    checkpoints: str | Path | None = None,
    restart: bool = False,
    keep_checkpoints: bool = False,
    on_note: Callable[[str], None] | None = None,
    results_dir: str | Path | None = None,
    experiment: str | None = None,
    label: str | None = None,
) -> RunResult:
    """Run one configuration and return its record; write it under ``results`` (None: don't).

    With a ``checkpoints`` folder, the run saves a checkpoint after each task and, unless
    ``restart``, resumes from the one it finds there; the checkpoint is removed when the run
    completes unless ``keep_checkpoints``. ``on_note`` receives one-line notes (resumed, or why a
    checkpoint was not used). The loggers named in ``train.log`` are opened first and closed when
    the run ends; they write under ``results_dir`` (default: ``results``), group a sweep's runs
    under ``experiment`` and name runs by ``label`` (see :mod:`clbench.loggers`).

    Bad input found while composing the run (before training) raises :class:`UserError` and
    writes nothing. An error during the run gives a record with status ``failed`` and the reason;
    a failed record never replaces a complete one already on disk. The user's interrupt (SIGINT,
    SIGTERM) gives a record with status ``interrupted`` holding the tasks completed so far (the
    checkpoint stays, to resume from) and is raised again, with ``note`` saying what was kept.
    """
    import torch

    started = _dt.datetime.now(_dt.timezone.utc)
    ctx = RunContext(config=config, run_id=config.run_id, host=host, extras=dict(extras or {}))
    folder = results_dir if results_dir is not None else results
    ctx.results_dir = Path(folder) if folder is not None else None
    ctx.experiment, ctx.label = experiment, label
    ctx.checkpoint = checkpoint_path(checkpoints, config.run_id) if checkpoints is not None else None
    record = new_record(config, host, threads, started)
    # start_unix: when the run started, to the microsecond (started_at is for people)
    timings: dict[str, Any] = {"start_unix": started.timestamp(), "train_s": [], "eval_s": []}
    torch.set_num_threads(threads)
    ctx.generator = torch.Generator().manual_seed(config.seed)
    ctx.device = resolve_device(config.train.device)  # an unavailable device: UserError, before anything runs
    record["runtime"].update(describe_device(ctx.device))
    ctx.loggers = open_loggers(ctx)
    try:
        return _build_and_run(ctx, record, timings, results, restart, keep_checkpoints, on_note)
    finally:
        ctx.loggers.close(ctx, record["status"])  # after a UserError in the build, say: none left otherwise


def _build_and_run(
    ctx: RunContext,
    record: dict[str, Any],
    timings: dict[str, Any],
    results: str | Path | None,
    restart: bool,
    keep_checkpoints: bool,
    on_note: Callable[[str], None] | None,
) -> RunResult:
    """:func:`execute`'s two phases: build the stream and the learner (resuming from a checkpoint),
    then train and evaluate; finish the record however the run ends."""
    progress = Progress()
    for phase in ("build", "run"):
        t0 = time.perf_counter()
        try:
            if phase == "build":
                ctx.stream = build_stream(ctx)
                ctx.learner = build_learner(ctx)
                timings["build_s"] = time.perf_counter() - t0
                if ctx.checkpoint is not None and restart:
                    ctx.checkpoint.unlink(missing_ok=True)
                elif ctx.checkpoint is not None:
                    note = resume(ctx, timings, progress, rebuild=lambda: build_learner(ctx))
                    if note and on_note is not None:
                        on_note(note)
            else:
                train_and_evaluate(ctx, record, timings, progress)
        except UserError:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit from a plugin too: only the user's interrupt stops a run
            found = interrupt_in(exc)
            if found is not None:
                _finish_interrupted(ctx, record, timings, progress, found, results)
                raise found from None
            return _finish_failed(ctx, record, timings, progress, exc, results)
    result = _finish(ctx, record, timings, progress, results)
    if ctx.checkpoint is not None and record["status"] == "ok" and not keep_checkpoints:
        ctx.checkpoint.unlink(missing_ok=True)
    return result


def report_epochs(ctx: RunContext, task_index: int, stats: Any) -> None:
    """Call ``clbench_epoch_end`` for each epoch loss in a task's statistics (``{"loss": [per
    epoch]}``), for learners that do not report epochs as they train (strategies)."""
    losses = stats.get("loss") if isinstance(stats, dict) else None
    if not isinstance(losses, list) or not ctx.host.has_observers("clbench_epoch_end"):
        return
    for epoch, loss in enumerate(losses):
        if isinstance(loss, (int, float)) and not isinstance(loss, bool):
            ctx.notify("clbench_epoch_end", task_index=task_index, epoch=epoch, loss=float(loss))


def check_finite_loss(stats: Any, task_index: int) -> None:
    """Raise :class:`NonFiniteLoss` when a task's training statistics (``{"loss": [per epoch]}``)
    hold a NaN or infinite loss: the run diverged, and its accuracies would be meaningless."""
    losses = stats.get("loss") if isinstance(stats, dict) else None
    for epoch, loss in enumerate(losses or []):
        if isinstance(loss, (int, float)) and not math.isfinite(loss):
            raise NonFiniteLoss(task_index, epoch, float(loss))


def _finish_failed(
    ctx: RunContext, record: dict, timings: dict, progress: Progress, exc: BaseException, results: Any
) -> RunResult:
    record["status"] = "failed"
    record["error"] = describe_error(exc)
    record["traceback"] = traceback.format_exc()
    return _finish(ctx, record, timings, progress, results)


def _finish_interrupted(
    ctx: RunContext, record: dict, timings: dict, progress: Progress, exc: BaseException, results: Any
) -> None:
    """Write the ``interrupted`` record (the tasks completed so far) and set ``exc.note`` to what
    was kept and how to go on."""
    total = len(ctx.stream.tasks) if ctx.stream is not None else 0
    record["status"] = "interrupted"
    record["error"] = f"interrupted by {exc} after {progress.tasks_done} of {total} tasks"
    record["train_stats"] = progress.train_stats
    result = _finish(ctx, record, timings, progress, results, notify=False)
    kept = f"kept {progress.tasks_done} of {total} tasks"
    where = f" in {result.path}" if result.path is not None else ""
    if ctx.checkpoint is not None and ctx.checkpoint.exists():
        then = "; the same command resumes from its last checkpoint"
    elif ctx.learner is not None and not ctx.learner.resumable:
        then = f"; {type(ctx.learner).__name__} cannot resume: the same command starts it again"
    else:
        then = ""
    if isinstance(exc, Interrupted):
        exc.note = f"{kept}{where}{then}"


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


def _finish(
    ctx: RunContext, record: dict, timings: dict, progress: Progress, results: Any, notify: bool = True
) -> RunResult:
    record["accuracy_matrix"] = ctx.accuracy_matrix
    record["init_accuracy"] = ctx.init_accuracy
    if ctx.stream is not None:
        record["benchmark_info"] = dict(getattr(ctx.stream, "info", {}) or {})
        if ctx.stream.scenario is not None:
            record["benchmark_info"].setdefault("scenario", ctx.stream.scenario)
    if notify:  # hooks see a copy: a plugin's own data goes under its key in context.extras
        ctx.notify("clbench_run_end", record=copy.deepcopy(record))
    ctx.loggers.close(ctx, record["status"])  # their errors belong in this record
    timings["total_s"] = elapsed(ctx, timings)
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
