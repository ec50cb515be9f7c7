"""Registration of the strategy ``example.lwf``.

Importing this module does not import torch: the learner is imported inside its factory.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clbench import Options, hookimpl
from clbench.components import BuildContext


class LwFOptions(Options):
    """Options of ``example.lwf``."""

    alpha: float = Field(1.0, ge=0, description="weight of the distillation term (0 = plain fine-tuning)")
    temperature: float = Field(2.0, gt=0, description="softmax temperature of the distillation")


def build_lwf(options: LwFOptions, build: BuildContext) -> Any:
    """The factory: a :class:`~clbench_example_strategy.learner.LwFLearner`. It builds its model
    with ``build.build_model()`` (the run's ``--model``); the harness has seeded torch's global
    generator with the run seed just before this call, so the model's initialisation is reproducible."""
    from clbench_example_strategy.learner import LwFLearner

    return LwFLearner(build, alpha=options.alpha, temperature=options.temperature)


@hookimpl
def clbench_register_strategies(register):
    """Register ``example.lwf``."""
    register(
        "example.lwf",
        build_lwf,
        description="Learning without Forgetting: distils the previous task's model on new inputs (example plugin)",
        options=LwFOptions,
    )
