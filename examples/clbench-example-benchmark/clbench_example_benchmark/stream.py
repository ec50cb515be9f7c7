"""The ``example.blobs`` stream: Gaussian class clusters, a few new classes per task, optional label noise.

Task ``t`` holds classes ``t*k .. t*k + k - 1`` (``k = classes_per_task``), ``n_tasks * k`` classes
in all. Class ``c`` is a cloud of points around its own centre ``mu_c`` [input_dim]:
``x = mu_c + spread * e``, ``e ~ N(0, I)``, with ``mu_c ~ separation * N(0, I)``. Training and test
labels are balanced over the task's classes. With ``label_noise = q``, a share ``q`` of the
*training* labels is replaced by another class of the same task (test labels stay clean), so the
stream also measures robustness to noisy labels.

Every draw comes from a generator seeded by :func:`clbench.components.derive_seed` of the stream
seed and a salt of its own, per task: task ``t`` is the same whatever ``n_tasks`` is, and turning
the label noise on changes labels only, never inputs.

Shapes: ``train_x`` [train_size, input_dim] float32, ``train_y`` [train_size] int64; likewise the
test split.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.components import Task, TaskStream, derive_seed

NAME = "example.blobs"
#: Salts of the stream's generators (plus the task index, below 100): centres and samples, and
#: label noise. Large and distinctive, far from each other and from the salts clbench uses.
SAMPLES_SALT, NOISE_SALT = 0xB10B_0000, 0xB10B_8000
#: Steps a memory model reads a sample in (its features split into this many chunks).
SEQUENCE_STEPS = 4


def balanced_labels(classes: list[int], n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` labels [n] int64 cycling through ``classes`` (counts differ by at most one), shuffled."""
    cycle = torch.tensor(classes, dtype=torch.long)[torch.arange(n) % len(classes)]  # [n]
    return cycle[torch.randperm(n, generator=generator)]


def add_label_noise(
    y: torch.Tensor, classes: list[int], share: float, generator: torch.Generator
) -> tuple[torch.Tensor, int]:
    """``y`` [n] with each label, with probability ``share``, replaced by another (uniformly drawn)
    class of ``classes``; and the number of labels changed."""
    if share <= 0 or len(classes) < 2:
        return y, 0
    k = len(classes)
    flip = torch.rand(y.shape[0], generator=generator) < share  # [n] bool
    shift = torch.randint(1, k, (y.shape[0],), generator=generator)  # [n] in 1..k-1: never the same class
    lookup = torch.full((max(classes) + 1,), -1, dtype=torch.long)
    lookup[torch.tensor(classes)] = torch.arange(k)
    position = lookup[y]  # [n] position of each label in ``classes``
    noisy = torch.tensor(classes, dtype=torch.long)[(position + shift) % k]  # [n]
    return torch.where(flip, noisy, y), int(flip.sum())


def make_task(t: int, options: Any, seed: int) -> tuple[Task, int]:
    """Task ``t``: its classes' centres and samples from its own generator; and how many of its
    training labels the noise changed."""
    o = options
    g = torch.Generator().manual_seed(derive_seed(seed, SAMPLES_SALT + t))
    classes = list(range(t * o.classes_per_task, (t + 1) * o.classes_per_task))
    centres = o.separation * torch.randn(len(classes), o.input_dim, generator=g)  # [k, input_dim]

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = balanced_labels(classes, n, g)  # [n]
        x = centres[y - classes[0]] + o.spread * torch.randn(n, o.input_dim, generator=g)  # [n, input_dim]
        return x.float(), y

    train_x, train_y = draw(o.train_size)
    test_x, test_y = draw(o.test_size)
    noise_g = torch.Generator().manual_seed(derive_seed(seed, NOISE_SALT + t))
    train_y, changed = add_label_noise(train_y, classes, o.label_noise, noise_g)
    name = "classes-" + "-".join(map(str, classes))
    return Task(t, train_x, train_y, test_x, test_y, name=name, classes=tuple(classes)), changed


def generate(options: Any, seed: int) -> TaskStream:
    """The stream for ``options`` (:class:`clbench_example_benchmark.plugin.BlobsOptions`) from
    stream seed ``seed``. ``info`` (saved in the record's ``benchmark_info``) holds the stream
    seed, each task's classes and how many training labels the noise changed per task."""
    tasks, changed = [], []
    for t in range(options.n_tasks):
        task, n_changed = make_task(t, options, seed)
        tasks.append(task)
        changed.append(n_changed)
    return TaskStream(
        name=NAME,
        tasks=tasks,
        n_classes=options.n_tasks * options.classes_per_task,
        input_shape=(options.input_dim,),
        sequence_steps=SEQUENCE_STEPS,
        info={
            "stream_seed": seed,
            "classes": [list(task.classes or ()) for task in tasks],
            "label_noise": options.label_noise,
            "noisy_labels": changed,
        },
        scenario=options.scenario,
    )
