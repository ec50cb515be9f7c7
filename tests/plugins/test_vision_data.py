"""The image streams and models (plugin clbench_vision) on made-up files written in the data sets'
own formats (MNIST's idx files, CIFAR's pickled batches): loading, task splits, class orders,
seeded permutations, rotation angles, the scenarios' labels and masking, the one-line errors for
missing files and failed downloads, option checks and the models. Runs: test_vision_runs.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clbench.components import BuildContext
from clbench.config import RunConfig, TrainConfig, resolve
from clbench.errors import UserError
from clbench.inputs import LazyInputs, materialize
from clbench.scenarios import TaskMaskedLoss, allowed_by_label, criterion_for
from clbench.training import accuracy
from clbench_vision.data import DATASETS, download, load
from clbench_vision.plugin import (
    PermutedMNISTOptions,
    RotatedMNISTOptions,
    SplitCIFAR10Options,
    SplitCIFAR100Options,
    SplitMNISTOptions,
    build_permuted,
    build_rotated,
)
from clbench_vision.streams import class_order, split
from clbench_vision.synthetic import write_like
from clbench_vision.transforms import ImageTransform, rotation_gather
from tests.helpers import run_cli

SIX = ["permuted-mnist", "rotated-mnist", "split-mnist", "split-fashion-mnist", "split-cifar10", "split-cifar100"]


def at_seed(seed: int) -> BuildContext:
    """The build context a benchmark factory gets in a run with seed ``seed``."""
    return BuildContext(seed=seed, train=TrainConfig())


def idx_images(path) -> np.ndarray:
    """Images of an idx file read by hand: a 16-byte header (magic, n, rows, cols), then bytes."""
    raw = path.read_bytes()
    n, h, w = (int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in (1, 2, 3))
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, h, w)


def permuted(root, seed=0, **kw):
    """A permuted-mnist stream read from ``root``."""
    return build_permuted(PermutedMNISTOptions(root=str(root), download=False, **kw), at_seed(seed))


def cifar(root, key="cifar10", seed=0, **kw):
    """A split CIFAR stream read from ``root`` (made-up files: no MD5 check)."""
    options = (SplitCIFAR10Options if key == "cifar10" else SplitCIFAR100Options)(
        root=str(root), download=False, checksum=False, **kw
    )
    return split(f"split-{key}", key, options, seed)


# --- loading ------------------------------------------------------------------------------------


def test_loads_each_format_through_torchvision(vision_root):
    for key in ("mnist", "fashion-mnist"):
        data = load(key, vision_root, download_missing=False)
        folder = vision_root / DATASETS[key].folder
        assert data.train_images.dtype == torch.uint8 and tuple(data.train_images.shape) == (600, 28, 28)
        assert np.array_equal(data.train_images.numpy(), idx_images(folder / "train-images-idx3-ubyte"))
        assert np.array_equal(data.test_images.numpy(), idx_images(folder / "t10k-images-idx3-ubyte"))
        assert sorted(data.train_labels.unique().tolist()) == list(range(10))
    for key, classes, n, m in (("cifar10", 10, 1000, 200), ("cifar100", 100, 3000, 2000)):
        data = load(key, vision_root, download_missing=False, checksum=False)
        assert tuple(data.train_images.shape) == (n, 32, 32, 3) and tuple(data.test_images.shape) == (m, 32, 32, 3)
        assert data.train_labels.dtype == torch.long and int(data.train_labels.max()) == classes - 1


def test_first_permuted_task_with_identity_is_the_files_pixels(vision_root):
    stream = permuted(vision_root, identity_first=True, normalize=False, n_tasks=2)
    raw = idx_images(vision_root / "MNIST/raw/train-images-idx3-ubyte")
    x = materialize(stream.tasks[0].train_x)  # [600, 1, 28, 28]
    assert x.shape == (600, 1, 28, 28) and x.dtype == torch.float32
    assert torch.equal(x[:, 0], torch.from_numpy(raw.astype(np.float32) / 255.0))


def test_cifar_images_are_channels_first_and_normalised(vision_root):
    stream = cifar(vision_root, class_order="natural", normalize=False)
    data = load("cifar10", vision_root, download_missing=False, checksum=False)
    task = stream.tasks[0]
    rows = task.train_x.index  # rows of the data set this task holds
    x = task.train_x[torch.arange(3)]  # [3, 3, 32, 32]
    assert torch.equal(x, data.train_images[rows[:3]].permute(0, 3, 1, 2).float() / 255)
    normed = cifar(vision_root, class_order="natural").tasks[0].train_x[torch.arange(3)]
    mean, std = torch.tensor(DATASETS["cifar10"].mean), torch.tensor(DATASETS["cifar10"].std)
    assert torch.allclose(normed, (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1), atol=1e-6)


# --- streams ------------------------------------------------------------------------------------


def test_split_tasks_partition_the_classes_in_the_drawn_order(vision_root):
    stream = split("split-mnist", "mnist", SplitMNISTOptions(root=str(vision_root), download=False), 3)
    order = class_order(10, "shuffled", 3)
    assert stream.info["class_order"] == order and sorted(order) == list(range(10))
    assert order != class_order(10, "shuffled", 4)  # another seed, another order
    data = load("mnist", vision_root, download_missing=False)
    for t, task in enumerate(stream.tasks):
        group = order[2 * t : 2 * t + 2]
        assert task.classes == tuple(sorted(group)) and set(task.train_y.tolist()) == set(group)
        assert int(task.train_y.numel()) == int(torch.isin(data.train_labels, torch.tensor(group)).sum())
    natural = split(
        "split-mnist", "mnist", SplitMNISTOptions(root=str(vision_root), download=False, class_order="natural"), 3
    )
    assert [t.classes for t in natural.tasks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    explicit = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    given = split(
        "split-mnist", "mnist", SplitMNISTOptions(root=str(vision_root), download=False, class_order=explicit), 3
    )
    assert [t.classes for t in given.tasks][0] == (8, 9)


def test_subsets_are_balanced_seeded_and_bounded(vision_root):
    options = SplitMNISTOptions(
        root=str(vision_root), download=False, train_size=21, test_size=8, class_order="natural"
    )
    stream = split("split-mnist", "mnist", options, 0)
    for task in stream.tasks:
        counts = sorted(torch.bincount(task.train_y).tolist())[-2:]
        assert len(task.train_y) == 21 and counts == [10, 11] and len(task.test_y) == 8
    again = split("split-mnist", "mnist", options, 0)
    assert torch.equal(stream.tasks[1].train_x.index, again.tasks[1].train_x.index)
    other = split("split-mnist", "mnist", options, 1)
    assert not torch.equal(stream.tasks[1].train_x.index, other.tasks[1].train_x.index)
    with pytest.raises(UserError, match="asks for 400 samples of class"):
        split("split-mnist", "mnist", options.model_copy(update={"train_size": 800}), 0)


def test_each_permutation_is_fixed_and_seeded(vision_root):
    a, b = permuted(vision_root, seed=5, n_tasks=3), permuted(vision_root, seed=5, n_tasks=5)
    c = permuted(vision_root, seed=6, n_tasks=3)
    plain = permuted(vision_root, seed=5, n_tasks=1, identity_first=True)
    base = materialize(plain.tasks[0].test_x).flatten(1)  # [200, 784]
    for t in range(3):
        xa = materialize(a.tasks[t].test_x)
        assert torch.equal(xa, materialize(b.tasks[t].test_x))  # a task's permutation ignores n_tasks
        assert not torch.equal(xa, materialize(c.tasks[t].test_x))
        perm = a.tasks[t].test_x.transform.permutation
        assert sorted(perm.tolist()) == list(range(784)) and not torch.equal(perm, torch.arange(784))
        assert torch.equal(xa.flatten(1), base[:, perm])  # the same pixels, moved
    assert not torch.equal(a.tasks[0].test_x.transform.permutation, a.tasks[1].test_x.transform.permutation)
    assert a.n_classes == 10 and a.scenario == "domain" and torch.equal(a.tasks[2].train_y, a.tasks[0].train_y)


def test_rotation_gather_matches_quarter_turns_and_identity():
    img = torch.rand(2, 1, 28, 28)
    for angle, k in ((0.0, 0), (90.0, 1), (180.0, 2), (270.0, 3)):
        transform = ImageTransform((1, 28, 28), rotation=rotation_gather(angle, 28, 28))
        rows = (img * 255).round().to(torch.uint8)[:, 0]  # [2, 28, 28] uint8
        expected = torch.rot90(rows.float() / 255, k, dims=(1, 2)).unsqueeze(1)
        assert torch.allclose(transform(rows), expected, atol=1e-6), angle
    index, weight = rotation_gather(45.0, 28, 28)
    assert (weight >= 0).all() and (weight.sum(1) <= 1 + 1e-6).all()  # bilinear, zeros outside
    assert torch.allclose(weight.sum(1).view(28, 28)[10:18, 10:18], torch.ones(8, 8))  # the centre is inside


def test_rotation_angles_are_drawn_from_the_seed_within_the_range(vision_root):
    def angles(seed, **kw):
        options = RotatedMNISTOptions(root=str(vision_root), download=False, n_tasks=6, **kw)
        return build_rotated(options, at_seed(seed)).info["angles"]

    first = angles(2)
    assert first == angles(2) and first != angles(3) and len(set(first)) == 6
    assert all(0.0 <= a <= 180.0 for a in first)
    assert all(30.0 <= a <= 60.0 for a in angles(2, angle_min=30, angle_max=60))
    stream = build_rotated(RotatedMNISTOptions(root=str(vision_root), download=False, n_tasks=2), at_seed(2))
    assert [t.name for t in stream.tasks] == [f"rotation-{a:.1f}" for a in first[:2]]


def test_scenarios_set_labels_and_heads(vision_root):
    task_perm = permuted(vision_root, n_tasks=3, scenario="task")
    assert task_perm.n_classes == 30 and task_perm.tasks[2].classes == tuple(range(20, 30))
    assert int(task_perm.tasks[2].train_y.min()) >= 20 and int(task_perm.tasks[2].train_y.max()) <= 29
    domain = split("s", "mnist", SplitMNISTOptions(root=str(vision_root), download=False, scenario="domain"), 0)
    assert domain.n_classes == 2 and all(set(t.train_y.tolist()) == {0, 1} for t in domain.tasks)
    order = domain.info["class_order"]
    data = load("mnist", vision_root, download_missing=False)
    rows = domain.tasks[1].train_x.index
    assert torch.equal(domain.tasks[1].train_y, (data.train_labels[rows] == order[3]).long())  # 2nd of the pair -> 1
    hundred = cifar(vision_root, "cifar100")
    assert hundred.scenario == "task" and len(hundred.tasks) == 20 and all(len(t.classes) == 5 for t in hundred.tasks)


def test_task_masked_loss_is_cross_entropy_over_the_task_classes(vision_root):
    stream = cifar(vision_root, "cifar100", n_tasks=20)
    loss = criterion_for(stream)
    assert isinstance(loss, TaskMaskedLoss)
    logits = torch.randn(6, 100, requires_grad=True)
    y = torch.cat([stream.tasks[0].train_y[:3], stream.tasks[7].train_y[:3]])  # [6]
    got = loss(logits, y)
    for i in range(6):
        classes = next(t.classes for t in stream.tasks if int(y[i]) in t.classes)
        sub = logits[i, list(classes)]
        want = torch.logsumexp(sub, 0) - logits[i, int(y[i])]
        assert torch.allclose(got[i], want, atol=1e-5)
    got.sum().backward()
    outside = [c for c in range(100) if c not in stream.tasks[0].classes and c not in stream.tasks[7].classes]
    assert torch.all(logits.grad[:, outside] == 0)  # other tasks' logits get no gradient
    assert criterion_for(cifar(vision_root)).__name__ == "per_sample_loss"  # class scenario: plain
    allowed = allowed_by_label(stream)
    assert allowed is not None and int(allowed[stream.tasks[3].classes[0]].sum()) == 5


def test_evaluation_masks_logits_to_the_task_classes():
    x, y = torch.zeros(4, 2), torch.tensor([2, 3, 2, 3])
    logits = torch.tensor([[9.0, 0, 1, 0], [9.0, 0, 0, 1], [0, 9.0, 0, 1], [0, 0, 1, 0]])  # class 0/1 dominate

    def predict(batch):
        return logits[: batch.shape[0]]

    assert accuracy(predict, x, y, 8) == 0.0
    assert accuracy(predict, x, y, 8, classes=(2, 3)) == 0.5  # among classes 2 and 3, rows 0 and 1 are right


# --- errors ---------------------------------------------------------------------------------------


def test_missing_files_give_one_line_naming_root_and_files(tmp_path):
    result = run_cli(
        "run", "--benchmark", "permuted-mnist", "--set", f"benchmark.root={tmp_path}", "--set",
        "benchmark.download=false", "--results", str(tmp_path / "res"),
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path) in lines[0] and "train-images-idx3-ubyte" in lines[0]
    assert "download" in lines[0] and not (tmp_path / "res" / "runs").exists()  # nothing written


def test_a_failed_download_is_one_line(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there
    with pytest.raises(UserError) as err:
        download(DATASETS["mnist"], tmp_path)
    message = str(err.value)
    assert "\n" not in message and "could not download MNIST" in message and str(tmp_path) in message
    assert "t10k-labels-idx1-ubyte" in message
    assert not (tmp_path / "MNIST").exists()  # the folders the attempt made are gone again
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(UserError, match="could not download CIFAR-10"):
        load("cifar10", tmp_path)


def test_cifar_checksums_are_checked_unless_turned_off(vision_root):
    with pytest.raises(UserError, match="do not match torchvision's MD5 sums.*checksum=false"):
        load("cifar10", vision_root, download_missing=False)
    assert load("cifar10", vision_root, download_missing=False, checksum=False).train_images.shape[0] == 1000


def test_malformed_files_are_one_line(tmp_path):
    write_like(tmp_path, "mnist", 50, 20)
    (tmp_path / "MNIST/raw/train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(UserError, match="cannot read MNIST"):
        load("mnist", tmp_path, download_missing=False)


def test_options_are_validated(host):
    for bad in (
        "benchmark.n_tasks=3",
        "benchmark.class_order=[1,2]",
        "benchmark.scenario=mixed",
        "benchmark.train_size=0",
    ):
        cfg = RunConfig()
        cfg.set_name("benchmark", "split-mnist")
        cfg.apply_set(bad)
        with pytest.raises(UserError):
            resolve(cfg, host.registry)


# --- models and runs ------------------------------------------------------------------------------


def test_models_map_images_to_logits(host):
    from clbench_vision.models import ConvNet, ReducedResNet18

    x = torch.randn(5, 3, 32, 32)
    assert ConvNet((3, 32, 32), 10)(x).shape == (5, 10)
    net = ReducedResNet18((3, 32, 32), 100)
    assert net(x).shape == (5, 100)
    assert net.stem[0].out_channels == 20 and net.linear.in_features == 160  # GEM's reduced widths
    assert 1.0e6 < sum(p.numel() for p in net.parameters()) < 1.3e6  # ~1.1M parameters, as in GEM
    assert ReducedResNet18((1, 28, 28), 10)(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    cfg = RunConfig()
    cfg.set_name("model", "cnn")
    rc = resolve(cfg, host.registry)  # shifting-linear: flat inputs
    build = BuildContext.for_shapes((32,), 5)
    with pytest.raises(UserError, match=r"needs image inputs \[C, H, W\]"):
        rc.components["model"].factory(rc.options["model"], build)


def test_memory_models_read_an_image_row_by_row():
    from clbench_memory.sequence import SequenceClassifier

    seq = SequenceClassifier(torch.nn.Identity(), (3, 4, 5), steps=4)
    x = torch.arange(60.0).view(1, 3, 4, 5)
    steps = seq.to_sequence(x)  # [1, 4, 15]
    assert steps.shape == (1, 4, 15)
    assert torch.equal(steps[0, 2], torch.cat([x[0, 0, 2], x[0, 1, 2], x[0, 2, 2]]))  # row 2 of every channel


def test_lazy_inputs_stay_uint8_and_share_storage(vision_root):
    stream = permuted(vision_root, n_tasks=4)
    storages = {id(t.train_x.storage) for t in stream.tasks}
    assert len(storages) == 1 and stream.tasks[0].train_x.storage.tensor.dtype == torch.uint8
    assert isinstance(stream.tasks[0].train_x, LazyInputs)
