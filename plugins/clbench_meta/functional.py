"""Functional machinery of the MAML family: per-task losses at given parameters, and
differentiable inner optimisers.

Parameters travel as a tuple of tensors in the order of :class:`FunctionalModel.names`. A
*batched* tuple has a leading task dimension ``M`` on every tensor ([M, *param_shape]) and is
evaluated with ``torch.func.vmap`` (one batched computation for all tasks); a plain tuple is one
set of parameters. Gradients are taken with ``torch.autograd.grad`` outside vmap, which gives the
per-task gradients of a sum of per-task losses in one backward pass and supports
``create_graph=True`` (second order); nested ``torch.func.grad`` was ~15x slower here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.func import functional_call, vmap

from clbench.scenarios import Criterion
from clbench.training import per_sample_loss

Params = tuple[torch.Tensor, ...]


class FunctionalModel:
    """A stateless view of ``model``: its trainable parameters by name, its buffers, and
    :meth:`losses`, the per-sample losses at any parameters (under ``criterion``, the stream's
    per-sample loss; None: plain cross-entropy)."""

    def __init__(self, model: torch.nn.Module, criterion: Criterion | None = None):
        self.model = model
        self.criterion: Criterion = criterion or per_sample_loss
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = tuple(n for n, _ in named)
        self.params: Params = tuple(p for _, p in named)  # the live leaves
        # untying shared parameters costs a module walk per call: only pay it when some are shared
        every = sum(1 for _ in model.named_parameters(remove_duplicate=False))
        self.tied = every != sum(1 for _ in model.named_parameters())

    def _call(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """Logits of the model at ``params`` for ``x`` [n, ...] -> [n, C] (buffers: the model's own).

        At the live parameters this is a plain call of the model, which is cheaper."""
        if params is self.params:
            return self.model(x)
        return functional_call(self.model, dict(zip(self.names, params)), (x,), tie_weights=self.tied)

    def _one(self, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.criterion(self._call(params, x), y)

    def losses(self, params: Params, x: torch.Tensor, y: torch.Tensor, batched: bool) -> torch.Tensor:
        """Per-sample losses [M, n] for tasks ``x`` [M, n, ...], ``y`` [M, n].

        ``batched``: ``params`` carry the task dimension (vmap over tasks); else ``M`` must be 1.
        """
        if not batched:
            return self._one(params, x[0], y[0]).unsqueeze(0)
        return vmap(self._one, in_dims=(0, 0, 0), randomness="different")(params, x, y)


def grads_or_zeros(loss: torch.Tensor, params: Params, create_graph: bool) -> Params:
    """``d loss / d params``; parameters the loss does not depend on get zeros (not None)."""
    grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
    return tuple(torch.zeros_like(p) if g is None else g for p, g in zip(params, grads))


class InnerSGD:
    """Plain gradient descent ``theta <- theta - lr * g``, differentiable when the grads are."""

    def __init__(self, lr: float):
        self.lr = lr

    def init(self, params: Params) -> Any:
        """No state."""
        return None

    def update(self, params: Params, grads: Params, state: Any) -> tuple[Params, Any]:
        """One step; returns the new parameters and state."""
        return tuple(p - self.lr * g for p, g in zip(params, grads)), state

    def apply_(self, params: Params, grads: Params, state: Any) -> Any:
        """The same step in place on leaf ``params`` (no autograd); returns the state."""
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.add_(g, alpha=-self.lr)
        return state


class InnerAdam:
    """Adam (Kingma & Ba 2015) written with out-of-place ops, so it is differentiable.

    ``sqrt(v_hat + eps^2)`` instead of ``sqrt(v_hat) + eps`` keeps the derivative finite where a
    gradient is exactly zero (the plain form gives ``inf * 0 = nan`` in the second-order pass).
    """

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps

    def init(self, params: Params) -> Any:
        """State ``(step, m, v)`` with zero moments shaped like ``params``."""
        return 0, tuple(torch.zeros_like(p) for p in params), tuple(torch.zeros_like(p) for p in params)

    def update(self, params: Params, grads: Params, state: Any) -> tuple[Params, Any]:
        """One Adam step; returns the new parameters and state."""
        step, m, v = state
        b1, b2 = self.betas
        step += 1
        m = tuple(b1 * mi + (1 - b1) * g for mi, g in zip(m, grads))
        v = tuple(b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads))
        c1, c2 = 1 - b1**step, 1 - b2**step
        new = tuple(p - self.lr * (mi / c1) / torch.sqrt(vi / c2 + self.eps**2) for p, mi, vi in zip(params, m, v))
        return new, (step, m, v)

    def apply_(self, params: Params, grads: Params, state: Any) -> Any:
        """The same step in place on leaf ``params`` (no autograd); returns the state."""
        with torch.no_grad():
            new, state = self.update(tuple(p.detach() for p in params), grads, state)
            for p, v in zip(params, new):
                p.copy_(v)
        return state


def make_inner(name: str, lr: float) -> InnerSGD | InnerAdam:
    """The inner optimiser called ``name`` (sgd | adam) with learning rate ``lr``."""
    if name == "sgd":
        return InnerSGD(lr)
    if name == "adam":
        return InnerAdam(lr)
    raise ValueError(f"unknown inner optimizer {name!r}")


def adapt(
    fmodel: FunctionalModel,
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    inner: InnerSGD | InnerAdam,
    steps: int,
    create_graph: bool,
    batched: bool,
) -> tuple[Params, torch.Tensor]:
    """``steps`` inner steps on the support sets ``x`` [M, s, ...], ``y`` [M, s].

    The loss of a step is the sum over tasks of each task's mean loss, so one backward gives every
    task its own gradient. ``create_graph`` keeps the graph of the gradients (second order); without
    it the gradients are constants and only the identity path from ``params`` remains (first order).
    Returns the adapted parameters and the per-sample support losses [M, s] at ``params`` (detached).
    """
    state = inner.init(params)
    first: torch.Tensor | None = None
    for _ in range(steps):
        losses = fmodel.losses(params, x, y, batched)  # [M, s]
        if first is None:
            first = losses.detach()
        grads = grads_or_zeros(losses.mean(dim=1).sum(), params, create_graph)
        if not create_graph:
            grads = tuple(g.detach() for g in grads)
        params, state = inner.update(params, grads, state)
    assert first is not None
    return params, first


def expand_params(params: Sequence[torch.Tensor], tasks: int) -> Params:
    """Each parameter [*shape] seen as [tasks, *shape] without copying (differentiable)."""
    return tuple(p.unsqueeze(0).expand(tasks, *p.shape) for p in params)
