"""The image data sets, read from disk (or downloaded) through torchvision's dataset classes.

Each data set is kept as torchvision stores it in memory: uint8 images ``[N, H, W]`` (MNIST,
Fashion-MNIST) or ``[N, H, W, C]`` (CIFAR) and int64 labels ``[N]``; streams turn them into float
inputs per batch (:mod:`clbench_vision.transforms`). Files live where torchvision puts them
under ``root``: ``MNIST/raw/``, ``FashionMNIST/raw/``, ``cifar-10-batches-py/``, ``cifar-100-python/``.

Failures are one line (:class:`clbench.errors.UserError`) naming the root and the files expected:
files missing with downloads off, a download that fails (no network), files that fail
torchvision's MD5 check, or files that cannot be read.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clbench.errors import UserError
from clbench.text import printable

#: The environment variable naming the default data folder.
DATA_ENV = "CLBENCH_DATA"


def default_root() -> Path:
    """``$CLBENCH_DATA`` when set, else ``~/.cache/clbench/data``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "clbench" / "data"


@dataclass(frozen=True)
class DatasetSpec:
    """What clbench knows of one data set: torchvision's class, where its files are under the root,
    its image shape [C, H, W], sizes, and the per-channel mean and std used to normalise it."""

    key: str
    title: str
    torchvision_class: str
    folder: str
    files: tuple[str, ...]
    shape: tuple[int, int, int]
    n_classes: int
    n_train: int
    n_test: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def idx_format(self) -> bool:
        """True for MNIST's idx files, False for CIFAR's pickled batches."""
        return self.key in ("mnist", "fashion-mnist")


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist", "MNIST", "MNIST", "MNIST/raw", _MNIST_FILES, (1, 28, 28), 10, 60_000, 10_000, (0.1307,), (0.3081,)
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        "Fashion-MNIST",
        "FashionMNIST",
        "FashionMNIST/raw",
        _MNIST_FILES,
        (1, 28, 28),
        10,
        60_000,
        10_000,
        (0.2860,),
        (0.3530,),
    ),
    "cifar10": DatasetSpec(
        "cifar10",
        "CIFAR-10",
        "CIFAR10",
        "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
        (3, 32, 32),
        10,
        50_000,
        10_000,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": DatasetSpec(
        "cifar100",
        "CIFAR-100",
        "CIFAR100",
        "cifar-100-python",
        ("train", "test", "meta"),
        (3, 32, 32),
        100,
        50_000,
        10_000,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
    ),
}


@dataclass
class ImageData:
    """A data set in memory: ``train_images`` uint8 [N, H, W] or [N, H, W, C], ``train_labels``
    int64 [N]; likewise the test split."""

    spec: DatasetSpec
    train_images: Any
    train_labels: Any
    test_images: Any
    test_labels: Any


def expected_files(spec: DatasetSpec, root: Path) -> list[Path]:
    """The files torchvision reads for ``spec`` under ``root``."""
    return [root / spec.folder / name for name in spec.files]


def missing_files(spec: DatasetSpec, root: Path) -> list[Path]:
    """Those of :func:`expected_files` that are not there."""
    return [p for p in expected_files(spec, root) if not p.is_file()]


def _where(spec: DatasetSpec, root: Path) -> str:
    return f"{printable(str(root / spec.folder))}/{{{','.join(spec.files)}}}"


def _fetch_hint(spec: DatasetSpec) -> str:
    return f"on a machine with a network, run 'clbench data fetch {spec.key} --root DIR' and copy DIR here"


def _torchvision() -> Any:
    try:
        from torchvision import datasets
    except ImportError as exc:
        raise UserError(
            f"the image streams need torchvision, which does not import ({exc}); install with: pip install 'clbench[vision]'"
        ) from None
    return datasets


def _dataset_class(spec: DatasetSpec, checksum: bool) -> Any:
    """torchvision's class for ``spec``; with ``checksum`` off, CIFAR's MD5 checks are replaced by
    a check that the files exist (MNIST's loader checks existence only)."""
    base = getattr(_torchvision(), spec.torchvision_class)
    if checksum or spec.idx_format:
        return base

    class Unverified(base):  # type: ignore[misc, valid-type]
        """torchvision's CIFAR reader without the MD5 comparison (files of the same format)."""

        def _check_integrity(self) -> bool:
            return all(
                os.path.isfile(os.path.join(self.root, self.base_folder, f))
                for f, _ in self.train_list + self.test_list
            )

        def _load_meta(self) -> None:
            import pickle

            path = os.path.join(self.root, self.base_folder, self.meta["filename"])
            if not os.path.isfile(path):
                raise RuntimeError(f"Dataset metadata file {path} not found")
            with open(path, "rb") as infile:
                self.classes = pickle.load(infile, encoding="latin1")[self.meta["key"]]

    Unverified.__name__ = base.__name__  # MNIST-style classes name their folder after the class
    return Unverified


@contextlib.contextmanager
def _download_lock(root: Path) -> Any:
    """Hold an exclusive lock on ``root`` while downloading, so that runs of one sweep that start
    together do not write the same files at once (POSIX; elsewhere no lock)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(root / ".clbench-download.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _reason(exc: BaseException) -> str:
    """A short reason for a failed download: the network error when there is one (torchvision lists
    one per mirror), else the first 160 characters of the message."""
    import re

    text = " ".join(str(exc).split())
    found = re.search(r"<urlopen error [^>]*>|HTTP Error \d+[^.;]*", text)
    if found:
        return found.group(0)
    return (text[:157] + "...") if len(text) > 160 else (text or type(exc).__name__)


def download(spec: DatasetSpec, root: Path) -> None:
    """Download ``spec``'s files into ``root`` with torchvision (checked against its MD5 sums);
    a failure is one :class:`UserError` line. torchvision's chatter is kept off the console."""
    cls = _dataset_class(spec, checksum=True)
    chatter = io.StringIO()
    folder = root / spec.folder
    new = [p for p in (folder, *folder.parents) if not p.exists()]  # folders a failed download leaves empty
    try:
        with _download_lock(root), contextlib.redirect_stdout(chatter):
            if missing_files(spec, root):
                cls(str(root), train=True, download=True)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - urllib, http, OSError, RuntimeError: all mean "no data"
        for path in new:
            with contextlib.suppress(OSError):
                path.rmdir()  # only when empty
        raise UserError(
            f"could not download {spec.title} into {printable(str(root))} ({_reason(exc)}); "
            f"expected files: {_where(spec, root)}; {_fetch_hint(spec)}"
        ) from None


def load(key: str, root: Path | None = None, *, download_missing: bool = True, checksum: bool = True) -> ImageData:
    """Data set ``key`` (a key of :data:`DATASETS`) from ``root`` (default :func:`default_root`),
    downloading it first when files are missing and ``download_missing``; one-line errors."""
    import torch

    spec = DATASETS[key]
    root = Path(root).expanduser() if root is not None else default_root()
    if missing_files(spec, root):
        if not download_missing:
            missing = ",".join(p.name for p in missing_files(spec, root))
            raise UserError(
                f"{spec.title} is not under {printable(str(root))}: missing {spec.folder}/{{{missing}}}, and "
                f"benchmark.download is false: set it true where there is a network, or {_fetch_hint(spec)}"
            )
        download(spec, root)
    cls = _dataset_class(spec, checksum)
    if checksum and not spec.idx_format:
        _check_md5(spec, root, cls)
    splits = []
    for train in (True, False):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                data = cls(str(root), train=train, download=False)
        except Exception as exc:  # noqa: BLE001 - torchvision's RuntimeError, a bad pickle, a short file
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise UserError(f"cannot read {spec.title} from {printable(str(root / spec.folder))}: {reason}") from None
        images = torch.as_tensor(data.data)  # uint8 [N, H, W] (MNIST) or [N, H, W, C] (CIFAR)
        labels = torch.as_tensor(data.targets, dtype=torch.long)  # [N]
        _check_shape(spec, images, labels)
        splits += [images, labels]
    return ImageData(spec, *splits)


def _check_md5(spec: DatasetSpec, root: Path, cls: Any) -> None:
    """One line naming the CIFAR files that do not match torchvision's MD5 sums."""
    from torchvision.datasets.utils import check_integrity

    listed = [*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"])]
    bad = [name for name, md5 in listed if not check_integrity(str(root / spec.folder / name), md5)]
    if bad:
        raise UserError(
            f"{spec.title} files under {printable(str(root / spec.folder))} do not match torchvision's MD5 sums "
            f"({', '.join(bad)}): download them again, or set benchmark.checksum=false to use files that are not "
            "the published ones"
        )


def _check_shape(spec: DatasetSpec, images: Any, labels: Any) -> None:
    import torch

    c, h, w = spec.shape
    want = (h, w) if spec.idx_format else (h, w, c)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != want or images.shape[0] != labels.shape[0]:
        raise UserError(
            f"{spec.title} files hold images of shape {tuple(images.shape)} {images.dtype} with "
            f"{labels.shape[0]} labels; expected [N, {', '.join(map(str, want))}] uint8 with N labels"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= spec.n_classes):
        raise UserError(f"{spec.title} labels must lie in 0..{spec.n_classes - 1}")
