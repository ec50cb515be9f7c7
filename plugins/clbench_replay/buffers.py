"""The replay buffers: FIFO, reservoir, prioritized and class-balanced.

All share :class:`clbench_replay.storage.TensorStore` (preallocated tensors, uniform sampling,
state dicts); each adds only its slot policy and, for prioritized replay, its sampling rule.
Shapes: ``x`` [n, *input_shape], ``y`` [n] int64, ``loss`` [n]; slots index the storage.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench_replay.storage import TensorStore


class FIFOBuffer(TensorStore):
    """A circular queue: keeps the newest ``capacity`` samples, overwriting the oldest."""

    kind = "fifo"

    def add(self, x: torch.Tensor, y: torch.Tensor, task: int, loss: torch.Tensor | None = None) -> None:
        """Append ``x`` [n, ...], ``y`` [n]; the oldest samples make room. ``loss`` is ignored."""
        slots, pos = self._fifo_slots(x.shape[0])
        self._write(slots, x[pos], y[pos], task)
        self.seen += x.shape[0]
        self.adds += 1

    def in_order(self) -> torch.Tensor:
        """Filled slots [size] from the oldest sample to the newest."""
        if self.size < self.capacity:
            return torch.arange(self.size)
        return (self.seen + torch.arange(self.capacity)) % self.capacity


class ReservoirBuffer(TensorStore):
    """Reservoir sampling: every sample of the stream is held with equal probability
    ``capacity / seen`` (Vitter 1985, algorithm R)."""

    kind = "reservoir"

    def add(self, x: torch.Tensor, y: torch.Tensor, task: int, loss: torch.Tensor | None = None) -> None:
        """Offer ``x`` [n, ...], ``y`` [n]; each is kept with probability ``capacity / (i + 1)``."""
        slots, pos = self._reservoir_slots(x.shape[0])
        self._write(slots, x[pos], y[pos], task)
        self.seen += x.shape[0]
        self.adds += 1


class PrioritizedBuffer(TensorStore):
    """Prioritized experience replay (Schaul et al. 2016, proportional variant).

    A slot's priority is ``p = |loss| + eps`` from the loss when the sample was added, refreshed
    whenever it is replayed (:meth:`update_priorities`); samples without a loss get the largest
    priority seen so far. Draws are with replacement with probability ``P(i) = p_i^alpha /
    sum_k p_k^alpha`` over the candidates (all held samples, or one task's), and carry importance
    weights ``w_i = (N P(i))^-beta / max_k (N P(k))^-beta = (P(i) / min_k P(k))^-beta`` in (0, 1].
    ``storage`` decides which sample a full buffer drops: ``reservoir`` (default) or ``fifo``.
    """

    kind = "prioritized"

    def __init__(
        self,
        capacity: int,
        batch_size: int,
        input_shape: tuple[int, ...],
        seed: int,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-3,
        storage: str = "reservoir",
        device: Any = None,
    ):
        super().__init__(capacity, batch_size, input_shape, seed, device)
        if storage not in ("reservoir", "fifo"):
            raise ValueError(f"unknown storage {storage!r}")
        self.alpha, self.beta, self.eps, self.storage = float(alpha), float(beta), float(eps), storage
        self.priority = torch.zeros(self.capacity, dtype=torch.float64)  # [C] p per slot
        self.scaled = torch.zeros(self.capacity, dtype=torch.float64)  # [C] p^alpha per slot
        self.written_at = torch.zeros(self.capacity, dtype=torch.long)  # [C] value of `adds` at write
        self.sampled_at = 0  # value of `adds` at the latest draw
        self.max_priority = 1.0

    def _set(self, slots: torch.Tensor, priority: torch.Tensor) -> None:
        """Store ``priority`` [k] (float64) and its power ``alpha`` for ``slots`` [k]."""
        self.priority[slots] = priority
        self.scaled[slots] = priority**self.alpha
        if priority.numel():
            self.max_priority = max(self.max_priority, float(priority.max()))

    def _from_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """Priorities ``|loss| + eps``: [k] -> [k] float64."""
        return loss.detach().reshape(-1).abs().to(device="cpu", dtype=torch.float64) + self.eps

    def add(self, x: torch.Tensor, y: torch.Tensor, task: int, loss: torch.Tensor | None = None) -> None:
        """Offer ``x`` [n, ...], ``y`` [n] with per-sample ``loss`` [n] (None: the max priority)."""
        n = x.shape[0]
        policy = self._reservoir_slots if self.storage == "reservoir" else self._fifo_slots
        slots, pos = policy(n)
        self._write(slots, x[pos], y[pos], task)
        if loss is None:
            self._set(slots, torch.full((slots.numel(),), self.max_priority, dtype=torch.float64))
        else:
            self._set(slots, self._from_loss(loss)[pos])
        self.written_at[slots] = self.adds
        self.seen += n
        self.adds += 1

    def _draw(self, n: int, pool: torch.Tensor | None, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` slots drawn with replacement with probability proportional to ``p^alpha``, and
        their importance weights [n] (float32, max-normalised over the candidates)."""
        scaled = self.scaled[: self.size] if pool is None else self.scaled[pool]  # [m]
        pick = torch.multinomial(scaled, n, replacement=True, generator=generator)  # [n]
        weight = (scaled[pick] / scaled.min()) ** (-self.beta)  # [n] in (0, 1]
        self.sampled_at = self.adds
        return (pick if pool is None else pool[pick]), weight.float()

    def update_priorities(self, index: torch.Tensor, loss: torch.Tensor) -> None:
        """Set the priority of slots ``index`` [k] from their replay ``loss`` [k]. Slots that were
        overwritten since the latest draw are skipped (their new sample keeps its own priority).
        A slot drawn more than once (draws are with replacement) takes its last loss, as in a
        sequential pass, whatever the device's scatter order."""
        index, priority = index.reshape(-1), self._from_loss(loss)  # [k], [k]
        fresh = self.written_at[index] < self.sampled_at  # [k] still holds the sample drawn
        index, priority = index[fresh], priority[fresh.cpu()]  # [m], [m]
        if priority.numel():  # every value a sequential pass assigns counts, the overwritten ones too
            self.max_priority = max(self.max_priority, float(priority.max()))
        if index.numel() > 1 and torch.unique(index).numel() < index.numel():
            last = dict(zip(index.tolist(), range(index.numel())))  # later positions win
            pos = torch.tensor(list(last.values()), dtype=torch.long)
            index, priority = index[pos.to(index.device)], priority[pos]
        self._set(index, priority)

    def priorities(self) -> torch.Tensor:
        """Priorities ``p`` [size] of the held samples (float64)."""
        return self.priority[: self.size].clone()

    def _extra_state(self) -> dict[str, Any]:
        s = self.size
        return {
            "priority": self.priority[:s].clone(),
            "written_at": self.written_at[:s].clone(),
            "sampled_at": self.sampled_at,
            "max_priority": self.max_priority,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        s = self.size
        self.priority.zero_()
        self.scaled.zero_()
        self.written_at.zero_()
        self.priority[:s], self.written_at[:s] = state["priority"], state["written_at"]
        self.scaled[:s] = self.priority[:s] ** self.alpha
        self.sampled_at, self.max_priority = int(state["sampled_at"]), float(state["max_priority"])


class ClassBalancedBuffer(TensorStore):
    """Class-balanced reservoir sampling (CBRS, Chrysakis & Moens 2020): equal room per class.

    While there is room, every sample is kept. Once full, a sample of class ``c`` that is not among
    the largest classes replaces a random sample of a (random) largest class, so a newly arriving
    class takes room from the largest; a sample of a largest class replaces a random sample of its
    own class with probability ``held_c / seen_c`` (reservoir sampling within the class).
    """

    kind = "class-balanced"

    def __init__(self, capacity: int, batch_size: int, input_shape: tuple[int, ...], seed: int, device: Any = None):
        super().__init__(capacity, batch_size, input_shape, seed, device)
        self.slots_of: dict[int, list[int]] = {}  # class -> its slots (order matters for draws)
        self.seen_of: dict[int, int] = {}  # class -> samples of it offered so far

    def class_counts(self) -> dict[int, int]:
        """Samples held per class."""
        return {c: len(s) for c, s in sorted(self.slots_of.items()) if s}

    def add(self, x: torch.Tensor, y: torch.Tensor, task: int, loss: torch.Tensor | None = None) -> None:
        """Offer ``x`` [n, ...], ``y`` [n] one by one under the CBRS rule. ``loss`` is ignored."""
        n = x.shape[0]
        labels = y.tolist()
        dest: dict[int, int] = {}  # slot -> position in the batch (later positions win)
        free = min(n, self.capacity - self.size)
        for p in range(free):  # room left: keep
            slot = self.size + p
            self.slots_of.setdefault(labels[p], []).append(slot)
            self.seen_of[labels[p]] = self.seen_of.get(labels[p], 0) + 1
            dest[slot] = p
        if free < n:
            u = torch.rand(n - free, 3, generator=self.generator, dtype=torch.float64).tolist()
            for p in range(free, n):
                c = labels[p]
                self.seen_of[c] = self.seen_of.get(c, 0) + 1
                mine = self.slots_of.setdefault(c, [])
                largest_n = max(len(s) for s in self.slots_of.values())
                r = u[p - free]
                if len(mine) < largest_n:  # c is not a largest class: take room from one
                    largest = [k for k, s in self.slots_of.items() if len(s) == largest_n]
                    victim = self.slots_of[largest[int(r[0] * len(largest))]]
                    at = int(r[1] * len(victim))
                    slot = victim[at]
                    victim[at] = victim[-1]
                    victim.pop()
                    mine.append(slot)
                elif r[2] * self.seen_of[c] < len(mine):  # within-class reservoir
                    slot = mine[int(r[1] * len(mine))]
                else:
                    continue
                dest[slot] = p
        if dest:
            slots = torch.tensor(list(dest.keys()))
            pos = torch.tensor(list(dest.values()))
            self._write(slots, x[pos], y[pos], task)
        self.seen += n
        self.adds += 1

    def _extra_state(self) -> dict[str, Any]:
        order = [s for c in sorted(self.slots_of) for s in self.slots_of[c]]
        return {"slot_order": torch.tensor(order, dtype=torch.long), "seen_of": dict(self.seen_of)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.slots_of = {}
        for slot in state["slot_order"].tolist():
            self.slots_of.setdefault(int(self.y[slot]), []).append(slot)
        self.seen_of = {int(k): int(v) for k, v in state["seen_of"].items()}
