"""Tests of the replay buffers (plugin clbench_replay): policies, sampling laws, state dicts."""

from __future__ import annotations

import io

import pytest
import torch
from pydantic import ValidationError
from scipy import stats

from clbench.components import BuildContext
from clbench.config import TrainConfig
from clbench.plugins import make_plugin_host
from clbench_replay.buffers import ClassBalancedBuffer, PrioritizedBuffer, ReservoirBuffer
from clbench_replay.plugin import PrioritizedOptions, ReplayOptions

REGISTRY = make_plugin_host().registry
#: Every registered replay buffer (``none`` builds no buffer); those a later plugin adds are covered.
KINDS = [name for name in REGISTRY.names("replay") if name != "none"]
#: The buffers that draw uniformly, without replacement (prioritized replay draws by priority).
UNIFORM = [name for name in KINDS if not issubclass(REGISTRY.get("replay", name).options, PrioritizedOptions)]


def make(kind: str, capacity: int = 50, batch_size: int = 8, shape: tuple[int, ...] = (3,), seed: int = 0):
    """A buffer of ``kind`` with explicit sizes and seed, built by its registered factory."""
    comp = REGISTRY.get("replay", kind)
    options = comp.options(capacity=capacity, batch_size=batch_size, seed=seed)
    return comp.factory(options, BuildContext.for_shapes(shape, 5))


def ids(start: int, n: int, shape: tuple[int, ...] = (3,)) -> torch.Tensor:
    """Samples [n, *shape] whose every feature is the sample's stream index (to identify them)."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, *([1] * len(shape))).expand(n, *shape).clone()


def feed(buf, total: int, batch: int = 7, n_classes: int = 5, tasks_every: int = 20) -> None:
    """Offer ``total`` identifiable samples in batches; labels cycle, the task changes every ``tasks_every``."""
    for start in range(0, total, batch):
        n = min(batch, total - start)
        buf.add(
            ids(start, n, buf.input_shape),
            torch.arange(start, start + n) % n_classes,
            start // tasks_every,
            torch.rand(n) + 0.1,
        )


# --- registration and options ---------------------------------------------------------------


@pytest.fixture(scope="module")
def registry():
    return REGISTRY


@pytest.mark.parametrize("kind", KINDS)
def test_factory_fills_batch_size_from_train_and_allocates_storage(registry, kind):
    comp = registry.get("replay", kind)
    train = TrainConfig(batch_size=24)
    buf = comp.factory(comp.options(), BuildContext.for_shapes((4, 2), 2, train=train))
    assert buf.batch_size == 24 and isinstance(buf.batch_size, int)
    assert buf.capacity == 10_000
    assert (
        tuple(buf.x.shape) == (10_000, 4, 2) and tuple(buf.y.shape) == (10_000,) and tuple(buf.task.shape) == (10_000,)
    )
    other = comp.factory(comp.options(batch_size=5, capacity=7), BuildContext.for_shapes((4, 2), 2, train=train))
    assert other.batch_size == 5 and other.capacity == 7 and len(other) == 0 and other.tasks() == []


def test_prioritized_options_and_bad_values():
    opts = PrioritizedOptions()
    assert (opts.alpha, opts.beta, opts.eps, opts.storage) == (0.6, 0.4, 1e-3, "reservoir")
    with pytest.raises(ValidationError):
        PrioritizedOptions(beta=1.5)
    with pytest.raises(ValidationError):
        ReplayOptions(capacity=0)


def test_derived_seed_follows_the_run_seed(registry):
    comp = registry.get("replay", "reservoir")
    train = TrainConfig()
    draws = []
    for seed in (3, 3, 4):
        buf = comp.factory(comp.options(capacity=20), BuildContext.for_shapes((3,), 2, seed=seed, train=train))
        feed(buf, 200)
        draws.append(buf.x[:, 0].clone())
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


# --- policies --------------------------------------------------------------------------------


def test_fifo_keeps_exactly_the_newest_samples_in_order():
    buf = make("fifo", capacity=10)
    start = 0
    for n in (3, 4, 7, 1, 12, 2):  # one batch larger than the capacity
        buf.add(ids(start, n), torch.arange(start, start + n), task=start)
        start += n
        keep = min(start, 10)
        order = buf.in_order()
        assert len(buf) == keep
        assert buf.x[order, 0].tolist() == list(range(start - keep, start))
        assert buf.y[order].tolist() == list(range(start - keep, start))


def test_reservoir_inclusion_is_uniform_over_the_stream():
    """Chi-square: over many independent reservoirs, every stream position (and every position in
    a batch) is held equally often."""
    total, capacity, trials, batch = 600, 60, 200, 32
    held = torch.zeros(total)
    for trial in range(trials):
        buf = ReservoirBuffer(capacity, 8, (1,), seed=trial)
        for start in range(0, total, batch):
            n = min(batch, total - start)
            buf.add(ids(start, n, (1,)), torch.zeros(n, dtype=torch.long), 0)
        assert len(buf) == capacity
        kept = buf.x[:, 0].long()
        assert kept.unique().numel() == capacity  # no sample twice
        held[kept] += 1
    by_stream = held.view(30, 20).sum(1)  # 30 bins of 20 consecutive samples
    assert stats.chisquare(by_stream.numpy()).pvalue > 0.01
    by_slot = torch.zeros(batch).index_add_(0, torch.arange(total) % batch, held)
    expected = torch.bincount(torch.arange(total) % batch).double() * trials * capacity / total
    assert stats.chisquare(by_slot.numpy(), expected.numpy()).pvalue > 0.01
    # and it is not a FIFO: the first tenth of the stream is held about as often as the last
    assert float(by_stream[:3].sum()) == pytest.approx(float(by_stream[-3:].sum()), rel=0.15)


def test_prioritized_draws_follow_priority_to_the_alpha_with_importance_weights():
    buf = PrioritizedBuffer(8, 4, (1,), seed=0, alpha=0.7, beta=0.5, eps=1e-3)
    loss = torch.tensor([0.05, 0.2, 0.5, 1.0, 2.0, 4.0])
    buf.add(ids(0, 6, (1,)), torch.zeros(6, dtype=torch.long), 0, loss)
    g = torch.Generator().manual_seed(1)
    batch = buf.sample(60_000, g)
    counts = torch.bincount(batch.index, minlength=6).double()
    probs = (loss.double() + 1e-3) ** 0.7
    probs /= probs.sum()
    assert stats.chisquare(counts.numpy(), (probs * 60_000).numpy()).pvalue > 0.01
    expected_w = (probs[batch.index] / probs.min()) ** -0.5
    assert torch.allclose(batch.weight.double(), expected_w, rtol=1e-5)
    assert float(batch.weight.max()) <= 1.0 + 1e-6
    # refreshing priorities changes the law: slot 0 becomes the most likely
    buf.update_priorities(torch.tensor([0]), torch.tensor([50.0]))
    again = buf.sample(20_000, g)
    assert torch.bincount(again.index, minlength=6).argmax() == 0
    assert buf.priorities()[0] == pytest.approx(50.001, rel=1e-6)


def test_prioritized_new_samples_without_loss_get_max_priority_and_overwritten_slots_keep_theirs():
    buf = PrioritizedBuffer(4, 2, (1,), seed=0, storage="fifo")
    buf.add(ids(0, 4, (1,)), torch.zeros(4, dtype=torch.long), 0, torch.tensor([1.0, 3.0, 2.0, 1.0]))
    batch = buf.sample(4, torch.Generator().manual_seed(0))
    buf.add(ids(4, 1, (1,)), torch.zeros(1, dtype=torch.long), 0, None)  # overwrites slot 0
    assert buf.priorities()[0] == pytest.approx(3.001, rel=1e-5)  # the max so far
    buf.update_priorities(batch.index, torch.full((4,), 0.5))
    assert buf.priorities()[0] == pytest.approx(3.001, rel=1e-5)  # not the replayed sample's loss
    assert all(buf.priorities()[i] == pytest.approx(0.501, rel=1e-5) for i in set(batch.index.tolist()) - {0})


def test_prioritized_slot_drawn_twice_takes_its_last_loss(monkeypatch):
    """Draws are with replacement: a slot replayed twice in one batch gets its later loss, as a
    sequential pass would give it, not whichever write a scatter happens to apply last: the
    buffer never hands a scatter repeated slots. The largest priority seen counts every value."""
    buf = PrioritizedBuffer(4, 6, (1,), seed=0, eps=1e-3)
    buf.add(ids(0, 4, (1,)), torch.zeros(4, dtype=torch.long), 0, torch.ones(4))
    buf.sample(6, torch.Generator().manual_seed(0))  # marks the slots as drawn
    index = torch.tensor([2, 0, 2, 3, 0, 2])
    loss = torch.tensor([5.0, 12.0, 7.0, 8.0, 9.0, 10.0])  # slot 0: 12 first, then 9
    written = []
    real_set = buf._set

    def spy(slots, priority):
        written.append(slots.clone())
        real_set(slots, priority)

    monkeypatch.setattr(buf, "_set", spy)
    buf.update_priorities(index, loss)
    assert len(written) == 1 and written[0].numel() == torch.unique(written[0]).numel() == 3
    expected = {}
    for slot, value in zip(index.tolist(), loss.tolist()):
        expected[slot] = value + 1e-3
    got = buf.priorities()
    assert {slot: float(got[slot]) for slot in expected} == pytest.approx(expected)
    assert float(got[1]) == pytest.approx(1.001)  # not drawn: unchanged
    assert float(got[0]) == pytest.approx(9.001) and buf.max_priority == pytest.approx(12.001)


def test_class_balanced_gives_equal_room_to_every_class_seen():
    buf = ClassBalancedBuffer(60, 8, (1,), seed=0)
    buf.add(ids(0, 60, (1,)), torch.zeros(60, dtype=torch.long), 0)  # full of class 0
    assert buf.class_counts() == {0: 60}
    buf.add(ids(60, 40, (1,)), torch.ones(40, dtype=torch.long), 1)  # a new class takes room
    assert buf.class_counts() == {0: 30, 1: 30}
    rest = torch.tensor([2] * 10 + [3] * 40)  # class 2 is small: it keeps all of its samples
    buf.add(ids(100, 50, (1,)), rest, 2)
    counts = buf.class_counts()
    assert counts[2] == 10 and max(counts.values()) - min(counts[c] for c in (0, 1, 3)) <= 1
    assert sum(counts.values()) == 60 == len(buf)
    for c in counts:  # bookkeeping agrees with the storage
        assert int((buf.y[: len(buf)] == c).sum()) == counts[c]
    assert buf.tasks() == [0, 1, 2]


# --- sampling and state ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_sampling_by_task_and_task_list(kind):
    buf = make(kind, capacity=500)
    feed(buf, 200)  # tasks 0..9, 20 samples each, all held
    assert buf.tasks() == list(range(10))
    g = torch.Generator().manual_seed(0)
    batch = buf.sample(16, g, task=3)
    assert len(batch) == 16 and set(batch.task.tolist()) == {3}
    assert torch.equal(buf.x[batch.index], batch.x) and torch.equal(buf.y[batch.index], batch.y)
    assert buf.sample(8, g, task=42) is None
    mixed = buf.sample(8, g)
    assert mixed.x.shape == (8, 3) and mixed.y.dtype == torch.long
    assert (mixed.weight is not None) == (kind == "prioritized")
    assert make(kind).sample(8, g) is None  # empty buffer


@pytest.mark.parametrize("kind", KINDS)
def test_draws_by_task_stay_right_while_samples_are_overwritten(kind):
    buf = make(kind, capacity=60)
    g = torch.Generator().manual_seed(0)
    for start in range(0, 400, 20):
        for t in buf.tasks():  # fill the per-task cache, then overwrite part of the buffer
            batch = buf.sample(200, g, task=t)
            held = torch.nonzero(buf.task[: len(buf)] == t).flatten()
            assert set(batch.task.tolist()) == {t} and set(batch.index.tolist()) <= set(held.tolist())
            if kind != "prioritized":  # a uniform draw of n >= held returns every held slot once
                assert sorted(batch.index.tolist()) == held.tolist()
        buf.add(ids(start, 20), torch.arange(20) % 5, start // 40, torch.rand(20))
    assert buf.tasks() == torch.unique(buf.task[: len(buf)]).tolist()
    assert [int(c) for c in buf.task_count[buf.tasks()]] == torch.bincount(buf.task[: len(buf)])[buf.tasks()].tolist()


@pytest.mark.parametrize("kind", UNIFORM)  # prioritized draws with replacement
def test_uniform_draws_from_a_small_pool_have_no_repeats(kind):
    buf = make(kind, capacity=100)
    feed(buf, 30, batch=10, tasks_every=10)
    batch = buf.sample(20, torch.Generator().manual_seed(0))
    assert batch.index.unique().numel() == 20
    assert len(buf.sample(20, torch.Generator(), task=1)) == 10  # the task holds only 10


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trip_continues_identically(kind):
    a = make(kind, capacity=40, seed=1)
    feed(a, 150)
    blob = io.BytesIO()
    torch.save(a.state_dict(), blob)  # plain tensors and numbers: saves and loads
    blob.seek(0)
    b = make(kind, capacity=40, seed=99)
    b.load_state_dict(torch.load(blob))
    assert len(b) == len(a) and b.tasks() == a.tasks() and b.seen == a.seen
    for buf in (a, b):
        for start in range(150, 260, 9):
            buf.add(ids(start, 9), torch.arange(9) % 5, start // 20, torch.linspace(0.1, 2, 9))
    for field in ("x", "y", "task"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    ga, gb = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    sa, sb = a.sample(12, ga), b.sample(12, gb)
    assert torch.equal(sa.index, sb.index)


def test_load_state_dict_rejects_another_kind_or_shape():
    state = make("fifo").state_dict()
    with pytest.raises(ValueError):
        make("reservoir").load_state_dict(state)
    with pytest.raises(ValueError):
        make("fifo", shape=(4,)).load_state_dict(state)
