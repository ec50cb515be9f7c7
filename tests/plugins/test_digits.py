"""Tests of the digits benchmarks (plugin clbench_digits): transforms, splits, shapes, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clbench.components import BuildContext
from clbench.config import RunConfig, TrainConfig, resolve
from clbench.errors import UserError
from clbench.harness import execute
from clbench_digits.plugin import (
    PermutedOptions,
    RotatedOptions,
    SplitOptions,
    build_permuted,
    build_rotated,
    build_split,
)
from clbench_digits.streams import load, rotation_angles, rotation_matrix, stratified_split


def at_seed(seed: int) -> BuildContext:
    """The build context a benchmark factory gets in a run with seed ``seed``."""
    return BuildContext(seed=seed, train=TrainConfig())


def permuted(seed=0, **kw):
    """A permuted-digits stream with options ``kw``."""
    return build_permuted(PermutedOptions(**kw), at_seed(seed))


def column_permutation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A permutation p with b == a[:, p], found by matching columns without reuse ([n, 64] -> [64]);
    columns that are equal (e.g. pixels blank in every image) are interchangeable."""
    p: list[int] = []
    for j in range(b.shape[1]):
        matches = [i for i in range(a.shape[1]) if i not in p and torch.equal(a[:, i], b[:, j])]
        assert matches, f"column {j} is no unused column of the original"
        p.append(matches[0])
    return torch.tensor(p)


def test_data_is_scaled_and_shaped():
    x, y = load()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0 and set(np.unique(y)) == set(range(10))
    for stream in (
        permuted(n_tasks=2),
        build_rotated(RotatedOptions(n_tasks=2), at_seed(0)),
        build_split(SplitOptions(), at_seed(0)),
    ):
        assert stream.input_shape == (64,) and stream.sequence_steps == 8 and stream.n_classes == 10
        for task in stream.tasks:
            assert task.train_x.dtype == torch.float32 and task.train_y.dtype == torch.int64
            assert task.train_x.shape[1:] == (64,) and task.test_x.shape[1:] == (64,)
            assert task.train_x.shape[0] == task.train_y.shape[0] and task.test_x.shape[0] == task.test_y.shape[0]


def test_split_is_stratified_disjoint_and_shared_by_tasks():
    _, y = load()
    train, test = stratified_split(y, 0.2, np.random.default_rng(0))
    assert not set(train) & set(test) and len(train) + len(test) == len(y)
    for c in range(10):
        n_c = int((y == c).sum())
        assert int((y[test] == c).sum()) == round(0.2 * n_c)
    stream = permuted(n_tasks=3)
    for task in stream.tasks[1:]:
        assert torch.equal(task.train_y, stream.tasks[0].train_y) and torch.equal(task.test_y, stream.tasks[0].test_y)
    assert stream.tasks[0].test_x.shape[0] == sum(round(0.2 * int((y == c).sum())) for c in range(10))


def test_permutations_are_permutations_fixed_per_seed():
    stream = permuted(n_tasks=4)
    base = stream.tasks[0]
    x0, _ = load()
    train, _ = stratified_split(load()[1], 0.2, np.random.default_rng(0))
    assert torch.equal(base.train_x, torch.from_numpy(x0[train]))  # task 0: the identity
    perms = []
    for task in stream.tasks[1:]:
        p = column_permutation(base.train_x, task.train_x)
        assert sorted(p.tolist()) == list(range(64))
        assert torch.equal(task.test_x, base.test_x[:, p])  # the same permutation on the test split
        perms.append(p)
    assert len({tuple(p.tolist()) for p in perms}) == 3  # distinct tasks
    again = permuted(n_tasks=4)
    assert all(torch.equal(a.train_x, b.train_x) for a, b in zip(stream.tasks, again.tasks))
    other = permuted(seed=1, n_tasks=4)
    assert not torch.equal(other.tasks[1].train_x, stream.tasks[1].train_x)
    pinned = build_permuted(PermutedOptions(n_tasks=4, seed=0), at_seed(5))  # the option overrides the run seed
    assert torch.equal(pinned.tasks[2].train_x, stream.tasks[2].train_x)
    no_identity = permuted(n_tasks=2, identity_first=False)
    assert not torch.equal(no_identity.tasks[0].train_x, base.train_x)


def test_rotation_by_zero_is_identity_and_quarter_turns_are_exact():
    assert np.array_equal(rotation_matrix(0.0), np.eye(64))
    quarter = rotation_matrix(90.0)
    assert np.allclose(np.linalg.matrix_power(quarter, 4), np.eye(64), atol=1e-9)
    img = np.zeros((8, 8))
    img[0, 7] = 1.0  # top-right pixel
    turned = (quarter @ img.ravel()).reshape(8, 8)
    assert np.isclose(turned[0, 0], 1.0) and np.isclose(turned.sum(), 1.0)  # counter-clockwise: to top-left
    oblique = rotation_matrix(45.0)
    assert (oblique >= 0).all() and (oblique.sum(axis=1) <= 1 + 1e-9).all()  # bilinear weights, zeros outside
    assert np.isclose(oblique.sum(axis=1).reshape(8, 8)[3:5, 3:5], 1.0).all()  # centre pixels fully inside


def test_rotated_stream_spreads_angles_and_rotates():
    assert rotation_angles(5, 0, 180) == [0.0, 45.0, 90.0, 135.0, 180.0]
    assert rotation_angles(1, 10, 90) == [10.0]
    stream = build_rotated(RotatedOptions(n_tasks=3, angle_min=0, angle_max=90), at_seed(0))
    assert stream.info["angles"] == [0.0, 45.0, 90.0]
    base = permuted(n_tasks=1).tasks[0]
    assert torch.equal(stream.tasks[0].train_x, base.train_x)
    M = torch.from_numpy(rotation_matrix(90.0)).float()
    assert torch.allclose(stream.tasks[2].test_x, base.test_x @ M.T)
    flat = build_rotated(RotatedOptions(n_tasks=2, angle_min=0, angle_max=0), at_seed(0))
    assert torch.equal(flat.tasks[1].train_x, base.train_x)


def test_split_covers_classes_in_pairs():
    stream = build_split(SplitOptions(), at_seed(0))
    assert len(stream.tasks) == 5 and stream.info["classes"] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    full = permuted(n_tasks=1).tasks[0]
    for t, task in enumerate(stream.tasks):
        assert set(task.train_y.tolist()) == {2 * t, 2 * t + 1} == set(task.test_y.tolist())
    assert sum(t.train_y.shape[0] for t in stream.tasks) == full.train_y.shape[0]
    assert sum(t.test_y.shape[0] for t in stream.tasks) == full.test_y.shape[0]
    halves = build_split(SplitOptions(n_tasks=2, shuffle_classes=True), at_seed(3))
    groups = halves.info["classes"]
    assert len(groups) == 2 and sorted(groups[0] + groups[1]) == list(range(10)) and groups[0] != [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="divide"):
        SplitOptions(n_tasks=3)


def test_streams_are_deterministic():
    for build, opts in ((build_rotated, RotatedOptions(n_tasks=2)), (build_split, SplitOptions(n_tasks=2))):
        a, b = build(opts, at_seed(4)), build(opts, at_seed(4))
        for ta, tb in zip(a.tasks, b.tasks):
            assert torch.equal(ta.train_x, tb.train_x) and torch.equal(ta.test_y, tb.test_y)


@pytest.mark.parametrize("name", ["permuted-digits", "rotated-digits", "split-digits"])
def test_runs_through_the_harness(host, name):
    cfg = RunConfig(seed=1)
    cfg.set_name("benchmark", name)
    for s in ("benchmark.n_tasks=2", "benchmark.test_fraction=0.5", "train.epochs=1"):
        cfg.apply_set(s)
    record = execute(resolve(cfg, host.registry), host, results=None).record
    assert record["status"] == "ok", record.get("traceback")
    assert len(record["accuracy_matrix"]) == 2 and record["benchmark_info"]["stream_seed"] == 1
    cfg.apply_set("benchmark.n_tasks=3")
    if name == "split-digits":
        with pytest.raises(UserError, match="n_tasks"):
            resolve(cfg, host.registry)
