"""Made-up image data sets written in the real ones' on-disk formats: MNIST's idx files and
CIFAR's pickled batches, exactly where torchvision looks for them under a root.

For machines without a network (tests, CI, the memory and speed scripts under ``benchmarks/``):
the streams read these files through the same torchvision code as the real ones. Images are
learnable: class c is a fixed random template (drawn from ``seed``) plus per-image noise, so a
model trained on them does better than chance. CIFAR files made here do not match torchvision's
MD5 sums: read them with ``benchmark.checksum=false``.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

from clbench_vision.data import DATASETS, DatasetSpec


def _images(
    spec: DatasetSpec, n: int, rng: np.random.Generator, templates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images [n, H, W, C] and int64 labels [n], every class equally often (cyclic)."""
    labels = np.arange(n) % spec.n_classes
    rng.shuffle(labels)
    images = np.empty((n, *templates.shape[1:]), dtype=np.uint8)
    for start in range(0, n, 4096):  # in chunks: 50,000 CIFAR images of float noise would take 1.2 GB
        part = labels[start : start + 4096]
        noise = rng.normal(0.0, 40.0, size=(part.size, *templates.shape[1:]))
        images[start : start + part.size] = np.clip(templates[part] + noise, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def _templates(spec: DatasetSpec, rng: np.random.Generator) -> np.ndarray:
    c, h, w = spec.shape
    return rng.uniform(0, 255, size=(spec.n_classes, h, w, c))  # [K, H, W, C]


def _idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8, 1-D labels or 3-D images) in the idx format: a big-endian magic
    (0x0800 + number of dimensions for unsigned bytes), the sizes, then the bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist_like(root: Path, key: str = "mnist", n_train: int = 600, n_test: int = 100, seed: int = 0) -> Path:
    """Write made-up ``mnist`` or ``fashion-mnist`` idx files under ``root``; returns their folder."""
    spec = DATASETS[key]
    rng = np.random.default_rng(seed)
    templates = _templates(spec, rng)
    folder = Path(root) / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = _images(spec, n, rng, templates)
        _idx(folder / f"{prefix}-images-idx3-ubyte", images[..., 0])
        _idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))
    return folder


def write_cifar_like(root: Path, key: str = "cifar10", n_train: int = 500, n_test: int = 100, seed: int = 0) -> Path:
    """Write made-up ``cifar10`` (five training batches, a test batch, ``batches.meta``) or
    ``cifar100`` (``train``, ``test``, ``meta``) pickles under ``root``; returns their folder."""
    spec = DATASETS[key]
    rng = np.random.default_rng(seed)
    templates = _templates(spec, rng)
    folder = Path(root) / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    label_key = "labels" if key == "cifar10" else "fine_labels"

    def batch(n: int, name: str) -> dict:
        images, labels = _images(spec, n, rng, templates)
        entry = {
            "batch_label": name,
            "data": images.transpose(0, 3, 1, 2).reshape(n, -1),  # [n, 3072]: the red plane, green, blue
            label_key: labels.tolist(),
            "filenames": [f"{name}-{i}.png" for i in range(n)],
        }
        if key == "cifar100":
            entry["coarse_labels"] = (labels // 5).tolist()
        return entry

    def dump(name: str, obj: dict) -> None:
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f)

    names = [f"class-{c}" for c in range(spec.n_classes)]
    if key == "cifar10":
        sizes = [n_train // 5 + (1 if i < n_train % 5 else 0) for i in range(5)]
        for i, size in enumerate(sizes, start=1):
            dump(f"data_batch_{i}", batch(size, f"training batch {i} of 5"))
        dump("test_batch", batch(n_test, "testing batch 1 of 1"))
        dump("batches.meta", {"label_names": names, "num_cases_per_batch": sizes[0], "num_vis": 3072})
    else:
        dump("train", batch(n_train, "training"))
        dump("test", batch(n_test, "testing"))
        dump("meta", {"fine_label_names": names, "coarse_label_names": [f"super-{c}" for c in range(20)]})
    return folder


def write_like(root: Path, key: str, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Write made-up files of data set ``key`` (any key of :data:`clbench_vision.data.DATASETS`)."""
    if DATASETS[key].idx_format:
        return write_mnist_like(root, key, n_train, n_test, seed)
    return write_cifar_like(root, key, n_train, n_test, seed)
