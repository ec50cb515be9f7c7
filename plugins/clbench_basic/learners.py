"""The plain update rule and the joint-training reference learner."""

from __future__ import annotations

from typing import Any

import torch

from clbench.components import BuildContext, Learner, MetaLearner, ReplayBatch, ReplayBuffer, StepResult, TaskStream
from clbench.inputs import concat
from clbench.training import (
    EpochDecay,
    batches,
    build_optimizer,
    optimizer_step,
    pooled,
    weighted_mean,
)


class PlainStep(MetaLearner):
    """Meta-learner ``none``: one optimiser step on the current batch and the replay batch together.

    The replay samples' losses are weighted by their importance weights when the buffer gives any.
    """

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        task: int,
        replay: ReplayBuffer | None,
        replay_batch: ReplayBatch | None,
        generator: torch.Generator,
    ) -> StepResult:
        """Forward the concatenated batch [n + m, ...], backward the (weighted) mean loss, step."""
        n = x.shape[0]
        xb, yb, wb = pooled(x, y, replay_batch)  # [n + m, ...], [n + m], [n + m] or None
        losses = self.per_sample_loss(self.model(xb), yb)
        loss = weighted_mean(losses, wb)
        optimizer_step(self.model, self.optimizer, loss, self.train.clip)
        detached = losses.detach()
        return StepResult(float(loss.detach()), detached[:n], detached[n:] if replay_batch is not None else None)


#: Salt of the joint model's per-task initialisation seed (plus the task index).
JOINT_INIT_SALT = 0x101_7000


class JointLearner(Learner):
    """The offline upper bound: sees the data of every task so far at once.

    ``mode="retrain"``: after task i, a freshly initialised model is trained on tasks 0..i together
    (so every row of R is an offline reference). ``mode="final"``: nothing is trained until the last
    task, then one model is trained on the whole stream; earlier rows of R are the untrained model.
    """

    def __init__(self, context: BuildContext, mode: str = "retrain"):
        self.ctx, self.mode = context, mode
        self.train = context.train
        self.model = context.build_model()
        self.criterion = context.criterion()

    def train_task(self, task_index: int, stream: TaskStream) -> dict[str, Any]:
        """Train a fresh model on tasks 0..task_index (or skip, in ``final`` mode before the end)."""
        if self.mode == "final" and task_index < len(stream.tasks) - 1:
            return {"skipped": True}
        torch.manual_seed(self.ctx.derive_seed(JOINT_INIT_SALT + task_index))  # a fresh init per task
        self.model = self.ctx.build_model()
        x_all = concat([t.train_x for t in stream.tasks[: task_index + 1]])  # [N, ...], lazy inputs stay lazy
        y_all = torch.cat([t.train_y for t in stream.tasks[: task_index + 1]])  # [N]
        optimizer = build_optimizer(self.model.parameters(), self.train)
        schedule = EpochDecay(optimizer, self.train)
        g, bs, n = self.ctx.generator, self.train.batch_size, x_all.shape[0]
        assert g is not None
        self.model.train()
        losses = []
        for _ in range(self.train.epochs):
            total, count = 0.0, 0
            for idx in batches(n, bs, g):
                loss = self.criterion(self.model(x_all[idx]), y_all[idx]).mean()
                optimizer_step(self.model, optimizer, loss, self.train.clip)
                total, count = total + float(loss.detach()), count + 1
            losses.append(total / count)
            schedule.epoch_done()
        return {"loss": losses, "samples": n}

    def state_dict(self) -> dict[str, Any]:
        """The current joint model (each task retrains a fresh one, so nothing else carries over)."""
        return {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the joint model of :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the current joint model: [n, ...] -> [n, C]."""
        self.model.eval()
        return self.model(x)
