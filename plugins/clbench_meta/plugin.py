"""Registration of the meta-learners ``maml``, ``fomaml`` and ``reptile``.

Importing this module does not import torch; the learners are built inside the factories.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from clbench import Options, hookimpl
from clbench.components import BuildContext


class EvalAdaptOptions(Options):
    """Test-time adaptation, shared by every meta-learner here."""

    eval_adapt_steps: int = Field(
        0,
        ge=0,
        le=100,
        description="inner steps on a task's training samples before evaluating it (0 = evaluate as is); "
        "adds adapted_accuracy_matrix to the record",
    )
    eval_support_size: int = Field(32, ge=1, description="training samples of a task used to adapt to it at evaluation")


class _MAMLCore(Options):
    """The update-rule options of MAML and first-order MAML."""

    meta_batch: int = Field(4, ge=1, le=64, description="tasks per meta-batch: the current one + up to M-1 from replay")
    inner_steps: int = Field(1, ge=1, le=5, description="inner-loop steps on each task's support set")
    inner_lr: float = Field(0.01, gt=0, description="inner-loop learning rate")
    inner_optimizer: Literal["sgd", "adam"] = Field("sgd", description="inner-loop optimiser (adam is differentiable)")
    support_fraction: float = Field(
        0.5, gt=0, lt=1, description="share of each task's batch used as support; rest = query"
    )
    vectorize: Literal["auto", "on", "off"] = Field(
        "auto", description="compute the tasks of a meta-batch at once with torch.func.vmap (auto: loop if vmap fails)"
    )


class MAMLOptions(EvalAdaptOptions, _MAMLCore):
    """Options of MAML and first-order MAML (the base listed last gives the first fields)."""


class _ReptileCore(Options):
    """The update-rule options of Reptile / MER."""

    inner_steps: int = Field(
        2, ge=1, le=5, description="inner steps: the current + replay batch is split into this many successive batches"
    )
    epsilon: float = Field(0.5, gt=0, le=1, description="reptile: outer step size, theta += epsilon * (theta' - theta)")
    mode: Literal["reptile", "mer"] = Field(
        "reptile", description="reptile, or MER's within/across-batch interpolation"
    )
    mer_beta: float = Field(0.5, gt=0, le=1, description="mer: within-batch interpolation rate")
    mer_gamma: float = Field(1.0, gt=0, le=1, description="mer: across-batch interpolation rate")
    mer_steps_per_batch: int = Field(
        2, ge=1, le=16, description="mer: optimiser steps per batch (on successive slices)"
    )


class ReptileOptions(EvalAdaptOptions, _ReptileCore):
    """Options of Reptile / MER (the base listed last gives the first fields). ``epsilon`` is used in
    mode reptile only, the ``mer_*`` options in mode mer only (a canonical config names them all)."""


def build_maml(options: MAMLOptions, build: BuildContext) -> Any:
    """Second-order MAML over a meta-batch of tasks."""
    from clbench_meta.maml import MAML

    return MAML(first_order=False, **options.model_dump())


def build_fomaml(options: MAMLOptions, build: BuildContext) -> Any:
    """First-order MAML over a meta-batch of tasks."""
    from clbench_meta.maml import MAML

    return MAML(first_order=True, **options.model_dump())


def build_reptile(options: ReptileOptions, build: BuildContext) -> Any:
    """Reptile (or MER) over the current and replay batches."""
    from clbench_meta.reptile import Reptile

    return Reptile(**options.model_dump())


@hookimpl
def clbench_register_meta_learners(register):
    """Register ``maml``, ``fomaml`` and ``reptile``."""
    register(
        "maml",
        build_maml,
        description="MAML: second-order meta-gradient over the current task + tasks drawn from replay",
        options=MAMLOptions,
    )
    register(
        "fomaml",
        build_fomaml,
        description="first-order MAML: as maml, without differentiating through the inner loop",
        options=MAMLOptions,
    )
    register(
        "reptile",
        build_reptile,
        description="Reptile (or MER): inner steps on current + replay batches, then interpolate the weights",
        options=ReptileOptions,
    )
