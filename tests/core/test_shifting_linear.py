"""The shifting-linear benchmark: shapes, determinism, and its calibration (issue 2, point 3)."""

import pytest
import torch

from clbench.config import RunConfig, resolve
from clbench.harness import execute
from clbench.streams.shifting_linear import ShiftingLinearOptions, generate


def test_shapes_and_labels():
    s = generate(
        ShiftingLinearOptions(n_tasks=4, train_size=50, test_size=30, input_dim=12, latent_dim=3, n_classes=4), seed=1
    )
    assert len(s) == 4 and s.input_shape == (12,) and s.n_classes == 4
    for t in s.tasks:
        assert t.train_x.shape == (50, 12) and t.test_x.shape == (30, 12)
        assert t.train_x.dtype == torch.float32 and t.train_y.dtype == torch.int64
        assert 0 <= int(t.train_y.min()) and int(t.train_y.max()) < 4


def test_same_seed_same_stream_other_seed_other_stream():
    a = generate(ShiftingLinearOptions(n_tasks=2), seed=3)
    b = generate(ShiftingLinearOptions(n_tasks=2), seed=3)
    c = generate(ShiftingLinearOptions(n_tasks=2), seed=4)
    assert torch.equal(a.tasks[1].train_x, b.tasks[1].train_x)
    assert not torch.equal(a.tasks[1].train_x, c.tasks[1].train_x)
    # an explicit stream seed overrides the run seed
    d = generate(ShiftingLinearOptions(n_tasks=2, seed=3), seed=99)
    assert torch.equal(a.tasks[0].test_x, d.tasks[0].test_x)


def test_one_labelling_rule_different_views():
    s = generate(ShiftingLinearOptions(n_tasks=3, offset_scale=0.0, noise=0.0), seed=0)
    x0, x1 = s.tasks[0].train_x, s.tasks[1].train_x
    # each task lives in a different column space: project task 1 onto task 0's space and miss
    q, _ = torch.linalg.qr(x0.T)
    q = q[:, :6]
    residual = (x1.T - q @ (q.T @ x1.T)).norm() / x1.norm()
    assert residual > 0.5
    # label frequencies are the same rule in every task
    freqs = [torch.bincount(t.train_y, minlength=s.n_classes).float() / len(t.train_y) for t in s.tasks]
    assert (freqs[0] - freqs[1]).abs().max() < 0.08


def test_selecting_tasks_keeps_them_identical():
    full = generate(ShiftingLinearOptions(n_tasks=5), seed=2)
    picked = generate(ShiftingLinearOptions(n_tasks=5, tasks=[3, 1]), seed=2)
    assert [t.id for t in picked.tasks] == [3, 1]
    assert torch.equal(picked.tasks[0].train_x, full.tasks[3].train_x)


def test_bad_task_selection():
    with pytest.raises(ValueError):
        ShiftingLinearOptions(n_tasks=5, tasks=[5])
    with pytest.raises(ValueError):
        ShiftingLinearOptions(n_tasks=5, tasks=[1, 1])


def test_orthogonal_transform_has_orthonormal_columns():
    s = generate(
        ShiftingLinearOptions(n_tasks=1, transform="orthogonal", offset_scale=0.0, noise=0.0, train_size=400), seed=0
    )
    x = s.tasks[0].train_x
    # orthonormal columns preserve the latent norms: E|x|^2 is about latent_dim (4) for standard normal latents
    assert 3.0 < float((x**2).sum(1).mean()) < 6.0


def _run(host, seed=0, **sets):
    cfg = RunConfig(seed=seed)
    for key, value in sets.items():
        section, _, name = key.partition("__")
        if section in ("strategy",) and name == "name":
            cfg.set_name("strategy", value)
        else:
            cfg.apply_set(f"{section}.{name}={value}")
    return execute(resolve(cfg, host.registry), host, results=None).record


@pytest.mark.slow
def test_calibration_naive_forgets_and_each_task_is_learnt(host):
    """(b) naive fine-tuning leaves the earliest task at 0.60 or less, though each was learnt."""
    record = _run(host)
    assert record["status"] == "ok"
    R = record["accuracy_matrix"]
    assert record["metrics"]["earliest_task_accuracy"] <= 0.60
    assert min(R[j][j] for j in range(len(R))) >= 0.95


@pytest.mark.slow
def test_calibration_joint_training_reaches_090(host):
    """(a) an MLP trained jointly on all tasks reaches at least 0.90 average accuracy."""
    record = _run(host, strategy__name="joint", strategy__mode="final")
    assert record["status"] == "ok"
    assert record["metrics"]["avg_accuracy"] >= 0.90


@pytest.mark.slow
@pytest.mark.parametrize("task", [0, 7, 19])
def test_calibration_single_task_alone(host, task):
    """(c) a task trained alone, from a fresh model, is learnt to at least 0.95."""
    record = _run(host, benchmark__tasks=f"[{task}]")
    assert record["accuracy_matrix"][0][0] >= 0.95
