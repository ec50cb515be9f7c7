"""Memory addressing mechanisms of the DNC (Graves et al. 2016), one function per mechanism.

Every function is pure tensor code: no parameters, no Python loops over batch or memory slots,
and every operation stays differentiable twice (for second-order MAML), also when memory is all
zeros. Shapes use B = batch, N = memory slots, W = word size, R = read heads, K = write heads,
H = heads of one content lookup.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Keeps norms, cumulative products and denominators away from zero.
EPSILON = 1e-6


def oneplus(x: torch.Tensor) -> torch.Tensor:
    """``1 + softplus(x)``: the DNC's map to strengths in [1, inf); any shape."""
    return 1.0 + F.softplus(x)


def safe_norm(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Euclidean norm along ``dim`` as ``sqrt(sum x^2 + eps)``.

    Unlike ``torch.norm`` its first and second derivatives stay finite at ``x = 0`` (an all-zero
    memory row). ``x`` [..., D] -> [...] for the default ``dim``.
    """
    return torch.sqrt((x * x).sum(dim) + EPSILON)


def cosine_similarity(
    memory: torch.Tensor, keys: torch.Tensor, memory_norms: torch.Tensor | None = None
) -> torch.Tensor:
    """Cosine similarity of every key with every memory row.

    ``memory`` [B, N, W], ``keys`` [B, H, W], optional precomputed ``memory_norms`` [B, N]
    (``safe_norm(memory)``) -> similarity [B, H, N]; 0 wherever memory rows are zero.
    """
    if memory_norms is None:
        memory_norms = safe_norm(memory)
    # [B, N, H] layout: the gradient w.r.t. memory comes out contiguous
    dot = torch.bmm(memory, keys.transpose(1, 2))  # [B, N, H]
    norms = memory_norms.unsqueeze(2) * safe_norm(keys).unsqueeze(1)  # [B, N, H]
    return (dot / (norms + EPSILON)).transpose(1, 2)


def content_weights(
    memory: torch.Tensor,
    keys: torch.Tensor,
    strengths: torch.Tensor,
    memory_norms: torch.Tensor | None = None,
) -> torch.Tensor:
    """Content-based addressing: ``softmax_i(strength * cos(key, M_i))``.

    ``memory`` [B, N, W], ``keys`` [B, H, W], ``strengths`` [B, H] (already positive, e.g. from
    :func:`oneplus`), ``memory_norms`` [B, N] or None -> weightings [B, H, N] that sum to 1.
    """
    similarity = cosine_similarity(memory, keys, memory_norms)  # [B, H, N]
    return torch.softmax(similarity * strengths.unsqueeze(2), dim=2)


def retention(free_gates: torch.Tensor, prev_read_weights: torch.Tensor) -> torch.Tensor:
    """Memory retention ``psi = prod_r (1 - f_r * w^r_{t-1})``: how much of each slot is kept.

    ``free_gates`` [B, R] in [0, 1], ``prev_read_weights`` [B, R, N] -> psi [B, N].
    """
    return torch.prod(1.0 - free_gates.unsqueeze(2) * prev_read_weights, dim=1)  # [B, N]


def combined_write(write_weights: torch.Tensor) -> torch.Tensor:
    """Aggregate several write heads: ``1 - prod_k (1 - w^k)``. [B, K, N] -> [B, N]."""
    if write_weights.shape[1] == 1:
        return write_weights.squeeze(1)
    return 1.0 - torch.prod(1.0 - write_weights, dim=1)


def update_usage(
    prev_usage: torch.Tensor,
    prev_write_weights: torch.Tensor,
    free_gates: torch.Tensor,
    prev_read_weights: torch.Tensor,
) -> torch.Tensor:
    """Usage ``u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} * w^w_{t-1}) * psi_t``.

    ``prev_usage`` [B, N], ``prev_write_weights`` [B, K, N], ``free_gates`` [B, R],
    ``prev_read_weights`` [B, R, N] -> usage [B, N] in [0, 1]. As in the DeepMind reference, no
    gradient flows into the previous write weights through usage.
    """
    written = combined_write(prev_write_weights.detach())  # [B, N]
    usage = prev_usage + written * (1.0 - prev_usage)
    return usage * retention(free_gates, prev_read_weights)


def allocation(usage: torch.Tensor) -> torch.Tensor:
    """Allocation weighting ``a_t`` from usage: free slots (lowest usage first) get the weight.

    Sorts the slots by usage (the free list phi), then
    ``a[phi_j] = (1 - u[phi_j]) * prod_{i<j} u[phi_i]`` (an exclusive cumulative product), and
    scatters back to slot order. The sort is stable, so ties (e.g. an empty memory) go to the
    lowest slot index. ``usage`` [B, N] -> allocation [B, N], which sums to at most 1.
    """
    usage = EPSILON + (1.0 - EPSILON) * usage  # keeps the cumulative product away from 0
    sorted_usage, free_list = torch.sort(usage, dim=1, stable=True)  # [B, N] each, ascending
    ones = torch.ones_like(sorted_usage[:, :1])
    prod_before = torch.cumprod(torch.cat([ones, sorted_usage[:, :-1]], dim=1), dim=1)  # exclusive
    sorted_alloc = (1.0 - sorted_usage) * prod_before  # [B, N]
    return torch.zeros_like(sorted_alloc).scatter(1, free_list, sorted_alloc)


def write_allocations(usage: torch.Tensor, write_gates: torch.Tensor) -> torch.Tensor:
    """Allocation weightings for K write heads, allocated one after another.

    Each head after the first sees the usage as if the heads before it had written to their
    allocations: ``u <- u + (1 - u) * g_k * a_k`` with ``g_k`` = allocation gate * write gate.
    ``usage`` [B, N], ``write_gates`` [B, K] -> allocations [B, K, N] (not yet gated).
    """
    allocations = []
    for k in range(write_gates.shape[1]):  # K is small (usually 1)
        a = allocation(usage)  # [B, N]
        allocations.append(a)
        if k + 1 < write_gates.shape[1]:
            usage = usage + (1.0 - usage) * write_gates[:, k : k + 1] * a
    return torch.stack(allocations, dim=1)


def write_weighting(
    allocations: torch.Tensor,
    write_content: torch.Tensor,
    allocation_gate: torch.Tensor,
    write_gate: torch.Tensor,
) -> torch.Tensor:
    """``w^w = g^w * (g^a * a + (1 - g^a) * c^w)``.

    ``allocations`` and ``write_content`` [B, K, N], gates [B, K] -> write weightings [B, K, N].
    """
    return write_gate.unsqueeze(2) * torch.lerp(write_content, allocations, allocation_gate.unsqueeze(2))


def erase_and_add(
    memory: torch.Tensor, write_weights: torch.Tensor, erase: torch.Tensor, values: torch.Tensor
) -> torch.Tensor:
    """Erase then add: ``M <- M * prod_k (1 - w^k e^k^T) + sum_k w^k v^k^T``.

    ``memory`` [B, N, W], ``write_weights`` [B, K, N], ``erase`` [B, K, W] in [0, 1],
    ``values`` [B, K, W] -> new memory [B, N, W].
    """
    wt = write_weights.transpose(1, 2)  # [B, N, K]
    if write_weights.shape[1] == 1:  # broadcasting beats a bmm with an inner size of 1
        keep = 1.0 - wt * erase  # [B, N, W]
        return torch.addcmul(wt * values, memory, keep)
    keep = torch.prod(1.0 - wt.unsqueeze(3) * erase.unsqueeze(1), dim=2)  # [B, N, K, W] -> [B, N, W]
    return torch.addcmul(torch.bmm(wt, values), memory, keep)


def update_link(
    prev_link: torch.Tensor, prev_precedence: torch.Tensor, write_weights: torch.Tensor, off_diagonal: torch.Tensor
) -> torch.Tensor:
    """Temporal link ``L[i,j] <- (1 - w_i - w_j) L[i,j] + w_i p_j`` with a zero diagonal.

    ``L[i, j]`` is how much slot i was written right after slot j. ``prev_link`` [B, K, N, N],
    ``prev_precedence`` [B, K, N], ``write_weights`` [B, K, N], ``off_diagonal`` [N, N] (ones with
    a zero diagonal) -> link [B, K, N, N], entries in [0, 1], rows and columns summing to <= 1.
    """
    w_i = write_weights.unsqueeze(3)  # [B, K, N, 1]
    w_j = write_weights.unsqueeze(2)  # [B, K, 1, N]
    scale = (1.0 - w_i) - w_j  # [B, K, N, N]
    link = torch.addcmul(w_i * prev_precedence.unsqueeze(2), prev_link, scale)
    return link * off_diagonal


def update_precedence(prev_precedence: torch.Tensor, write_weights: torch.Tensor) -> torch.Tensor:
    """Precedence ``p <- (1 - sum_i w_i) p + w``. [B, K, N] and [B, K, N] -> [B, K, N]."""
    return torch.addcmul(write_weights, prev_precedence, 1.0 - write_weights.sum(2, keepdim=True))


def directional_weights(link: torch.Tensor, prev_read_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Follow the link graphs from the previous read positions.

    ``link`` [B, K, N, N], ``prev_read_weights`` [B, R, N] -> ``(forward, backward)``, each
    [B, R, K, N]: ``forward = L w`` (what was written after), ``backward = L^T w`` (before).
    """
    w = prev_read_weights.unsqueeze(1)  # [B, 1, R, N]
    forward = torch.matmul(w, link.transpose(2, 3))  # [B, K, R, N]
    backward = torch.matmul(w, link)  # [B, K, R, N]
    return forward.transpose(1, 2), backward.transpose(1, 2)


def read_weighting(
    content: torch.Tensor, forward: torch.Tensor, backward: torch.Tensor, modes: torch.Tensor
) -> torch.Tensor:
    """Mix the read modes: ``w^r = sum_k pi_b,k b_k + sum_k pi_f,k f_k + pi_c c``.

    ``content`` [B, R, N], ``forward`` and ``backward`` [B, R, K, N], ``modes`` [B, R, 2K + 1]
    (a softmax, ordered backward heads, forward heads, content) -> read weightings [B, R, N].
    """
    stacked = torch.cat([backward, forward, content.unsqueeze(2)], dim=2)  # [B, R, 2K + 1, N]
    return torch.matmul(modes.unsqueeze(2), stacked).squeeze(2)  # [B, R, 1, 2K + 1] x [.., 2K + 1, N]
