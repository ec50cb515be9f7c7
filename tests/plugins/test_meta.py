"""Tests of the meta-learners (plugin clbench_meta) against independent computations."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from clbench.components import ReplayBatch, ReplayBuffer, Task
from clbench.config import TrainConfig
from clbench.errors import UserError
from clbench_basic.learners import PlainStep
from clbench_meta.functional import InnerAdam
from clbench_meta.maml import MAML
from clbench_meta.plugin import MAMLOptions, ReptileOptions
from clbench_meta.reptile import Reptile
from clbench_replay.buffers import PrioritizedBuffer

N_IN, N_CLASSES = 6, 3


class TinyMLP(nn.Module):
    """[n, 6] -> [n, 3]; tanh keeps second derivatives non-zero; ``unused`` gets no gradient."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(N_IN, 10), nn.Linear(10, N_CLASSES)
        self.unused = nn.Parameter(torch.zeros(2))
        self.register_buffer("shift", torch.full((N_IN,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x + self.shift)))


class TinyGRU(nn.Module):
    """Reads [n, 6] as 3 steps of 2 features with a GRU: a recurrent model vmap cannot batch."""

    def __init__(self):
        super().__init__()
        self.rnn, self.head = nn.GRU(2, 8, batch_first=True), nn.Linear(8, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.view(x.shape[0], 3, 2))
        return self.head(out[:, -1])


class FixedReplay(ReplayBuffer):
    """A replay stand-in that returns fixed per-task batches (the first n samples of a task)."""

    def __init__(self, data: dict[int, tuple[torch.Tensor, torch.Tensor]], batch_size: int = 8):
        self.data, self.capacity, self.batch_size = data, 100, batch_size

    def add(self, x, y, task, loss=None):
        pass

    def sample(self, n, generator, task=None):
        t = task if task is not None else min(self.data)
        x, y = self.data[t]
        return ReplayBatch(x[:n], y[:n], torch.full((min(n, len(y)),), t), torch.arange(min(n, len(y))))

    def __len__(self):
        return sum(len(y) for _, y in self.data.values())

    def tasks(self):
        return sorted(self.data)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def data(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, N_IN, generator=g), torch.randint(N_CLASSES, (n,), generator=g)


def bound(meta, model_cls=TinyMLP, optimizer="sgd", lr=0.1, batch_size=8):
    torch.manual_seed(0)
    model = model_cls()
    train = TrainConfig(optimizer=optimizer, lr=lr, batch_size=batch_size)
    opt = (
        torch.optim.SGD(model.parameters(), lr=lr)
        if optimizer == "sgd"
        else torch.optim.Adam(model.parameters(), lr=lr)
    )
    meta.check_compatible(None)
    meta.bind(model, opt, train)
    return model


def reference_maml_grads(model, tasks, inner_lr, steps, second_order):
    """Meta-gradient computed independently: per task, ``steps`` SGD steps on the first half with
    functional_call + autograd.grad, query loss on the second half, mean over tasks."""
    names = [n for n, _ in model.named_parameters()]
    theta = [p.detach().clone().requires_grad_() for p in model.parameters()]
    total = 0.0
    for x, y in tasks:
        s = x.shape[0] // 2
        params = list(theta)
        for _ in range(steps):
            loss = F.cross_entropy(functional_call(model, dict(zip(names, params)), (x[:s],)), y[:s])
            grads = torch.autograd.grad(loss, params, create_graph=second_order, allow_unused=True)
            params = [
                p - inner_lr * (torch.zeros_like(p) if g is None else (g if second_order else g.detach()))
                for p, g in zip(params, grads)
            ]
        total = total + F.cross_entropy(functional_call(model, dict(zip(names, params)), (x[s:],)), y[s:])
    grads = torch.autograd.grad(total / len(tasks), theta, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(theta, grads)]


def grads_after_step(meta, model, x, y, replay, seed=0):
    before = copy.deepcopy(model.state_dict())
    result = meta.step(x, y, 0, replay, None, torch.Generator().manual_seed(seed))
    grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    return grads, before, result


TASKS = {0: data(1), 1: data(2), 2: data(3)}


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("vectorize", ["on", "off"])
@pytest.mark.parametrize("steps", [1, 2])
def test_maml_meta_gradient_matches_an_independent_computation(first_order, vectorize, steps):
    meta = MAML(first_order=first_order, meta_batch=3, inner_steps=steps, inner_lr=0.5, vectorize=vectorize)
    model = bound(meta)
    replay = FixedReplay({1: TASKS[1], 2: TASKS[2]})
    grads, before, result = grads_after_step(meta, model, *TASKS[0], replay)
    reference = copy.deepcopy(model)
    reference.load_state_dict(before)
    expected = reference_maml_grads(reference, list(TASKS.values()), 0.5, steps, second_order=not first_order)
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, atol=1e-6, rtol=1e-4)
    # the bound (outer) optimiser took the step: theta <- theta - lr * meta-gradient
    for (name, p), g in zip(model.named_parameters(), grads):
        assert torch.allclose(p.detach(), before[name] - 0.1 * g, atol=1e-6)
    assert result.current_loss.shape == (8,) and result.replay_loss is None


def test_maml_and_fomaml_differ_by_the_second_order_term():
    """For one SGD inner step, MAML - FOMAML = -lr * mean_t H_t(theta) grad L_q,t(theta'_t); the
    Hessian-vector products are computed here independently of the implementation."""
    x, y = TASKS[0]
    maml, fomaml = MAML(meta_batch=1, inner_lr=0.5), MAML(first_order=True, meta_batch=1, inner_lr=0.5)
    g2, before, _ = grads_after_step(maml, bound(maml), x, y, None)
    g1, _, _ = grads_after_step(fomaml, bound(fomaml), x, y, None)
    model = TinyMLP()
    model.load_state_dict(before)
    params = list(model.parameters())
    s = 4
    inner = torch.autograd.grad(F.cross_entropy(model(x[:s]), y[:s]), params, create_graph=True, allow_unused=True)
    inner = [torch.zeros_like(p) if g is None else g for p, g in zip(params, inner)]
    adapted = {n: p - 0.5 * g.detach() for (n, p), g in zip(model.named_parameters(), inner)}
    query_grad = torch.autograd.grad(
        F.cross_entropy(functional_call(model, adapted, (x[s:],)), y[s:]), list(adapted.values()), allow_unused=True
    )
    query_grad = [torch.zeros_like(p) if g is None else g for p, g in zip(params, query_grad)]
    used = [i for i, g in enumerate(inner) if g.requires_grad]  # `unused` has a constant zero gradient
    hvp = torch.autograd.grad(
        [inner[i] for i in used], params, grad_outputs=[query_grad[i] for i in used], allow_unused=True
    )
    hvp = [torch.zeros_like(p) if h is None else h for p, h in zip(params, hvp)]
    difference = [a - b for a, b in zip(g2, g1)]
    assert sum(float(d.norm()) for d in difference) > 1e-3  # the second-order term is not negligible here
    for d, h in zip(difference, hvp):
        assert torch.allclose(d, -0.5 * h, atol=1e-6, rtol=1e-4)


def test_maml_on_a_recurrent_model_matches_the_independent_computation():
    meta = MAML(meta_batch=3, inner_lr=0.3)  # vectorize=auto: vmap cannot batch a GRU, so it loops
    model = bound(meta, TinyGRU)
    with pytest.warns(RuntimeWarning, match="looping over tasks"):
        grads, before, _ = grads_after_step(meta, model, *TASKS[0], FixedReplay({1: TASKS[1], 2: TASKS[2]}))
    reference = TinyGRU()
    reference.load_state_dict(before)
    expected = reference_maml_grads(reference, list(TASKS.values()), 0.3, 1, second_order=True)
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, atol=1e-6, rtol=1e-4)


def test_differentiable_inner_adam_matches_torch_adam():
    torch.manual_seed(0)
    model = TinyMLP()
    x, y = data(7)
    params = tuple(p.detach().clone().requires_grad_() for p in model.parameters())
    ref = [p.detach().clone().requires_grad_() for p in model.parameters()]
    inner, state = InnerAdam(0.05), None
    state = inner.init(params)
    opt = torch.optim.Adam(ref, lr=0.05)
    names = [n for n, _ in model.named_parameters()]
    for _ in range(3):
        loss = F.cross_entropy(functional_call(model, dict(zip(names, params)), (x,)), y)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        grads = tuple(torch.zeros_like(p) if g is None else g for p, g in zip(params, grads))
        params, state = inner.update(params, grads, state)
        opt.zero_grad()
        F.cross_entropy(functional_call(model, dict(zip(names, ref)), (x,)), y).backward()
        opt.step()
    for p, r in zip(params, ref):
        assert torch.allclose(p, r, atol=1e-5)


def test_maml_refreshes_priorities_of_the_replay_samples_it_draws():
    buf = PrioritizedBuffer(100, 8, (N_IN,), seed=0)
    for t in (1, 2):
        x, y = data(10 + t, 20)
        buf.add(x, y, t, torch.full((20,), 0.25))
    meta = MAML(meta_batch=3, inner_optimizer="adam", inner_lr=0.01)
    bound(meta)
    result = meta.step(*TASKS[0], 0, buf, None, torch.Generator().manual_seed(0))
    assert result.current_loss.shape == (8,) and torch.isfinite(result.current_loss).all()
    changed = (buf.priorities() - 0.251).abs() > 1e-6
    assert 0 < int(changed.sum()) <= 16  # only the slots drawn for the two replay tasks


def test_reptile_update_equals_its_formula():
    meta = Reptile(inner_steps=3, epsilon=0.3)
    model = bound(meta, lr=0.2)
    x, y = TASKS[0]
    rx, ry = data(5, 6)
    rb = ReplayBatch(rx, ry, torch.ones(6, dtype=torch.long), torch.arange(6))
    g = torch.Generator().manual_seed(3)
    batches = meta.inner_batches(x, y, rb, torch.Generator().set_state(g.get_state()))
    assert len(batches) == 3 and sorted(torch.cat(batches).tolist()) == list(range(14))
    xa, ya = torch.cat([x, rx]), torch.cat([y, ry])
    fast = copy.deepcopy(model)
    theta0 = [p.detach().clone() for p in model.parameters()]
    for idx in batches:  # inner SGD steps, computed by hand
        grads = torch.autograd.grad(F.cross_entropy(fast(xa[idx]), ya[idx]), list(fast.parameters()), allow_unused=True)
        with torch.no_grad():
            for p, gr in zip(fast.parameters(), grads):
                if gr is not None:
                    p -= 0.2 * gr
    result = meta.step(x, y, 0, None, rb, g)
    for p, p0, pf in zip(model.parameters(), theta0, fast.parameters()):
        assert torch.allclose(p.detach(), p0 + 0.3 * (pf.detach() - p0), atol=1e-6)
    assert result.current_loss.shape == (8,) and result.replay_loss.shape == (6,)


def test_mer_update_equals_its_formula():
    meta = Reptile(inner_steps=2, mode="mer", mer_beta=0.4, mer_gamma=0.7, mer_steps_per_batch=2)
    model = bound(meta, lr=0.2)
    x, y = TASKS[0]
    g = torch.Generator().manual_seed(4)
    batches = meta.inner_batches(x, y, None, torch.Generator().set_state(g.get_state()))
    fast = copy.deepcopy(model)
    params = list(fast.parameters())
    theta0 = [p.detach().clone() for p in params]
    for idx in batches:
        start = [p.detach().clone() for p in params]
        for sub in torch.tensor_split(idx, 2):
            grads = torch.autograd.grad(F.cross_entropy(fast(x[sub]), y[sub]), params, allow_unused=True)
            with torch.no_grad():
                for p, gr in zip(params, grads):
                    if gr is not None:
                        p -= 0.2 * gr
        with torch.no_grad():  # within-batch interpolation
            for p, s0 in zip(params, start):
                p.copy_(s0 + 0.4 * (p - s0))
    meta.step(x, y, 0, None, None, g)
    for p, p0, pf in zip(model.parameters(), theta0, params):
        assert torch.allclose(p.detach(), p0 + 0.7 * (pf.detach() - p0), atol=1e-6)


def test_reptile_with_one_step_and_epsilon_one_is_the_plain_step():
    x, y = TASKS[0]
    rx, ry = data(5, 6)
    rb = ReplayBatch(rx, ry, torch.ones(6, dtype=torch.long), torch.arange(6), torch.linspace(0.2, 1.0, 6))
    reptile, plain = Reptile(inner_steps=1, epsilon=1.0), PlainStep()
    a, b = bound(reptile, optimizer="adam", lr=0.01), bound(plain, optimizer="adam", lr=0.01)
    ra = reptile.step(x, y, 0, None, rb, torch.Generator().manual_seed(0))
    rb_ = plain.step(x, y, 0, None, rb, torch.Generator().manual_seed(0))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    assert ra.loss == pytest.approx(rb_.loss, rel=1e-5)


@pytest.mark.parametrize("meta", [MAML(eval_adapt_steps=3, inner_lr=0.2), Reptile(eval_adapt_steps=3)])
def test_adapt_for_eval_fine_tunes_a_copy(meta):
    model = bound(meta, optimizer="adam", lr=0.05)
    x, y = data(9, 40)
    task = Task(0, x, y, x, y)
    before = [p.detach().clone() for p in model.parameters()]
    with torch.inference_mode():
        loss_before = F.cross_entropy(model(x), y)
    adapted = meta.adapt_for_eval(task, torch.Generator().manual_seed(0))
    assert adapted is not model
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p.detach(), b)
    with torch.inference_mode():
        assert F.cross_entropy(adapted(x), y) < loss_before
    assert MAML().adapt_for_eval(task, torch.Generator()) is None


def test_incompatible_settings_are_rejected_in_one_line():
    with pytest.raises(UserError, match="ReplayBuffer"):
        MAML().check_compatible(object())
    with pytest.raises(UserError, match="batch_size >= 2"):
        bound(MAML(), batch_size=1)
    with pytest.raises(ValueError):
        MAMLOptions(inner_steps=6)
    with pytest.raises(ValueError):
        ReptileOptions(mode="maml")
    opts = ReptileOptions(mode="mer", mer_beta=0.3)
    assert ReptileOptions(**opts.model_dump()) == opts  # a canonical (complete) config validates again


@pytest.mark.parametrize("first_order", [False, True])
def test_a_batch_of_one_sample_is_both_support_and_query(first_order):
    meta = MAML(first_order=first_order, meta_batch=2, inner_lr=0.5)
    model = bound(meta)
    x, y = data(11, 1)
    before = [p.detach().clone() for p in model.parameters()]
    result = meta.step(x, y, 0, FixedReplay({1: TASKS[1]}), None, torch.Generator().manual_seed(0))
    assert result.current_loss.shape == (1,) and result.loss == result.loss
    assert any(not torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))
