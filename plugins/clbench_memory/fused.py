"""Fused autograd nodes: the machinery they share, and the temporal-link step of the DNC.

:class:`LinkStep` does the temporal-link update and the directional reads (same mathematics as
:func:`clbench_memory.addressing.update_link` then
:func:`~clbench_memory.addressing.directional_weights`); :mod:`clbench_memory.fused_write` and
:mod:`clbench_memory.fused_read` hold the write and read nodes. On a CPU these models are bound by
passes over the [B, K, N, N] link and the [B, N, W] memory, by fresh temporaries of that size, and
by per-operation overhead; the plain compositions make several times as many of each.

Each backward is written with differentiable torch operations, so second derivatives (MAML)
work: under ``create_graph=True`` it runs out of place; otherwise it works in place on its own
temporaries. Unused outputs get ``None`` gradients (``set_materialize_grads(False)``). Under
``torch.func.vmap`` each node folds the vmapped dimension into its batch dimension
(:func:`fold_vmap`); without torch.func transforms, :func:`apply` skips the argument binding that
new-style Functions pay on every call (:func:`eager_twin`).
"""

from __future__ import annotations

import torch

#: True while a torch.func transform (vmap, grad, ...) is active; private torch API, so when it is
#: missing every call takes the transform-ready path (correct, a little slower).
_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: True)


def eager_twin(cls):
    """Class decorator: attach ``cls._eager``, an old-style twin of the new-style Function ``cls``.

    New-style Functions (``forward`` without ctx, plus ``setup_context``) are what torch.func
    transforms need, but every ``apply`` binds its arguments with ``inspect.signature``, which costs
    tens of microseconds. :func:`apply` uses the twin (same forward, context and backward) when no
    transform is active.
    """

    def forward(ctx, *args):
        output = cls.forward(*args)
        cls.setup_context(ctx, args, output)
        return output

    namespace = {"forward": staticmethod(forward), "backward": staticmethod(cls.backward), "__module__": cls.__module__}
    cls._eager = type(cls.__name__ + "Eager", (torch.autograd.Function,), namespace)
    return cls


def apply(cls, *args):
    """``cls.apply(*args)``: through its eager twin when no torch.func transform is active, and as a
    plain call of its forward when autograd records nothing (evaluation under no_grad/inference)."""
    if _transforms_active():
        return cls.apply(*args)
    if not torch.is_grad_enabled():
        return cls.forward(*args)
    return cls._eager.apply(*args)


def fold_vmap(function_apply, info, in_dims, args):
    """vmap rule of the fused nodes: fold the vmapped dimension into the batch dimension.

    Every fused node works row by row over its leading batch dim B, so ``torch.func.vmap`` over M
    (e.g. MAML's tasks) is the same node applied to [M * B, ...]: no per-example fallback. Inputs
    without a vmapped dim are expanded; None inputs and outputs stay None.
    """
    m = info.batch_size
    flat = []
    for arg, dim in zip(args, in_dims):
        if not isinstance(arg, torch.Tensor):
            flat.append(arg)
            continue
        arg = arg.movedim(dim, 0) if dim is not None else arg.unsqueeze(0).expand(m, *arg.shape)
        flat.append(arg.reshape(m * arg.shape[1], *arg.shape[2:]))
    outputs = function_apply(*flat)
    unfolded = tuple(None if out is None else out.reshape(m, -1, *out.shape[1:]) for out in outputs)
    return unfolded, tuple(None if out is None else 0 for out in outputs)


def _zero_diagonal_(x: torch.Tensor) -> torch.Tensor:
    """Zero the diagonal of the last two dims of ``x`` [..., N, N] in place; returns ``x``."""
    x.diagonal(dim1=-2, dim2=-1).zero_()
    return x


class Workspace:
    """Scratch memory shared by the fused nodes of one forward pass (one sequence).

    * First-order backward of :class:`LinkStep`: the steps run one after another, last first, and
      each hands the link gradient it returns to the next; with a workspace that gradient and one
      scratch tensor are the same two [B, K, N, N] buffers all along (updated in place) instead of
      fresh tensors per step. A gradient is only updated in place when it is the very tensor this
      workspace handed out (``grad``).
    * Without autograd (evaluation), link and memory are updated in place, with scratch from here.

    On a CPU, writing fresh multi-MiB memory costs several times a pass over memory in use.
    """

    __slots__ = ("grad", "_scratch")

    def __init__(self) -> None:
        """An empty workspace (buffers are made on first use)."""
        self.grad: torch.Tensor | None = None
        self._scratch: dict[str, torch.Tensor] = {}

    def scratch(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """Scratch tensor ``name`` shaped like ``like`` (contents undefined), reused across steps."""
        s = self._scratch.get(name)
        if s is None or s.shape != like.shape or s.dtype != like.dtype or s.device != like.device:
            s = self._scratch[name] = torch.empty_like(like, memory_format=torch.contiguous_format)
        return s


def in_place_ok(workspace: Workspace | None) -> bool:
    """True when a fused step may update its state in place: a workspace, no autograd recording and
    no torch.func transform (evaluation under no_grad or inference mode)."""
    return workspace is not None and not torch.is_grad_enabled() and not _transforms_active()


@eager_twin
class LinkStep(torch.autograd.Function):
    """``(prev_link, precedence, write_weights, prev_read_weights, workspace) -> (link, forward, backward)``.

    Shapes: ``prev_link`` [B, K, N, N] or None (an all-zero link), ``precedence`` [B, K, N]
    (p_{t-1}), ``write_weights`` [B, K, N], ``prev_read_weights`` [B, R, N] -> ``link``
    [B, K, N, N] with a zero diagonal, ``forward = L w`` and ``backward = L^T w``, each [B, K, R, N].
    ``workspace``: a :class:`Workspace` shared by the steps of one sequence, or None.
    """

    @staticmethod
    def forward(prev_link, precedence, write_weights, prev_read_weights, workspace):
        w_i = write_weights.unsqueeze(3)  # [B, K, N, 1]
        w_j = write_weights.unsqueeze(2)  # [B, K, 1, N]
        if prev_link is None:
            link = w_i * precedence.unsqueeze(2)
        else:  # (1 - w_i - w_j) L + w_i p_j, built in one buffer
            link = (1.0 - w_i) - w_j
            link.mul_(prev_link).addcmul_(w_i, precedence.unsqueeze(2))
        _zero_diagonal_(link)
        reads = prev_read_weights.unsqueeze(1)  # [B, 1, R, N]
        forward = torch.matmul(reads, link.transpose(2, 3))  # [B, K, R, N]
        backward = torch.matmul(reads, link)  # [B, K, R, N]
        return link, forward, backward

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:4], output[0])
        ctx.workspace = inputs[4]
        ctx.set_materialize_grads(False)

    @staticmethod
    def vmap(info, in_dims, *args):
        return fold_vmap(LinkStep.apply, info, in_dims, args)

    @staticmethod
    def backward(ctx, g_link, g_forward, g_backward):
        prev_link, precedence, write_weights, prev_read_weights, link = ctx.saved_tensors
        need = ctx.needs_input_grad
        graph = torch.is_grad_enabled()  # create_graph=True: stay out of place, differentiable again
        ws = None if graph else ctx.workspace
        reads = prev_read_weights.unsqueeze(1)  # [B, 1, R, N]
        g_reads = _reads_grad(link, g_forward, g_backward) if need[3] else None
        mine = ws is not None and g_link is not None and g_link is ws.grad  # handed out by this workspace
        g = _link_grad(reads, g_link, g_forward, g_backward, graph, in_place=mine)  # [B, K, N, N] or None
        if g is None:
            return None, None, None, g_reads, None
        w_i, w_j = write_weights.unsqueeze(3), write_weights.unsqueeze(2)
        g_p = torch.matmul(w_j, g).squeeze(2) if need[1] else None  # [B, K, N]: sum_i w_i g_ij
        g_w = None
        if need[2]:
            g_w = torch.matmul(g, precedence.unsqueeze(3)).squeeze(3)  # [B, K, N]: sum_j g_ij p_j
            if prev_link is not None:
                gl = g * prev_link if ws is None else torch.mul(g, prev_link, out=ws.scratch("link", g))
                g_w = g_w - gl.sum(3) - gl.sum(2)
        g_prev = None
        if prev_link is not None and need[0]:
            if ws is None:
                g_prev = g * ((1.0 - w_i) - w_j)
            else:  # g * (1 - w_i - w_j) in place in g (ours), the factor in the scratch buffer
                g_prev = g.mul_(torch.sub(1.0 - w_i, w_j, out=ws.scratch("link", g)))
                ws.grad = g_prev
        return g_prev, g_p, g_w, g_reads, None


def _reads_grad(link, g_forward, g_backward):
    """Gradient w.r.t. the previous read weights [B, R, N]: ``g_f L + g_b L^T``, summed over K."""
    g_reads = None
    if g_forward is not None:  # forward[r, i] = sum_j L[i, j] w[r, j]
        g_reads = torch.matmul(g_forward, link).sum(1)
    if g_backward is not None:  # backward[r, j] = sum_i w[r, i] L[i, j]
        part = torch.matmul(g_backward, link.transpose(2, 3)).sum(1)
        g_reads = part if g_reads is None else g_reads + part
    return g_reads


def _link_grad(reads, g_link, g_forward, g_backward, graph, in_place=False):
    """Total gradient w.r.t. the new link before the diagonal overwrite, with that diagonal zeroed.

    ``g_link + g_f^T w + w^T g_b``: the read terms are one product of concatenated factors
    [B, K, N, 2R] x [B, K, 2R, N], added to ``g_link`` in the same pass. Returns a fresh tensor,
    or ``g_link`` itself updated when ``in_place``.
    """
    left, right = [], []
    if g_forward is not None or g_backward is not None:
        ref = g_forward if g_forward is not None else g_backward
        expanded = reads.expand(ref.shape[0], ref.shape[1], -1, -1)  # [B, K, R, N]
        if g_forward is not None:
            left.append(g_forward.transpose(2, 3))
            right.append(expanded)
        if g_backward is not None:
            left.append(expanded.transpose(2, 3))
            right.append(g_backward)
    if not left:
        if g_link is None:
            return None
        g = g_link if in_place else g_link.clone()
    else:
        u, v = torch.cat(left, 3), torch.cat(right, 2)  # [B, K, N, 2R], [B, K, 2R, N]
        if g_link is None:
            g = torch.matmul(u, v)
        else:
            b, k, n = g_link.shape[:3]
            u, v = u.reshape(b * k, n, -1), v.reshape(b * k, -1, n)
            if in_place:
                g_link.view(b * k, n, n).baddbmm_(u, v)
                g = g_link
            else:
                g = torch.baddbmm(g_link.reshape(b * k, n, n), u, v).view(b, k, n, n)
    if graph:
        n = g.shape[-1]
        return g * (1.0 - torch.eye(n, dtype=g.dtype, device=g.device))
    return _zero_diagonal_(g)


def link_step(
    prev_link: torch.Tensor | None,
    precedence: torch.Tensor,
    write_weights: torch.Tensor,
    prev_read_weights: torch.Tensor,
    workspace: Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fused link update and directional reads; see :class:`LinkStep`.

    ``prev_link`` None stands for an all-zero link (the start of a sequence) and saves its work.
    Pass one :class:`Workspace` to every step of a sequence: it saves memory traffic in backward,
    and without autograd ``prev_link`` is then updated in place (it must not be needed afterwards).
    Returns ``(link [B, K, N, N], forward [B, R, K, N], backward [B, R, K, N])``.
    """
    if prev_link is not None and in_place_ok(workspace):
        w_i, w_j = write_weights.unsqueeze(3), write_weights.unsqueeze(2)
        scale = torch.sub(1.0 - w_i, w_j, out=workspace.scratch("link", prev_link))
        link = _zero_diagonal_(prev_link.mul_(scale).addcmul_(w_i, precedence.unsqueeze(2)))
        reads = prev_read_weights.unsqueeze(1)  # [B, 1, R, N]
        forward, backward = torch.matmul(reads, link.transpose(2, 3)), torch.matmul(reads, link)
    else:
        link, forward, backward = apply(LinkStep, prev_link, precedence, write_weights, prev_read_weights, workspace)
    return link, forward.transpose(1, 2), backward.transpose(1, 2)
