"""Registration of the basic components; heavy imports happen inside the factories."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt

from clbench import Options, hookimpl
from clbench.components import BuildContext
from clbench.options import NoOptions


class MLPOptions(Options):
    """Options of the multi-layer perceptron."""

    hidden_sizes: list[PositiveInt] = Field([128, 128], description="widths of the hidden layers, e.g. [256,256]")
    activation: Literal["relu", "tanh", "gelu", "elu"] = Field("relu", description="hidden activation")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each hidden layer")


class JointOptions(Options):
    """Options of the joint-training reference."""

    mode: Literal["retrain", "final"] = Field(
        "retrain",
        description="retrain: after each task, a fresh model trained on all tasks so far; "
        "final: one model trained on the whole stream, evaluated after the last task only",
    )


def build_mlp(options: MLPOptions, build: BuildContext) -> Any:
    """An MLP on flattened inputs: [n, *input_shape] -> logits [n, n_classes]."""
    from clbench_basic.models import MLP

    return MLP(build.input_shape, build.n_classes, options.hidden_sizes, options.activation, options.dropout)


def build_none_meta(options: NoOptions, build: BuildContext) -> Any:
    """The plain update: one optimiser step on the current batch plus the replay batch."""
    from clbench_basic.learners import PlainStep

    return PlainStep()


def build_no_replay(options: NoOptions, build: BuildContext) -> None:
    """No replay buffer."""
    return None


def build_joint(options: JointOptions, build: BuildContext) -> Any:
    """The joint-training upper bound (see :class:`clbench_basic.learners.JointLearner`)."""
    from clbench_basic.learners import JointLearner

    return JointLearner(build, mode=options.mode)


@hookimpl
def clbench_register_models(register):
    """Register ``mlp``."""
    register("mlp", build_mlp, description="multi-layer perceptron on the flattened input", options=MLPOptions)


@hookimpl
def clbench_register_meta_learners(register):
    """Register meta-learner ``none``."""
    register("none", build_none_meta, description="no meta-learning: one optimiser step on current + replay batch")


@hookimpl
def clbench_register_replay(register):
    """Register replay ``none``."""
    register("none", build_no_replay, description="no replay buffer")


@hookimpl
def clbench_register_strategies(register):
    """Register the ``joint`` strategy."""
    register(
        "joint",
        build_joint,
        description="upper bound: trains on the data of all tasks seen so far at once (offline)",
        options=JointOptions,
    )
