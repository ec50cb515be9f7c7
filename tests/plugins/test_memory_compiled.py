"""The DNC's compiled (numba) evaluation path: against the paper's equations and the torch path,
and only where it applies (float32, no autograd, one write head, numba installed)."""

from __future__ import annotations

import pytest
import torch

from clbench_memory import DNC, compiled
from tests.plugins.test_memory_models import naive_dnc

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/plugins/conftest.py


def count_compiled_calls(monkeypatch) -> list[tuple[int, int]]:
    """Record (steps, batch) of every call of the compiled DNC from now on."""
    calls: list[tuple[int, int]] = []
    run = compiled.run_sequence

    def counted(x_gates, *args, **kwargs):
        calls.append((x_gates.shape[0], x_gates.shape[1]))
        return run(x_gates, *args, **kwargs)

    monkeypatch.setattr(compiled, "run_sequence", counted)
    return calls


@pytest.mark.parametrize("clip_value", [20.0, 0.5, None])
def test_compiled_inference_matches_the_naive_dnc(clip_value, monkeypatch):
    """The numba kernel (float32) against the paper's equations computed in float64."""
    torch.manual_seed(0)
    model = DNC(input_size=3, output_size=2, memory_slots=5, word_size=3, read_heads=2, hidden_size=6,
                clip_value=clip_value)  # fmt: skip
    x = torch.randn(3, 6, 3)
    calls = count_compiled_calls(monkeypatch)
    with torch.no_grad():
        fast = model(x)
        reference = naive_dnc(model.double(), x.double())
    assert calls == [(6, 3)] and fast.dtype == torch.float32
    assert torch.allclose(fast.double(), reference, atol=2e-5)


@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_inference_equals_the_torch_path_at_default_size(threads, monkeypatch):
    """The numba kernel (one thread, or the batch split over two) against the fused torch
    operations for the default 128 x 64 memory with 4 read heads, from inference mode."""
    assert compiled.available(), "numba is a dependency of clbench; the compiled path must be available"
    torch.manual_seed(1)
    model = DNC(input_size=4, output_size=5).eval()
    x = torch.randn(7, 8, 4)
    calls = count_compiled_calls(monkeypatch)
    torch.set_num_threads(threads)
    with torch.inference_mode():
        fast = model(x)
        model.compiled_inference = False
        reference = model(x)
    assert calls == [(8, 7)]
    assert fast.shape == (7, 8, 5) and torch.allclose(fast, reference, atol=1e-5)
    assert torch.equal(fast.argmax(-1), reference.argmax(-1))


def test_compiled_path_serves_only_float32_calls_without_autograd_and_with_one_write_head(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 3)
    model = DNC(input_size=3, output_size=2, memory_slots=6, word_size=4, read_heads=2, hidden_size=5)
    calls = count_compiled_calls(monkeypatch)
    assert model(x).requires_grad and calls == []  # training: autograd needs the torch operations
    with torch.no_grad():
        y = model(x)
    assert calls == [(4, 3)]
    two_heads = DNC(input_size=3, output_size=2, memory_slots=6, word_size=4, read_heads=2, write_heads=2)
    with torch.no_grad():
        two_heads(x)
        model.trace(x)  # traces keep every step's weightings: the torch path
        torch.func.vmap(model)(x.unsqueeze(0))  # under a torch.func transform: the torch path
        model.double()(x.double())  # float64: the torch path
    model.float()
    assert len(calls) == 1
    monkeypatch.setattr(compiled, "numba", None)  # as if numba were not installed
    assert not compiled.available()
    with torch.no_grad():
        assert torch.allclose(model(x), y, atol=1e-6)
    assert len(calls) == 1
