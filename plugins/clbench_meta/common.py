"""What the meta-learners share: compatibility checks, weighted losses, test-time adaptation."""

from __future__ import annotations

import copy
from typing import Any

import torch

from clbench.components import MetaLearner, ReplayBuffer, Task
from clbench.errors import UserError
from clbench.training import clip_grads, weighted_mean

__all__ = ["MetaBase", "clip_grads", "support_size", "weighted_mean"]


def support_size(n: int, fraction: float) -> int:
    """Samples of a batch of ``n`` that go to the support set; the rest is the query set.

    At least one of each when ``n >= 2``; a batch of one sample is both (returns 1).
    """
    if n < 2:
        return 1
    return min(n - 1, max(1, round(n * fraction)))


class MetaBase(MetaLearner):
    """Base of the built-in meta-learners.

    ``eval_adapt_steps`` > 0 turns on test-time adaptation: :meth:`adapt_for_eval` fine-tunes a copy
    of the model on ``eval_support_size`` training samples of the task with :meth:`_adapt_copy`.
    """

    name = "meta"

    def __init__(self, eval_adapt_steps: int = 0, eval_support_size: int = 32):
        self.eval_adapt_steps, self.eval_support_size = eval_adapt_steps, eval_support_size

    def check_compatible(self, replay: ReplayBuffer | None) -> None:
        """Reject a replay object that is not a :class:`ReplayBuffer` with a positive int
        ``batch_size`` (the replay batches and per-task draws need one)."""
        if replay is None:
            return
        if not isinstance(replay, ReplayBuffer):
            raise UserError(f"meta {self.name!r} needs a clbench ReplayBuffer, got {type(replay).__name__}")
        size = getattr(replay, "batch_size", None)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise UserError(f"meta {self.name!r} needs a replay buffer with a positive int batch_size, got {size!r}")

    def adapt_for_eval(self, task: Task, generator: torch.Generator) -> torch.nn.Module | None:
        """A copy of the model adapted on ``eval_support_size`` random training samples of ``task``
        with ``eval_adapt_steps`` inner steps; None when ``eval_adapt_steps`` is 0."""
        if self.eval_adapt_steps <= 0:
            return None
        n = task.train_x.shape[0]
        pick = torch.randperm(n, generator=generator)[: min(n, self.eval_support_size)]
        x, y = task.train_x[pick], task.train_y[pick]  # [s, ...], [s]
        was_training = self.model.training
        clone = copy.deepcopy(self.model)
        with torch.inference_mode(False), torch.enable_grad():
            clone.train()
            self._adapt_copy(clone, x, y)
        clone.train(was_training)
        return clone

    def _adapt_copy(self, clone: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        """Fine-tune ``clone`` in place on ``x`` [s, ...], ``y`` [s]; subclasses define how."""
        raise NotImplementedError

    def _describe(self) -> dict[str, Any]:
        """Settings worth showing in a repr."""
        return {"eval_adapt_steps": self.eval_adapt_steps}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._describe().items())
        return f"{type(self).__name__}({args})"
