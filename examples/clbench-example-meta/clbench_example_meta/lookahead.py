"""Lookahead (Zhang, Lucas, Hinton and Ba 2019) as a clbench update rule.

The run's optimiser (``train.optimizer``, ``train.lr``, clipping) moves the *fast* weights, one
step per training batch, on the current batch and the replay batch together (replayed samples
weighted by the buffer's importance weights, when it gives any). Every ``sync_every`` steps the
*slow* weights move a fraction ``alpha`` of the way to the fast ones, and the fast weights start
again from there:

    slow <- slow + alpha * (fast - slow);    fast <- slow

With ``alpha = 1`` the slow weights simply follow the fast ones: the rule is then exactly
meta-learner ``none`` (one plain step per batch). The slow weights and the step count carry over
from one batch, and one task, to the next: they are this meta-learner's state in checkpoints.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.components import MetaLearner, ReplayBatch, ReplayBuffer, StepResult
from clbench.training import optimizer_step, pooled, weighted_mean


class Lookahead(MetaLearner):
    """Lookahead around the bound optimiser; see the module doc.

    ``extras``, when given, is the run's ``build.extras``: the step and synchronisation counts are
    kept in ``extras[extras_key]`` (saved in the record).
    """

    def __init__(
        self,
        sync_every: int = 5,
        alpha: float = 0.5,
        extras: dict[str, Any] | None = None,
        extras_key: str = "example.lookahead",
    ):
        if sync_every < 1 or not 0 < alpha <= 1:
            raise ValueError("sync_every must be >= 1 and alpha in (0, 1]")
        self.sync_every, self.alpha = int(sync_every), float(alpha)
        self.extras, self.extras_key = extras, extras_key
        self.steps = 0
        self.slow: list[torch.Tensor] = []

    def bind(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, train: Any) -> None:
        """Attach to the model and the run's optimiser (called once, before training); the slow
        weights start as copies of the model's trainable parameters."""
        super().bind(model, optimizer, train)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.slow = [p.detach().clone() for p in self.params]

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        task: int,
        replay: ReplayBuffer | None,
        replay_batch: ReplayBatch | None,
        generator: torch.Generator,
    ) -> StepResult:
        """One optimiser step on the current batch ``x`` [n, ...], ``y`` [n] and ``replay_batch``
        [m] together; every ``sync_every`` steps, the Lookahead synchronisation.

        Losses come from :meth:`per_sample_loss` (the stream's criterion: masked to each sample's
        task classes in the task scenario). Returns the (weighted) mean loss and the detached
        per-sample losses: ``current_loss`` [n] (what the learner adds to the buffer with the
        samples) and ``replay_loss`` [m] (what it refreshes the replayed samples' priorities with).
        """
        n = x.shape[0]
        xb, yb, wb = pooled(x, y, replay_batch)  # [n + m, ...], [n + m], weights [n + m] or None
        losses = self.per_sample_loss(self.model(xb), yb)  # [n + m]
        loss = weighted_mean(losses, wb)
        optimizer_step(self.model, self.optimizer, loss, self.train.clip)
        self.steps += 1
        if self.steps % self.sync_every == 0:
            self._synchronise()
        self._publish()
        detached = losses.detach()
        return StepResult(float(loss.detach()), detached[:n], detached[n:] if replay_batch is not None else None)

    def _synchronise(self) -> None:
        """``slow <- slow + alpha * (fast - slow)``, then ``fast <- slow``, parameter by parameter
        (``torch.lerp``, which gives ``fast`` exactly for ``alpha = 1``)."""
        with torch.no_grad():
            for fast, slow in zip(self.params, self.slow):
                slow.lerp_(fast, self.alpha)
                fast.copy_(slow)

    def state_dict(self) -> dict[str, Any]:
        """The slow weights and the step count (the learner saves the model and the optimiser)."""
        return {"slow": [s.clone() for s in self.slow], "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the saved tensors (loaded on the CPU) are copied into the
        slow weights, which live where the model does."""
        if len(state["slow"]) != len(self.slow):
            raise ValueError("the state holds slow weights of another model")
        for slow, saved in zip(self.slow, state["slow"]):
            slow.copy_(saved)
        self.steps = int(state["steps"])
        self._publish()

    def _publish(self) -> None:
        if self.extras is not None:
            self.extras[self.extras_key] = {"steps": self.steps, "syncs": self.steps // self.sync_every}

    def __repr__(self) -> str:
        return f"Lookahead(sync_every={self.sync_every}, alpha={self.alpha})"
