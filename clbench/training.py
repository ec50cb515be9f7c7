"""Training machinery shared by every learner: optimisers, lr schedule, the composed learner.

The composed learner couples a model, a meta-learner (the update rule) and a replay buffer. Its
loop is kept lean on purpose: on a CPU, tiny models are dominated by per-step overhead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from clbench.components import Learner, MetaLearner, ReplayBatch, ReplayBuffer, TaskStream
from clbench.errors import NonFiniteLoss

if TYPE_CHECKING:  # pragma: no cover
    from clbench.config import TrainConfig


def build_optimizer(params: Any, train: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser named by ``train.optimizer`` with its lr, momentum and weight decay."""
    # foreach: one fused update over all tensors; on a CPU torch otherwise takes the per-tensor path
    if train.optimizer == "adam":
        return torch.optim.Adam(params, lr=train.lr, weight_decay=train.weight_decay, foreach=True)
    if train.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay, foreach=True
        )
    raise ValueError(f"unknown optimizer {train.optimizer!r}")


class EpochDecay:
    """Multiplies the optimiser's lr by ``train.lr_decay`` every ``train.lr_decay_every`` epochs.

    Epochs are counted over the whole stream, so the schedule continues across tasks.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, train: TrainConfig):
        self.optimizer, self.gamma, self.every, self.epochs = optimizer, train.lr_decay, train.lr_decay_every, 0

    def epoch_done(self) -> None:
        """Count one finished epoch and decay when due."""
        self.epochs += 1
        if self.every and self.epochs % self.every == 0:
            for group in self.optimizer.param_groups:
                group["lr"] *= self.gamma


def batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """One epoch's mini-batches: a fresh permutation of ``range(n)`` drawn from ``generator``, cut
    into index tensors of ``batch_size`` (the last may be shorter)."""
    order = torch.randperm(n, generator=generator)  # [n]
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def pooled(
    x: torch.Tensor, y: torch.Tensor, replay_batch: ReplayBatch | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The current batch ``x`` [n, ...], ``y`` [n] with the replay batch appended: ``x`` [n + m, ...],
    ``y`` [n + m] and per-sample weights [n + m] (1 for current samples, the buffer's importance
    weights for replayed ones), or None when every weight is 1."""
    if replay_batch is None:
        return x, y, None
    xa, ya = torch.cat([x, replay_batch.x]), torch.cat([y, replay_batch.y])
    if replay_batch.weight is None:
        return xa, ya, None
    return xa, ya, torch.cat([torch.ones(x.shape[0], device=x.device), replay_batch.weight.to(x.device).float()])


def weighted_mean(losses: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``losses`` [n], weighted by ``weight`` [n] (importance weights) when given."""
    if weight is None:
        return losses.mean()
    weight = weight.to(losses.dtype)
    return (losses * weight).sum() / weight.sum()


def clip_grads(model: torch.nn.Module, clip: float | None) -> None:
    """Clip the gradient norm of ``model``'s parameters to ``clip`` (None: do nothing)."""
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)


def optimizer_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float | None
) -> None:
    """One update: clear the gradients, backpropagate the scalar ``loss``, clip, step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_grads(model, clip)
    optimizer.step()


def per_sample_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per sample: ``logits`` [n, C], ``y`` [n] -> [n]."""
    return F.cross_entropy(logits, y, reduction="none")


@torch.inference_mode()
def accuracy(predict: Any, x: Any, y: torch.Tensor, batch_size: int, classes: Any = None) -> float:
    """Fraction of ``x`` [n, ...] (a tensor or lazy inputs) whose argmax logit equals ``y`` [n];
    evaluated in large batches. ``classes``: when given, the argmax is taken over these classes'
    logits only (the task scenario, where the task id is known at test time)."""
    correct = 0
    keep = None
    for start in range(0, x.shape[0], batch_size):
        logits = predict(x[start : start + batch_size])  # [b, C]
        if classes is not None:
            if keep is None:
                keep = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
                keep[list(classes)] = True
            logits = logits.masked_fill(~keep, float("-inf"))
        correct += int((logits.argmax(dim=1) == y[start : start + batch_size]).sum())
    return correct / max(1, x.shape[0])


class ComposedLearner(Learner):
    """Model x meta-learner x replay, trained task by task with mini-batches.

    Each batch: draw a replay batch (when the buffer holds samples), let the meta-learner update
    the model, then (first epoch only, so every sample is offered once) add the batch to the buffer
    with its per-sample loss, and refresh the replayed samples' priorities. ``criterion`` is the
    stream's per-sample loss (:meth:`clbench.components.BuildContext.criterion`), handed to the
    meta-learner; None keeps plain cross-entropy.
    """

    reports_epochs = True  # calls on_epoch_end as each epoch ends

    def __init__(
        self,
        model: torch.nn.Module,
        meta: MetaLearner,
        replay: ReplayBuffer | None,
        train: TrainConfig,
        generator: torch.Generator,
        on_epoch_end: Any = None,
        criterion: Any = None,
    ):
        self.model, self.meta, self.replay, self.train, self.generator = model, meta, replay, train, generator
        self.optimizer = build_optimizer(model.parameters(), train)
        self.schedule = EpochDecay(self.optimizer, train)
        self.on_epoch_end = on_epoch_end
        if criterion is not None:
            meta.criterion = criterion
        meta.check_compatible(replay)
        meta.bind(model, self.optimizer, train)

    def train_task(self, task_index: int, stream: TaskStream) -> dict[str, Any]:
        """Train on one task for ``train.epochs`` epochs; returns the mean loss per epoch."""
        task = stream.tasks[task_index]
        x_all, y_all = task.train_x, task.train_y
        n, bs = x_all.shape[0], self.train.batch_size
        replay, meta, g = self.replay, self.meta, self.generator
        draw = replay is not None and meta.uses_replay_batch
        self.model.train()
        epoch_losses = []
        for epoch in range(self.train.epochs):
            total, count = 0.0, 0
            for idx in batches(n, bs, g):
                x, y = x_all[idx], y_all[idx]
                rb = replay.sample(replay.batch_size, g) if draw and replay is not None and len(replay) > 0 else None
                result = meta.step(x, y, task.id, replay, rb, g)
                if replay is not None:
                    if rb is not None and result.replay_loss is not None:
                        replay.update_priorities(rb.index, result.replay_loss)
                    if epoch == 0:
                        replay.add(x, y, task.id, result.current_loss)
                total += result.loss
                count += 1
            epoch_losses.append(total / max(1, count))
            if not math.isfinite(epoch_losses[-1]):  # diverged: stop now rather than train on garbage
                raise NonFiniteLoss(task_index, epoch, epoch_losses[-1])
            self.schedule.epoch_done()
            if self.on_epoch_end is not None:
                self.on_epoch_end(task_index, epoch, epoch_losses[-1])
        return {"loss": epoch_losses}

    def state_dict(self) -> dict[str, Any]:
        """The model, the optimiser (its lr included), the schedule's epoch count, the
        meta-learner's and the replay buffer's state: what continuing after this task needs."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": {"epochs": self.schedule.epochs},
            "meta": self.meta.state_dict(),
            "replay": self.replay.state_dict() if self.replay is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, on a learner built from the same config."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.epochs = int(state["schedule"]["epochs"])
        self.meta.load_state_dict(state["meta"])
        if self.replay is not None:
            self.replay.load_state_dict(state["replay"])

    def adapted_predictor(self, task_index: int, stream: TaskStream, generator: torch.Generator) -> Any:
        """The meta-learner's test-time adaptation for ``task_index``, as a predict function, or None."""
        adapted = self.meta.adapt_for_eval(stream.tasks[task_index], generator)
        if adapted is None:
            return None
        adapted.eval()
        return adapted

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the model in eval mode: ``x`` [n, ...] -> [n, C]."""
        self.model.eval()
        return self.model(x)
