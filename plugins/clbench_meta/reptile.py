"""Reptile (Nichol et al. 2018) and Meta-Experience Replay (MER, Riemer et al. 2019) as update rules.

One :meth:`Reptile.step` per training batch. The current batch [n] and the replay batch [m] are
pooled, shuffled with the run's generator and split into ``inner_steps`` successive batches
(:meth:`Reptile.inner_batches`); every inner step is one step of the run's optimiser
(``train.optimizer``, ``train.lr``, clipping) on one batch. Then:

- ``mode=reptile``: ``theta <- theta + epsilon * (theta' - theta)``, theta' the weights after the
  inner steps. With one inner step and ``epsilon = 1`` this is exactly meta-learner ``none``.
- ``mode=mer``: each of the batches is itself taken in ``mer_steps_per_batch`` steps on successive
  slices, followed by a within-batch interpolation with ``beta``; after all batches, an across-batch
  interpolation with ``gamma`` from the weights at the start of the step (Riemer et al. 2019,
  Algorithm 1, with slices of a batch instead of single samples).

Replay samples are weighted by their importance weights, when the buffer gives any. Per-sample
losses reported for priorities are those of each inner batch's forward (at the weights that batch
was trained from), so they cost nothing extra.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.components import ReplayBatch, ReplayBuffer, StepResult
from clbench.training import build_optimizer, optimizer_step, pooled, weighted_mean
from clbench_meta.common import MetaBase


class Reptile(MetaBase):
    """Reptile / MER over the current and replay batches; see the module doc."""

    name = "reptile"

    def __init__(
        self,
        *,
        inner_steps: int = 2,
        epsilon: float = 0.5,
        mode: str = "reptile",
        mer_beta: float = 0.5,
        mer_gamma: float = 1.0,
        mer_steps_per_batch: int = 2,
        eval_adapt_steps: int = 0,
        eval_support_size: int = 32,
    ):
        super().__init__(eval_adapt_steps, eval_support_size)
        if mode not in ("reptile", "mer"):
            raise ValueError(f"unknown mode {mode!r}")
        self.inner_steps, self.epsilon, self.mode = inner_steps, epsilon, mode
        self.mer_beta, self.mer_gamma, self.mer_steps_per_batch = mer_beta, mer_gamma, mer_steps_per_batch

    def bind(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, train: Any) -> None:
        """Attach; the bound optimiser takes the inner steps."""
        super().bind(model, optimizer, train)
        self.params = [p for p in model.parameters() if p.requires_grad]

    def inner_batches(
        self, x: torch.Tensor, y: torch.Tensor, replay_batch: ReplayBatch | None, generator: torch.Generator
    ) -> list[torch.Tensor]:
        """Positions into the pooled batch ``cat(x, replay_batch.x)`` [n + m, ...]: a random
        permutation split into ``inner_steps`` successive batches (fewer if there are fewer samples)."""
        total = x.shape[0] + (len(replay_batch) if replay_batch is not None else 0)
        order = torch.randperm(total, generator=generator)
        return list(torch.tensor_split(order, min(self.inner_steps, total)))

    def _snapshot(self) -> list[torch.Tensor]:
        """Copies of the trainable parameters."""
        return [p.detach().clone() for p in self.params]

    def _interpolate(self, start: list[torch.Tensor], rate: float) -> None:
        """``theta <- start + rate * (theta - start)`` in place."""
        with torch.no_grad():
            for p, p0 in zip(self.params, start):
                p.copy_(torch.lerp(p0, p, rate))

    def _inner_step(self, xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor | None) -> torch.Tensor:
        """One step of the bound optimiser on ``xb`` [k, ...]; returns per-sample losses [k] (detached)."""
        losses = self.per_sample_loss(self.model(xb), yb)  # [k]
        optimizer_step(self.model, self.optimizer, weighted_mean(losses, wb), self.train.clip)
        return losses.detach()

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        task: int,
        replay: ReplayBuffer | None,
        replay_batch: ReplayBatch | None,
        generator: torch.Generator,
    ) -> StepResult:
        """Inner steps on the pooled current + replay batch, then the Reptile / MER interpolation."""
        n = x.shape[0]
        xa, ya, wa = pooled(x, y, replay_batch)  # [n + m, ...], [n + m], [n + m] or None
        losses = torch.empty(xa.shape[0], device=xa.device)  # [n + m], filled batch by batch
        start = self._snapshot()
        for idx in self.inner_batches(x, y, replay_batch, generator):
            if self.mode == "reptile":
                losses[idx] = self._inner_step(xa[idx], ya[idx], None if wa is None else wa[idx])
                continue
            batch_start = self._snapshot()
            for sub in torch.tensor_split(idx, min(self.mer_steps_per_batch, idx.numel())):
                losses[sub] = self._inner_step(xa[sub], ya[sub], None if wa is None else wa[sub])
            self._interpolate(batch_start, self.mer_beta)  # within-batch Reptile
        self._interpolate(start, self.epsilon if self.mode == "reptile" else self.mer_gamma)
        mean = float(weighted_mean(losses, wa))
        return StepResult(mean, losses[:n], losses[n:] if replay_batch is not None else None)

    def _adapt_copy(self, clone: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        """``eval_adapt_steps`` steps of a fresh run optimiser on ``x`` [s, ...], ``y`` [s]."""
        optimizer = build_optimizer(clone.parameters(), self.train)
        for _ in range(self.eval_adapt_steps):
            loss = self.per_sample_loss(clone(x), y).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def _describe(self) -> dict[str, Any]:
        return {"inner_steps": self.inner_steps, "epsilon": self.epsilon, "mode": self.mode, **super()._describe()}
