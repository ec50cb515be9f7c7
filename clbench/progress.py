"""A progress bar on the terminal, as a lifecycle-hook plugin (only used when stderr is a TTY).

Its time-remaining estimate comes from the recent epochs, not from the average since the start:
epochs of a replay run slow down as the buffer fills (the recipe's from about 9 s to about 17 s),
so an average over the whole run so far underestimates what is left by a large factor.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from clbench import hookimpl

#: Epochs the time-remaining estimate looks back over.
RECENT_EPOCHS = 5


def estimate_remaining(durations: list[float] | deque[float], remaining: int) -> float | None:
    """Seconds left for ``remaining`` epochs: the mean duration of the latest epochs (the last
    :data:`RECENT_EPOCHS` of ``durations``) times ``remaining``; None without data.

    Replayed over the timings of the recipe's full-length records (``benchmarks/eta_accuracy.py``),
    this was off by 26% on average against 30% for the average since the start, and did not gain
    from a fitted trend (26% with 5 epochs; 51% with a trend over 10)."""
    recent = list(durations)[-RECENT_EPOCHS:]
    if not recent:
        return None
    return sum(recent) / len(recent) * max(remaining, 0)


def format_seconds(seconds: float | None) -> str:
    """``H:MM:SS`` (``-:--:--`` when unknown)."""
    if seconds is None:
        return "-:--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class ProgressPlugin:
    """Shows one bar over all epochs of all tasks, with the current task, loss and time left.

    The time left is the training time of the epochs left (:func:`estimate_remaining` over the
    latest epochs' training time) plus the evaluation time of the tasks left (the mean of the
    latest evaluations).
    """

    def __init__(self) -> None:
        self._progress: Any = None
        self._bar: Any = None
        self._epochs = 1
        self._tasks = 1
        self._done = 0
        self._done_in_task = 0
        self._untimed = 0  # epochs reported after the task (a strategy's), timed at its end
        self._epoch_s: deque[float] = deque(maxlen=RECENT_EPOCHS)
        self._eval_s: deque[float] = deque(maxlen=3)
        self._last: float | None = None
        self._eval_start: float | None = None

    @hookimpl
    def clbench_run_start(self, context: Any) -> None:
        """Open the bar: T tasks x epochs (those done before a resumption counted as done)."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._epochs, self._tasks = context.train.epochs, len(context.stream.tasks)
        self._done = context.resumed_from * self._epochs
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} epochs"),
            TimeElapsedColumn(),
            TextColumn("eta {task.fields[eta]}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()
        self._bar = self._progress.add_task(
            f"run {context.run_id}", total=self._tasks * self._epochs, completed=self._done, eta=format_seconds(None)
        )

    @hookimpl
    def clbench_task_start(self, context: Any, task_index: int) -> None:
        """Name the task being trained; its first epoch is timed from here."""
        self._done_in_task = self._untimed = 0
        self._last = time.perf_counter()
        if self._progress is not None:
            self._progress.update(self._bar, description=f"task {task_index + 1}/{self._tasks}")

    @hookimpl
    def clbench_epoch_end(self, context: Any, task_index: int, epoch: int, loss: float) -> None:
        """Advance by one epoch; re-estimate the time left. The epochs of a learner that reports
        them only after the task (a strategy) are counted here and timed at the task's end."""
        live = getattr(context.learner, "reports_epochs", True)
        if live:
            now = time.perf_counter()
            if self._last is not None:
                self._epoch_s.append(now - self._last)
            self._last = now
        else:
            self._untimed += 1
        self._done_in_task += 1
        self._advance(1, f"task {task_index + 1}/{self._tasks} loss {loss:.3f}")

    @hookimpl
    def clbench_task_end(self, context: Any, task_index: int, train_seconds: float) -> None:
        """Complete the task's share (epochs nobody reported, as for a strategy that returns no
        losses or a joint task it skipped, get the task's training time spread over them); the
        evaluation starts."""
        missing = max(0, self._epochs - self._done_in_task)
        untimed = missing + self._untimed
        if untimed:  # the task's training time, spread over the epochs nobody timed
            self._epoch_s.extend([train_seconds / max(self._epochs, self._done_in_task)] * untimed)
        if missing:
            self._advance(missing, None)
        self._untimed = 0
        self._eval_start = time.perf_counter()

    @hookimpl
    def clbench_evaluation_done(self, context: Any, after_task: int, accuracies: list[float]) -> None:
        """Time the evaluation after a task."""
        if after_task >= 0 and self._eval_start is not None:
            self._eval_s.append(time.perf_counter() - self._eval_start)
            self._eval_start = None

    def remaining_seconds(self) -> float | None:
        """The estimate shown: training of the epochs left plus evaluation of the tasks left."""
        train = estimate_remaining(self._epoch_s, self._tasks * self._epochs - self._done)
        if train is None:
            return None
        tasks_left = self._tasks - self._done // self._epochs
        evaluation = sum(self._eval_s) / len(self._eval_s) * tasks_left if self._eval_s else 0.0
        return train + evaluation

    def _advance(self, epochs: int, description: str | None) -> None:
        self._done += epochs
        if self._progress is not None:
            fields: dict[str, Any] = {"advance": epochs, "eta": format_seconds(self.remaining_seconds())}
            if description is not None:
                fields["description"] = description
            self._progress.update(self._bar, **fields)

    def close(self) -> None:
        """Remove the bar from the terminal."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
