"""A minimal clbench plugin: one model, ``example.linear`` (softmax regression)."""

from pydantic import Field

from clbench import Options, hookimpl
from clbench.components import BuildContext


class LinearOptions(Options):
    """Options of ``example.linear``."""

    bias: bool = Field(True, description="learn a bias per class")


def build_linear(options: LinearOptions, build: BuildContext):
    """Softmax regression: x [n, *build.input_shape] -> logits [n, build.n_classes]."""
    import math

    import torch

    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(math.prod(build.input_shape), build.n_classes, bias=options.bias)
    )


@hookimpl
def clbench_register_models(register):
    """Register the plugin's model."""
    register("example.linear", build_linear, description="softmax regression (example plugin)", options=LinearOptions)
