"""Task streams on scikit-learn's bundled digits (1797 images of 8x8 pixels, ten classes, no download).

Every stream shares one preprocessing: pixels scaled from 0..16 to [0, 1], images flattened to 64
features in row order (so a memory model reading ``sequence_steps=8`` steps reads the 8 rows), and
one stratified train/test split drawn from the stream seed, the same for every task. Tasks differ by
a fixed transform of the pixels (a permutation, a rotation) or by the classes they hold.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from clbench.components import Task, TaskStream, derive_seed

SIDE = 8
N_PIXELS = SIDE * SIDE
N_CLASSES = 10
#: Salts of the stream's derived seeds (see :func:`clbench.components.derive_seed`).
PERMUTATION_SALT, CLASS_ORDER_SALT = 101, 7


@lru_cache(maxsize=1)
def load() -> tuple[np.ndarray, np.ndarray]:
    """The digits as ``x`` [1797, 64] float32 in [0, 1] and ``y`` [1797] int64."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def stratified_split(y: np.ndarray, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with ``round(test_fraction * n_c)`` test samples of every class c (at
    least one each side when the class has two samples); both sorted. ``y`` is [n]."""
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = min(max(1, round(test_fraction * idx.size)), idx.size - 1) if idx.size > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def rotation_matrix(angle_deg: float, side: int = SIDE) -> np.ndarray:
    """The linear map [side*side, side*side] that rotates a flattened image counter-clockwise by
    ``angle_deg`` about its centre with bilinear interpolation (zeros outside): ``x_rot = M @ x``.

    Output pixel (r, c) samples the input at the inverse-rotated position; an angle of 0 gives the
    identity exactly.
    """
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    centre = (side - 1) / 2.0
    M = np.zeros((side * side, side * side), dtype=np.float64)
    for r in range(side):
        for c in range(side):
            dy, dx = r - centre, c - centre  # image coordinates, rows grow downwards
            # inverse rotation (by -theta) of the output position, in (x right, y up) coordinates
            sx = cos * dx - sin * dy + centre
            sy = sin * dx + cos * dy + centre
            r0, c0 = math.floor(sy), math.floor(sx)
            fr, fc = sy - r0, sx - c0
            for rr, wr in ((r0, 1 - fr), (r0 + 1, fr)):
                for cc, wc in ((c0, 1 - fc), (c0 + 1, fc)):
                    w = wr * wc
                    if w > 1e-12 and 0 <= rr < side and 0 <= cc < side:
                        M[r * side + c, rr * side + cc] += w
    return M


def _base(seed: int, test_fraction: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The split shared by every task: train x [n, 64], y [n]; test x [m, 64], y [m]."""
    x, y = load()
    train, test = stratified_split(y, test_fraction, np.random.default_rng(seed))
    return torch.from_numpy(x[train]), torch.from_numpy(y[train]), torch.from_numpy(x[test]), torch.from_numpy(y[test])


def _stream(name: str, tasks: list[Task], seed: int, info: dict) -> TaskStream:
    return TaskStream(
        name=name,
        tasks=tasks,
        n_classes=N_CLASSES,
        input_shape=(N_PIXELS,),
        sequence_steps=SIDE,
        info={"stream_seed": seed, **info},
    )


def permuted(n_tasks: int, seed: int, test_fraction: float, identity_first: bool) -> TaskStream:
    """Each task applies one fixed pixel permutation (drawn from ``seed``) to every image; task 0 is
    the identity when ``identity_first``."""
    xtr, ytr, xte, yte = _base(seed, test_fraction)
    g = torch.Generator().manual_seed(derive_seed(seed, PERMUTATION_SALT))
    tasks = []
    for t in range(n_tasks):
        perm = torch.arange(N_PIXELS) if t == 0 and identity_first else torch.randperm(N_PIXELS, generator=g)  # [64]
        tasks.append(Task(t, xtr[:, perm].contiguous(), ytr, xte[:, perm].contiguous(), yte, name=f"permutation-{t}"))
    return _stream("permuted-digits", tasks, seed, {"test_fraction": test_fraction, "identity_first": identity_first})


def rotation_angles(n_tasks: int, angle_min: float, angle_max: float) -> list[float]:
    """``n_tasks`` angles evenly spaced from ``angle_min`` to ``angle_max`` (both included)."""
    if n_tasks == 1:
        return [float(angle_min)]
    step = (angle_max - angle_min) / (n_tasks - 1)
    return [float(angle_min + t * step) for t in range(n_tasks)]


def rotated(n_tasks: int, seed: int, test_fraction: float, angle_min: float, angle_max: float) -> TaskStream:
    """Each task rotates every image by its own angle (evenly spread over the range)."""
    xtr, ytr, xte, yte = _base(seed, test_fraction)
    angles = rotation_angles(n_tasks, angle_min, angle_max)
    tasks = []
    for t, angle in enumerate(angles):
        M = torch.from_numpy(rotation_matrix(angle)).float()  # [64, 64]
        tasks.append(Task(t, xtr @ M.T, ytr, xte @ M.T, yte, name=f"rotation-{angle:g}"))
    return _stream("rotated-digits", tasks, seed, {"test_fraction": test_fraction, "angles": angles})


def split(n_tasks: int, seed: int, test_fraction: float, shuffle_classes: bool) -> TaskStream:
    """Class-incremental: task t holds classes ``order[t*k:(t+1)*k]`` with k = 10 / n_tasks (pairs
    for 5 tasks); one 10-way head throughout. ``order`` is 0..9, or a seeded shuffle."""
    xtr, ytr, xte, yte = _base(seed, test_fraction)
    order = list(range(N_CLASSES))
    if shuffle_classes:
        order = np.random.default_rng(derive_seed(seed, CLASS_ORDER_SALT)).permutation(N_CLASSES).tolist()
    k = N_CLASSES // n_tasks
    tasks, groups = [], []
    for t in range(n_tasks):
        classes = sorted(order[t * k : (t + 1) * k])
        keep_tr, keep_te = torch.isin(ytr, torch.tensor(classes)), torch.isin(yte, torch.tensor(classes))
        name = "classes-" + "-".join(map(str, classes))
        tasks.append(Task(t, xtr[keep_tr], ytr[keep_tr], xte[keep_te], yte[keep_te], name=name))
        groups.append(classes)
    return _stream("split-digits", tasks, seed, {"test_fraction": test_fraction, "classes": groups})
