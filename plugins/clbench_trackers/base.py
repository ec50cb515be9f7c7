"""What every tracker logs, on clbench's lifecycle hooks; each tracker only says how to write it.

Per run: the configuration as parameters (the canonical config flattened to ``section.key``, plus
the run id, the seed and the settings such as ``train.device``), the mean training loss of every
epoch (``train/loss`` against the epoch counted over the stream), every row of the accuracy matrix
as it is evaluated (``accuracy/task_JJ`` and ``accuracy/mean_seen`` against the number of tasks
trained, 0 being the evaluation at init), the final metrics (``metrics/NAME``, and
``adapted_metrics/NAME`` after test-time adaptation), and the report's figures for the run (the
accuracy matrix heatmap; memory traces when the traces plugin recorded them) as images.
"""

from __future__ import annotations

import math
from typing import Any

from clbench import hookimpl
from clbench.loggers import flat_params, run_title

#: Tags of the scalars, shared by every tracker (the TensorBoard screenshot and the tests read them).
LOSS_TAG = "train/loss"
ACCURACY_TAG = "accuracy/task_{:02d}"
MEAN_SEEN_TAG = "accuracy/mean_seen"


def run_params(context: Any) -> dict[str, Any]:
    """The run's parameters: its canonical config flattened, the settings, the run id and label."""
    params = flat_params(context.config.canonical())
    for section, values in context.config.settings().items():
        for key, value in values.items():
            params[f"{section}.{key}"] = value
    params["run_id"] = context.run_id
    params["title"] = run_title(context)
    return params


def png_images(context: Any, record: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    """The report's figures for this one run, as ``(file name, title, PNG bytes)``: the core's (the
    accuracy matrix) and those plugins add (memory traces). ``record`` is the finished record;
    the extras that plugins put in ``context.extras`` are added to it, as the written record has them."""
    from pathlib import Path

    from clbench.report.content import build_report
    from clbench.report.figures import make_figures
    from clbench.report.loading import Loaded

    full = dict(record)
    full["extras"] = dict(context.extras)
    report = build_report(Loaded(folder=context.results_dir or Path("."), records=[full]))
    return [(f.name, f.title, f.png) for f in make_figures(report, context.host)]


def finite(value: Any) -> bool:
    """True for a real, finite number (trackers reject None and NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class TrackerLogger:
    """A logger (see :mod:`clbench.loggers`) that writes to one tracker. Subclasses implement
    :meth:`log_params`, :meth:`log_scalars`, :meth:`log_image` and :meth:`finish`."""

    def __init__(self, context: Any):
        self.epochs = context.train.epochs

    # --- what a tracker implements ---------------------------------------------------------

    def log_params(self, params: dict[str, Any]) -> None:
        """Record the run's parameters (once, when the run starts)."""
        raise NotImplementedError

    def log_scalars(self, values: dict[str, float], step: int, axis: str) -> None:
        """Record scalars at ``step`` of ``axis`` (``epoch`` or ``task``)."""
        raise NotImplementedError

    def log_image(self, name: str, title: str, png: bytes) -> None:
        """Record one figure (PNG bytes)."""
        raise NotImplementedError

    def log_final(self, metrics: dict[str, float], step: int, status: str) -> None:
        """Record the final metrics of the run (``status`` ok) or its end (failed), at ``step``
        (the number of tasks trained, where the last accuracy row is)."""
        raise NotImplementedError

    def finish(self, status: str) -> None:
        """Close the tracker's run with ``status`` (ok, failed, interrupted)."""
        raise NotImplementedError

    # --- lifecycle hooks --------------------------------------------------------------------

    @hookimpl
    def clbench_run_start(self, context: Any) -> None:
        """Log the configuration as parameters."""
        self.log_params(run_params(context))

    @hookimpl
    def clbench_epoch_end(self, context: Any, task_index: int, epoch: int, loss: float) -> None:
        """Log an epoch's mean training loss; the step is the epoch counted over the stream (1-based)."""
        if finite(loss):
            self.log_scalars({LOSS_TAG: float(loss)}, task_index * self.epochs + epoch + 1, "epoch")

    @hookimpl
    def clbench_evaluation_done(self, context: Any, after_task: int, accuracies: list[float]) -> None:
        """Log one row of the accuracy matrix; the step is the number of tasks trained (0: at init)."""
        values = {ACCURACY_TAG.format(j): float(a) for j, a in enumerate(accuracies) if finite(a)}
        seen = [a for a in accuracies[: after_task + 1] if finite(a)]
        if seen:
            values[MEAN_SEEN_TAG] = sum(seen) / len(seen)
        self.log_scalars(values, after_task + 1, "task")

    @hookimpl(trylast=True)  # after the other plugins' run_end: the traces are recorded by then
    def clbench_run_end(self, context: Any, record: dict[str, Any]) -> None:
        """Log the final metrics and the run's figures."""
        metrics = {f"metrics/{k}": float(v) for k, v in (record.get("metrics") or {}).items() if finite(v)}
        adapted = record.get("adapted_metrics") or {}
        metrics.update({f"adapted_metrics/{k}": float(v) for k, v in adapted.items() if finite(v)})
        self.log_final(metrics, len(record.get("accuracy_matrix") or []), record["status"])
        if record["status"] == "ok":
            for name, title, png in png_images(context, record):
                self.log_image(name, title, png)

    def close(self, status: str) -> None:
        """The run ended (the harness calls this once, whatever the status)."""
        self.finish(status)
