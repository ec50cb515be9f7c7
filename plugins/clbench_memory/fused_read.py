"""A fused autograd node for content lookup, read-mode mixing and reading (the DNC's read side).

Same values as :func:`clbench_memory.addressing.content_weights`, then
:func:`~clbench_memory.addressing.read_weighting` and ``read_weights @ memory``, in one node
instead of about twenty-five. The backward is written with torch operations and recomputes the
lookup's small intermediates from the inputs, so under ``create_graph=True`` it is differentiable
again (second-order MAML). It also serves the write side's content lookup (no modes, no read).
"""

from __future__ import annotations

import torch

from clbench_memory.addressing import EPSILON
from clbench_memory.fused import apply, eager_twin, fold_vmap


def _lookup(memory, memory_norms, keys, strengths, modes=None, directional=None):
    """Forward intermediates: key norms [B, H], den and sim [B, H, N], content [B, H, N],
    stacked modes [B, H, M + 1, N] or None, weights [B, H, N]."""
    key_norms = torch.sqrt((keys * keys).sum(2) + EPSILON)  # [B, H]
    dot = torch.bmm(keys, memory.transpose(1, 2))  # [B, H, N]
    den = key_norms.unsqueeze(2) * memory_norms.unsqueeze(1) + EPSILON  # [B, H, N]
    sim = dot / den  # cosine similarity
    content = torch.softmax(strengths.unsqueeze(2) * sim, dim=2)  # [B, H, N]
    if modes is None:
        return key_norms, den, sim, content, None, content
    stacked = torch.cat([directional, content.unsqueeze(2)], dim=2)  # [B, H, M + 1, N]
    weights = torch.matmul(modes.unsqueeze(2), stacked).squeeze(2)  # [B, H, N]
    return key_norms, den, sim, content, stacked, weights


def content_backward(g_content, memory, memory_norms, keys, strengths, key_norms, den, sim, content):
    """Backward of the content lookup of :func:`_lookup`, given ``g_content`` [B, H, N].

    Returns ``(g_dot [B, H, N], g_memory_norms [B, N], g_keys [B, H, W], g_strengths [B, H])``;
    the memory's own gradient is ``g_dot^T keys``, left to the caller to fold into its product.
    """
    g_z = content * (g_content - (g_content * content).sum(2, keepdim=True))  # softmax of z = strength * sim
    g_strengths = (g_z * sim).sum(2)  # [B, H]
    g_dot = g_z * strengths.unsqueeze(2) / den  # sim = dot / den
    g_den = -(g_dot * sim)
    g_key_norms = (g_den * memory_norms.unsqueeze(1)).sum(2)  # [B, H]
    g_memory_norms = (g_den * key_norms.unsqueeze(2)).sum(1)  # [B, N]
    g_keys = torch.bmm(g_dot, memory) + (g_key_norms / key_norms).unsqueeze(2) * keys  # [B, H, W]
    return g_dot, g_memory_norms, g_keys, g_strengths


@eager_twin
class MemoryRead(torch.autograd.Function):
    """``(memory, memory_norms, keys, strengths, modes, directional, read) -> (weights, reads)``.

    Shapes: ``memory`` [B, N, W], ``memory_norms`` [B, N] (``safe_norm(memory)``), ``keys``
    [B, H, W], ``strengths`` [B, H] (positive), ``modes`` [B, H, M + 1] (softmax: M directional
    modes, then content) or None (content only), ``directional`` [B, H, M, N] or None ->
    ``weights`` [B, H, N] and, when ``read`` is True, ``reads = weights @ memory`` [B, H, W]
    (else None).
    """

    @staticmethod
    def forward(memory, memory_norms, keys, strengths, modes, directional, read):
        key_norms, den, sim, content, stacked, weights = _lookup(
            memory, memory_norms, keys, strengths, modes, directional
        )
        reads = torch.bmm(weights, memory) if read else None  # [B, H, W]
        if modes is None:
            content = None  # it is the weights: returned once
        return weights, reads, key_norms, den, sim, content, stacked  # intermediates: for the backward

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:6], output[0], *output[2:])
        ctx.mark_non_differentiable(*(t for t in output[2:] if t is not None))
        ctx.set_materialize_grads(False)

    @staticmethod
    def vmap(info, in_dims, *args):
        return fold_vmap(MemoryRead.apply, info, in_dims, args)

    @staticmethod
    def backward(ctx, g_weights, g_reads, *_):
        memory, memory_norms, keys, strengths, modes, directional, weights, *saved = ctx.saved_tensors
        if g_weights is None and g_reads is None:
            return None, None, None, None, None, None, None
        if torch.is_grad_enabled():  # create_graph=True: recompute, so they carry the graph to the inputs
            saved = _lookup(memory, memory_norms, keys, strengths, modes, directional)[:-1]
        key_norms, den, sim, content, stacked = saved
        if content is None:  # content-only lookup: the weights are the content weights
            content = weights
        g_w = g_weights
        if g_reads is not None:
            from_reads = torch.bmm(g_reads, memory.transpose(1, 2))  # [B, H, N]
            g_w = from_reads if g_w is None else g_w + from_reads
        g_modes = g_directional = None
        if modes is None:
            g_content = g_w
        else:
            m = modes.shape[2] - 1
            g_modes = torch.matmul(stacked, g_w.unsqueeze(3)).squeeze(3)  # [B, H, M + 1]
            g_directional = modes[:, :, :m].unsqueeze(3) * g_w.unsqueeze(2)  # [B, H, M, N]
            g_content = modes[:, :, m:] * g_w  # [B, H, N]
        g_dot, g_memory_norms, g_keys, g_strengths = content_backward(
            g_content, memory, memory_norms, keys, strengths, key_norms, den, sim, content
        )
        if g_reads is None:
            g_memory = torch.bmm(g_dot.transpose(1, 2), keys)  # [B, N, W]
        else:  # g_dot^T keys + weights^T g_reads as one product
            g_memory = torch.bmm(torch.cat([g_dot, weights], 1).transpose(1, 2), torch.cat([keys, g_reads], 1))
        return g_memory, g_memory_norms, g_keys, g_strengths, g_modes, g_directional, None


def memory_read(
    memory: torch.Tensor,
    memory_norms: torch.Tensor,
    keys: torch.Tensor,
    strengths: torch.Tensor,
    modes: torch.Tensor | None = None,
    directional: torch.Tensor | None = None,
    read: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Content lookup, optional mode mixing and reading in one node; see :class:`MemoryRead`.

    Returns ``(weights [B, H, N], reads [B, H, W] or None)``.
    """
    if (modes is None) != (directional is None):
        raise ValueError("memory_read needs both modes and directional weights, or neither")
    return apply(MemoryRead, memory, memory_norms, keys, strengths, modes, directional, read)[:2]
