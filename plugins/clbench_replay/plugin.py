"""Registration of the replay buffers: ``fifo``, ``reservoir``, ``prioritized``, ``class-balanced``.

Importing this module does not import torch; the buffers are built inside the factories.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from clbench import Options, hookimpl
from clbench.components import BuildContext

#: Mixed into derived seeds so that a buffer's stream differs from the model's init stream.
SEED_SALT = 0x5EED_B0FF


class ReplayOptions(Options):
    """Options every built-in buffer takes."""

    capacity: int = Field(10_000, ge=1, description="samples held at most")
    batch_size: int | None = Field(None, ge=1, description="replay samples per training step; null = train.batch_size")
    seed: int | None = Field(
        None, ge=0, description="seed of the buffer's own generator (eviction draws); null = derived from the run seed"
    )


class PrioritizedOptions(ReplayOptions):
    """Options of prioritized replay (Schaul et al. 2016)."""

    alpha: float = Field(0.6, ge=0, description="sampling probability proportional to priority^alpha (0 = uniform)")
    beta: float = Field(0.4, ge=0, le=1, description="importance-weight exponent (0 = no correction, 1 = full)")
    eps: float = Field(1e-3, gt=0, description="added to |loss| so that no priority is zero")
    storage: Literal["reservoir", "fifo"] = Field(
        "reservoir",
        description="which sample a full buffer drops: reservoir (uniform over the stream) or fifo (oldest)",
    )


def buffer_seed(options: ReplayOptions, build: BuildContext) -> int:
    """The buffer's seed: the ``seed`` option, else derived from the run seed."""
    return int(options.seed) if options.seed is not None else build.derive_seed(SEED_SALT)


def _common(options: ReplayOptions, build: BuildContext) -> dict[str, Any]:
    batch_size = options.batch_size if options.batch_size is not None else int(build.train.batch_size)
    return {
        "capacity": options.capacity,
        "batch_size": batch_size,
        "input_shape": build.input_shape,
        "seed": buffer_seed(options, build),
        "device": build.device,
    }


def build_fifo(options: ReplayOptions, build: BuildContext) -> Any:
    """A circular queue of the newest ``capacity`` samples."""
    from clbench_replay.buffers import FIFOBuffer

    return FIFOBuffer(**_common(options, build))


def build_reservoir(options: ReplayOptions, build: BuildContext) -> Any:
    """A reservoir: a uniform sample of the whole stream."""
    from clbench_replay.buffers import ReservoirBuffer

    return ReservoirBuffer(**_common(options, build))


def build_prioritized(options: PrioritizedOptions, build: BuildContext) -> Any:
    """Prioritized replay with importance weights."""
    from clbench_replay.buffers import PrioritizedBuffer

    return PrioritizedBuffer(
        **_common(options, build),
        alpha=options.alpha,
        beta=options.beta,
        eps=options.eps,
        storage=options.storage,
    )


def build_class_balanced(options: ReplayOptions, build: BuildContext) -> Any:
    """Class-balanced reservoir sampling."""
    from clbench_replay.buffers import ClassBalancedBuffer

    return ClassBalancedBuffer(**_common(options, build))


@hookimpl
def clbench_register_replay(register):
    """Register the four replay buffers."""
    register("fifo", build_fifo, description="circular queue: keeps the newest samples", options=ReplayOptions)
    register(
        "reservoir",
        build_reservoir,
        description="reservoir sampling: every sample of the stream held with equal probability",
        options=ReplayOptions,
    )
    register(
        "prioritized",
        build_prioritized,
        description="prioritized replay: draws proportional to loss^alpha, importance-weighted (Schaul et al. 2016)",
        options=PrioritizedOptions,
    )
    register(
        "class-balanced",
        build_class_balanced,
        description="class-balanced reservoir (CBRS): equal room per class seen so far",
        options=ReplayOptions,
    )
