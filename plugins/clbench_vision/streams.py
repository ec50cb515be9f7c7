"""The image streams: permuted and rotated MNIST, split MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100.

Every task's inputs are :class:`clbench.inputs.LazyInputs` over the data set's uint8 images, which
are held once: a task is a set of rows (all of them, or a subset drawn from the benchmark seed)
and a transform applied per batch (:class:`clbench_vision.transforms.ImageTransform`). Inputs are
[C, H, W] float images; a memory model reads them row by row (``sequence_steps = H``).

Labels follow the scenario (:mod:`clbench.scenarios`):

- tasks with the same ten classes (permuted, rotated): ``domain`` keeps the digit (one 10-way
  head); ``task`` and ``class`` give task t the labels 10t..10t+9 (a 10T-way output), masked to the
  task's block in ``task``;
- tasks with disjoint classes (split): ``class`` and ``task`` keep the data set's labels (masked to
  the task's classes in ``task``); ``domain`` relabels each task's classes 0..k-1 in class order.

Every random choice (subsets, permutations, angles, class order) is drawn from the benchmark seed
through :func:`clbench.components.derive_seed`, one salt per purpose and task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from clbench.components import Task, TaskStream, derive_seed
from clbench.errors import UserError
from clbench.inputs import LazyInputs, Storage
from clbench_vision.data import ImageData, load
from clbench_vision.transforms import ImageTransform, rotation_gather

#: Salts of the benchmark's derived seeds (plus the task index where drawn per task).
PERMUTATION_SALT = 0x7E_0000
ANGLE_SALT = 0x7E_1000
CLASS_ORDER_SALT = 0x7E_2000
TRAIN_SUBSET_SALT = 0x7E_3000
TEST_SUBSET_SALT = 0x7E_4000


def _generator(seed: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, salt))


def _data(dataset: str, options: Any) -> ImageData:
    root = Path(options.root) if options.root else None
    return load(dataset, root, download_missing=options.download, checksum=options.checksum)


def _subset(n_available: int, size: int | None, g: torch.Generator, what: str) -> torch.Tensor:
    """``size`` rows of ``range(n_available)`` drawn without replacement (sorted), or all of them."""
    if size is None:
        return torch.arange(n_available)
    if size > n_available:
        raise UserError(f"benchmark {what} asks for {size} samples per task; the data set holds {n_available}")
    return torch.randperm(n_available, generator=g)[:size].sort().values


def _balanced(
    labels: torch.Tensor, classes: list[int], size: int | None, g: torch.Generator, what: str
) -> torch.Tensor:
    """Rows of ``labels`` [N] in ``classes``: all of them, or ``size`` drawn with the classes as
    balanced as the count allows (the first ``size % k`` classes get one more); sorted."""
    rows = [torch.nonzero(labels == c).squeeze(1) for c in classes]
    if size is None:
        return torch.cat(rows).sort().values
    k = len(classes)
    picked = []
    for j, (c, r) in enumerate(zip(classes, rows)):
        want = size // k + (1 if j < size % k else 0)
        if want > r.numel():
            raise UserError(
                f"benchmark {what} asks for {want} samples of class {c} per task; the data set holds {r.numel()}"
            )
        picked.append(r[torch.randperm(r.numel(), generator=g)[:want]])
    return torch.cat(picked).sort().values


def _stream(name: str, data: ImageData, tasks: list[Task], n_classes: int, scenario: str, info: dict) -> TaskStream:
    spec = data.spec
    return TaskStream(
        name=name,
        tasks=tasks,
        n_classes=n_classes,
        input_shape=spec.shape,
        sequence_steps=spec.shape[1],  # a memory model reads one row per step
        info={"dataset": spec.key, "scenario": scenario, **info},
        scenario=scenario,
    )


def _norm(data: ImageData, normalize: bool) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    return (data.spec.mean, data.spec.std) if normalize else (None, None)


def transformed(name: str, options: Any, seed: int, mode: str) -> TaskStream:
    """Permuted (``mode="permuted"``) or rotated (``"rotated"``) MNIST: every task sees the same
    data set, each through its own fixed pixel permutation or rotation angle."""
    data = _data("mnist", options)
    spec = data.spec
    c, h, w = spec.shape
    mean, std = _norm(data, options.normalize)
    train, test = Storage(data.train_images), Storage(data.test_images)
    n_tasks, scenario = options.n_tasks, options.scenario
    angles: list[float] = []
    if mode == "rotated":
        g = _generator(seed, ANGLE_SALT)
        span = options.angle_max - options.angle_min
        angles = [
            float(options.angle_min + span * float(u)) for u in torch.rand(n_tasks, generator=g, dtype=torch.float64)
        ]
    tasks = []
    for t in range(n_tasks):
        if mode == "permuted":
            identity = t == 0 and options.identity_first
            perm = (
                torch.arange(h * w)
                if identity
                else torch.randperm(h * w, generator=_generator(seed, PERMUTATION_SALT + t))
            )
            transform = ImageTransform(spec.shape, mean, std, permutation=perm)
            label = "identity" if identity else f"permutation-{t}"
        else:
            transform = ImageTransform(spec.shape, mean, std, rotation=rotation_gather(angles[t], h, w))
            label = f"rotation-{angles[t]:.1f}"
        tr = _subset(
            data.train_labels.shape[0], options.train_size, _generator(seed, TRAIN_SUBSET_SALT + t), "train_size"
        )
        te = _subset(data.test_labels.shape[0], options.test_size, _generator(seed, TEST_SUBSET_SALT + t), "test_size")
        offset = 0 if scenario == "domain" else spec.n_classes * t  # a block of 10 labels per task
        tasks.append(
            Task(
                t,
                LazyInputs(train, tr, transform, spec.shape),
                data.train_labels[tr] + offset,
                LazyInputs(test, te, transform, spec.shape),
                data.test_labels[te] + offset,
                name=label,
                classes=tuple(range(offset, offset + spec.n_classes)),
            )
        )
    n_classes = spec.n_classes if scenario == "domain" else spec.n_classes * n_tasks
    info: dict[str, Any] = {"benchmark_seed": seed, "train_sizes": [len(t.train_y) for t in tasks]}
    if mode == "rotated":
        info["angles"] = angles
    else:
        info["identity_first"] = options.identity_first
    return _stream(name, data, tasks, n_classes, scenario, info)


def class_order(n_classes: int, order: Any, seed: int) -> list[int]:
    """The class order of a split stream: ``"natural"`` (0..C-1), ``"shuffled"`` (drawn from the
    benchmark seed) or an explicit list (a permutation of 0..C-1, checked by the options)."""
    if order == "natural":
        return list(range(n_classes))
    if order == "shuffled":
        return torch.randperm(n_classes, generator=_generator(seed, CLASS_ORDER_SALT)).tolist()
    return [int(c) for c in order]


def split(name: str, dataset: str, options: Any, seed: int) -> TaskStream:
    """A split stream: the data set's classes in :func:`class_order`, cut into ``n_tasks`` groups of
    ``C / n_tasks``; task t holds the images of group t."""
    data = _data(dataset, options)
    spec = data.spec
    if spec.n_classes % options.n_tasks:
        raise UserError(f"benchmark {name}: n_tasks={options.n_tasks} must divide the {spec.n_classes} classes")
    order = class_order(spec.n_classes, options.class_order, seed)
    k = spec.n_classes // options.n_tasks
    mean, std = _norm(data, options.normalize)
    transform = ImageTransform(spec.shape, mean, std)
    train, test = Storage(data.train_images), Storage(data.test_images)
    scenario = options.scenario
    tasks, groups = [], []
    for t in range(options.n_tasks):
        group = order[t * k : (t + 1) * k]
        tr = _balanced(
            data.train_labels, group, options.train_size, _generator(seed, TRAIN_SUBSET_SALT + t), "train_size"
        )
        te = _balanced(data.test_labels, group, options.test_size, _generator(seed, TEST_SUBSET_SALT + t), "test_size")
        ytr, yte = data.train_labels[tr], data.test_labels[te]
        classes: tuple[int, ...] = tuple(sorted(group))
        if scenario == "domain":  # the j-th class of the group is label j in every task
            relabel = torch.full((spec.n_classes,), -1, dtype=torch.long)
            relabel[torch.tensor(group)] = torch.arange(k)
            ytr, yte, classes = relabel[ytr], relabel[yte], tuple(range(k))
        name_t = "classes-" + "-".join(map(str, group))
        tasks.append(
            Task(
                t,
                LazyInputs(train, tr, transform, spec.shape),
                ytr,
                LazyInputs(test, te, transform, spec.shape),
                yte,
                name=name_t,
                classes=classes,
            )
        )
        groups.append(group)
    n_classes = k if scenario == "domain" else spec.n_classes
    info = {
        "benchmark_seed": seed,
        "class_order": order,
        "classes": groups,
        "train_sizes": [len(t.train_y) for t in tasks],
    }
    return _stream(name, data, tasks, n_classes, scenario, info)
