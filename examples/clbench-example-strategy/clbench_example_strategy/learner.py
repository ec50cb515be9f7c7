"""Learning without Forgetting (LwF, Li and Hoiem 2016) as a clbench strategy.

One model of the run's configured kind, trained task by task with the run's optimiser settings.
From the second task on, a frozen copy of the model as it was after the previous task (the
*teacher*) labels the current inputs, and the loss adds a distillation term that keeps the
model's outputs close to the teacher's:

    loss = mean_i criterion(z_i, y_i) + alpha * T^2 * mean_i KL(softmax(z'_i / T) || softmax(z_i / T))

with ``z`` [n, C] the model's logits, ``z'`` [n, C] the teacher's and ``T`` the temperature. No
sample of an earlier task is stored: the teacher's outputs on the new task's inputs stand for them.
The distillation covers every logit of the single head.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from clbench.components import BuildContext, Learner, TaskStream
from clbench.training import EpochDecay, batches, build_optimizer, optimizer_step


def distillation(logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * mean_i KL(p'_i || p_i)`` with ``p = softmax(logits / T)``, ``p' = softmax(teacher_logits / T)``:
    [n, C], [n, C] -> a scalar. The ``T^2`` keeps its gradients on the scale of the cross-entropy's."""
    log_p = F.log_softmax(logits / temperature, dim=1)  # [n, C]
    log_q = F.log_softmax(teacher_logits / temperature, dim=1)  # [n, C]
    return F.kl_div(log_p, log_q, log_target=True, reduction="batchmean") * temperature**2


class LwFLearner(Learner):
    """LwF with the run's model, optimiser, lr schedule and data order; see the module doc.

    Built by the factory from the :class:`BuildContext`: ``build.build_model()`` (a fresh model on
    the run's device), ``build.criterion()`` (the stream's per-sample loss, masked in the task
    scenario), ``build.train`` (epochs, batch size, optimiser, clipping, lr decay) and
    ``build.generator`` (the run's generator: the order of the mini-batches).
    """

    def __init__(self, build: BuildContext, alpha: float = 1.0, temperature: float = 2.0):
        self.build, self.alpha, self.temperature = build, float(alpha), float(temperature)
        self.train = build.train
        self.criterion = build.criterion()
        self.model = build.build_model()
        self.optimizer = build_optimizer(self.model.parameters(), self.train)
        self.schedule = EpochDecay(self.optimizer, self.train)
        self.teacher: torch.nn.Module | None = None

    def train_task(self, task_index: int, stream: TaskStream) -> dict[str, Any]:
        """``train.epochs`` epochs on ``stream.tasks[task_index]`` (cross-entropy plus distillation
        from the previous task's model), then freeze a copy of the model as the next teacher.

        Returns ``{"loss": [mean total loss per epoch], "distillation": [mean distillation term per
        epoch]}`` (the harness checks ``loss`` for NaN and infinity)."""
        task = stream.tasks[task_index]
        x_all, y_all = task.train_x, task.train_y  # [N, ...], [N]
        g = self.build.generator
        assert g is not None  # a strategy is built after the stream: the run's generator is set
        self.model.train()
        losses, distilled = [], []
        for _ in range(self.train.epochs):
            total, total_kd, count = 0.0, 0.0, 0
            for idx in batches(x_all.shape[0], self.train.batch_size, g):
                x, y = x_all[idx], y_all[idx]  # [b, ...], [b]
                logits = self.model(x)  # [b, C]
                loss = self.criterion(logits, y).mean()
                if self.teacher is not None:
                    with torch.no_grad():
                        teacher_logits = self.teacher(x)  # [b, C]
                    kd = distillation(logits, teacher_logits, self.temperature)
                    loss = loss + self.alpha * kd
                    total_kd += float(kd.detach())
                optimizer_step(self.model, self.optimizer, loss, self.train.clip)
                total += float(loss.detach())
                count += 1
            losses.append(total / max(1, count))
            distilled.append(total_kd / max(1, count))
            self.schedule.epoch_done()
        self.teacher = self._frozen(copy.deepcopy(self.model))
        return {"loss": losses, "distillation": distilled}

    @staticmethod
    def _frozen(model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in eval mode with its gradients off."""
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [n, C] of the model in eval mode for ``x`` [n, ...] (the harness calls this under
        ``torch.inference_mode``)."""
        self.model.eval()
        return self.model(x)

    def state_dict(self) -> dict[str, Any]:
        """What continuing after the tasks so far needs: the model, the optimiser, the schedule's
        epoch count and the teacher (None before the first task ends)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": {"epochs": self.schedule.epochs},
            "teacher": self.teacher.state_dict() if self.teacher is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` on a learner built from the same config. The teacher is
        rebuilt with ``build.build_model()`` and given the saved weights."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.epochs = int(state["schedule"]["epochs"])
        self.teacher = None
        if state["teacher"] is not None:
            teacher = self.build.build_model()
            teacher.load_state_dict(state["teacher"])
            self.teacher = self._frozen(teacher)
