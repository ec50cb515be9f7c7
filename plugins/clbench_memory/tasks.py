"""Algorithmic tasks for checking that a memory model learns: the copy task (Graves et al. 2014)."""

from __future__ import annotations

import torch


def copy_batch(
    batch: int, length: int, bits: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of copy sequences: ``length`` random bit vectors, a delimiter, then ``length`` blanks.

    Inputs have ``bits + 1`` channels (the last one carries only the delimiter); the model must
    output the bit vectors during the blank steps. Returns ``x`` [B, 2L + 1, bits + 1], ``target``
    [B, 2L + 1, bits] (zero outside the recall steps) and ``mask`` [2L + 1] (True on recall steps).
    """
    steps = 2 * length + 1
    pattern = torch.randint(0, 2, (batch, length, bits), generator=generator).float()  # [B, L, bits]
    x = torch.zeros(batch, steps, bits + 1)
    x[:, :length, :bits] = pattern
    x[:, length, bits] = 1.0  # delimiter
    target = torch.zeros(batch, steps, bits)
    target[:, length + 1 :] = pattern
    mask = torch.zeros(steps, dtype=torch.bool)
    mask[length + 1 :] = True
    return x, target, mask


def copy_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the recall steps: ``logits``, ``target`` [B, T, bits], ``mask`` [T]."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logits[:, mask], target[:, mask])


def wrong_bits(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean number of wrong bits per sequence (threshold 0.5) over the recall steps."""
    wrong = ((logits[:, mask] > 0) != (target[:, mask] > 0.5)).float()  # [B, L, bits]
    return wrong.sum(dim=(1, 2)).mean().item()
