"""A compiled (numba) memory step for the DNC's inference: evaluation without autograd.

Evaluating a DNC on a CPU is bound by passes over the per-sample [N, N] link and [N, W] memory
and by per-operation overhead, not by arithmetic: as torch operations on a batch, each step makes
about a dozen passes over [B, N, N] and [B, N, W] tensors that no longer fit in cache, plus about
sixty operator calls. :func:`memory_step` instead does a whole step of memory access (usage, free
list, write, link, reads) for one sample at a time, with that sample's link and memory in cache,
in one compiled call per step for the whole batch. The controller and the interface layer stay
batched torch matrix products in :class:`~clbench_memory.dnc.DNC`.

It is the same mathematics as :meth:`clbench_memory.dnc.DNC._memory_step` with one write head
(values agree to float rounding; see ``tests/plugins/test_memory_models.py``), used only when
autograd records nothing. The DNC imports this module (and with it numba) on its first evaluation
call; the kernels are compiled on their first call and cached on disk by numba (beside this file,
or in the user's cache folder when that is read-only). Without numba (:func:`available` is False)
the DNC evaluates with its torch operations.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from clbench_memory.addressing import EPSILON

try:
    import numba
except Exception:  # noqa: BLE001 - any failure to import means: evaluate with the torch path
    numba = None

#: Reassociation and contraction let the compiler vectorise sums and fuse multiply-adds; results
#: then differ from the torch path in the last bits, but are the same from run to run.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


def available() -> bool:
    """True when numba can be imported, so :func:`memory_step` can run."""
    return numba is not None


def _oneplus(x):
    """``1 + softplus(x)`` for a scalar, with torch's threshold of 20."""
    return 1.0 + (x if x > 20.0 else math.log1p(math.exp(x)))


def _sigmoid(x):
    """Logistic function of a scalar, stable for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _softmax_(z):
    """In-place softmax of a 1-D array ``z``."""
    top = z.max()
    total = 0.0
    for i in range(z.shape[0]):
        z[i] = math.exp(z[i] - top)
        total += z[i]
    for i in range(z.shape[0]):
        z[i] /= total


def _content_(out, sim, norms, key, strength, eps):
    """``out`` [N] = softmax(strength * cos(key, memory rows)), from ``sim`` [N] = memory @ key,
    the rows' ``norms`` [N] and ``key`` [W]."""
    key_norm = math.sqrt((key * key).sum() + eps)
    for n in range(sim.shape[0]):
        out[n] = strength * sim[n] / (key_norm * norms[n] + eps)
    _softmax_(out)


def _sample_step(first, xi, memory, norms, usage, read_weights, write_weights, precedence, link, reads,
                 scratch, r_heads, eps):  # fmt: skip
    """One memory step of one sample, in place in its state; see :func:`memory_step`.

    ``xi`` [I] the raw interface vector; ``memory`` [N, W]; ``norms``, ``usage``,
    ``write_weights``, ``precedence`` [N]; ``read_weights`` [R, N]; ``link`` [N, N]; ``reads``
    [R * W] (output); ``scratch`` [3 + 2R, N].
    """
    n_slots, width = memory.shape
    rw = r_heads * width
    # interface vector layout (see DNC._parts): read keys, write key, write vector, strengths (R, 1),
    # erase, free gates (R), allocation gate, write gate, read modes (R x 3: backward, forward, content)
    o_strength = rw + 2 * width
    o_erase = o_strength + r_heads + 1
    o_free = o_erase + width
    o_modes = o_free + r_heads + 2
    write_key = xi[rw : rw + width]
    values = xi[rw + width : rw + 2 * width]
    write_strength = _oneplus(xi[o_strength + r_heads])
    alloc_gate = _sigmoid(xi[o_free + r_heads])
    write_gate = _sigmoid(xi[o_free + r_heads + 1])
    alloc, content, new_w = scratch[0], scratch[1], scratch[2]
    one, zero = eps / eps, eps - eps  # in the arrays' dtype: keeps the hot loops in float32

    gates = np.empty(width + r_heads, dtype=xi.dtype)  # erase vector [W], then free gates [R]
    for k in range(width + r_heads):
        gates[k] = _sigmoid(xi[o_erase + k])
    erase, free = gates[:width], gates[width:]

    if not first:  # usage u = (u + w - u w) * prod_r (1 - f_r w^r); zero on the first step
        for n in range(n_slots):
            u = usage[n] + write_weights[n] * (1.0 - usage[n])
            for r in range(r_heads):
                u *= 1.0 - free[r] * read_weights[r, n]
            usage[n] = u
    # allocation: free list sorted by usage (stable), exclusive cumulative product
    for n in range(n_slots):
        content[n] = eps + (1.0 - eps) * usage[n]
    order = np.argsort(content, kind="mergesort")
    before = 1.0
    for j in range(n_slots):
        slot = order[j]
        alloc[slot] = (1.0 - content[slot]) * before
        before *= content[slot]
    # write weighting from content and allocation; erase then add; new row norms
    _content_(content, np.dot(memory, write_key), norms, write_key, write_strength, eps)
    for n in range(n_slots):
        c = content[n]
        new_w[n] = write_gate * (c + alloc_gate * (alloc[n] - c))
    for n in range(n_slots):
        w = new_w[n]
        row = memory[n]
        total = zero
        for k in range(width):
            v = row[k] * (one - w * erase[k]) + w * values[k]
            row[k] = v
            total += v * v
        norms[n] = np.sqrt(total + eps)
    # temporal link L[i, j] <- (1 - w_i - w_j) L[i, j] + w_i p_j (zero diagonal), then the
    # directional weights from the previous read weights: forward = L w^r, backward = L^T w^r
    if not first:
        for i in range(n_slots):
            wi = new_w[i]
            keep = one - wi
            row = link[i]
            for j in range(n_slots):
                row[j] = row[j] * (keep - new_w[j]) + wi * precedence[j]
            row[i] = zero
        forward = np.dot(read_weights, link.T)  # [R, N]
        backward = np.dot(read_weights, link)  # [R, N]
    else:  # the link is still zero, and so are both
        forward = scratch[3 : 3 + r_heads]
        backward = scratch[3 + r_heads : 3 + 2 * r_heads]
        forward[:, :] = 0.0
        backward[:, :] = 0.0
    written = new_w.sum()
    for n in range(n_slots):
        precedence[n] = (1.0 - written) * precedence[n] + new_w[n]
        write_weights[n] = new_w[n]
    # reads: per head, softmax over modes (backward, forward, content) mixes the weightings
    keys = xi[:rw].reshape(r_heads, width)
    sims = np.dot(keys, memory.T)  # [R, N]
    for r in range(r_heads):
        _content_(content, sims[r], norms, keys[r], _oneplus(xi[o_strength + r]), eps)
        m0, m1, m2 = xi[o_modes + 3 * r], xi[o_modes + 3 * r + 1], xi[o_modes + 3 * r + 2]
        top = max(m0, max(m1, m2))
        e0, e1, e2 = math.exp(m0 - top), math.exp(m1 - top), math.exp(m2 - top)
        total = e0 + e1 + e2
        e0, e1, e2 = e0 / total, e1 / total, e2 / total
        weights = read_weights[r]
        for n in range(n_slots):
            weights[n] = e0 * backward[r, n] + e1 * forward[r, n] + e2 * content[n]
    reads[:] = np.dot(read_weights, memory).ravel()  # [R * W]


def _batch_step(first, xi, memory, norms, usage, read_weights, write_weights, precedence, link, reads,
                scratch, r_heads, eps):  # fmt: skip
    """:func:`_sample_step` for every sample of the batch (leading dim of every array), in order."""
    for b in range(xi.shape[0]):
        _sample_step(first, xi[b], memory[b], norms[b], usage[b], read_weights[b], write_weights[b],
                     precedence[b], link[b], reads[b], scratch[b], r_heads, eps)  # fmt: skip


def _batch_step_parallel(first, xi, memory, norms, usage, read_weights, write_weights, precedence, link, reads,
                         scratch, r_heads, eps):  # fmt: skip
    """:func:`_batch_step` with the samples spread over numba's threads."""
    for b in numba.prange(xi.shape[0]):
        _sample_step(first, xi[b], memory[b], norms[b], usage[b], read_weights[b], write_weights[b],
                     precedence[b], link[b], reads[b], scratch[b], r_heads, eps)  # fmt: skip


if numba is not None:  # compiled on first call, then loaded from numba's on-disk cache
    _jit = functools.partial(numba.njit, cache=True, fastmath=_FASTMATH, boundscheck=False, nogil=True)
    _oneplus, _sigmoid, _softmax_, _content_ = _jit(_oneplus), _jit(_sigmoid), _jit(_softmax_), _jit(_content_)
    _sample_step, _batch_step = _jit(_sample_step), _jit(_batch_step)
    _batch_step_parallel = _jit(parallel=True)(_batch_step_parallel)


class InferenceState:
    """The DNC's memory state for a batch of B samples, as numpy arrays, all starting at zero.

    ``memory`` [B, N, W], ``norms`` [B, N] (safe norms of the zero rows), ``usage``,
    ``write_weights``, ``precedence`` [B, N], ``read_weights`` [B, R, N], ``link`` [B, N, N],
    ``scratch`` [B, 3 + 2R, N].
    """

    def __init__(self, batch: int, slots: int, width: int, read_heads: int, dtype: np.dtype):
        """Zero state for ``batch`` samples of an N = ``slots``, W = ``width`` memory."""
        z = functools.partial(np.zeros, dtype=dtype)
        self.memory = z((batch, slots, width))
        self.norms = z((batch, slots)) + dtype.type(EPSILON**0.5)
        self.usage, self.write_weights, self.precedence = z((batch, slots)), z((batch, slots)), z((batch, slots))
        self.read_weights = z((batch, read_heads, slots))
        self.link = z((batch, slots, slots))
        self.scratch = z((batch, 3 + 2 * read_heads, slots))
        self.read_heads, self.first = read_heads, True


def memory_step(state: InferenceState, xi: torch.Tensor, threads: int = 1) -> torch.Tensor:
    """One step of memory access for the batch, in place in ``state``.

    ``xi`` [B, I]: the raw interface vectors (before their activations), laid out as
    ``DNC._parts`` with one write head. Returns the read vectors [B, R * W] as a new tensor.
    ``threads`` > 1 spreads the samples over that many numba threads.
    """
    if numba is None:
        raise RuntimeError("clbench_memory.compiled needs numba; install it or evaluate with the torch path")
    xi_np = xi.detach().contiguous().numpy()
    s = state
    reads = np.empty((xi_np.shape[0], s.read_heads * s.memory.shape[2]), dtype=s.memory.dtype)
    args = (s.first, xi_np, s.memory, s.norms, s.usage, s.read_weights, s.write_weights, s.precedence, s.link,
            reads, s.scratch, s.read_heads, s.memory.dtype.type(EPSILON))  # fmt: skip
    if threads > 1 and xi_np.shape[0] > 1:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        _batch_step_parallel(*args)
    else:
        _batch_step(*args)
    s.first = False
    return torch.from_numpy(reads)
