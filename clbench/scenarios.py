"""The three incremental-learning scenarios, and the task-id masking of the task scenario.

- ``task`` (task-incremental): the task id is known, in training and at test time; a model's
  logits are restricted to the classes of the sample's task (a multi-head output: one shared
  layer over all classes, masked per task, as in GEM, A-GEM and ER).
- ``class`` (class-incremental): one head over every class seen; no task id.
- ``domain`` (domain-incremental): every task has the same label set (e.g. permuted MNIST's
  ten digits); one head, no task id.

A stream declares its scenario in :attr:`TaskStream.scenario` and, for ``task``, each task's
classes in :attr:`Task.classes` (disjoint across tasks). Training masks by the *label*: a sample's
label names its task's classes, so the masked loss needs no task id and every meta-learner,
replay buffer and strategy stays unchanged; evaluation masks by the task being evaluated.

Torch is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from clbench.components import Task, TaskStream

SCENARIOS = ("task", "class", "domain")

#: A per-sample loss: ``criterion(logits [n, C], y [n]) -> losses [n]``.
Criterion = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def check_stream(stream: TaskStream) -> None:
    """Raise ``ValueError`` when a stream's scenario is unknown or, for ``task``, a task has no
    classes, classes outside ``0..n_classes-1``, or classes shared with another task."""
    if stream.scenario is None:
        return
    if stream.scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {stream.scenario!r}; allowed: {', '.join(SCENARIOS)}")
    if stream.scenario != "task":
        return
    seen: dict[int, int] = {}
    for task in stream.tasks:
        if not task.classes:
            raise ValueError(f"task scenario: task {task.id} declares no classes to mask the logits to")
        for c in task.classes:
            if not 0 <= c < stream.n_classes:
                raise ValueError(f"task scenario: task {task.id} has class {c} outside 0..{stream.n_classes - 1}")
            if seen.setdefault(c, task.id) != task.id:
                raise ValueError(f"task scenario: class {c} belongs to tasks {seen[c]} and {task.id}")


def allowed_by_label(stream: TaskStream) -> torch.Tensor | None:
    """For the task scenario, ``allowed`` [C, C] bool: row ``y`` marks the classes of the task that
    label ``y`` belongs to (labels of no task keep every class); None for the other scenarios."""
    import torch

    if stream.scenario != "task":
        return None
    C = stream.n_classes
    allowed = torch.ones(C, C, dtype=torch.bool)
    for task in stream.tasks:
        classes = torch.tensor(sorted(task.classes or ()), dtype=torch.long)
        row = torch.zeros(C, dtype=torch.bool)
        row[classes] = True
        allowed[classes] = row
    return allowed


class TaskMaskedLoss:
    """Cross-entropy per sample over the logits of the sample's task only:
    ``logits`` [n, C], ``y`` [n] -> [n]. Logits of other tasks' classes are set to -inf first.

    Works under ``torch.func.vmap`` and double backward (MAML); the mask follows the logits' device."""

    def __init__(self, allowed: torch.Tensor):
        self.allowed = allowed  # [C, C] bool
        self._on: dict[str, torch.Tensor] = {str(allowed.device): allowed}

    def _mask(self, device: torch.device) -> torch.Tensor:
        key = str(device)
        if key not in self._on:
            self._on[key] = self.allowed.to(device)
        return self._on[key]

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        keep = self._mask(logits.device)[y]  # [n, C]
        return F.cross_entropy(logits.masked_fill(~keep, float("-inf")), y, reduction="none")

    def __repr__(self) -> str:
        return f"TaskMaskedLoss(classes={self.allowed.shape[0]})"


def criterion_for(stream: TaskStream | None) -> Criterion:
    """The per-sample loss a learner trains ``stream`` with: :class:`TaskMaskedLoss` in the task
    scenario, plain cross-entropy otherwise."""
    from clbench.training import per_sample_loss

    allowed = allowed_by_label(stream) if stream is not None else None
    return per_sample_loss if allowed is None else TaskMaskedLoss(allowed)


def eval_mask(stream: TaskStream, task: Task) -> Any:
    """What evaluating ``task`` restricts the logits to: its classes in the task scenario (the task
    id is known at test time), else None."""
    if stream.scenario == "task" and task.classes:
        return tuple(task.classes)
    return None
