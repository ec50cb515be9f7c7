"""The DNC's evaluation compiled with numba: a whole sequence in one call, without autograd.

Evaluating a DNC on a CPU is bound by passes over the per-sample [N, N] link and [N, W] memory,
by per-operation overhead and by transcendental functions, not by arithmetic: as torch operations
on a batch, each step makes about a dozen passes over [B, N, N] and [B, N, W] tensors that no
longer fit in cache, plus about eighty operator calls. :func:`run_sequence` instead runs the
controller (batched matrix products through BLAS), the interface and the memory access of every
step in one compiled call, one sample at a time for the memory (its link and memory stay in
cache), with a vectorised float32 exponential (:func:`_exp_`) for the gates and softmaxes.

It is the same mathematics as :meth:`clbench_memory.dnc.DNC.forward` with one write head (values
agree to float rounding; see ``tests/plugins/test_memory_models.py``); the DNC uses it for float32
calls when autograd records nothing. The DNC imports this module (and with it numba) on its first
evaluation call; the kernels are compiled on their first call (about 20 s on a 2-core machine) and
cached on disk by numba (beside this file, or in the user's cache folder when that is read-only),
so later processes load them in well under a second. Without numba (:func:`available` is False)
the DNC evaluates with its torch operations.
"""

from __future__ import annotations

import functools
import math
import os

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
    """True when numba can be imported, so :func:`run_sequence` can run."""
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


def _exp_(z, bits):
    """``z <- exp(z)`` in place for a float32 1-D array, vectorisable (libm's exp is not).

    Cephes' single-precision method: ``exp(x) = 2^n exp(r)`` with ``n = round(x / ln 2)`` and a
    degree-6 polynomial for ``exp(r)`` (relative error about 1e-7); ``x`` is first clamped to
    [-87, 87], so results stay normal floats. ``bits``: an int32 scratch array at least as long.
    """
    for i in range(z.shape[0]):
        x = min(max(z[i], np.float32(-87.0)), np.float32(87.0))
        n = np.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
        x = x - n * np.float32(0.693359375) + n * np.float32(2.12194440e-4)  # ln 2 in two parts
        y = np.float32(1.9875691500e-4)
        y = y * x + np.float32(1.3981999507e-3)
        y = y * x + np.float32(8.3334519073e-3)
        y = y * x + np.float32(4.1665795894e-2)
        y = y * x + np.float32(1.6666665459e-1)
        y = y * x + np.float32(5.0000001201e-1)
        z[i] = y * x * x + x + np.float32(1.0)
        bits[i] = (np.int32(n) + np.int32(127)) << 23  # the float32 bit pattern of 2^n
    scale = bits[: z.shape[0]].view(np.float32)
    for i in range(z.shape[0]):
        z[i] *= scale[i]


def _softmax_(z, bits):
    """In-place softmax of a float32 1-D array ``z`` (``bits``: int32 scratch for :func:`_exp_`)."""
    z -= z.max()
    _exp_(z, bits)
    z *= np.float32(1.0) / z.sum()


def _content_(out, sim, norms, key, strength, eps, bits):
    """``out`` [N] = softmax(strength * cos(key, memory rows)), from ``sim`` [N] = memory @ key,
    the rows' ``norms`` [N] and ``key`` [W]."""
    key_norm = math.sqrt((key * key).sum() + eps)
    for n in range(sim.shape[0]):
        out[n] = strength * sim[n] / (key_norm * norms[n] + eps)
    _softmax_(out, bits)


def _sample_step(first, xi, memory, norms, usage, read_weights, write_weights, precedence, link, reads,
                 scratch, r_heads, eps):  # fmt: skip
    """One memory step of one sample, in place in its state (float32 arrays).

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

    bits = np.empty(max(n_slots, width + r_heads), dtype=np.int32)  # scratch of _exp_
    gates = np.empty(width + r_heads, dtype=xi.dtype)  # erase vector [W], then free gates [R]
    for k in range(width + r_heads):
        gates[k] = -xi[o_erase + k]
    _exp_(gates, bits)
    for k in range(width + r_heads):
        gates[k] = one / (one + gates[k])  # sigmoid
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
    order = np.argsort(content, kind="mergesort")  # stable, as torch.sort(stable=True)
    before = 1.0
    for j in range(n_slots):
        slot = order[j]
        alloc[slot] = (1.0 - content[slot]) * before
        before *= content[slot]
    # write weighting from content and allocation; erase then add; new row norms
    _content_(content, np.dot(memory, write_key), norms, write_key, write_strength, eps, bits)
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
        _content_(content, sims[r], norms, keys[r], _oneplus(xi[o_strength + r]), eps, bits)
        m0, m1, m2 = xi[o_modes + 3 * r], xi[o_modes + 3 * r + 1], xi[o_modes + 3 * r + 2]
        top = max(m0, max(m1, m2))
        e0, e1, e2 = math.exp(m0 - top), math.exp(m1 - top), math.exp(m2 - top)
        total = e0 + e1 + e2
        e0, e1, e2 = e0 / total, e1 / total, e2 / total
        weights = read_weights[r]
        for n in range(n_slots):
            weights[n] = e0 * backward[r, n] + e1 * forward[r, n] + e2 * content[n]
    reads[:] = np.dot(read_weights, memory).ravel()  # [R * W]


def _lstm_cell_(gates, h, c, bits):
    """LSTM update in place: ``gates`` [B, 4H] pre-activations (input, forget, output, cell) ->
    new ``c`` and ``h`` [B, H] (as :meth:`~clbench_memory.controller.LSTMController.step`).
    ``gates`` is overwritten; ``bits``: int32 scratch of B * 4H for :func:`_exp_`.

    With ``e = exp(-x)``, sigmoid(x) = 1 / (1 + e); with ``e = exp(-2x)``, tanh(x) = 2 / (1 + e) - 1:
    the exponentials of a whole array at a time, vectorised.
    """
    batch, hidden = h.shape
    one, two = np.float32(1.0), np.float32(2.0)
    for b in range(batch):
        g = gates[b]
        for k in range(3 * hidden):
            g[k] = -g[k]
        for k in range(3 * hidden, 4 * hidden):
            g[k] = -two * g[k]
    _exp_(gates.reshape(batch * 4 * hidden), bits)
    for b in range(batch):
        g = gates[b]
        for k in range(hidden):
            cell = c[b, k] / (one + g[hidden + k]) + (two / (one + g[3 * hidden + k]) - one) / (one + g[k])
            c[b, k] = cell
            g[2 * hidden + k] = one / (one + g[2 * hidden + k])  # the output gate, kept for below
            h[b, k] = -two * cell
    _exp_(h.reshape(batch * hidden), bits)
    for b in range(batch):
        for k in range(hidden):
            h[b, k] = gates[b, 2 * hidden + k] * (two / (one + h[b, k]) - one)


def _sequence(x_gates, w_reads_t, w_h_t, w_interface_t, b_interface, memory, norms, usage, read_weights,
              write_weights, precedence, link, scratch, hiddens, reads_out, clip_value, r_heads, eps):  # fmt: skip
    """The DNC's controller and memory over a whole sequence; see :func:`run_sequence`.

    ``x_gates`` [T, B, 4H]: gate pre-activations from the inputs; ``w_reads_t`` [R*W, 4H] and
    ``w_h_t`` [H, 4H]: the recurrent weights, transposed; ``w_interface_t`` [H, I] and
    ``b_interface`` [I]: the interface layer; the memory state as in :class:`InferenceState`.
    Writes ``hiddens`` [T, B, H] (clipped controller outputs) and ``reads_out`` [T, B, R*W].
    One function, so that numba compiles (and LLVM optimises) the step's code once.
    """
    batch = x_gates.shape[1]
    h = np.zeros(hiddens.shape[1:], dtype=x_gates.dtype)  # [B, H]
    c, reads, bits = np.zeros_like(h), np.zeros_like(reads_out[0]), np.empty(x_gates[0].size, dtype=np.int32)
    for t in range(x_gates.shape[0]):
        gates = np.dot(reads, w_reads_t)  # [B, 4H]: the controller, fed [x_t, r_{t-1}]
        gates += np.dot(h, w_h_t)
        gates += x_gates[t]
        _lstm_cell_(gates, h, c, bits)
        h_out = hiddens[t]
        for b in range(batch):  # an LSTM output lies in (-1, 1): only a clip below 1 changes it
            for k in range(h.shape[1]):
                h_out[b, k] = min(max(h[b, k], -clip_value), clip_value) if 0 < clip_value < 1 else h[b, k]
        xi = np.dot(h_out, w_interface_t)  # [B, I]: the raw interface vectors
        xi += b_interface
        reads = reads_out[t]
        for b in range(batch):
            _sample_step(t == 0, xi[b], memory[b], norms[b], usage[b], read_weights[b], write_weights[b],
                         precedence[b], link[b], reads[b], scratch[b], r_heads, eps)  # fmt: skip


if numba is not None:  # compiled on first call, then loaded from numba's on-disk cache
    _jit = functools.partial(numba.njit, cache=True, fastmath=_FASTMATH, boundscheck=False, nogil=True)
    _oneplus, _sigmoid, _exp_, _softmax_, _content_ = map(_jit, (_oneplus, _sigmoid, _exp_, _softmax_, _content_))
    _sample_step, _lstm_cell_, _sequence = _jit(_sample_step), _jit(_lstm_cell_), _jit(_sequence)


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


@functools.cache
def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries loaded, scipy's (which numba calls) included."""
    import scipy.linalg.cython_blas  # noqa: F401 - load it before the controller looks
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas_threads(threads: int):
    """Context manager: BLAS (OpenBLAS) limited to ``threads`` threads per calling thread.

    numba's ``np.dot`` calls scipy's OpenBLAS, whose threads (one per core by default) keep
    spinning after each call and took the core a run needs: evaluation ran 5x slower with them.
    """
    return _blas_controller().limit(limits=threads, user_api="blas")


def run_sequence(
    x_gates: torch.Tensor,
    weight_rh: torch.Tensor,
    interface_weight: torch.Tensor,
    interface_bias: torch.Tensor,
    memory_slots: int,
    word_size: int,
    read_heads: int,
    clip_value: float | None,
    threads: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The DNC's controller and memory access over a sequence, from an all-zero state, in one call.

    ``x_gates`` [T, B, 4H]: the controller's gate pre-activations from the inputs (bias included);
    ``weight_rh`` [4H, R*W + H]: its recurrent weights over ``[reads, h]``; ``interface_weight``
    [I, H] and ``interface_bias`` [I]: the interface layer (one write head). Returns the clipped
    controller outputs [T, B, H] and the read vectors [T, B, R*W] (all float32), from which the DNC's output
    layer makes its outputs. ``threads`` > 1 splits the batch into that many parts, run in
    parallel threads (the kernel releases the GIL).
    """
    if numba is None:
        raise RuntimeError("clbench_memory.compiled needs numba; install it or evaluate with the torch path")
    if x_gates.dtype != torch.float32:
        raise ValueError(f"the compiled DNC runs float32 only, got {x_gates.dtype}")
    steps, batch, hidden = x_gates.shape[0], x_gates.shape[1], weight_rh.shape[1] - read_heads * word_size
    w_rh = weight_rh.detach()
    rw = read_heads * word_size
    weights = tuple(t.detach().contiguous().numpy() for t in (
        w_rh[:, :rw].t(), w_rh[:, rw:].t(), interface_weight.t(), interface_bias))  # fmt: skip
    x_np = x_gates.detach().contiguous().numpy()
    eps = x_np.dtype.type(EPSILON)

    def run(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples lo..hi-1 -> their hiddens [T, n, H] and reads [T, n, R*W]."""
        s = InferenceState(hi - lo, memory_slots, word_size, read_heads, x_np.dtype)
        hiddens = np.empty((steps, hi - lo, hidden), dtype=x_np.dtype)
        reads = np.empty((steps, hi - lo, rw), dtype=x_np.dtype)
        _sequence(np.ascontiguousarray(x_np[:, lo:hi]), *weights, s.memory, s.norms, s.usage, s.read_weights,
                  s.write_weights, s.precedence, s.link, s.scratch, hiddens, reads, float(clip_value or 0.0),
                  read_heads, eps)  # fmt: skip
        return hiddens, reads

    parts = min(max(1, threads), batch)
    with _blas_threads(1):  # one BLAS thread per part: ``parts`` threads in all
        if parts == 1:
            hiddens, reads = run(0, batch)
        else:  # the kernels release the GIL: one Python thread per part of the batch
            bounds = [batch * i // parts for i in range(parts + 1)]
            done = list(_pool(parts, os.getpid()).map(run, bounds[:-1], bounds[1:]))
            hiddens = np.concatenate([d[0] for d in done], axis=1)
            reads = np.concatenate([d[1] for d in done], axis=1)
    return torch.from_numpy(hiddens), torch.from_numpy(reads)


@functools.cache
def _pool(threads: int, pid: int):
    """A thread pool of ``threads`` workers, kept for later calls of process ``pid`` (a forked
    child gets its own: the parent's threads do not exist there)."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clbench-dnc")
