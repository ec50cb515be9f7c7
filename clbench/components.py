"""The interfaces that components implement, and the data they exchange.

This module imports no torch at module level, so plugins can import it cheaply at registration
time. Shapes: ``x`` tensors are [n, *input_shape] float32; ``y`` and ``task`` tensors are [n] int64.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from clbench.config import TrainConfig
    from clbench.options import Options

#: Multiplier of :func:`derive_seed`: a prime, so that nearby run seeds give far-apart sub-seeds.
SEED_STRIDE = 1_000_003


def derive_seed(seed: int, salt: int) -> int:
    """The sub-seed of run seed ``seed`` for one purpose, named by ``salt`` (a constant of the
    component that draws, plus any index it draws per: task, epoch):
    ``(seed * 1_000_003 + salt) mod 2**63``. Every seed a run derives goes through here, so that two
    purposes never share a stream by accident and each is reproducible from the run seed alone."""
    return (int(seed) * SEED_STRIDE + int(salt)) % (2**63)


#: Task inputs: a float tensor [n, *input_shape], or a :class:`clbench.inputs.LazyInputs` that makes
#: such tensors per batch from compact storage (``x[index]``, ``x[a:b]``, ``x.shape``, ``len(x)`` and
#: ``x.to(device)`` behave alike; :func:`clbench.inputs.materialize` gives the tensor).
Inputs = Any


@dataclass
class Task:
    """One task of a stream: its id, train and test inputs and labels.

    ``train_x`` [n_train, *input_shape] (:data:`Inputs`), ``train_y`` [n_train] int64; likewise the
    test split. ``classes`` are the labels the task uses; in the task-incremental scenario the
    logits are masked to them (see :mod:`clbench.scenarios`), otherwise they are informative.
    """

    id: int
    train_x: Inputs
    train_y: torch.Tensor
    test_x: Inputs
    test_y: torch.Tensor
    name: str = ""
    classes: tuple[int, ...] | None = None


@dataclass
class TaskStream:
    """A benchmark's output: the tasks in training order and what models need to know of them.

    ``sequence_steps`` is the default number of steps a memory model reads a sample in; ``info``
    holds benchmark-specific facts worth recording (e.g. calibration parameters). ``scenario`` is
    ``"task"``, ``"class"`` or ``"domain"`` (see :mod:`clbench.scenarios`), or None when the
    stream does not declare one (one head, no masking: as ``class`` or ``domain``).
    """

    name: str
    tasks: list[Task]
    n_classes: int
    input_shape: tuple[int, ...]
    sequence_steps: int = 1
    info: dict[str, Any] = field(default_factory=dict)
    scenario: str | None = None

    def __len__(self) -> int:
        return len(self.tasks)


@dataclass(frozen=True)
class BuildContext:
    """What every component factory receives besides its options: ``factory(options, build)``.

    ``seed`` is the run seed (derive sub-seeds with :meth:`derive_seed`); ``train`` the run's
    training settings. ``stream`` is None while the benchmark itself is being built, and the
    built :class:`TaskStream` for every other kind, whose facts (``input_shape`` [features...],
    ``n_classes``, ``sequence_steps``) are here too. ``make_model`` builds a fresh model of the
    configured kind for the stream (strategies that retrain call it); ``extras`` is the run's
    dict of JSON-serialisable diagnostics, saved in the record (write under your own key).
    ``generator`` is the run's torch generator (data order, replay draws), None for benchmarks;
    it stays on the CPU. ``device`` is where the run computes (None: the CPU): the harness moves
    the stream's tensors and the model there; a component that allocates tensors of its own (a
    replay buffer's storage) puts them there.
    """

    seed: int
    train: TrainConfig
    stream: TaskStream | None = None
    make_model: Callable[[], Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    generator: torch.Generator | None = None
    device: torch.device | None = None

    @classmethod
    def for_shapes(
        cls,
        input_shape: tuple[int, ...],
        n_classes: int,
        sequence_steps: int = 1,
        *,
        seed: int = 0,
        train: TrainConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> BuildContext:
        """A context for building a component outside a run (tests, scripts): a stream with these
        facts and no tasks, default train settings unless given."""
        from clbench.config import TrainConfig

        stream = TaskStream("probe", [], n_classes, tuple(input_shape), sequence_steps)
        return cls(seed=seed, train=train or TrainConfig(), stream=stream, generator=generator)

    def _stream(self) -> TaskStream:
        if self.stream is None:
            raise RuntimeError("the stream is not built yet: benchmark factories get no stream facts")
        return self.stream

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, without the batch dimension."""
        return tuple(self._stream().input_shape)

    @property
    def n_classes(self) -> int:
        """Number of classes of the stream (the width of a model's logits)."""
        return int(self._stream().n_classes)

    @property
    def sequence_steps(self) -> int:
        """The stream's default number of steps a memory model reads a sample in."""
        return int(self._stream().sequence_steps)

    def criterion(self) -> Any:
        """The per-sample loss for this stream, ``(logits [n, C], y [n]) -> [n]``: cross-entropy,
        masked to each sample's task classes in the task scenario (:func:`clbench.scenarios.criterion_for`)."""
        from clbench.scenarios import criterion_for

        return criterion_for(self._stream())

    def build_model(self) -> Any:
        """A freshly initialised model of the run's configured kind: ``torch.nn.Module`` mapping
        [n, *input_shape] -> logits [n, n_classes]."""
        if self.make_model is None:
            raise RuntimeError("no model factory in this build context (benchmarks are built before models)")
        return self.make_model()

    def derive_seed(self, salt: int) -> int:
        """:func:`derive_seed` of the run seed."""
        return derive_seed(self.seed, salt)


O_contra = TypeVar("O_contra", bound="Options", contravariant=True)


class BenchmarkFactory(Protocol[O_contra]):
    """Builds a benchmark's stream; ``build.stream`` is None (the stream is what it makes)."""

    def __call__(self, options: O_contra, build: BuildContext, /) -> TaskStream: ...


class ModelFactory(Protocol[O_contra]):
    """Builds a ``torch.nn.Module`` mapping ``x`` [n, *build.input_shape] -> logits [n, build.n_classes]."""

    def __call__(self, options: O_contra, build: BuildContext, /) -> torch.nn.Module: ...


class MetaLearnerFactory(Protocol[O_contra]):
    """Builds the update rule of the composed learner."""

    def __call__(self, options: O_contra, build: BuildContext, /) -> MetaLearner: ...


class ReplayFactory(Protocol[O_contra]):
    """Builds a replay buffer for samples of shape ``build.input_shape``, or None (no replay)."""

    def __call__(self, options: O_contra, build: BuildContext, /) -> ReplayBuffer | None: ...


class StrategyFactory(Protocol[O_contra]):
    """Builds a whole learner with its own loop; it builds models with ``build.build_model()``."""

    def __call__(self, options: O_contra, build: BuildContext, /) -> Learner: ...


# --- optional capabilities: declared here, checked with isinstance, never by duck typing --------


@runtime_checkable
class PrefersEvalBatchSize(Protocol):
    """A model that evaluates fastest in batches of ``eval_batch_size`` samples (memory models keep
    their per-sample state in cache in small batches); used when ``train.eval_batch_size`` is null."""

    eval_batch_size: int


@runtime_checkable
class Traceable(Protocol):
    """A model that can record its internal state for a few inputs, for lifecycle plugins to store
    (e.g. a memory model's read and write weightings). ``samples_to_trace`` is how many test
    samples of each task the model asks to be traced after the run (0: none)."""

    samples_to_trace: int

    def trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run ``x`` [n, *input_shape] and return named internal tensors, each [n, steps, ...]."""
        ...


class Learner(ABC):
    """Anything the harness can train task by task and evaluate.

    The composed learner (model x meta-learner x replay) and every strategy implement this.
    ``model`` is the network it trains, when it has one: the harness and lifecycle plugins look
    at it for optional capabilities (:class:`PrefersEvalBatchSize`, :class:`Traceable`).
    """

    model: Any = None
    #: True when the learner calls the ``clbench_epoch_end`` hook itself as each epoch ends (the
    #: composed learner does). Otherwise the harness calls it after :meth:`train_task` returns,
    #: once per value of the ``"loss"`` list in its statistics, so trackers get every learner's curve.
    reports_epochs: bool = False

    @abstractmethod
    def train_task(self, task_index: int, stream: TaskStream) -> dict[str, Any]:
        """Train on ``stream.tasks[task_index]`` (and, for joint-style learners, earlier tasks).

        Returns JSON-serialisable statistics (e.g. ``{"loss": [...per epoch]}``).
        """

    @abstractmethod
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [n, n_classes] for inputs ``x`` [n, *input_shape]; called under inference mode."""

    def adapted_predictor(self, task_index: int, stream: TaskStream, generator: torch.Generator) -> Any:
        """Optional: a predict function adapted to ``task_index`` (e.g. a few steps on its training
        samples) for the adapted accuracy matrix, or None when the learner does no test-time adaptation."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Optional: everything needed to continue training after the tasks seen so far (model,
        optimiser, schedule, buffers), as tensors, numbers, strings and containers of them: what
        a per-task checkpoint stores. A learner that does not implement it cannot resume: an
        interrupted run of it starts again from the first task."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Optional: restore what :meth:`state_dict` returned (on a learner built from the same config)."""
        raise NotImplementedError

    @property
    def resumable(self) -> bool:
        """True when the learner implements :meth:`state_dict` (and so can resume from a checkpoint)."""
        return type(self).state_dict is not Learner.state_dict


@dataclass
class ReplayBatch:
    """Samples drawn from a replay buffer.

    ``x`` [n, *input_shape], ``y`` [n], ``task`` [n]; ``index`` [n] the buffer slots (for priority
    updates); ``weight`` [n] importance weights, or None when sampling is uniform.
    """

    x: torch.Tensor
    y: torch.Tensor
    task: torch.Tensor
    index: torch.Tensor
    weight: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])


class ReplayBuffer(ABC):
    """A store of past samples; capacity is counted in samples.

    The learner adds each training sample once (in the first epoch of its task) with its loss,
    and draws ``batch_size`` samples per step. ``batch_size`` is the replay batch size.
    """

    capacity: int
    batch_size: int

    @abstractmethod
    def add(self, x: torch.Tensor, y: torch.Tensor, task: int, loss: torch.Tensor | None = None) -> None:
        """Offer samples ``x`` [n, ...], ``y`` [n] of task ``task`` with per-sample ``loss`` [n]."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator, task: int | None = None) -> ReplayBatch | None:
        """Draw ``n`` samples (of one ``task`` only, when given); None when nothing can be drawn."""

    def update_priorities(self, index: torch.Tensor, loss: torch.Tensor) -> None:  # noqa: B027
        """Refresh priorities of slots ``index`` [n] from their latest ``loss`` [n]. Default: ignore."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of samples held."""

    @abstractmethod
    def tasks(self) -> list[int]:
        """Ids of the tasks that have at least one sample in the buffer, sorted."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the buffer (tensors and counters)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""


@dataclass
class StepResult:
    """What a meta-learner step reports: mean loss and detached per-sample losses.

    ``loss`` is a float; ``current_loss`` [n_current] and ``replay_loss`` [n_replay] (or None) are
    used for priorities.
    """

    loss: float
    current_loss: torch.Tensor | None = None
    replay_loss: torch.Tensor | None = None


class MetaLearner(ABC):
    """The update rule of the composed learner: one call of :meth:`step` per training batch.

    :meth:`bind` is called once with the model, the optimiser built from the ``train`` settings
    (the outer optimiser for MAML-style learners), the per-sample loss function and the settings.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train: TrainConfig
    #: False for meta-learners that draw from the buffer themselves (e.g. per-task batches):
    #: the loop then passes ``replay_batch=None`` and does not draw one.
    uses_replay_batch: bool = True
    #: The stream's per-sample loss ``(logits [n, C], y [n]) -> [n]`` (:meth:`BuildContext.criterion`),
    #: set by the learner before :meth:`bind`; None means plain cross-entropy. Compute losses with
    #: :meth:`per_sample_loss` so that the task scenario's masking applies.
    criterion: Callable[[Any, Any], Any] | None = None

    def bind(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, train: TrainConfig) -> None:
        """Attach to the model and optimiser; called once before training."""
        self.model, self.optimizer, self.train = model, optimizer, train

    def per_sample_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Losses [n] of ``logits`` [n, C] against labels ``y`` [n] under :attr:`criterion`."""
        if self.criterion is None:
            from clbench.training import per_sample_loss

            return per_sample_loss(logits, y)
        return self.criterion(logits, y)

    def check_compatible(self, replay: ReplayBuffer | None) -> None:  # noqa: B027
        """Raise :class:`clbench.errors.UserError` if this meta-learner cannot work with ``replay``."""

    def state_dict(self) -> dict[str, Any]:
        """State the meta-learner keeps across steps (besides the model and the optimiser, which the
        learner saves), for checkpoints; the default keeps none."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - stateless by default
        """Restore what :meth:`state_dict` returned."""

    def adapt_for_eval(self, task: Task, generator: torch.Generator) -> torch.nn.Module | None:
        """Optional: a copy of the model adapted on a few of ``task``'s training samples, used to
        evaluate ``task`` beside the plain model; None (the default) means no adaptation."""
        return None

    @abstractmethod
    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        task: int,
        replay: ReplayBuffer | None,
        replay_batch: ReplayBatch | None,
        generator: torch.Generator,
    ) -> StepResult:
        """One update from the current batch ``x`` [n, ...], ``y`` [n] of task ``task``.

        ``replay_batch`` was drawn from ``replay`` for this step (or None); meta-learners that need
        more (e.g. per-task batches) may draw from ``replay`` themselves with ``generator``.
        """
