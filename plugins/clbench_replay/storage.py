"""Preallocated sample storage shared by every replay buffer, and the two slot policies.

A :class:`TensorStore` owns ``x`` [capacity, *input_shape] float32, ``y`` [capacity] int64 and
``task`` [capacity] int64. Slots ``0 .. size-1`` hold samples: every buffer fills slots in order
until it is full, then overwrites. Subclasses only decide *which* slots a new batch goes to
(:meth:`add`) and, optionally, how slots are drawn (:meth:`_draw`).

Randomness of ``add`` (reservoir and class-balanced eviction) comes from the buffer's own
``torch.Generator``, seeded from an explicit seed; its state is part of :meth:`state_dict`, so a
restored buffer continues exactly as the original would have.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.components import ReplayBatch, ReplayBuffer

#: Below ``UNIFORM_EXACT_FACTOR * n`` candidate slots, uniform draws are without replacement
#: (a permutation of the candidates); above it, with replacement (duplicates are then rare and a
#: permutation of 10,000 slots per draw would cost more than the rest of the step).
UNIFORM_EXACT_FACTOR = 16


class TensorStore(ReplayBuffer):
    """Base class of the built-in buffers: preallocated tensors, per-task counts, uniform sampling,
    ``state_dict`` / ``load_state_dict``.

    ``capacity`` samples of shape ``input_shape``; ``batch_size`` is the replay batch size the
    learner draws per step; ``seed`` seeds the buffer's own generator (used by ``add``). The
    samples (``x``, ``y``) live on ``device`` (the run's; None: the CPU), as do the batches drawn;
    the bookkeeping (task ids, counts, priorities, slot indices) stays on the CPU, where the
    generators draw.
    """

    kind = "store"

    def __init__(self, capacity: int, batch_size: int, input_shape: tuple[int, ...], seed: int, device: Any = None):
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be positive")
        self.capacity, self.batch_size = int(capacity), int(batch_size)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.device = torch.device(device if device is not None else "cpu")
        self.x = torch.zeros((self.capacity, *self.input_shape), dtype=torch.float32, device=self.device)  # [C, ...]
        self.y = torch.zeros(self.capacity, dtype=torch.long, device=self.device)  # [C]
        self.task = torch.full((self.capacity,), -1, dtype=torch.long)  # [C]; -1 = empty slot
        self.size = 0  # filled slots: 0 .. size-1
        self.seen = 0  # samples offered so far
        self.adds = 0  # calls of add so far
        self.task_count = torch.zeros(0, dtype=torch.long)  # [max task id + 1] samples held per task
        self.generator = torch.Generator().manual_seed(int(seed))
        self._slots_of_task: dict[int, torch.Tensor] = {}  # cache: task -> its slots, dropped when they change

    # --- the ReplayBuffer interface -------------------------------------------------------------

    def __len__(self) -> int:
        """Number of samples held."""
        return self.size

    def tasks(self) -> list[int]:
        """Ids of the tasks with at least one sample held, sorted."""
        return torch.nonzero(self.task_count).flatten().tolist()

    def sample(self, n: int, generator: torch.Generator, task: int | None = None) -> ReplayBatch | None:
        """Draw samples (of ``task`` only, when given): ``min(n, held)`` distinct ones when uniform
        (see :meth:`_draw`), ``n`` with replacement when prioritized; None if none are held."""
        if n <= 0 or self.size == 0:
            return None
        if task is None:
            pool = None
        else:
            if task < 0 or task >= self.task_count.shape[0] or int(self.task_count[task]) == 0:
                return None
            pool = self._slots_of_task.get(task)
            if pool is None:  # a scan of the storage, cached until a write touches the task
                pool = self._slots_of_task[task] = torch.nonzero(self.task[: self.size] == task).flatten()  # [m]
        index, weight = self._draw(n, pool, generator)  # [k] slots and weights, on the CPU
        if self.device.type == "cpu":
            return ReplayBatch(self.x[index], self.y[index], self.task[index], index, weight)
        moved = None if weight is None else weight.to(self.device)
        return ReplayBatch(self.x[index], self.y[index], self.task[index].to(self.device), index, moved)

    def state_dict(self) -> dict[str, Any]:
        """Held samples, counters and the generator state (all tensors are copies)."""
        s = self.size
        state = {
            "kind": self.kind,
            "capacity": self.capacity,
            "batch_size": self.batch_size,
            "input_shape": list(self.input_shape),
            "x": self.x[:s].clone(),
            "y": self.y[:s].clone(),
            "task": self.task[:s].clone(),
            "size": s,
            "seen": self.seen,
            "adds": self.adds,
            "generator": self.generator.get_state(),
        }
        state.update(self._extra_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` of a buffer of the same kind, capacity and input shape."""
        if state.get("kind") != self.kind:
            raise ValueError(f"state of a {state.get('kind')!r} buffer cannot be loaded into a {self.kind!r} buffer")
        if int(state["capacity"]) != self.capacity or tuple(state["input_shape"]) != self.input_shape:
            raise ValueError("state has another capacity or input shape than this buffer")
        s = int(state["size"])
        self.x.zero_()
        self.y.zero_()
        self.task.fill_(-1)
        self.x[:s], self.y[:s], self.task[:s] = state["x"], state["y"], state["task"]
        self.size, self.seen, self.adds = s, int(state["seen"]), int(state["adds"])
        self.batch_size = int(state["batch_size"])
        self.task_count = torch.bincount(self.task[:s]) if s else torch.zeros(0, dtype=torch.long)
        self.generator.set_state(state["generator"])
        self._slots_of_task.clear()
        self._load_extra_state(state)

    # --- for subclasses -------------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        """Subclass state to save beside the samples."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_extra_state` saved."""

    def _write(self, slots: torch.Tensor, x: torch.Tensor, y: torch.Tensor, task: int) -> None:
        """Store ``x`` [k, ...], ``y`` [k] of ``task`` in distinct ``slots`` [k].

        Slots ``< size`` are overwritten; the others must continue the filled range. Keeps the
        per-task counts right.
        """
        if slots.numel() == 0:
            return
        if task < 0:
            raise ValueError(f"task ids must be non-negative, got {task}")
        old = self.task[slots]  # [k]
        old = old[old >= 0]
        self._slots_of_task.pop(task, None)  # the cached slot lists of the tasks touched are stale
        if old.numel():
            self.task_count -= torch.bincount(old, minlength=self.task_count.shape[0])
            for t in set(old.tolist()):
                self._slots_of_task.pop(t, None)
        if task >= self.task_count.shape[0]:
            grown = torch.zeros(task + 1, dtype=torch.long)
            grown[: self.task_count.shape[0]] = self.task_count
            self.task_count = grown
        self.task_count[task] += slots.numel()
        self.x[slots] = x.to(self.x.dtype)
        self.y[slots] = y
        self.task[slots] = task
        self.size = max(self.size, int(slots.max()) + 1)

    def _fifo_slots(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Circular-queue policy: slots [k] for the last ``k = min(n, capacity)`` of ``n`` new
        samples, and their positions [k] in the batch. The oldest samples are overwritten."""
        k = min(n, self.capacity)
        start = (self.seen + n - k) % self.capacity  # the write pointer after skipping n - k samples
        slots = (start + torch.arange(k)) % self.capacity
        return slots, torch.arange(n - k, n)

    def _reservoir_slots(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reservoir policy (Vitter's algorithm R), vectorised: sample number ``i`` of the stream
        (0-based) takes slot ``i`` while the buffer fills, then slot ``j ~ U{0..i}`` if ``j <
        capacity``, else is dropped. Decisions are independent, so processing a batch at once is
        exact; when two samples of a batch pick one slot, the later one wins, as in a sequential
        pass. Returns distinct slots [k] and positions [k] in the batch."""
        i = self.seen + torch.arange(n, dtype=torch.float64)  # [n] stream index of each sample
        j = torch.floor(torch.rand(n, generator=self.generator, dtype=torch.float64) * (i + 1))
        j = torch.where(i < self.capacity, i, j).long()  # [n]
        keep = torch.nonzero(j < self.capacity).flatten()
        slots = j[keep]
        if slots.numel() > 1 and torch.unique(slots).numel() < slots.numel():
            last = dict(zip(slots.tolist(), keep.tolist()))  # later positions win
            slots, keep = torch.tensor(list(last.keys())), torch.tensor(list(last.values()))
        return slots, keep

    def _draw(
        self, n: int, pool: torch.Tensor | None, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Uniform draw of slots [min(n, m)] from ``pool`` [m] (None: all filled slots); no weights."""
        m = self.size if pool is None else pool.numel()
        k = min(n, m)
        if m <= UNIFORM_EXACT_FACTOR * n:
            pick = torch.randperm(m, generator=generator)[:k]
        else:
            pick = torch.randint(m, (k,), generator=generator)
        return (pick if pool is None else pool[pick]), None
