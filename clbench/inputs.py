"""Task inputs made per batch: compact storage (uint8 images), shared by every task, and the
transform that turns rows of it into float inputs when a batch is drawn.

A stream whose tasks are transformed views of one data set (permuted or rotated images, class
subsets) would otherwise hold a float copy per task: 20 permuted copies of MNIST's 60,000 images
are 3.7 GB. :class:`LazyInputs` keeps the data once, as stored, and behaves like the float tensor
it stands for wherever clbench reads task inputs: ``x.shape``, ``len(x)``, ``x[index]`` (an index
tensor, a slice or an int) and ``x.to(device)``. Code that needs a real tensor calls
:func:`materialize`; :func:`concat` joins the inputs of several tasks without copying them.

Torch is imported only when these objects are used, never at module level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import torch


@runtime_checkable
class BatchTransform(Protocol):
    """Turns source rows [b, *source_shape] (e.g. uint8 images) into float inputs [b, *input_shape].

    ``to(device)`` returns the transform with its own tensors (a permutation, interpolation
    weights) on ``device``."""

    def __call__(self, rows: torch.Tensor) -> torch.Tensor: ...

    def to(self, device: Any) -> BatchTransform: ...


class Storage:
    """One tensor shared by the inputs of many tasks, moved to a device at most once.

    ``tensor`` [N, ...] is kept as given (uint8 images stay uint8); :meth:`on` returns the storage
    on another device, cached, so that twenty task views of one data set make one device copy."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor
        self._moved: dict[str, Storage] = {str(tensor.device): self}

    def on(self, device: Any) -> Storage:
        """This storage on ``device`` (copied the first time, then reused)."""
        import torch

        key = str(torch.device(device))
        if key not in self._moved:
            moved = Storage(self.tensor.to(device))
            moved._moved = self._moved  # one cache for every copy
            self._moved[key] = moved
        return self._moved[key]

    @property
    def nbytes(self) -> int:
        """Bytes the stored tensor takes."""
        return int(self.tensor.numel() * self.tensor.element_size())


class LazyInputs:
    """The inputs of one task split, made per batch: rows ``index`` [n] of ``storage`` passed
    through ``transform``, giving float tensors [b, *input_shape].

    Indexing follows a tensor's: ``x[idx]`` with an index tensor [b] or list gives [b, *input_shape],
    a slice gives the rows in it, an int one sample [*input_shape].
    """

    def __init__(
        self, storage: Storage, index: torch.Tensor, transform: BatchTransform, input_shape: Sequence[int]
    ) -> None:
        self.storage, self.index, self.transform = storage, index, transform
        self.input_shape = tuple(int(d) for d in input_shape)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n, *input_shape)``, as the float tensor would have."""
        return (int(self.index.shape[0]), *self.input_shape)

    @property
    def device(self) -> torch.device:
        """Where the storage and the made batches are."""
        return self.storage.tensor.device

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __getitem__(self, key: Any) -> torch.Tensor:
        import torch

        if isinstance(key, int):
            return self[torch.tensor([key], device=self.index.device)][0]
        if isinstance(key, list):
            key = torch.as_tensor(key, dtype=torch.long)
        if isinstance(key, torch.Tensor):
            key = key.to(self.index.device)
        rows = self.index[key]  # [b]
        if rows.dim() != 1:
            raise IndexError(f"LazyInputs takes a 1-D index, a slice or an int, got {type(key).__name__}")
        return self.transform(self.storage.tensor[rows.to(self.storage.tensor.device)])

    def to(self, device: Any) -> LazyInputs:
        """The same inputs with storage, index and transform on ``device``."""
        return LazyInputs(self.storage.on(device), self.index.to(device), self.transform.to(device), self.input_shape)

    def cpu(self) -> LazyInputs:
        """The same inputs on the CPU."""
        return self.to("cpu")

    def __repr__(self) -> str:
        return f"LazyInputs(shape={self.shape}, storage={tuple(self.storage.tensor.shape)} {self.storage.tensor.dtype})"


class ConcatInputs:
    """Several tasks' inputs end to end, indexed as one [sum n_i, *input_shape] without a copy."""

    def __init__(self, parts: Sequence[Any]):
        import torch

        if not parts:
            raise ValueError("concat needs at least one part")
        shapes = {tuple(p.shape[1:]) for p in parts}
        if len(shapes) != 1:
            raise ValueError(f"inputs of different shapes cannot be joined: {sorted(shapes)}")
        self.parts = list(parts)
        self.input_shape = shapes.pop()
        sizes = torch.tensor([int(p.shape[0]) for p in parts])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])  # [P + 1]

    @property
    def shape(self) -> tuple[int, ...]:
        """``(sum of the parts' n, *input_shape)``."""
        return (int(self.offsets[-1]), *self.input_shape)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, key: Any) -> torch.Tensor:
        import torch

        n = len(self)
        if isinstance(key, int):
            return self[torch.tensor([key])][0]
        if isinstance(key, slice):
            key = torch.arange(n)[key]
        idx = torch.as_tensor(key, dtype=torch.long).cpu()  # [b]
        part = torch.searchsorted(self.offsets, idx, right=True) - 1  # [b], the part each index falls in
        out: torch.Tensor | None = None
        for p in part.unique().tolist():
            sel = (part == p).nonzero().squeeze(1)  # positions in the batch
            rows = self.parts[p][idx[sel] - self.offsets[p]]  # [k, *input_shape]
            if out is None:
                out = torch.empty((idx.shape[0], *self.input_shape), dtype=rows.dtype, device=rows.device)
            out[sel.to(rows.device)] = rows
        if out is None:  # an empty index
            return self.parts[0][torch.zeros(0, dtype=torch.long)]
        return out

    def to(self, device: Any) -> ConcatInputs:
        """The same parts on ``device``."""
        return ConcatInputs([p.to(device) for p in self.parts])


def concat(parts: Sequence[Any]) -> Any:
    """The inputs (or labels) of several tasks end to end: ``torch.cat`` when every part is a
    tensor, else a :class:`ConcatInputs` view that makes batches from the parts on demand."""
    import torch

    if all(isinstance(p, torch.Tensor) for p in parts):
        return torch.cat(list(parts))
    return ConcatInputs(parts)


def materialize(x: Any, batch_size: int = 4096) -> torch.Tensor:
    """``x`` as a float tensor [n, *input_shape]: a tensor is returned as it is; lazy inputs are
    made batch by batch (this allocates the whole float copy: use it on small splits only)."""
    import torch

    if isinstance(x, torch.Tensor):
        return x
    n = int(x.shape[0])
    if n == 0:
        return x[torch.zeros(0, dtype=torch.long)]
    return torch.cat([x[start : start + batch_size] for start in range(0, n, batch_size)])


def is_lazy(x: Any) -> bool:
    """True for inputs made per batch (:class:`LazyInputs`, :class:`ConcatInputs`)."""
    return isinstance(x, (LazyInputs, ConcatInputs))
