"""Per-batch image transforms: uint8 rows of a data set to normalised float inputs, with a task's
fixed pixel permutation or rotation applied on the way.

Nothing here allocates per task: a permutation is an index [H*W], a rotation a sparse matrix with
four bilinear weights a row ([H*W, H*W], 4*H*W entries); both are applied to each batch as it is drawn.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch


def rotation_gather(angle_deg: float, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear rotation of an image [H, W] counter-clockwise by ``angle_deg`` about its centre
    (zeros outside), as a gather: ``out[p] = sum_k weight[p, k] * img.flatten()[index[p, k]]``.

    Returns ``index`` [H*W, 4] int64 and ``weight`` [H*W, 4] float32. Output pixel (r, c) samples
    the input at its position rotated back by ``angle_deg``; multiples of 90 degrees on a square
    image move pixel centres onto pixel centres, so they are exact (``torch.rot90``).
    """
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    r, c = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    dy, dx = r - cy, c - cx  # image coordinates: rows grow downwards
    sx = cos * dx - sin * dy + cx  # inverse rotation in (x right, y up) coordinates
    sy = sin * dx + cos * dy + cy
    # snap positions within float error of a pixel centre, so right angles stay exact
    sx = torch.where((sx - sx.round()).abs() < 1e-9, sx.round(), sx)
    sy = torch.where((sy - sy.round()).abs() < 1e-9, sy.round(), sy)
    r0, c0 = sy.floor(), sx.floor()
    fr, fc = sy - r0, sx - c0
    index, weight = [], []
    for rr, wr in ((r0, 1 - fr), (r0 + 1, fr)):
        for cc, wc in ((c0, 1 - fc), (c0 + 1, fc)):
            inside = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
            w = torch.where(inside, wr * wc, torch.zeros_like(wr))
            i = torch.where(inside, rr * width + cc, torch.zeros_like(rr))
            index.append(i.flatten().long())
            weight.append(w.flatten())
    return torch.stack(index, dim=1), torch.stack(weight, dim=1).float()


def rotation_matrix(index: torch.Tensor, weight: torch.Tensor, pixels: int) -> torch.Tensor:
    """The rotation of :func:`rotation_gather` as a sparse CSR matrix [P, P] (four entries a row):
    ``out = M @ img.flatten()``; one sparse product rotates a batch, 5 to 10x faster here than a
    gather of the four neighbours."""
    rows = torch.arange(pixels).repeat_interleave(index.shape[1])
    with warnings.catch_warnings():  # CSR support is marked beta; the product used here is long-standing
        warnings.simplefilter("ignore", UserWarning)
        coo = torch.sparse_coo_tensor(torch.stack([rows, index.flatten()]), weight.flatten(), (pixels, pixels))
        return coo.coalesce().to_sparse_csr()


class ImageTransform:
    """uint8 rows [b, H, W] (one channel) or [b, H, W, C] -> float inputs [b, C, H, W]:
    apply the task's pixel ``permutation`` [H*W] (the same for every channel, on the uint8 pixels)
    or ``rotation`` (:func:`rotation_gather`, applied as a sparse product), scale to [0, 1], then
    normalise per channel with ``mean`` and ``std``.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        permutation: torch.Tensor | None = None,
        rotation: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        self.shape = tuple(int(d) for d in shape)
        c, h, w = self.shape
        self.mean = None if mean is None else torch.tensor(mean).view(1, c, 1, 1)  # [1, C, 1, 1]
        self.std = None if std is None else torch.tensor(std).view(1, c, 1, 1)
        self.permutation = permutation  # [H*W] int64
        self.rotation = None if rotation is None else rotation_matrix(*rotation, h * w)  # CSR [H*W, H*W]

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        """rows uint8 [b, H, W] or [b, H, W, C] -> float32 [b, C, H, W]."""
        x = rows.unsqueeze(1) if rows.dim() == 3 else rows.permute(0, 3, 1, 2)  # [b, C, H, W] uint8
        b, c, h, w = x.shape
        if self.permutation is not None:  # a gather with an expanded index: the fastest way on a CPU
            flat = x.reshape(b * c, h * w)
            x = torch.gather(flat, 1, self.permutation.expand(b * c, h * w)).view(b, c, h, w)
        x = x.float()
        if self.rotation is not None:
            x = torch.sparse.mm(self.rotation, x.reshape(b * c, h * w).T).T.reshape(b, c, h, w)
        x = x.div_(255.0) if x.is_contiguous() else x.div(255.0)
        if self.mean is not None and self.std is not None:
            x = x.sub_(self.mean).div_(self.std)
        return x.contiguous()

    def to(self, device: Any) -> ImageTransform:
        """This transform with its tensors on ``device``."""
        moved = ImageTransform.__new__(ImageTransform)
        moved.shape = self.shape
        moved.mean = None if self.mean is None else self.mean.to(device)
        moved.std = None if self.std is None else self.std.to(device)
        moved.permutation = None if self.permutation is None else self.permutation.to(device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            moved.rotation = None if self.rotation is None else self.rotation.to(device)
        return moved

    def __repr__(self) -> str:
        what = "permuted" if self.permutation is not None else "rotated" if self.rotation is not None else "plain"
        return f"ImageTransform({what}, shape={self.shape})"
