"""Tests of lazy task inputs (clbench.inputs): they index, slice, move and join like the float
tensors they stand for, and keep one copy of their storage."""

from __future__ import annotations

import pytest
import torch

from clbench.inputs import ConcatInputs, LazyInputs, Storage, concat, is_lazy, materialize


class Scale:
    """uint8 rows [b, 3] -> float [b, 3] / 255 + shift (a transform with a tensor of its own)."""

    def __init__(self, shift: torch.Tensor):
        self.shift = shift

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        return rows.float() / 255 + self.shift

    def to(self, device):
        return Scale(self.shift.to(device))


def lazy(storage: Storage, rows: list[int], shift: float = 0.0) -> LazyInputs:
    return LazyInputs(storage, torch.tensor(rows), Scale(torch.tensor(shift)), (3,))


def test_lazy_inputs_behave_like_their_tensor():
    storage = Storage(torch.randint(0, 256, (10, 3), dtype=torch.uint8))
    x = lazy(storage, [7, 2, 5, 0], shift=1.0)
    full = storage.tensor[[7, 2, 5, 0]].float() / 255 + 1.0  # [4, 3]
    assert x.shape == (4, 3) and len(x) == 4 and is_lazy(x)
    assert torch.equal(materialize(x), full)
    assert torch.equal(x[torch.tensor([3, 1])], full[[3, 1]])
    assert torch.equal(x[[2]], full[[2]]) and torch.equal(x[1:3], full[1:3]) and torch.equal(x[2], full[2])
    assert x[torch.zeros(0, dtype=torch.long)].shape == (0, 3)
    assert storage.tensor.dtype == torch.uint8  # nothing was converted in place
    with pytest.raises(IndexError):
        x[torch.zeros(2, 2, dtype=torch.long)]


def test_storage_moves_once_for_every_view():
    storage = Storage(torch.zeros(4, 3, dtype=torch.uint8))
    a, b = lazy(storage, [0, 1]), lazy(storage, [2, 3])
    assert a.to("cpu").storage is storage  # already there
    meta = torch.device("meta")
    assert a.to(meta).storage is b.to(meta).storage and a.to(meta).device.type == "meta"
    assert storage.nbytes == 12


def test_concat_joins_tasks_without_copying():
    storage = Storage(torch.randint(0, 256, (10, 3), dtype=torch.uint8))
    parts = [lazy(storage, [0, 1, 2], 0.0), lazy(storage, [3, 4], 10.0), lazy(storage, [5, 6, 7, 8], 20.0)]
    joined = concat(parts)
    assert isinstance(joined, ConcatInputs) and joined.shape == (9, 3) and len(joined) == 9
    full = torch.cat([materialize(p) for p in parts])
    idx = torch.tensor([8, 0, 4, 3, 2, 6])
    assert (
        torch.equal(joined[idx], full[idx]) and torch.equal(joined[2:5], full[2:5]) and torch.equal(joined[4], full[4])
    )
    assert torch.equal(materialize(joined), full)
    tensors = [torch.ones(2, 3), torch.zeros(1, 3)]
    assert torch.equal(concat(tensors), torch.cat(tensors))  # tensors join as tensors
    with pytest.raises(ValueError, match="different shapes"):
        ConcatInputs([torch.ones(2, 3), torch.ones(2, 4)])
