"""The hooks of the example plugin ``example-hooks``: a per-task timeline of every run.

Lifecycle hooks (observers, called one by one; one that raises is recorded in the record's
``hook_errors`` and the run goes on) fill ``context.extras["timeline"]``, which the harness saves
in the record, and in each per-task checkpoint, so that a resumed run carries it on::

    {"tasks": [{"task": 0, "name": "...", "epoch_loss": [...], "train_s": 0.21, "wall_s": 0.25,
                "accuracy": 0.97, "mean_seen_accuracy": 0.97}, ...],
     "init_mean_accuracy": 0.2, "resumed_at": [], "status": "ok"}

``epoch_loss`` is filled by ``clbench_epoch_end``: the composed learner (model x meta-learner x
replay) emits it as each epoch ends; for a strategy the harness emits it after the task's training,
from the per-epoch losses the strategy returns. ``wall_s`` runs from the start of a
task's training to the end of its evaluation, as measured in this process.

The module imports nothing heavy: the command and the report section are imported inside their hooks.
"""

from __future__ import annotations

import time
from typing import Any

from clbench import hookimpl

#: The record's ``extras`` key this plugin writes.
KEY = "timeline"
#: ``time.perf_counter()`` at the start of the current task, per run id: per-process state that
#: must not go into the record (a resumed run starts a new clock).
_STARTED: dict[str, float] = {}


def _timeline(context: Any) -> dict[str, Any]:
    """The run's timeline in ``context.extras``, created on first use. ``setdefault``, never a plain
    assignment: a resumed run arrives with the timeline of its earlier tasks already restored."""
    return context.extras.setdefault(KEY, {"tasks": [], "resumed_at": []})


def _entry(context: Any, task_index: int) -> dict[str, Any]:
    """The timeline entry of task ``task_index`` (the last one), created if missing."""
    tasks = _timeline(context)["tasks"]
    if not tasks or tasks[-1]["task"] != task_index:
        tasks.append({"task": task_index, "epoch_loss": []})
    return tasks[-1]


@hookimpl
def clbench_run_start(context: Any) -> None:
    """The stream and the learner are built (and, when resuming, restored): note a resumption."""
    timeline = _timeline(context)
    if context.resumed_from:
        timeline["resumed_at"].append(int(context.resumed_from))


@hookimpl
def clbench_task_start(context: Any, task_index: int) -> None:
    """Start the task's clock and its entry."""
    _STARTED[context.run_id] = time.perf_counter()
    entry = _entry(context, task_index)
    entry["name"] = context.stream.tasks[task_index].name


@hookimpl
def clbench_epoch_end(context: Any, task_index: int, epoch: int, loss: float) -> None:
    """Append the epoch's mean training loss (composed learners only)."""
    _entry(context, task_index)["epoch_loss"].append(round(float(loss), 6))


@hookimpl
def clbench_task_end(context: Any, task_index: int, train_seconds: float) -> None:
    """Note the training time the harness measured."""
    _entry(context, task_index)["train_s"] = round(float(train_seconds), 4)


@hookimpl
def clbench_evaluation_done(context: Any, after_task: int, accuracies: list[float]) -> None:
    """After the evaluation at init (``after_task == -1``), note the mean accuracy; after a task,
    its own accuracy, the mean over the tasks seen so far and the task's wall time."""
    if after_task < 0:
        _timeline(context)["init_mean_accuracy"] = round(sum(accuracies) / len(accuracies), 6)
        return
    entry = _entry(context, after_task)
    seen = accuracies[: after_task + 1]
    entry["accuracy"] = round(float(accuracies[after_task]), 6)
    entry["mean_seen_accuracy"] = round(sum(seen) / len(seen), 6)
    started = _STARTED.pop(context.run_id, None)
    if started is not None:
        entry["wall_s"] = round(time.perf_counter() - started, 4)


@hookimpl
def clbench_run_end(context: Any, record: dict[str, Any]) -> None:
    """Note how the run ended. ``record`` is a copy: what this plugin keeps goes in ``context.extras``.
    A run whose build failed ends without having started: there may be no timeline to finish."""
    _STARTED.pop(context.run_id, None)
    timeline = context.extras.get(KEY)
    if timeline is not None:
        timeline["status"] = record["status"]


@hookimpl
def clbench_register_commands(cli: Any) -> None:
    """Add ``clbench timeline``."""
    from clbench_example_hooks.command import timeline_command

    cli.add_command(timeline_command)


@hookimpl
def clbench_report_tables(report: Any) -> list[Any]:
    """One section for ``clbench report``: time and accuracy per task, per configuration."""
    from clbench_example_hooks.section import timeline_table

    table = timeline_table(report)
    return [table] if table is not None else []
