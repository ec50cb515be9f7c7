"""The memory models of clbench_memory: the DNC against a naive step-by-step implementation of the
paper, shapes and traces, second-order gradients as MAML takes them, parameter counts, the
sequence adapter and the plugin's registration."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from clbench.components import BuildContext
from clbench_memory import DNC, NTM, LSTMSequence, SequenceClassifier, TransformerSequence
from clbench_memory import addressing as A
from clbench_memory import plugin as P
from clbench_memory.controller import clip

NAMES = ["dnc", "ntm", "lstm", "transformer"]
BUILDERS = {"dnc": P.build_dnc, "ntm": P.build_ntm, "lstm": P.build_lstm, "transformer": P.build_transformer}
#: Small options per model, for tests that train or differentiate twice.
SMALL = {
    "dnc": P.DNCOptions(memory_slots=8, word_size=4, read_heads=2, hidden_size=8),
    "ntm": P.NTMOptions(memory_slots=8, word_size=4, read_heads=1, hidden_size=8),
    "lstm": P.LSTMOptions(hidden_size=8),
    "transformer": P.TransformerOptions(d_model=8, heads=2, layers=1, ff_size=16),
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/plugins/conftest.py


def small(name: str, steps: int = 3, input_shape=(6,), n_classes: int = 3) -> SequenceClassifier:
    """A small registered model reading 6 features in ``steps`` steps."""
    torch.manual_seed(0)
    return BUILDERS[name](SMALL[name], BuildContext.for_shapes(input_shape, n_classes, steps))


# --- the DNC against the paper, one slot at a time ---------------------------------------------


def naive_dnc(model: DNC, x: torch.Tensor) -> torch.Tensor:
    """The DNC's equations with explicit loops over batch, heads and slots (one write head).

    Uses the model's controller and interface parsing, so it checks the memory mechanics and
    their wiring: usage, the sorted free list, erase-then-add, links, precedence and reads.
    """
    b_size, steps = x.shape[:2]
    n, w_size, r_heads, eps = model.memory_slots, model.word_size, model.read_heads, A.EPSILON
    h = c = x.new_zeros(b_size, model.hidden_size)
    reads_flat = x.new_zeros(b_size, r_heads * w_size)
    mem = [x.new_zeros(n, w_size) for _ in range(b_size)]
    usage = [[0.0] * n for _ in range(b_size)]
    prec = [[0.0] * n for _ in range(b_size)]
    link = [[[0.0] * n for _ in range(n)] for _ in range(b_size)]
    w_read = [[[0.0] * n for _ in range(r_heads)] for _ in range(b_size)]
    w_write = [[0.0] * n for _ in range(b_size)]
    gates = model.controller.input_gates(x)
    outputs = []

    def norm(v):
        return torch.sqrt((v * v).sum() + eps)

    def content(m, key, strength):
        sims = torch.stack([key @ m[i] / (norm(key) * norm(m[i]) + eps) for i in range(n)])
        return torch.softmax(strength * sims, 0).tolist()

    for t in range(steps):
        h, c = model.controller.step(gates[t], reads_flat, h, c)
        h_out = clip(h, model.clip_value)
        xi = model._interface(h_out)
        new_reads = []
        for b in range(b_size):
            g = {k: v[b] for k, v in xi.items()}
            psi = [1.0] * n
            for r in range(r_heads):
                for i in range(n):
                    psi[i] *= 1 - float(g["free_gates"][r]) * w_read[b][r][i]
            u = [(usage[b][i] + w_write[b][i] - usage[b][i] * w_write[b][i]) * psi[i] for i in range(n)]
            usage[b] = u
            u_eps = [eps + (1 - eps) * ui for ui in u]
            alloc, prod = [0.0] * n, 1.0
            for i in sorted(range(n), key=lambda i: (u_eps[i], i)):  # free list, lowest usage first
                alloc[i] = (1 - u_eps[i]) * prod
                prod *= u_eps[i]
            cw = content(mem[b], g["write_keys"][0], g["write_strengths"][0])
            ga, gw = float(g["allocation_gates"][0]), float(g["write_gates"][0])
            ww = [gw * (ga * alloc[i] + (1 - ga) * cw[i]) for i in range(n)]
            e, v = g["erase"][0], g["write_vectors"][0]
            mem[b] = torch.stack([mem[b][i] * (1 - ww[i] * e) + ww[i] * v for i in range(n)])
            link[b] = [
                [0.0 if i == j else (1 - ww[i] - ww[j]) * link[b][i][j] + ww[i] * prec[b][j] for j in range(n)]
                for i in range(n)
            ]
            prec[b] = [(1 - sum(ww)) * prec[b][i] + ww[i] for i in range(n)]
            w_write[b] = ww
            reads_b = []
            for r in range(r_heads):
                prev = w_read[b][r]
                fwd = [sum(link[b][i][j] * prev[j] for j in range(n)) for i in range(n)]
                bwd = [sum(link[b][j][i] * prev[j] for j in range(n)) for i in range(n)]
                cr = content(mem[b], g["read_keys"][r], g["read_strengths"][r])
                pb, pf, pc = (float(p) for p in g["read_modes"][r])
                w_read[b][r] = [pb * bwd[i] + pf * fwd[i] + pc * cr[i] for i in range(n)]
                reads_b.append(torch.tensor(w_read[b][r], dtype=x.dtype) @ mem[b])
            new_reads.append(torch.cat(reads_b))
        reads_flat = torch.stack(new_reads)
        outputs.append(clip(model.output(torch.cat([h_out, reads_flat], 1)), model.clip_value))
    return torch.stack(outputs, 1)


@pytest.mark.parametrize("fused", [True, False])
def test_dnc_matches_a_naive_implementation_of_the_paper(fused):
    torch.manual_seed(0)
    model = DNC(input_size=3, output_size=2, memory_slots=5, word_size=3, read_heads=2, hidden_size=6, fused=fused)
    model = model.double()  # float64: the torch operations (the compiled path is float32)
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(model(x), naive_dnc(model, x), atol=1e-10)


# --- standalone API, shapes and traces --------------------------------------------------------


@pytest.mark.parametrize("cls", [DNC, NTM])
@pytest.mark.parametrize("heads", [(1, 1), (3, 2)])
def test_memory_models_map_sequences_and_trace_their_memory(cls, heads):
    read_heads, write_heads = heads
    torch.manual_seed(0)
    model = cls(
        input_size=5,
        output_size=3,
        memory_slots=10,
        word_size=4,
        read_heads=read_heads,
        write_heads=write_heads,
        hidden_size=8,
    )
    x = torch.randn(4, 7, 5)
    trace = model.trace(x)
    assert trace["outputs"].shape == (4, 7, 3)
    assert trace["read_weights"].shape == (4, 7, read_heads, 10)
    assert trace["write_weights"].shape == (4, 7, write_heads, 10)
    assert trace["usage"].shape == (4, 7, 10)
    for key in ("read_weights", "write_weights"):
        assert trace[key].min() >= 0 and trace[key].sum(3).max() <= 1 + 1e-5
    assert trace["usage"].min() >= 0 and trace["usage"].max() <= 1 + 1e-6
    assert torch.equal(model(x), trace["outputs"])
    outputs, again = model(x, return_trace=True)
    assert torch.equal(outputs, trace["outputs"]) and again.keys() == {"read_weights", "write_weights", "usage"}
    with pytest.raises(ValueError, match="expects x of shape"):
        model(torch.randn(4, 5))


def test_models_take_the_documented_keywords_and_reject_bad_sizes():
    kw = {
        "input_size": 4,
        "output_size": 2,
        "memory_slots": 12,
        "word_size": 6,
        "read_heads": 2,
        "write_heads": 1,
        "hidden_size": 8,
    }
    for cls in (DNC, NTM):
        assert cls(**kw)(torch.randn(1, 3, 4)).shape == (1, 3, 2)
        with pytest.raises(ValueError, match="memory_slots"):
            cls(**{**kw, "memory_slots": 0})
    assert DNC(input_size=4, output_size=2, clip_value=None)(torch.randn(1, 2, 4)).shape == (1, 2, 2)
    assert LSTMSequence(4, 2)(torch.randn(1, 3, 4)).shape == (1, 3, 2)
    assert TransformerSequence(4, 2)(torch.randn(1, 3, 4)).shape == (1, 3, 2)


def test_transformer_is_causal():
    torch.manual_seed(0)
    model = TransformerSequence(3, 2, d_model=8, heads=2, layers=2, ff_size=16)
    x = torch.randn(2, 5, 3)
    changed = x.clone()
    changed[:, 3:] = torch.randn(2, 2, 3)
    assert torch.allclose(model(x)[:, :3], model(changed)[:, :3], atol=1e-6)
    assert not torch.allclose(model(x)[:, 3:], model(changed)[:, 3:])


# --- as registered: the sequence adapter, independence of samples, inference ---------------


def test_sequence_adapter_splits_features_into_steps_and_zero_pads_the_end():
    model = small("lstm", steps=4, input_shape=(2, 5))  # 10 features -> 4 steps of 3, 2 zeros at the end
    assert model.features == 3 and model.core.input_size == 3
    x = torch.arange(1, 21, dtype=torch.float32).view(2, 2, 5)
    seq = model.to_sequence(x)
    assert seq.shape == (2, 4, 3)
    assert torch.equal(seq[0].flatten()[:10], torch.arange(1, 11, dtype=torch.float32))
    assert torch.equal(seq[:, -1, 1:], torch.zeros(2, 2))
    one_step = P.build_dnc(P.DNCOptions(steps=1, memory_slots=4, word_size=2), BuildContext.for_shapes((6,), 2, 5))
    assert one_step.steps == 1 and one_step.features == 6  # the option overrides the benchmark's steps


@pytest.mark.parametrize("name", NAMES)
def test_each_sample_starts_from_the_same_state(name):
    model = small(name)
    x = torch.randn(5, 6)
    logits = model(x)
    assert logits.shape == (5, 3)
    assert torch.equal(model(x), logits)  # deterministic
    alone = torch.cat([model(x[i : i + 1]) for i in range(5)])
    assert torch.allclose(alone, logits, atol=1e-6)  # no state carried between samples or calls
    with torch.inference_mode():
        assert torch.allclose(model(x), logits, atol=1e-6)


def test_registered_traces():
    x = torch.randn(3, 6)
    trace = small("dnc").trace(x)
    assert trace["read_weights"].shape == (3, 3, 2, 8) and trace["usage"].shape == (3, 3, 8)
    assert small("ntm").trace(x)["write_weights"].shape == (3, 3, 1, 8)
    with pytest.raises(TypeError, match="no memory trace"):
        small("lstm").trace(x)


# --- second-order gradients as MAML takes them -------------------------------------------------


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_second_order_gradients_are_finite(name, steps):
    model = small(name, steps=steps)
    params = dict(model.named_parameters())
    g = torch.Generator().manual_seed(1)
    x_in, y_in = torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g)
    x_out, y_out = torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g)
    inner = F.cross_entropy(functional_call(model, params, (x_in,)), y_in)
    grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
    fast = {k: p - 0.5 * gp for (k, p), gp in zip(params.items(), grads)}
    outer = F.cross_entropy(functional_call(model, fast, (x_out,)), y_out)
    meta = torch.autograd.grad(outer, list(params.values()), allow_unused=True, retain_graph=True)
    assert all(m is None or torch.isfinite(m).all() for m in meta)
    assert sum(float(m.abs().sum()) for m in meta if m is not None) > 0
    # the second-order part itself: a Hessian-vector product through the inner gradient
    hvp = torch.autograd.grad(sum((gp * gp).sum() for gp in grads), list(params.values()), allow_unused=True)
    assert all(h is None or torch.isfinite(h).all() for h in hvp)
    assert sum(float(h.abs().sum()) for h in hvp if h is not None) > 0


def test_second_order_through_dnc_and_ntm_with_several_write_heads():
    for cls in (DNC, NTM):
        torch.manual_seed(0)
        model = cls(
            input_size=3, output_size=2, memory_slots=6, word_size=3, read_heads=2, write_heads=2, hidden_size=5
        )
        x = torch.randn(2, 4, 3)
        params = list(model.parameters())
        grads = torch.autograd.grad(model(x).pow(2).mean(), params, create_graph=True)
        hvp = torch.autograd.grad(sum((g * g).sum() for g in grads), params)
        assert all(torch.isfinite(h).all() for h in hvp)


# --- parameter counts -------------------------------------------------------------------------


@pytest.mark.parametrize("input_shape, steps", [((32,), 8), ((20,), 1), ((784,), 28)])
def test_default_swaps_have_parameter_counts_comparable_to_the_default_dnc(input_shape, steps):
    counts = {}
    for name in NAMES:
        options = {
            "dnc": P.DNCOptions,
            "ntm": P.NTMOptions,
            "lstm": P.LSTMOptions,
            "transformer": P.TransformerOptions,
        }[name]()
        model = BUILDERS[name](options, BuildContext.for_shapes(input_shape, 10, steps))
        counts[name] = sum(p.numel() for p in model.parameters())
    print(f"parameters for input {input_shape} in {steps} steps: {counts}")
    for name, count in counts.items():
        assert counts["dnc"] / 2 <= count <= counts["dnc"] * 2, (name, counts)


# --- the plugin ---------------------------------------------------------------------------------


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, clbench_memory.plugin; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_plugin_registers_the_four_models_with_options():
    from clbench.plugins import make_plugin_host

    registry = make_plugin_host(["clbench_memory.plugin"], use_entry_points=False).registry
    for name in NAMES:
        comp = registry.get("models", name)
        assert comp.description and "steps" in comp.options.model_fields
    dnc = registry.get("models", "dnc")
    assert dnc.options().memory_slots == 128 and dnc.options().word_size == 64 and dnc.options().read_heads == 4
    model = dnc.factory(dnc.options(memory_slots=8, word_size=4), BuildContext.for_shapes((2, 3), 4, 3))
    assert model(torch.randn(5, 2, 3)).shape == (5, 4)


def test_options_are_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        P.TransformerOptions(d_model=10, heads=4)
    with pytest.raises(ValidationError):
        P.DNCOptions(steps=0)
    with pytest.raises(ValidationError):
        P.NTMOptions(unknown=1)
    assert P.DNCOptions(clip=None).clip is None


@pytest.mark.parametrize("name", ["dnc", "ntm"])
def test_vmap_over_tasks_matches_a_loop_to_second_order(name):
    """MAML over several tasks runs the model under torch.func.vmap with one parameter set per task."""
    from torch.func import vmap

    model = small(name)
    names, params = zip(*model.named_parameters())
    m = 3
    xs, ys = torch.randn(m, 4, 6), torch.randint(0, 3, (m, 4))

    def losses(ps, x, y):
        return F.cross_entropy(functional_call(model, dict(zip(names, ps)), (x,)), y, reduction="none")

    def meta_gradient(batched: bool):
        if batched:
            theta = tuple(p.unsqueeze(0).expand(m, *p.shape) for p in params)
            inner = vmap(losses)(theta, xs, ys).mean(1).sum()
            fast = [p - 0.1 * g for p, g in zip(theta, torch.autograd.grad(inner, theta, create_graph=True))]
            outer = vmap(losses)(tuple(fast), xs, ys).mean()
        else:
            outer = 0
            for i in range(m):
                grads = torch.autograd.grad(losses(params, xs[i], ys[i]).mean(), params, create_graph=True)
                fast = tuple(p - 0.1 * g for p, g in zip(params, grads))
                outer = outer + losses(fast, xs[i], ys[i]).mean() / m
        return torch.autograd.grad(outer, params)

    assert torch.allclose(vmap(model)(xs), torch.stack([model(x) for x in xs]), atol=1e-6)
    for a, b in zip(meta_gradient(True), meta_gradient(False)):
        assert torch.isfinite(a).all() and torch.allclose(a, b, atol=1e-5)


def test_repeated_and_interleaved_backward_passes_agree():
    """The fused backward reuses its own buffers in place; repeated or interleaved passes must not see that."""
    torch.manual_seed(0)
    model = DNC(input_size=5, output_size=3, memory_slots=8, word_size=4, hidden_size=6).double()
    x = torch.randn(2, 6, 5, dtype=torch.float64)
    params = list(model.parameters())
    loss = model(x).pow(2).sum()
    first = torch.autograd.grad(loss, params, retain_graph=True)
    again = torch.autograd.grad(loss, params, retain_graph=True)
    with_graph = torch.autograd.grad(loss, params, create_graph=True)
    assert all(torch.equal(a, b) and torch.allclose(a, c) for a, b, c in zip(first, again, with_graph))
    other, same = model(2 * x).pow(2).sum(), model(x).pow(2).sum()  # two graphs alive at once
    torch.autograd.grad(other, params)
    assert all(torch.allclose(a, b) for a, b in zip(torch.autograd.grad(same, params), first))


def test_models_declare_their_capabilities_through_the_core_protocols():
    """The harness asks :class:`PrefersEvalBatchSize` models for a batch size; the traces plugin asks
    :class:`Traceable` ones how many samples to trace (the ``trace_samples`` option)."""
    from clbench.components import PrefersEvalBatchSize, Traceable

    dnc = small("dnc")
    assert isinstance(dnc, PrefersEvalBatchSize) and dnc.eval_batch_size == P.EVAL_BATCH_SIZE["dnc"] == 64
    assert small("transformer").eval_batch_size is None
    assert isinstance(dnc, Traceable) and dnc.samples_to_trace == 0
    traced = BUILDERS["ntm"](SMALL["ntm"].model_copy(update={"trace_samples": 4}), BuildContext.for_shapes((6,), 3, 3))
    assert traced.samples_to_trace == 4
    assert small("lstm").samples_to_trace == 0  # no memory: nothing to trace
