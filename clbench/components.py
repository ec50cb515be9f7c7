"""The interfaces that components implement, and the data they exchange.

This module imports no torch at module level, so plugins can import it cheaply at registration
time. Shapes: ``x`` tensors are [n, *input_shape] float32; ``y`` and ``task`` tensors are [n] int64.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from clbench.config import TrainConfig


@dataclass
class Task:
    """One task of a stream: its id, train and test tensors.

    ``train_x`` [n_train, *input_shape], ``train_y`` [n_train]; likewise the test split.
    """

    id: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    name: str = ""


@dataclass
class TaskStream:
    """A benchmark's output: the tasks in training order and what models need to know of them.

    ``sequence_steps`` is the default number of steps a memory model reads a sample in; ``info``
    holds benchmark-specific facts worth recording (e.g. calibration parameters).
    """

    name: str
    tasks: list[Task]
    n_classes: int
    input_shape: tuple[int, ...]
    sequence_steps: int = 1
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tasks)


class Learner(ABC):
    """Anything the harness can train task by task and evaluate.

    The composed learner (model x meta-learner x replay) and every strategy implement this.
    """

    @abstractmethod
    def train_task(self, task_index: int, stream: TaskStream) -> dict[str, Any]:
        """Train on ``stream.tasks[task_index]`` (and, for joint-style learners, earlier tasks).

        Returns JSON-serialisable statistics (e.g. ``{"loss": [...per epoch]}``).
        """

    @abstractmethod
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [n, n_classes] for inputs ``x`` [n, *input_shape]; called under inference mode."""

    def eval_mode_for(self, task_index: int, stream: TaskStream) -> None:  # noqa: B027 - optional hook
        """Optional: prepare for evaluating ``task_index`` (e.g. a task-aware head). Default: nothing."""

    def adapted_predictor(self, task_index: int, stream: TaskStream, generator: torch.Generator) -> Any:
        """Optional: a predict function adapted to ``task_index`` (e.g. a few steps on its training
        samples) for the adapted accuracy matrix, or None when the learner does no test-time adaptation."""
        return None


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

    def bind(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, train: TrainConfig) -> None:
        """Attach to the model and optimiser; called once before training."""
        self.model, self.optimizer, self.train = model, optimizer, train

    def check_compatible(self, replay: ReplayBuffer | None) -> None:  # noqa: B027
        """Raise :class:`clbench.errors.UserError` if this meta-learner cannot work with ``replay``."""

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
