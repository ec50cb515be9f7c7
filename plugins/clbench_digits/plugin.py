"""Registration of the digits benchmarks: ``permuted-digits``, ``rotated-digits``, ``split-digits``.

Real data with no download: scikit-learn's bundled 8x8 digits (see :mod:`clbench_digits.streams`).
Torch and scikit-learn are imported only when a stream is built.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from clbench import Options, hookimpl
from clbench.components import BuildContext


class DigitsOptions(Options):
    """Options every digits stream has."""

    n_tasks: int = Field(10, ge=1, le=1000, description="number of tasks")
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="share of each class held out for test (stratified; same split for every task)"
    )
    seed: int | None = Field(None, ge=0, description="stream seed (train/test split, permutations); null = run seed")


class PermutedOptions(DigitsOptions):
    """Options of ``permuted-digits``."""

    identity_first: bool = Field(True, description="task 0 sees the original images (the usual convention)")


class RotatedOptions(DigitsOptions):
    """Options of ``rotated-digits``."""

    angle_min: float = Field(0.0, description="angle of the first task, degrees")
    angle_max: float = Field(180.0, description="angle of the last task, degrees; tasks are evenly spread in between")


class SplitOptions(DigitsOptions):
    """Options of ``split-digits``."""

    n_tasks: int = Field(5, ge=1, le=10, description="number of tasks; each holds 10/n_tasks classes (5 tasks = pairs)")
    shuffle_classes: bool = Field(False, description="shuffle the class order with the stream seed (default 0..9)")

    @model_validator(mode="after")
    def _divides(self) -> SplitOptions:
        if 10 % self.n_tasks:
            raise ValueError("n_tasks must divide the 10 classes: 1, 2, 5 or 10")
        return self


def _seed(options: DigitsOptions, build: BuildContext) -> int:
    return options.seed if options.seed is not None else build.seed


def build_permuted(options: PermutedOptions, build: BuildContext) -> Any:
    """``permuted-digits``: every task a fixed pixel permutation of the same images."""
    from clbench_digits.streams import permuted

    return permuted(options.n_tasks, _seed(options, build), options.test_fraction, options.identity_first)


def build_rotated(options: RotatedOptions, build: BuildContext) -> Any:
    """``rotated-digits``: every task the same images rotated by its own angle (bilinear)."""
    from clbench_digits.streams import rotated

    return rotated(options.n_tasks, _seed(options, build), options.test_fraction, options.angle_min, options.angle_max)


def build_split(options: SplitOptions, build: BuildContext) -> Any:
    """``split-digits``: class-incremental, disjoint groups of classes, one 10-way head."""
    from clbench_digits.streams import split

    return split(options.n_tasks, _seed(options, build), options.test_fraction, options.shuffle_classes)


@hookimpl
def clbench_register_benchmarks(register):
    """Register the three digits streams."""
    register(
        "permuted-digits",
        build_permuted,
        description="sklearn 8x8 digits; each task a fixed pixel permutation (task 0 the identity)",
        options=PermutedOptions,
    )
    register(
        "rotated-digits",
        build_rotated,
        description="sklearn 8x8 digits; each task rotated by its own angle (bilinear), angles spread over a range",
        options=RotatedOptions,
    )
    register(
        "split-digits",
        build_split,
        description="sklearn 8x8 digits, class-incremental: 5 tasks of class pairs {0,1},{2,3},... one 10-way head",
        options=SplitOptions,
    )
