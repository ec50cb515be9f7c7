"""Reading a sample as a sequence: the adapter between clbench's [batch, *input_shape] inputs and
sequence models that map [batch, steps, features] to per-step outputs."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def step_features(input_shape: tuple[int, ...], steps: int) -> int:
    """Features per step when a sample of ``input_shape`` is read in ``steps`` steps (rounded up)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return max(1, math.ceil(math.prod(input_shape) / steps))


class SequenceClassifier(nn.Module):
    """Flattens a sample, splits its features into ``steps`` steps, runs ``core`` and returns the
    last step's output as the class logits.

    An image [C, H, W] is read row by row: it is flattened in (row, channel, column) order, so with
    ``steps = H`` (the image streams' default) step r holds row r of every channel [C * W].

    If the feature count is not divisible by ``steps``, the end of the sequence is zero-padded.
    ``core`` maps [B, steps, features] to [B, steps, n_classes] and starts from a fixed state on
    every call, so each sample is classified on its own.
    """

    def __init__(
        self,
        core: nn.Module,
        input_shape: tuple[int, ...],
        steps: int,
        eval_batch_size: int | None = None,
        samples_to_trace: int = 0,
    ):
        """``core`` must take ``step_features(input_shape, steps)`` features per step.

        ``eval_batch_size``: the batch size this model evaluates fastest in, read by clbench's
        harness when ``train.eval_batch_size`` is not set (None: no preference; the model is a
        :class:`clbench.components.PrefersEvalBatchSize`). ``samples_to_trace``: test samples per
        task whose memory traces a lifecycle plugin may record (the model is a
        :class:`clbench.components.Traceable`; 0 = none).
        """
        super().__init__()
        self.core = core
        self.input_shape = tuple(int(d) for d in input_shape)
        self.steps = int(steps)
        self.features = step_features(self.input_shape, self.steps)
        self.eval_batch_size = eval_batch_size
        self.samples_to_trace = int(samples_to_trace)

    def extra_repr(self) -> str:
        """Shapes for ``print(model)``."""
        return f"input_shape={self.input_shape}, steps={self.steps}, features_per_step={self.features}"

    def to_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, *input_shape] -> [B, steps, features], zero-padding the end; images [B, C, H, W]
        are read row by row ([B, H, C, W] flattened)."""
        if x.dim() == 4:
            x = x.movedim(2, 1)  # [B, H, C, W]: a step of H/steps rows holds every channel of them
        flat = x.reshape(x.shape[0], -1)  # [B, F]
        pad = self.steps * self.features - flat.shape[1]
        if pad:
            flat = torch.nn.functional.pad(flat, (0, pad))
        return flat.view(x.shape[0], self.steps, self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, *input_shape] -> logits [B, n_classes] (the core's output at the last step)."""
        return self.core(self.to_sequence(x))[:, -1]

    def trace(self, x: torch.Tensor) -> dict[str, Any]:
        """The core's memory traces for x [B, *input_shape] (cores with a ``trace`` method: DNC, NTM).

        Raises ``TypeError`` for cores without memory (lstm, transformer).
        """
        trace = getattr(type(self.core), "trace", None)
        if trace is None:
            raise TypeError(f"{type(self.core).__name__} has no memory trace")
        return trace(self.core, self.to_sequence(x))
