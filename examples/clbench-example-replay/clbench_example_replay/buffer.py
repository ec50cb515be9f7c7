"""A loss-aware, task-balanced replay buffer: equal room per task, the hardest samples of each.

Every slot remembers the latest loss known for its sample: the loss the meta-learner's step gave
when the sample was added, refreshed each time the sample is replayed
(:meth:`LossAwareBuffer.update_priorities`). While there is room, every sample is kept. Once the
buffer is full, a new sample of task ``t``:

- if ``t`` holds fewer samples than the largest task: takes the slot of the lowest-loss sample
  among ``candidates`` random samples of the largest task (a random one of them on a tie), so that
  a new task gains room until the tasks are balanced;
- otherwise: replaces the lowest-loss sample among ``candidates`` random samples of its own task,
  if its own loss is higher; else it is dropped.

Within a task, the buffer thus keeps hard samples, and samples the model has learnt (their loss
fell when they were replayed) are the first to go. With ``candidates`` at least the task's share,
the choice within a task is exact; a few candidates make it cheap and keep some variety. The
random draws come from the buffer's own generator, seeded from the run seed.

Draws are uniform over the held samples (or one task's) and carry no importance weights.

Shapes: ``x`` [n, *input_shape] float32, ``y`` [n] int64, ``loss`` [n]. Storage: ``x``
[capacity, *input_shape] and ``y`` [capacity] on the run's device; the bookkeeping (task id and
loss per slot, [capacity]) on the CPU, where the generators draw.
"""

from __future__ import annotations

from typing import Any

import torch

from clbench.components import ReplayBatch, ReplayBuffer


class LossAwareBuffer(ReplayBuffer):
    """Equal room per task, the highest-loss samples of each; see the module doc.

    ``capacity`` samples of shape ``input_shape``; ``batch_size`` is the replay batch the learner
    draws per step; ``seed`` seeds the buffer's own generator (eviction candidates only: the draws
    of :meth:`sample` come from the generator the caller passes). ``extras``, when given, is the
    run's ``build.extras``: the buffer keeps ``extras[extras_key]`` up to date with :meth:`summary`,
    so that its counters end up in the run's record. It holds the dict itself, never the value
    under its key: a resumed run replaces that value with the checkpoint's.
    """

    def __init__(
        self,
        capacity: int,
        batch_size: int,
        input_shape: tuple[int, ...],
        seed: int,
        candidates: int = 8,
        device: Any = None,
        extras: dict[str, Any] | None = None,
        extras_key: str = "example.loss-aware",
    ):
        if capacity < 1 or batch_size < 1 or candidates < 1:
            raise ValueError("capacity, batch_size and candidates must be positive")
        self.capacity, self.batch_size, self.candidates = int(capacity), int(batch_size), int(candidates)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.device = torch.device(device if device is not None else "cpu")
        self.x = torch.zeros((self.capacity, *self.input_shape), dtype=torch.float32, device=self.device)  # [C, ...]
        self.y = torch.zeros(self.capacity, dtype=torch.long, device=self.device)  # [C]
        self.task = torch.full((self.capacity,), -1, dtype=torch.long)  # [C] task id per slot; -1 = empty
        self.loss = torch.zeros(self.capacity, dtype=torch.float64)  # [C] latest known loss per slot
        self.size = 0  # filled slots: 0 .. size-1
        self.seen = 0  # samples offered so far
        self.evicted = 0  # samples that replaced a held one
        self.dropped = 0  # samples not kept
        self.held: dict[int, int] = {}  # task id -> samples of it held
        self.generator = torch.Generator().manual_seed(int(seed))
        self.extras, self.extras_key = extras, extras_key

    # --- what the learner calls -------------------------------------------------------------

    def add(self, x: torch.Tensor, y: torch.Tensor, task: int, loss: torch.Tensor | None = None) -> None:
        """Offer ``x`` [n, *input_shape], ``y`` [n] of task ``task`` with their per-sample ``loss`` [n].

        Samples are taken in order under the rule of the module doc. A sample without a loss
        (``loss=None``) counts as infinitely hard: it gets in whenever its task has a candidate
        slot, and stays until a replay gives it a loss.
        """
        n = int(x.shape[0])
        if n == 0:
            return
        if task < 0:
            raise ValueError(f"task ids must be non-negative, got {task}")
        if loss is None:
            new = torch.full((n,), float("inf"), dtype=torch.float64)  # [n]
        else:
            new = loss.detach().reshape(-1).to(device="cpu", dtype=torch.float64)  # [n]
        dest: dict[int, int] = {}  # slot -> position in the batch (a later sample wins a slot)
        free = min(n, self.capacity - self.size)
        for p in range(free):  # room left: keep
            dest[self.size + p] = p
        self.loss[self.size : self.size + free] = new[:free]
        self.task[self.size : self.size + free] = task
        self.size += free
        self.held[task] = self.held.get(task, 0) + free
        for p in range(free, n):
            largest = max(self.held.values())
            if self.held.get(task, 0) < largest:  # take room from a largest task
                donors = [t for t, count in sorted(self.held.items()) if count == largest]
                donor = donors[int(torch.randint(len(donors), (1,), generator=self.generator))]
                slot = self._easiest(donor)
                self.held[donor] -= 1
                self.held[task] = self.held.get(task, 0) + 1
            else:  # compete within the task
                slot = self._easiest(task)
                if not new[p] > self.loss[slot]:
                    self.dropped += 1
                    continue
            self.task[slot], self.loss[slot] = task, new[p]
            dest[slot] = p
            self.evicted += 1
        if dest:
            slots = torch.tensor(list(dest.keys()), dtype=torch.long, device=self.device)  # [k]
            pos = torch.tensor(list(dest.values()), dtype=torch.long, device=x.device)  # [k]
            self.x[slots] = x[pos].to(self.device, torch.float32)
            self.y[slots] = y[pos].to(self.device)
        self.seen += n
        self._publish()

    def _easiest(self, task: int) -> int:
        """The slot of the lowest loss among ``candidates`` random slots of ``task`` (drawn with
        replacement from the buffer's generator)."""
        pool = torch.nonzero(self.task[: self.size] == task).flatten()  # [m] slots of the task
        cand = pool[torch.randint(pool.numel(), (self.candidates,), generator=self.generator)]  # [k]
        return int(cand[torch.argmin(self.loss[cand])])

    def sample(self, n: int, generator: torch.Generator, task: int | None = None) -> ReplayBatch | None:
        """``min(n, held)`` distinct samples drawn uniformly with ``generator`` (of ``task`` only,
        when given); None when there is nothing to draw. ``index`` [k] holds their slots (CPU)."""
        if n <= 0 or self.size == 0:
            return None
        if task is None:
            pool = torch.arange(self.size)  # [m]
        else:
            pool = torch.nonzero(self.task[: self.size] == task).flatten()  # [m]
            if pool.numel() == 0:
                return None
        pick = pool[torch.randperm(pool.numel(), generator=generator)[: min(n, pool.numel())]]  # [k] slots
        on = pick.to(self.device)
        return ReplayBatch(x=self.x[on], y=self.y[on], task=self.task[pick].to(self.device), index=pick, weight=None)

    def update_priorities(self, index: torch.Tensor, loss: torch.Tensor) -> None:
        """Store the latest ``loss`` [k] of the replayed slots ``index`` [k] (``ReplayBatch.index``)."""
        self.loss[index.reshape(-1).cpu()] = loss.detach().reshape(-1).to(device="cpu", dtype=torch.float64)
        self._publish()

    def __len__(self) -> int:
        """Number of samples held."""
        return self.size

    def tasks(self) -> list[int]:
        """Ids of the tasks with at least one sample held, sorted."""
        return torch.unique(self.task[: self.size]).tolist()

    # --- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The held samples, their losses, the counters and the generator's state (tensors are copies)."""
        s = self.size
        return {
            "capacity": self.capacity,
            "input_shape": list(self.input_shape),
            "x": self.x[:s].clone(),
            "y": self.y[:s].clone(),
            "task": self.task[:s].clone(),
            "loss": self.loss[:s].clone(),
            "counters": {"size": s, "seen": self.seen, "evicted": self.evicted, "dropped": self.dropped},
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` of a buffer with the same capacity and input shape. The saved
        tensors may be on the CPU (a checkpoint is loaded there): they are copied to this buffer's device."""
        if int(state["capacity"]) != self.capacity or tuple(state["input_shape"]) != self.input_shape:
            raise ValueError("the state has another capacity or input shape than this buffer")
        counters = state["counters"]
        s = int(counters["size"])
        self.x.zero_()
        self.y.zero_()
        self.task.fill_(-1)
        self.loss.zero_()
        self.x[:s], self.y[:s] = state["x"].to(self.device), state["y"].to(self.device)
        self.task[:s], self.loss[:s] = state["task"], state["loss"]
        self.size, self.seen = s, int(counters["seen"])
        self.evicted, self.dropped = int(counters["evicted"]), int(counters["dropped"])
        ids, counts = torch.unique(self.task[:s], return_counts=True)
        self.held = dict(zip(ids.tolist(), counts.tolist()))
        self.generator.set_state(state["generator"])
        self._publish()

    # --- diagnostics ----------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """JSON-ready counters: samples held, offered, evicted and dropped, held per task (keys are
        task ids as strings) and the mean loss held (None when no finite loss is known)."""
        held = self.loss[: self.size]
        finite = held[torch.isfinite(held)]
        return {
            "held": self.size,
            "seen": self.seen,
            "evicted": self.evicted,
            "dropped": self.dropped,
            "held_per_task": {str(t): c for t, c in sorted(self.held.items()) if c},
            "mean_held_loss": round(float(finite.mean()), 6) if finite.numel() else None,
        }

    def _publish(self) -> None:
        if self.extras is not None:
            self.extras[self.extras_key] = self.summary()
