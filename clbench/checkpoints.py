"""Per-task checkpoints: everything a run needs to continue exactly where it stopped.

After each task the harness saves, atomically, ``<folder>/<run_id>.pt``: the learner's state
(model, optimiser and lr schedule, meta-learner, replay buffer), the state of every random
generator the run draws from, and the results so far (accuracy rows, initial accuracies, training
statistics, timings, plugins' extras). A run started again with the same configuration loads it
and continues with the next task; the finished record is the one an uninterrupted run writes.

Checkpoints hold tensors, numbers, strings and containers of them only, and are read with
``torch.load(weights_only=True)``: loading one never runs code. The folder is
``<results>/checkpoints/`` (one file per unfinished run); the file is removed when its run
completes, unless it is asked to be kept.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clbench.files import write_bytes_atomic

#: Layout of the checkpoint files this clbench writes and reads.
FORMAT = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be used (another run's, another layout, unreadable): one line."""


def checkpoints_dir(results: str | Path) -> Path:
    """The folder holding the checkpoints of unfinished runs inside a results folder."""
    return Path(results) / "checkpoints"


def remove_if_empty(folder: str | Path) -> None:
    """Remove the checkpoints ``folder`` when no checkpoint is left in it (a finished run or sweep
    leaves no empty folder behind); a folder holding anything, or missing, is left as it is."""
    try:
        Path(folder).rmdir()  # only ever removes an empty folder
    except OSError:
        pass


def checkpoint_path(folder: str | Path, run_id: str) -> Path:
    """Where the checkpoint of ``run_id`` lives in ``folder``."""
    return Path(folder) / f"{run_id}.pt"


@dataclass
class Checkpoint:
    """The state of a run after ``tasks_done`` tasks.

    ``progress`` holds the results so far (``accuracy_matrix`` rows, ``init_accuracy``, the adapted
    ones, ``train_stats``, ``timings``, ``extras``, ``hook_errors``); ``learner`` is the learner's
    ``state_dict()``; ``rng`` the generators' states (see :func:`rng_state`).
    """

    run_id: str
    tasks_done: int
    progress: dict[str, Any] = field(default_factory=dict)
    learner: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)


def rng_state(generator: Any) -> dict[str, Any]:
    """The states of the run's ``torch.Generator`` and of the global generators (torch, CUDA when
    in use, numpy, Python's ``random``), as tensors and plain values."""
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "run": generator.get_state(),
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": _python_state(),
    }  # fmt: skip
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: Any) -> None:
    """Put every generator back in the state :func:`rng_state` saved."""
    import numpy as np
    import torch

    generator.set_state(state["run"])
    torch.set_rng_state(state["torch"])
    saved = state["numpy"]
    keys = saved["keys"].numpy().astype(np.uint32)
    np.random.set_state((saved["kind"], keys, saved["pos"], saved["has_gauss"], saved["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state() -> tuple[int, list[int], float | None]:
    version, internal, gauss = random.getstate()
    return version, list(internal), gauss


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (serialised in memory first, then a temp file
    and a rename): a reader, or a run started after a crash, sees the previous checkpoint or this
    one, never half of either."""
    import torch

    payload = {
        "format": FORMAT,
        "run_id": checkpoint.run_id,
        "tasks_done": checkpoint.tasks_done,
        "progress": checkpoint.progress,
        "learner": checkpoint.learner,
        "rng": checkpoint.rng,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path, run_id: str, device: Any = "cpu") -> Checkpoint | None:
    """The checkpoint at ``path`` (tensors mapped to ``device``), None when there is none;
    :class:`CheckpointError` when it cannot be used: unreadable, not a clbench checkpoint, another
    layout, or another run's."""
    import torch

    path = Path(path)
    if not path.exists():
        return None
    if not path.is_file():
        raise CheckpointError(f"{str(path)!r} is not a regular file")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported in one line
        raise CheckpointError(
            f"cannot read {str(path)!r}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a clbench checkpoint of layout {FORMAT}")
    if data.get("run_id") != run_id:
        raise CheckpointError(f"{str(path)!r} belongs to run {data.get('run_id')!r}, not {run_id!r}")
    return Checkpoint(run_id, int(data["tasks_done"]), data["progress"], data["learner"], data["rng"])
