"""Registration of the image streams, the image models and ``clbench data``.

Streams: ``permuted-mnist``, ``rotated-mnist``, ``split-mnist``, ``split-fashion-mnist``,
``split-cifar10``, ``split-cifar100`` (torchvision's data sets; see :mod:`clbench_vision.streams`).
Models: ``cnn`` and ``resnet18-reduced``. Torch and torchvision are imported only when a stream or
model is built, so ``clbench list`` stays light.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, PositiveInt, model_validator

from clbench import Options, hookimpl
from clbench.components import BuildContext
from clbench.errors import UserError
from clbench.options import setting

Scenario = Literal["task", "class", "domain"]


class ImageStreamOptions(Options):
    """Options every image stream has."""

    root: str | None = setting(
        None, description="folder of the data sets; null = $CLBENCH_DATA, else ~/.cache/clbench/data"
    )
    download: bool = setting(True, description="download missing files with torchvision (needs a network)")
    checksum: bool = setting(
        True,
        description="check CIFAR files against torchvision's MD5 sums; false accepts other files of the same format",
    )
    train_size: int | None = Field(
        None, ge=1, description="training samples per task, drawn from the benchmark seed; null = all of the task's"
    )
    test_size: int | None = Field(
        None, ge=1, description="test samples per task, drawn from the benchmark seed; null = all of the task's"
    )
    normalize: bool = Field(True, description="normalise with the data set's per-channel mean and std (else [0, 1])")
    seed: int | None = Field(
        None, ge=0, description="benchmark seed (subsets, permutations, angles, class order); null = run seed"
    )


class PermutedMNISTOptions(ImageStreamOptions):
    """Options of ``permuted-mnist``."""

    n_tasks: int = Field(20, ge=1, le=1000, description="number of tasks (20 as in GEM and Mammoth)")
    scenario: Scenario = Field(
        "domain",
        description="domain: one 10-way head; task: a 10-way head per task (masked); class: 10*n_tasks classes",
    )
    identity_first: bool = Field(False, description="task 0 sees the original images")


class RotatedMNISTOptions(ImageStreamOptions):
    """Options of ``rotated-mnist``."""

    n_tasks: int = Field(20, ge=1, le=1000, description="number of tasks (20 as in GEM)")
    scenario: Scenario = Field(
        "domain",
        description="domain: one 10-way head; task: a 10-way head per task (masked); class: 10*n_tasks classes",
    )
    angle_min: float = Field(0.0, description="smallest angle, degrees; each task's angle is drawn uniformly")
    angle_max: float = Field(180.0, description="largest angle, degrees (GEM: 0 to 180)")

    @model_validator(mode="after")
    def _range(self) -> RotatedMNISTOptions:
        if self.angle_max < self.angle_min:
            raise ValueError("angle_max must be at least angle_min")
        return self


ClassOrder = Literal["shuffled", "natural"] | list[int]


class SplitOptions(ImageStreamOptions):
    """Options of the split streams; each stream sets its own defaults."""

    n_tasks: int = Field(5, ge=1, description="number of tasks; must divide the number of classes")
    scenario: Scenario = Field(
        "class",
        description="class: one head over all classes; task: masked to the task's classes; domain: labels 0..k-1 per task",
    )
    class_order: ClassOrder = Field(
        "shuffled", description="shuffled (drawn from the benchmark seed), natural (0..C-1), or a list of every class"
    )

    #: Number of classes of the data set (set by each stream's subclass; not an option).
    n_classes: ClassVar[int] = 10

    @model_validator(mode="after")
    def _check(self) -> SplitOptions:
        if self.n_classes % self.n_tasks:
            raise ValueError(f"n_tasks must divide the {self.n_classes} classes")
        if isinstance(self.class_order, list) and sorted(self.class_order) != list(range(self.n_classes)):
            raise ValueError(f"class_order must list every class 0..{self.n_classes - 1} once")
        return self


def _split_options(classes: int, tasks: int, default_scenario: str, doc: str) -> type[SplitOptions]:
    class StreamOptions(SplitOptions):
        __doc__ = doc
        n_tasks: int = Field(tasks, ge=1, description=f"number of tasks; must divide the {classes} classes")
        scenario: Scenario = Field(
            default_scenario,  # type: ignore[arg-type]
            description="class: one head over all classes; task: masked to the task's classes; domain: labels 0..k-1 per task",
        )
        n_classes: ClassVar[int] = classes

    return StreamOptions


SplitMNISTOptions = _split_options(10, 5, "class", "Options of ``split-mnist`` (5 tasks of 2 digits).")
SplitFashionOptions = _split_options(10, 5, "class", "Options of ``split-fashion-mnist`` (5 tasks of 2 classes).")
SplitCIFAR10Options = _split_options(10, 5, "class", "Options of ``split-cifar10`` (5 tasks of 2 classes).")
SplitCIFAR100Options = _split_options(100, 20, "task", "Options of ``split-cifar100`` (20 tasks of 5 classes, GEM).")


def _seed(options: Any, build: BuildContext) -> int:
    return options.seed if options.seed is not None else build.seed


def build_permuted(options: PermutedMNISTOptions, build: BuildContext) -> Any:
    """``permuted-mnist``: each task a fixed pixel permutation of MNIST."""
    from clbench_vision.streams import transformed

    return transformed("permuted-mnist", options, _seed(options, build), "permuted")


def build_rotated(options: RotatedMNISTOptions, build: BuildContext) -> Any:
    """``rotated-mnist``: each task MNIST rotated by its own angle."""
    from clbench_vision.streams import transformed

    return transformed("rotated-mnist", options, _seed(options, build), "rotated")


def _split_builder(name: str, dataset: str) -> Any:
    def build_split(options: SplitOptions, build: BuildContext) -> Any:
        from clbench_vision.streams import split

        return split(name, dataset, options, _seed(options, build))

    build_split.__doc__ = f"``{name}``: {dataset} cut into groups of classes, one group per task."
    return build_split


class CNNOptions(Options):
    """Options of the small convnet."""

    channels: list[PositiveInt] = Field([32, 64], description="filters of each conv 3x3 + max-pool block")
    hidden: int = Field(256, ge=0, description="width of the hidden linear layer; 0 = none")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after the hidden layer")


class ResNetOptions(Options):
    """Options of the reduced ResNet-18."""

    width: PositiveInt = Field(20, description="filters of the first stage (20 in GEM; 64 in the full ResNet-18)")
    batch_norm: bool = Field(True, description="batch normalisation after each convolution")


def _image_shape(build: BuildContext, model: str) -> tuple[int, int, int]:
    shape = build.input_shape
    if len(shape) != 3:
        raise UserError(
            f"model {model} needs image inputs [C, H, W]; this benchmark gives {list(shape)} "
            "(use it with the image streams, e.g. --benchmark split-cifar10)"
        )
    return shape  # type: ignore[return-value]


def build_cnn(options: CNNOptions, build: BuildContext) -> Any:
    """A small convnet: [n, C, H, W] -> logits [n, n_classes]."""
    from clbench_vision.models import ConvNet

    shape = _image_shape(build, "cnn")
    if min(shape[1:]) >> len(options.channels) < 1:
        raise UserError(
            f"model cnn: {len(options.channels)} pooling blocks shrink a {shape[1]}x{shape[2]} image to nothing"
        )
    return ConvNet(shape, build.n_classes, options.channels, options.hidden, options.dropout)


def build_resnet(options: ResNetOptions, build: BuildContext) -> Any:
    """The reduced ResNet-18: [n, C, H, W] -> logits [n, n_classes]."""
    from clbench_vision.models import ReducedResNet18

    return ReducedResNet18(_image_shape(build, "resnet18-reduced"), build.n_classes, options.width, options.batch_norm)


#: The split streams: name, data set, description, options.
SPLIT_STREAMS: tuple[tuple[str, str, str, type[Options]], ...] = (
    ("split-mnist", "mnist", "MNIST in 5 tasks of 2 digits (class scenario)", SplitMNISTOptions),
    (
        "split-fashion-mnist",
        "fashion-mnist",
        "Fashion-MNIST in 5 tasks of 2 classes (class scenario)",
        SplitFashionOptions,
    ),
    ("split-cifar10", "cifar10", "CIFAR-10 in 5 tasks of 2 classes (class scenario)", SplitCIFAR10Options),
    (
        "split-cifar100",
        "cifar100",
        "CIFAR-100 in 20 tasks of 5 classes (task scenario, as in GEM)",
        SplitCIFAR100Options,
    ),
)


@hookimpl
def clbench_register_benchmarks(register):
    """Register the six image streams."""
    register(
        "permuted-mnist",
        build_permuted,
        description="MNIST, each task a fixed pixel permutation (20 tasks, domain scenario)",
        options=PermutedMNISTOptions,
    )
    register(
        "rotated-mnist",
        build_rotated,
        description="MNIST, each task rotated by an angle drawn in [0, 180] degrees (20 tasks, domain scenario)",
        options=RotatedMNISTOptions,
    )
    for name, dataset, description, options in SPLIT_STREAMS:
        register(name, _split_builder(name, dataset), description=description, options=options)


@hookimpl
def clbench_register_models(register):
    """Register ``cnn`` and ``resnet18-reduced``."""
    register(
        "cnn", build_cnn, description="small convnet: conv-relu-pool blocks, then two linear layers", options=CNNOptions
    )
    register(
        "resnet18-reduced",
        build_resnet,
        description="ResNet-18 with 20 initial filters (GEM, A-GEM, ER), for image streams",
        options=ResNetOptions,
    )


@hookimpl
def clbench_register_commands(cli: Any) -> None:
    """Add ``clbench data``."""
    from clbench_vision.command import data_command

    cli.add_command(data_command)
