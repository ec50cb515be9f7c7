"""Memory mechanisms of clbench_memory against hand-computed values, and the fused autograd nodes
against the plain compositions (values, gradients and second derivatives)."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck as _gradcheck
from torch.autograd import gradgradcheck as _gradgradcheck

from clbench_memory import addressing as A
from clbench_memory.fused import link_step
from clbench_memory.fused_read import memory_read
from clbench_memory.fused_write import memory_write, write_step
from clbench_memory.ntm import circular_shift, interpolate, sharpen

D = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/plugins/conftest.py


def gradcheck(f, inputs) -> bool:
    """torch's gradcheck in fast mode (random projections): same bugs found, a fraction of the time."""
    return _gradcheck(f, inputs, fast_mode=True)


def gradgradcheck(f, inputs) -> bool:
    """torch's gradgradcheck in fast mode."""
    return _gradgradcheck(f, inputs, fast_mode=True)


def t(*rows) -> torch.Tensor:
    """A float64 tensor from nested lists."""
    return torch.tensor(rows[0] if len(rows) == 1 else list(rows), dtype=D)


# --- DNC: usage and allocation --------------------------------------------------------------


def test_allocation_matches_hand_computed_free_list():
    usage = t([[0.2, 0.8, 0.1, 0.5]])
    # free list by usage: slot 2 (0.1), slot 0 (0.2), slot 3 (0.5), slot 1 (0.8)
    # a[phi_j] = (1 - u[phi_j]) * prod_{i<j} u[phi_i]
    expected = t([[0.8 * 0.1, 0.2 * (0.1 * 0.2 * 0.5), 0.9, 0.5 * (0.1 * 0.2)]])
    got = A.allocation(usage)
    assert torch.allclose(got, expected, atol=1e-5)
    assert got.sum() <= 1.0


def test_allocation_of_empty_memory_picks_the_first_slot():
    got = A.allocation(torch.zeros(2, 5, dtype=D))
    assert torch.allclose(got[:, 0], torch.ones(2, dtype=D), atol=1e-5)
    assert got[:, 1:].max() < 1e-5


def test_several_write_heads_allocate_one_after_another():
    usage = t([[0.2, 0.8, 0.1, 0.5]])
    got = A.write_allocations(usage, t([[1.0, 1.0]]))  # [1, 2, 4]
    assert torch.allclose(got[0, 0], t([0.08, 0.002, 0.9, 0.01]), atol=1e-5)
    # head 2 sees u + (1 - u) * a_1 = [0.264, 0.8004, 0.91, 0.505]
    assert torch.allclose(got[0, 1], t([0.736, 0.026610672, 0.00960383952, 0.13068]), atol=1e-5)


def test_usage_update_adds_writes_and_frees_read_slots():
    usage = A.update_usage(
        prev_usage=t([[0.5, 0.0, 1.0]]),
        prev_write_weights=t([[[0.5, 1.0, 0.0]]]),
        free_gates=t([[1.0]]),
        prev_read_weights=t([[[0.0, 0.0, 1.0]]]),
    )
    assert torch.allclose(usage, t([[0.75, 1.0, 0.0]]))


def test_write_weighting_mixes_allocation_and_content_under_the_write_gate():
    got = A.write_weighting(t([[[1.0, 0.0]]]), t([[[0.0, 1.0]]]), allocation_gate=t([[0.25]]), write_gate=t([[0.5]]))
    assert torch.allclose(got, t([[[0.125, 0.375]]]))


def test_erase_then_add():
    memory = t([[[1.0, 2.0], [3.0, 4.0]]])
    got = A.erase_and_add(memory, t([[[1.0, 0.5]]]), erase=t([[[1.0, 0.0]]]), values=t([[[10.0, 20.0]]]))
    # row 0: erase column 0 fully then add v; row 1: erase half of column 0 then add v / 2
    assert torch.allclose(got, t([[[10.0, 22.0], [6.5, 14.0]]]))


# --- DNC: content addressing ----------------------------------------------------------------


def test_content_weights_prefer_the_matching_row_and_sharpen_with_strength():
    memory = t([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    keys = t([[[2.0, 0.0]]])
    soft = A.content_weights(memory, keys, t([[1.0]]))
    sharp = A.content_weights(memory, keys, t([[50.0]]))
    e = torch.exp(t([1.0, 0.0, -1.0]))
    assert torch.allclose(soft[0, 0], e / e.sum(), atol=1e-5)
    assert sharp[0, 0, 0] > 0.999


@pytest.mark.parametrize("zero_keys", [False, True])
def test_content_addressing_has_finite_first_and_second_derivatives_at_zero_memory(zero_keys):
    memory = torch.zeros(2, 4, 3, dtype=D, requires_grad=True)
    keys = (torch.zeros(2, 2, 3, dtype=D) if zero_keys else torch.randn(2, 2, 3, dtype=D)).requires_grad_()
    strengths = torch.full((2, 2), 2.0, dtype=D, requires_grad=True)
    weights = A.content_weights(memory, keys, strengths)
    assert torch.allclose(weights, torch.full_like(weights, 0.25))
    loss = (weights * torch.arange(4, dtype=D)).sum()
    grads = torch.autograd.grad(loss, (memory, keys, strengths), create_graph=True)
    assert all(torch.isfinite(g).all() for g in grads)
    second = torch.autograd.grad(sum((g * g).sum() for g in grads), (memory, keys, strengths), allow_unused=True)
    assert all(g is None or torch.isfinite(g).all() for g in second)
    assert torch.autograd.grad(A.safe_norm(memory).sum(), memory, create_graph=True)[0].abs().max() == 0


# --- DNC: temporal links --------------------------------------------------------------------


def test_link_records_write_order_and_reads_follow_it():
    n = 3
    link, prec = torch.zeros(1, 1, n, n, dtype=D), torch.zeros(1, 1, n, dtype=D)
    off = 1.0 - torch.eye(n, dtype=D)
    for slot in (0, 1):  # write slot 0, then slot 1
        w = torch.zeros(1, 1, n, dtype=D)
        w[0, 0, slot] = 1.0
        link = A.update_link(link, prec, w, off)
        prec = A.update_precedence(prec, w)
    assert link[0, 0, 1, 0] == 1.0 and link.sum() == 1.0  # slot 1 was written right after slot 0
    forward, backward = A.directional_weights(link, t([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]))
    assert torch.equal(forward[0, 0, 0], t([0.0, 1.0, 0.0]))  # from slot 0 forward to slot 1
    assert torch.equal(backward[0, 1, 0], t([1.0, 0.0, 0.0]))  # from slot 1 back to slot 0


def test_link_matrix_has_zero_diagonal_and_rows_and_columns_summing_to_at_most_one():
    torch.manual_seed(0)
    b, k, n = 4, 2, 6
    link, prec = torch.zeros(b, k, n, n), torch.zeros(b, k, n)
    off = 1.0 - torch.eye(n)
    for _ in range(12):
        w = torch.softmax(3 * torch.randn(b, k, n), -1) * torch.rand(b, k, 1)
        link = A.update_link(link, prec, w, off)
        prec = A.update_precedence(prec, w)
        assert torch.all(torch.diagonal(link, dim1=-2, dim2=-1) == 0)
        assert link.min() >= 0 and link.max() <= 1
        assert link.sum(3).max() <= 1 + 1e-6 and link.sum(2).max() <= 1 + 1e-6
        assert prec.sum(2).max() <= 1 + 1e-6
        fused_link, fused_f, fused_b = link_step(link, prec, w, torch.softmax(torch.randn(b, 3, n), -1))
        assert torch.all(torch.diagonal(fused_link, dim1=-2, dim2=-1) == 0)


def test_read_weighting_mixes_backward_forward_and_content():
    content, forward, backward = t([[[1.0, 0.0, 0.0]]]), t([[[[0.0, 1.0, 0.0]]]]), t([[[[0.0, 0.0, 1.0]]]])
    got = A.read_weighting(content, forward, backward, modes=t([[[0.2, 0.3, 0.5]]]))  # backward, forward, content
    assert torch.allclose(got, t([[[0.5, 0.3, 0.2]]]))


# --- NTM addressing -------------------------------------------------------------------------


def test_ntm_interpolation():
    assert torch.allclose(interpolate(t([[[1.0, 0.0]]]), t([[[0.0, 1.0]]]), t([[0.25]])), t([[[0.25, 0.75]]]))


def test_ntm_circular_shift_moves_and_wraps_the_focus():
    one_hot = t([[[0.0, 0.0, 1.0, 0.0, 0.0]]])
    assert torch.equal(circular_shift(one_hot, t([[[0.0, 0.0, 1.0]]])), t([[[0.0, 0.0, 0.0, 1.0, 0.0]]]))  # +1
    assert torch.equal(circular_shift(one_hot, t([[[1.0, 0.0, 0.0]]])), t([[[0.0, 1.0, 0.0, 0.0, 0.0]]]))  # -1
    last = t([[[0.0, 0.0, 0.0, 0.0, 1.0]]])
    assert torch.equal(circular_shift(last, t([[[0.0, 0.0, 1.0]]])), t([[[1.0, 0.0, 0.0, 0.0, 0.0]]]))  # wraps
    # w~(i) = 0.2 w(i + 1) + 0.5 w(i) + 0.3 w(i - 1)
    mixed = circular_shift(t([[[0.5, 0.5, 0.0, 0.0, 0.0]]]), t([[[0.2, 0.5, 0.3]]]))
    assert torch.allclose(mixed, t([[[0.35, 0.4, 0.15, 0.0, 0.1]]]))


def test_ntm_sharpening():
    w = t([[[0.5, 0.25, 0.25]]])
    assert torch.allclose(sharpen(w, t([[2.0]])), t([[[2 / 3, 1 / 6, 1 / 6]]]), atol=1e-9)
    assert torch.allclose(sharpen(w, t([[1.0]])), w, atol=1e-9)
    tiny = torch.full((1, 1, 4), 1e-30, dtype=torch.float32)  # powers underflow: no 0 / 0
    assert torch.allclose(sharpen(tiny, torch.tensor([[30.0]])), torch.full((1, 1, 4), 0.25))


# --- fused nodes against the plain compositions ------------------------------------------------


def _link_inputs(prev_link: bool):
    torch.manual_seed(1)
    b, k, r, n = 2, 2, 3, 5
    link = (0.2 * torch.rand(b, k, n, n, dtype=D) * (1 - torch.eye(n, dtype=D))).requires_grad_() if prev_link else None
    prec = (0.7 * torch.softmax(torch.randn(b, k, n, dtype=D), -1)).requires_grad_()
    w = (0.8 * torch.softmax(torch.randn(b, k, n, dtype=D), -1)).requires_grad_()
    reads = torch.softmax(torch.randn(b, r, n, dtype=D), -1).requires_grad_()
    return link, prec, w, reads


@pytest.mark.parametrize("prev_link", [True, False])
def test_fused_link_step_equals_the_plain_link_and_is_twice_differentiable(prev_link):
    link, prec, w, reads = _link_inputs(prev_link)
    n = w.shape[-1]
    base = link if link is not None else torch.zeros(*w.shape, n, dtype=D)
    plain_link = A.update_link(base, prec, w, 1 - torch.eye(n, dtype=D))
    plain = (plain_link, *A.directional_weights(plain_link, reads))
    fused = link_step(link, prec, w, reads)
    assert all(torch.allclose(a, b) for a, b in zip(fused, plain))
    inputs = tuple(x for x in (link, prec, w, reads) if x is not None)
    gs = [torch.randn_like(o) for o in plain]
    first = torch.autograd.grad(plain, inputs, gs)
    assert all(
        torch.allclose(a, b) for a, b in zip(torch.autograd.grad(link_step(link, prec, w, reads), inputs, gs), first)
    )
    with_graph = torch.autograd.grad(link_step(link, prec, w, reads), inputs, gs, create_graph=True)
    assert all(torch.allclose(a, b) for a, b in zip(with_graph, first))

    def f(*xs):
        return link_step(None, *xs) if link is None else link_step(*xs)

    assert gradcheck(f, inputs) and gradgradcheck(f, inputs)


def test_fused_memory_write_equals_erase_and_add_and_is_twice_differentiable():
    torch.manual_seed(2)
    memory = torch.randn(2, 5, 3, dtype=D, requires_grad=True)
    w = torch.rand(2, 1, 5, dtype=D, requires_grad=True)
    erase = torch.rand(2, 1, 3, dtype=D, requires_grad=True)
    values = torch.randn(2, 1, 3, dtype=D, requires_grad=True)
    new, squared = memory_write(memory, w, erase, values)
    plain = A.erase_and_add(memory, w, erase, values)
    assert torch.allclose(new, plain) and torch.allclose(squared, (plain * plain).sum(2))
    inputs = (memory, w, erase, values)
    assert gradcheck(memory_write, inputs) and gradgradcheck(memory_write, inputs)
    assert gradcheck(lambda *xs: memory_write(*xs)[0], inputs) and gradgradcheck(
        lambda *xs: memory_write(*xs)[0], inputs
    )
    assert gradcheck(lambda *xs: memory_write(*xs)[1], inputs)


@pytest.mark.parametrize("zero_memory", [False, True])
def test_fused_memory_read_equals_the_plain_read_and_is_twice_differentiable(zero_memory):
    torch.manual_seed(3)
    b, n, w, h = 2, 4, 3, 2
    memory = (torch.zeros(b, n, w, dtype=D) if zero_memory else torch.randn(b, n, w, dtype=D)).requires_grad_()
    keys = torch.randn(b, h, w, dtype=D, requires_grad=True)
    strengths = (1 + torch.rand(b, h, dtype=D)).requires_grad_()
    modes = torch.softmax(torch.randn(b, h, 3, dtype=D), -1).requires_grad_()
    directional = torch.rand(b, h, 2, n, dtype=D, requires_grad=True)  # backward, forward

    def fused(memory, keys, strengths, modes, directional):
        return memory_read(memory, A.safe_norm(memory), keys, strengths, modes, directional)

    content = A.content_weights(memory, keys, strengths)
    weights = A.read_weighting(content, directional[:, :, 1:], directional[:, :, :1], modes)
    got = fused(memory, keys, strengths, modes, directional)
    assert torch.allclose(got[0], weights) and torch.allclose(got[1], torch.bmm(weights, memory))
    inputs = (memory, keys, strengths, modes, directional)
    assert gradcheck(fused, inputs) and gradgradcheck(fused, inputs)
    only_content = lambda m, k, s: memory_read(m, A.safe_norm(m), k, s, read=False)[0]  # noqa: E731
    assert torch.allclose(only_content(memory, keys, strengths), content)
    assert gradgradcheck(only_content, (memory, keys, strengths))


@pytest.mark.parametrize("zero_memory", [False, True])
def test_fused_write_step_equals_the_plain_write_and_is_twice_differentiable(zero_memory):
    torch.manual_seed(4)
    b, n, w = 2, 4, 3
    memory = torch.zeros(b, n, w, dtype=D) if zero_memory else torch.randn(b, n, w, dtype=D, requires_grad=True)
    key = torch.randn(b, 1, w, dtype=D, requires_grad=True)
    strength = (1 + torch.rand(b, 1, dtype=D)).requires_grad_()
    allocation = (0.5 * torch.softmax(torch.randn(b, 1, n, dtype=D), -1)).requires_grad_()
    gates = [torch.rand(b, 1, dtype=D, requires_grad=True) for _ in range(2)]
    erase = torch.rand(b, 1, w, dtype=D, requires_grad=True)
    values = torch.randn(b, 1, w, dtype=D, requires_grad=True)

    def fused(*xs):
        mem = memory if zero_memory else xs[0]
        return write_step(mem, A.safe_norm(mem), *xs[0 if zero_memory else 1 :])

    inputs = (*(() if zero_memory else (memory,)), key, strength, allocation, *gates, erase, values)
    new, squared, weights = fused(*inputs)
    plain_weights = A.write_weighting(allocation, A.content_weights(memory, key, strength), gates[0], gates[1])
    plain_new = A.erase_and_add(memory, plain_weights, erase, values)
    assert torch.allclose(weights, plain_weights) and torch.allclose(new, plain_new)
    assert torch.allclose(squared, (plain_new * plain_new).sum(2))
    assert gradcheck(fused, inputs) and gradgradcheck(fused, inputs)
    assert gradcheck(lambda *xs: fused(*xs)[0], inputs) and gradcheck(lambda *xs: fused(*xs)[2], inputs)
