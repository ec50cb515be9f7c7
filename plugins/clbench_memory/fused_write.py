"""Fused autograd nodes for writing with one write head.

:class:`MemoryWrite` is erase-then-add plus the new rows' squared norms (used by the NTM);
:class:`WriteStep` is the DNC's whole write: content lookup, write weighting from allocation and
content, erase-then-add. Same values as :func:`clbench_memory.addressing.content_weights`,
:func:`~clbench_memory.addressing.write_weighting` and
:func:`~clbench_memory.addressing.erase_and_add`; one node gives the memory one gradient tensor
(not three to be summed) and skips autograd's bookkeeping of a dozen small operations.

Backwards are written with differentiable torch operations: under ``create_graph=True`` they run
out of place (intermediates recomputed from the inputs), so second derivatives work; otherwise
they work in place on their own temporaries.
"""

from __future__ import annotations

import torch

from clbench_memory.fused import Workspace, apply, eager_twin, fold_vmap, in_place_ok
from clbench_memory.fused_read import _lookup, content_backward


def _erase_add(memory, w, erase, values):
    """``new = M * (1 - w e^T) + w v^T`` and its rows' squared norms.

    ``memory`` [B, N, W], ``w`` [B, 1, N], ``erase`` and ``values`` [B, 1, W] -> ([B, N, W], [B, N]).
    """
    w_col = w.transpose(1, 2)  # [B, N, 1]
    new = torch.addcmul(memory, memory, w_col * erase, value=-1.0)  # M * (1 - w e^T)
    new.addcmul_(w_col, values)  # + w v^T
    return new, torch.linalg.vector_norm(new, dim=2).square_()


def _erase_add_(memory, w, erase, values, workspace: Workspace):
    """:func:`_erase_add` in place in ``memory`` (no autograd), with scratch from ``workspace``."""
    w_col = w.transpose(1, 2)  # [B, N, 1]
    we = torch.mul(w_col, erase, out=workspace.scratch("memory", memory))  # [B, N, W]
    memory.addcmul_(memory, we, value=-1.0).addcmul_(w_col, values)
    return memory, torch.linalg.vector_norm(memory, dim=2).square_()


def _erase_add_backward(g_new, g_squared, memory, w, erase, values, new, need_memory: bool, graph: bool):
    """Gradients of :func:`_erase_add` w.r.t. (memory or None, w, erase, values).

    In first-order mode the memory gradient is always a fresh tensor (the caller may update it in place).
    """
    owned = g_squared is not None  # g is then a fresh tensor that may be reused in place
    if g_squared is None:
        g = g_new
    elif g_new is None:
        g = 2.0 * g_squared.unsqueeze(2) * new
    else:
        g = torch.addcmul(g_new, g_squared.unsqueeze(2), new, value=2.0)  # [B, N, W]
    w_col = w.transpose(1, 2)  # [B, N, 1]
    g_values = torch.bmm(w, g)  # [B, 1, W]
    gm = g * memory  # [B, N, W]
    g_erase = -torch.bmm(w, gm)  # [B, 1, W]
    g_w = (torch.bmm(g, values.transpose(1, 2)) - torch.bmm(gm, erase.transpose(1, 2))).transpose(1, 2)  # [B, 1, N]
    g_memory = None
    if need_memory:
        if graph:
            g_memory = g - w_col * (g * erase)
        else:  # g * (1 - w e^T), with gm as scratch; in place in g when g is ours
            torch.mul(w_col, erase, out=gm)
            g_memory = g.addcmul_(g, gm, value=-1.0) if owned else torch.addcmul(g, g, gm, value=-1.0)
    return g_memory, g_w, g_erase, g_values


@eager_twin
class MemoryWrite(torch.autograd.Function):
    """Erase-then-add with one write head, also returning the new rows' squared norms.

    ``(memory [B, N, W], write_weight [B, 1, N], erase [B, 1, W], values [B, 1, W])`` ->
    ``(new_memory [B, N, W], squared_norms [B, N])`` with ``new = M * (1 - w e^T) + w v^T``.
    """

    @staticmethod
    def forward(memory, write_weight, erase, values):
        return _erase_add(memory, write_weight, erase, values)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs, output[0])
        ctx.set_materialize_grads(False)

    @staticmethod
    def vmap(info, in_dims, *args):
        return fold_vmap(MemoryWrite.apply, info, in_dims, args)

    @staticmethod
    def backward(ctx, g_new, g_squared):
        if g_new is None and g_squared is None:
            return None, None, None, None
        memory, w, erase, values, new = ctx.saved_tensors
        graph = torch.is_grad_enabled()  # create_graph=True: out of place, differentiable again
        return _erase_add_backward(g_new, g_squared, memory, w, erase, values, new, ctx.needs_input_grad[0], graph)


@eager_twin
class WriteStep(torch.autograd.Function):
    """The DNC's write with one write head, from content lookup to the new memory.

    Inputs: ``memory`` [B, N, W], ``memory_norms`` [B, N] (``safe_norm(memory)``), ``key``
    [B, 1, W], ``strength`` [B, 1], ``allocation`` [B, 1, N], ``allocation_gate`` and
    ``write_gate`` [B, 1], ``erase`` and ``values`` [B, 1, W]. Outputs: ``new_memory``
    [B, N, W], ``squared_norms`` [B, N] and ``write_weights``
    ``g_w * lerp(content, allocation, g_a)`` [B, 1, N] (then intermediates for the backward).
    """

    @staticmethod
    def forward(memory, memory_norms, key, strength, allocation, allocation_gate, write_gate, erase, values):
        key_norms, den, sim, content, _, _ = _lookup(memory, memory_norms, key, strength)
        w = write_gate.unsqueeze(2) * torch.lerp(content, allocation, allocation_gate.unsqueeze(2))  # [B, 1, N]
        new, squared = _erase_add(memory, w, erase, values)
        return new, squared, w, key_norms, den, sim, content

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs, *output[:3], *output[3:])
        ctx.mark_non_differentiable(*output[3:])
        ctx.set_materialize_grads(False)

    @staticmethod
    def vmap(info, in_dims, *args):
        return fold_vmap(WriteStep.apply, info, in_dims, args)

    @staticmethod
    def backward(ctx, g_new, g_squared, g_w, *_):
        memory, norms, key, strength, allocation, ga, gw, erase, values, new, _, w, *saved = ctx.saved_tensors
        graph = torch.is_grad_enabled()
        need_memory = ctx.needs_input_grad[0]
        if graph:  # intermediates must carry the graph to the inputs
            saved = _lookup(memory, norms, key, strength)[:4]
        key_norms, den, sim, content = saved
        g_memory = g_erase = g_values = None
        if g_new is not None or g_squared is not None:
            g_memory, g_from_write, g_erase, g_values = _erase_add_backward(
                g_new, g_squared, memory, w, erase, values, new, need_memory, graph
            )
            g_w = g_from_write if g_w is None else g_w + g_from_write
        if g_w is None:
            return g_memory, None, None, None, None, None, None, g_erase, g_values
        gav = ga.unsqueeze(2)
        g_gw = (g_w * torch.lerp(content, allocation, gav)).sum(2)  # [B, 1]
        g_mixed = g_w * gw.unsqueeze(2)  # [B, 1, N]
        g_ga = (g_mixed * (allocation - content)).sum(2)  # [B, 1]
        g_allocation = g_mixed * gav
        g_dot, g_norms, g_key, g_strength = content_backward(
            g_mixed - g_allocation, memory, norms, key, strength, key_norms, den, sim, content
        )
        if need_memory:  # + g_dot^T key, a rank-1 update
            if g_memory is None:
                g_memory = torch.bmm(g_dot.transpose(1, 2), key)
            elif graph:
                g_memory = g_memory + torch.bmm(g_dot.transpose(1, 2), key)
            else:
                g_memory.baddbmm_(g_dot.transpose(1, 2), key)
        return g_memory, g_norms, g_key, g_strength, g_allocation, g_ga, g_gw, g_erase, g_values


def memory_write(
    memory: torch.Tensor,
    write_weight: torch.Tensor,
    erase: torch.Tensor,
    values: torch.Tensor,
    workspace: Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused erase-and-add for one write head; see :class:`MemoryWrite`.

    ``memory`` [B, N, W], ``write_weight`` [B, 1, N], ``erase`` and ``values`` [B, 1, W] ->
    ``(new_memory [B, N, W], squared_norms [B, N])``. With a ``workspace`` and without autograd,
    ``memory`` is updated in place (it must not be needed afterwards).
    """
    if in_place_ok(workspace):
        return _erase_add_(memory, write_weight, erase, values, workspace)
    return apply(MemoryWrite, memory, write_weight, erase, values)


def write_step(
    memory: torch.Tensor,
    memory_norms: torch.Tensor,
    key: torch.Tensor,
    strength: torch.Tensor,
    allocation: torch.Tensor,
    allocation_gate: torch.Tensor,
    write_gate: torch.Tensor,
    erase: torch.Tensor,
    values: torch.Tensor,
    workspace: Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DNC's fused write for one write head; see :class:`WriteStep`.

    Returns ``(new_memory [B, N, W], squared_norms [B, N], write_weights [B, 1, N])``. With a
    ``workspace`` and without autograd, ``memory`` is updated in place (not needed afterwards).
    """
    if in_place_ok(workspace):
        content = _lookup(memory, memory_norms, key, strength)[3]  # [B, 1, N]
        w = write_gate.unsqueeze(2) * torch.lerp(content, allocation, allocation_gate.unsqueeze(2))
        return (*_erase_add_(memory, w, erase, values, workspace), w)
    out = apply(WriteStep, memory, memory_norms, key, strength, allocation, allocation_gate, write_gate, erase, values)
    return out[0], out[1], out[2]
