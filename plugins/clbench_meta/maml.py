"""MAML (Finn et al. 2017) and first-order MAML as continual-learning update rules.

One :meth:`MAML.step` per training batch:

1. Meta-batch: the current batch ``x`` [n, ...] is task 0; up to ``meta_batch - 1`` earlier tasks
   are drawn at random from the replay buffer's :meth:`tasks`, with ``n`` samples each
   (``replay.sample(n, generator, task=t)``; a task holding fewer is topped up with repeats).
2. Each task's n samples are split into support [s] and query [n - s] (a batch of one sample is
   both).
3. Inner loop: ``inner_steps`` steps of the inner optimiser (sgd or a differentiable adam, lr
   ``inner_lr``) on each task's support loss, starting from the shared parameters theta.
4. Outer update: the mean over tasks of the query loss at the adapted parameters (replay samples
   weighted by their importance weights, if any) is back-propagated to theta, through the inner loop
   (MAML, ``create_graph=True``) or not (FOMAML); the gradient is clipped to ``train.clip`` and the
   bound optimiser steps.

Several tasks are computed at once: theta is expanded to [M, *shape] and the model is called under
``torch.func.vmap``; one ``torch.autograd.grad`` then yields every task's inner gradient. If vmap
cannot run the model (e.g. ``nn.LSTM`` / ``nn.GRU`` have no batching rule) and ``vectorize=auto``,
the tasks are looped over instead, with one warning. A loop needs no vmap: MAML calls the model
functionally (``torch.func.functional_call``; a plain call at theta), FOMAML adapts the live
weights in place and restores them, which needs no functional call at all.

Per-sample losses reported for priorities: support samples at theta, query samples at the adapted
parameters (both before the outer update; no extra forward). Replay samples drawn here get their
priorities refreshed here (``replay.update_priorities``), so :class:`StepResult` has no
``replay_loss`` and the loop's own replay batch is not used.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from clbench.components import ReplayBuffer, StepResult
from clbench.errors import UserError
from clbench_meta.common import MetaBase, clip_grads, support_size, weighted_mean
from clbench_meta.functional import FunctionalModel, Params, adapt, expand_params, grads_or_zeros, make_inner


def _assign(params: Params, values: Any) -> None:
    """Copy ``values`` into the live ``params`` in place (no autograd)."""
    with torch.no_grad():
        for p, v in zip(params, values):
            p.copy_(v)


class MAML(MetaBase):
    """Second-order MAML (``first_order=False``) or FOMAML (``first_order=True``); see the module doc."""

    uses_replay_batch = False  # draws its own per-task batches from the buffer

    def __init__(
        self,
        *,
        first_order: bool = False,
        meta_batch: int = 4,
        inner_steps: int = 1,
        inner_lr: float = 0.01,
        inner_optimizer: str = "sgd",
        support_fraction: float = 0.5,
        vectorize: str = "auto",
        eval_adapt_steps: int = 0,
        eval_support_size: int = 32,
    ):
        super().__init__(eval_adapt_steps, eval_support_size)
        self.name = "fomaml" if first_order else "maml"
        self.first_order, self.meta_batch, self.inner_steps = first_order, meta_batch, inner_steps
        self.inner_lr, self.inner_optimizer, self.support_fraction = inner_lr, inner_optimizer, support_fraction
        self.vectorize = vectorize
        self.inner = make_inner(inner_optimizer, inner_lr)
        self._use_vmap = vectorize != "off"  # turned off for good when vmap cannot run the model

    def state_dict(self) -> dict[str, Any]:
        """Whether the vectorised inner loop was given up (a resumed run takes the same path)."""
        return {"use_vmap": self._use_vmap}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._use_vmap = bool(state.get("use_vmap", self._use_vmap))

    def bind(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, train: Any) -> None:
        """Attach to the model (the bound optimiser is the outer one)."""
        super().bind(model, optimizer, train)
        if train.batch_size < 2:
            raise UserError(f"meta {self.name!r} splits each batch into support and query: needs train.batch_size >= 2")
        self.fmodel = FunctionalModel(model, self.criterion)

    def meta_batch_tasks(
        self, x: torch.Tensor, y: torch.Tensor, task: int, replay: ReplayBuffer | None, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[torch.Tensor | None]]:
        """The tasks of one meta-batch: ``xs`` [M, n, ...], ``ys`` [M, n], importance weights
        ``ws`` [M, n] (None if all are uniform) and, per task, the replay slots [n] (None for the
        current task)."""
        n = x.shape[0]
        xs, ys, ws, slots = [x], [y], [None], [None]
        if replay is None or self.meta_batch == 1 or len(replay) == 0:
            return x.unsqueeze(0), y.unsqueeze(0), None, slots
        others = [t for t in replay.tasks() if t != task]
        if others:
            chosen = torch.randperm(len(others), generator=generator)[: self.meta_batch - 1].tolist()
            for i in sorted(chosen):
                batch = replay.sample(n, generator, task=others[i])
                if batch is None or len(batch) == 0:
                    continue
                take = torch.arange(len(batch))
                if len(batch) < n:  # top up a task that holds fewer than n samples
                    take = torch.cat([take, torch.randint(len(batch), (n - len(batch),), generator=generator)])
                xs.append(batch.x[take])
                ys.append(batch.y[take])
                ws.append(None if batch.weight is None else batch.weight[take])
                slots.append(batch.index[take])
        weights = None
        if any(w is not None for w in ws):
            weights = torch.stack([torch.ones(n, device=x.device) if w is None else w.float() for w in ws])
        return torch.stack(xs), torch.stack(ys), weights, slots

    def _meta_loss(
        self, params: Params, xs: torch.Tensor, ys: torch.Tensor, ws: torch.Tensor | None, s: int, batched: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Outer loss summed over the tasks of ``xs`` [M, n, ...] (adapt on [:, :s], query on [:, s:]),
        with the support losses [M, s] at ``params`` and the query losses [M, n - s] (detached)."""
        n = xs.shape[1]
        q0 = s if n >= 2 else 0
        adapted, support = adapt(
            self.fmodel, params, xs[:, :s], ys[:, :s], self.inner, self.inner_steps, not self.first_order, batched
        )
        query = self.fmodel.losses(adapted, xs[:, q0:], ys[:, q0:], batched)  # [M, n - q0]
        if ws is None:
            per_task = query.mean(dim=1)
        else:
            wq = ws[:, q0:].to(query.dtype)
            per_task = (query * wq).sum(dim=1) / wq.sum(dim=1)
        return per_task.sum(), support, query.detach()

    def _meta_gradient(
        self, xs: torch.Tensor, ys: torch.Tensor, ws: torch.Tensor | None, s: int
    ) -> tuple[float, torch.Tensor, torch.Tensor]:
        """Accumulate the meta-gradient (mean over the M tasks) in the parameters' ``.grad``.

        Several tasks: one vmapped computation when possible; otherwise (and for a single task) a
        loop, which for FOMAML adapts the live weights in place (no functional calls). Returns the
        mean outer loss, support losses [M, s] and query losses [M, n - s] (detached).
        """
        theta, m = self.fmodel.params, xs.shape[0]
        if m > 1 and self._use_vmap:
            try:
                total, support, query = self._meta_loss(expand_params(theta, m), xs, ys, ws, s, batched=True)
                (total / m).backward()
                return float(total.detach()) / m, support, query
            except Exception as exc:
                if self.vectorize == "on":
                    raise
                self._use_vmap = False
                self.optimizer.zero_grad(set_to_none=True)
                reason = (str(exc).splitlines() or [""])[0][:200]
                warnings.warn(
                    f"{self.name}: vmap over tasks failed ({type(exc).__name__}: {reason}); looping over tasks",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if self.first_order:
            return self._first_order_inplace(xs, ys, ws, s)
        parts = [
            self._meta_loss(
                theta, xs[t : t + 1], ys[t : t + 1], None if ws is None else ws[t : t + 1], s, batched=False
            )
            for t in range(m)
        ]
        total = parts[0][0] if m == 1 else torch.stack([p[0] for p in parts]).sum()
        (total / m).backward()
        return float(total.detach()) / m, torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])

    def _first_order_inplace(
        self, xs: torch.Tensor, ys: torch.Tensor, ws: torch.Tensor | None, s: int
    ) -> tuple[float, torch.Tensor, torch.Tensor]:
        """FOMAML without functional calls: per task, adapt the live weights in place, back-propagate
        the query loss at the adapted weights (accumulating ``.grad``), restore theta. Returns the
        mean outer loss, support losses [M, s] at theta and query losses [M, n - s] (detached)."""
        params, m, n = self.fmodel.params, xs.shape[0], xs.shape[1]
        q0 = s if n >= 2 else 0
        start = [p.detach().clone() for p in params]
        total, support, query = 0.0, [], []
        try:
            for t in range(m):
                if t:
                    _assign(params, start)
                state = self.inner.init(start)
                for k in range(self.inner_steps):
                    losses = self.per_sample_loss(self.model(xs[t, :s]), ys[t, :s])  # [s]
                    if k == 0:
                        support.append(losses.detach())
                    state = self.inner.apply_(params, grads_or_zeros(losses.mean(), params, create_graph=False), state)
                q = self.per_sample_loss(self.model(xs[t, q0:]), ys[t, q0:])  # [n - q0]
                outer = weighted_mean(q, None if ws is None else ws[t, q0:]) / m
                outer.backward()
                total += float(outer.detach())
                query.append(q.detach())
        finally:
            _assign(params, start)  # theta again, also if something failed
        return total, torch.stack(support), torch.stack(query)

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        task: int,
        replay: ReplayBuffer | None,
        replay_batch: Any,
        generator: torch.Generator,
    ) -> StepResult:
        """One meta-update from the current batch ``x`` [n, ...], ``y`` [n] (see the module doc)."""
        xs, ys, ws, slots = self.meta_batch_tasks(x, y, task, replay, generator)
        n = x.shape[0]
        s = support_size(n, self.support_fraction)
        self.optimizer.zero_grad(set_to_none=True)
        loss_value, support, query = self._meta_gradient(xs, ys, ws, s)
        clip_grads(self.model, self.train.clip)
        self.optimizer.step()
        per_sample = torch.cat([support, query], dim=1) if n >= 2 else support  # [M, n] in batch order
        for t in range(1, xs.shape[0]):
            replay.update_priorities(slots[t], per_sample[t])  # type: ignore[union-attr]
        return StepResult(loss_value, per_sample[0], None)

    def _adapt_copy(self, clone: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        """The inner loop (same optimiser and lr as in training, first order) on ``x`` [s, ...]."""
        fmodel = FunctionalModel(clone, self.criterion)
        adapted, _ = adapt(fmodel, fmodel.params, x[None], y[None], self.inner, self.eval_adapt_steps, False, False)
        with torch.no_grad():
            for p, a in zip(fmodel.params, adapted):
                p.copy_(a)

    def _describe(self) -> dict[str, Any]:
        return {
            "first_order": self.first_order,
            "meta_batch": self.meta_batch,
            "inner_steps": self.inner_steps,
            "inner_lr": self.inner_lr,
            "inner_optimizer": self.inner_optimizer,
            **super()._describe(),
        }
