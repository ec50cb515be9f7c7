"""Registration of the benchmark ``example.blobs``.

Importing this module does not import torch: the stream is generated inside the factory.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from clbench import Options, hookimpl
from clbench.components import BuildContext


class BlobsOptions(Options):
    """Options of ``example.blobs``."""

    n_tasks: int = Field(5, ge=1, le=100, description="number of tasks")
    classes_per_task: int = Field(2, ge=2, le=20, description="new classes in each task")
    train_size: int = Field(200, ge=1, description="training samples per task (balanced over its classes)")
    test_size: int = Field(200, ge=1, description="test samples per task")
    input_dim: int = Field(16, ge=1, description="features per sample")
    separation: float = Field(3.0, ge=0, description="std of the class centres around the origin")
    spread: float = Field(1.0, gt=0, description="std of each class's cloud around its centre")
    label_noise: float = Field(
        0.0, ge=0, lt=1, description="share of training labels replaced by another class of the same task"
    )
    scenario: Literal["class", "task"] = Field(
        "class",
        description="class: one head over every class, no task id; task: logits masked to the task's classes",
    )
    seed: int | None = Field(None, ge=0, description="stream seed; null = the run seed")


def build_blobs(options: BlobsOptions, build: BuildContext) -> Any:
    """The factory: the stream from the ``seed`` option, else the run seed (``build.seed``).
    ``build.stream`` is None here (the stream is what this builds) and so are the stream facts."""
    from clbench_example_benchmark.stream import generate

    return generate(options, options.seed if options.seed is not None else build.seed)


@hookimpl
def clbench_register_benchmarks(register):
    """Register ``example.blobs``."""
    register(
        "example.blobs",
        build_blobs,
        description="Gaussian class clusters, new classes each task, optional label noise (example plugin)",
        options=BlobsOptions,
    )
