"""A progress bar on the terminal, as a lifecycle-hook plugin (only used when stderr is a TTY)."""

from __future__ import annotations

from typing import Any

from clbench import hookimpl


class ProgressPlugin:
    """Shows one bar over all epochs of all tasks, with the current task and loss."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._bar: Any = None
        self._epochs = 1
        self._done_in_task = 0

    @hookimpl
    def clbench_run_start(self, context: Any) -> None:
        """Open the bar: T tasks x epochs."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._epochs = context.train.epochs
        total = len(context.stream.tasks) * self._epochs
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} epochs"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()
        self._bar = self._progress.add_task(f"run {context.run_id}", total=total)

    @hookimpl
    def clbench_task_start(self, context: Any, task_index: int) -> None:
        """Name the task being trained."""
        self._done_in_task = 0
        if self._progress is not None:
            self._progress.update(self._bar, description=f"task {task_index + 1}/{len(context.stream.tasks)}")

    @hookimpl
    def clbench_epoch_end(self, context: Any, task_index: int, epoch: int, loss: float) -> None:
        """Advance by one epoch."""
        self._done_in_task += 1
        if self._progress is not None:
            self._progress.update(
                self._bar, advance=1, description=f"task {task_index + 1}/{len(context.stream.tasks)} loss {loss:.3f}"
            )

    @hookimpl
    def clbench_task_end(self, context: Any, task_index: int, train_seconds: float) -> None:
        """Complete the task's share (strategies with their own loop report no epochs)."""
        if self._progress is not None and self._done_in_task < self._epochs:
            self._progress.update(self._bar, advance=self._epochs - self._done_in_task)

    def close(self) -> None:
        """Remove the bar from the terminal."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
