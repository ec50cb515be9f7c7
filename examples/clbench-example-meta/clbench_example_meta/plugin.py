"""Registration of the meta-learner ``example.lookahead``.

Importing this module does not import torch: the update rule is imported inside its factory.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clbench import Options, hookimpl
from clbench.components import BuildContext

#: The key under which the meta-learner keeps its step counts in the run's ``extras``.
EXTRAS_KEY = "example.lookahead"


class LookaheadOptions(Options):
    """Options of ``example.lookahead``."""

    sync_every: int = Field(5, ge=1, le=1000, description="optimiser steps between two synchronisations (k)")
    alpha: float = Field(
        0.5, gt=0, le=1, description="slow weights move this fraction of the way to the fast ones (1 = meta none)"
    )


def build_lookahead(options: LookaheadOptions, build: BuildContext) -> Any:
    """The factory: a :class:`~clbench_example_meta.lookahead.Lookahead` that keeps its step
    counts in ``build.extras["example.lookahead"]``. The learner binds it to the model and the
    run's optimiser, and sets its criterion, after this returns."""
    from clbench_example_meta.lookahead import Lookahead

    return Lookahead(options.sync_every, options.alpha, extras=build.extras, extras_key=EXTRAS_KEY)


@hookimpl
def clbench_register_meta_learners(register):
    """Register ``example.lookahead``."""
    register(
        "example.lookahead",
        build_lookahead,
        description="Lookahead: every k optimiser steps, slow weights move alpha of the way to the fast (example plugin)",
        options=LookaheadOptions,
    )
