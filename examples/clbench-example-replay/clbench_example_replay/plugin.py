"""Registration of the replay buffer ``example.loss-aware``.

Importing this module does not import torch (``clbench list`` and ``clbench --help`` stay light):
the buffer is imported inside its factory, when a run needs it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clbench import Options, hookimpl
from clbench.components import BuildContext

#: Salt of the buffer's seed (:meth:`BuildContext.derive_seed`): a constant of this plugin, so that
#: the buffer's eviction draws never share a random stream with another purpose of the run.
SEED_SALT = 0x10_55_A7A4
#: The key under which the buffer keeps its counters in the run's ``extras`` (saved in the record).
EXTRAS_KEY = "example.loss-aware"


class LossAwareOptions(Options):
    """Options of ``example.loss-aware``."""

    capacity: int = Field(1000, ge=1, description="samples held at most")
    batch_size: int | None = Field(None, ge=1, description="replay samples per training step; null = train.batch_size")
    candidates: int = Field(
        8,
        ge=1,
        description="random samples of a task a new one competes with once the buffer is full (lowest loss goes)",
    )


def build_loss_aware(options: LossAwareOptions, build: BuildContext) -> Any:
    """The factory: a :class:`~clbench_example_replay.buffer.LossAwareBuffer` for samples of
    ``build.input_shape``, on ``build.device``, seeded from the run seed, publishing its counters
    in ``build.extras["example.loss-aware"]``."""
    from clbench_example_replay.buffer import LossAwareBuffer

    batch_size = options.batch_size if options.batch_size is not None else int(build.train.batch_size)
    return LossAwareBuffer(
        capacity=options.capacity,
        batch_size=batch_size,
        input_shape=build.input_shape,
        seed=build.derive_seed(SEED_SALT),
        candidates=options.candidates,
        device=build.device,
        extras=build.extras,
        extras_key=EXTRAS_KEY,
    )


@hookimpl
def clbench_register_replay(register):
    """Register ``example.loss-aware``."""
    register(
        "example.loss-aware",
        build_loss_aware,
        description="equal room per task, the highest-loss samples of each; losses refreshed on replay (example plugin)",
        options=LossAwareOptions,
    )
