"""One generic adapter that runs any :class:`~clbench_avalanche.specs.StrategySpec` as a clbench learner.

Training goes through Avalanche's own loop (``strategy.train(experience)``) on an Avalanche benchmark
built from the very tensors of clbench's stream (experience i = clbench task i, task label 0 for all:
a single head, as every clbench learner). Evaluation is clbench's: :meth:`AvalancheLearner.predict`
applies the strategy's test-time decision rule to a batch. Avalanche's metrics run only when the
``crosscheck`` option asks for them; otherwise its evaluator is a no-op, so no per-iteration metric
callbacks, no loggers and no output. This module imports torch and Avalanche: import it only inside
factories.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import random
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from avalanche.benchmarks import tensors_benchmark
from avalanche.benchmarks.scenarios.deprecated.generic_benchmark_creation import (
    create_multi_dataset_generic_benchmark,
)
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.utils import _make_taskaware_classification_dataset
from avalanche.core import BaseSGDPlugin
from avalanche.evaluation.metrics import accuracy_metrics, bwt_metrics, forgetting_metrics
from avalanche.models.base_model import BaseModel
from avalanche.training import supervised
from avalanche.training.plugins import BiCPlugin, CoPEPlugin, EvaluationPlugin
from avalanche.training.templates import SupervisedMetaLearningTemplate
from torch import nn

from clbench.components import BuildContext, Learner, TaskStream
from clbench.errors import UserError
from clbench.inputs import is_lazy
from clbench.training import EpochDecay, build_optimizer
from clbench_avalanche.crosscheck import CROSSCHECK_KEY, row_from_metrics, stream_metrics

_NO_DEFAULT = inspect.Parameter.empty


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Avalanche: its warnings and the lines some strategies print (CoPE, BiC, SLDA).

    Its deprecation warnings re-enable themselves (``simplefilter("always")`` around each call), so
    the display function is muted too; both are restored on exit.
    """
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        warnings.showwarning = lambda *args, **kwargs: None
        yield


#: Salts of the seeds the adapter derives from the run seed (:func:`clbench.components.derive_seed`):
#: Avalanche's global generators per task, and the order of online mini-batches per task and epoch.
TASK_SALT_STRIDE = 7_919
ONLINE_ORDER_SALT = 0x0_411E_0000


def seed_all(seed: int) -> None:
    """Seed every generator Avalanche draws from (its loaders and buffers use the global ones)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


class TaskSplit(torch.utils.data.Dataset):
    """One task split of lazy inputs (:class:`clbench.inputs.LazyInputs`) as a map-style data set:
    item i is ``(x [*input_shape] float, y int)``, made when Avalanche's loader asks for it."""

    def __init__(self, x: Any, y: torch.Tensor):
        self.x, self.y = x, y.cpu()
        self.targets = self.y.tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[int(i)], self.targets[int(i)]


def to_benchmark(stream: TaskStream) -> Any:
    """An Avalanche benchmark with one experience per clbench task, same inputs, task label 0.

    Experience i of ``train_stream``/``test_stream`` holds task i's ``train_x`` [n, *input_shape],
    ``train_y`` [n] (resp. the test split). Tensors go in as they are; lazy inputs (image streams)
    as :class:`TaskSplit` data sets, so that no float copy of a whole stream is made.
    """
    if any(is_lazy(t.train_x) or is_lazy(t.test_x) for t in stream.tasks):

        def split(x: Any, y: torch.Tensor) -> Any:
            data = TaskSplit(x.cpu(), y)
            return _make_taskaware_classification_dataset(data, task_labels=0, targets=data.targets)

        with quiet():
            return create_multi_dataset_generic_benchmark(
                [split(t.train_x, t.train_y) for t in stream.tasks], [split(t.test_x, t.test_y) for t in stream.tasks]
            )
    with quiet():
        return tensors_benchmark(
            [[t.train_x.cpu(), t.train_y.cpu()] for t in stream.tasks],  # the strategy moves batches to its device
            [[t.test_x.cpu(), t.test_y.cpu()] for t in stream.tasks],
            task_labels=[0] * len(stream.tasks),
        )


class MeanLoss(nn.Module):
    """A clbench per-sample criterion ``(logits [n, C], y [n]) -> [n]`` as Avalanche's criterion
    (the mean over the batch), e.g. the task scenario's masked cross-entropy."""

    def __init__(self, per_sample: Any):
        super().__init__()
        self.per_sample = per_sample

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss of ``logits`` [n, C] against ``y`` [n]."""
        return self.per_sample(logits, y).mean()


class SplitModel(BaseModel, nn.Module):
    """A clbench model cut at its last ``nn.Linear``: ``body`` maps [n, *input_shape] -> features
    [n, features]; ``head`` maps features -> logits [n, n_classes]. ``forward = head(body(x))``.

    Strategies that need a feature extractor (ER-AML, LFL, iCaRL, CWR*, SLDA, SCR, feature replay)
    get it this way from any model whose logits are its last Linear's output.
    """

    def __init__(self, body: nn.Module, head: nn.Linear):
        super().__init__()
        self.body, self.head, self.features = body, head, head.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [n, *input_shape] -> logits [n, n_classes]."""
        return self.head(self.body(x))

    def get_features(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [n, *input_shape] -> the last Linear's input [n, features] (LFL's feature space)."""
        return self.body(x)


def split_last_linear(model: nn.Module, input_shape: tuple[int, ...], n_classes: int, strategy: str) -> SplitModel:
    """Replace ``model``'s last ``nn.Linear`` (in registration order) by an identity and return the
    split; checked on a probe batch [4, *input_shape] to compute the same logits, else UserError."""
    named = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    problem = f"strategy {strategy} needs a model whose logits are the output of its last nn.Linear"
    if not named or named[-1][1].out_features != n_classes:
        raise UserError(f"{problem}; this model's last Linear is not an {n_classes}-way output layer")
    name, head = named[-1]
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    probe = torch.randn(4, *input_shape, generator=torch.Generator().manual_seed(0))
    probe = probe.to(next(model.parameters()).device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        before = model(probe)
        setattr(parent, name.rpartition(".")[2], nn.Identity())
        split = SplitModel(model, head)
        after = split(probe)
    model.train(was_training)
    if before.shape != after.shape or not torch.allclose(before, after, atol=1e-5):
        setattr(parent, name.rpartition(".")[2], head)
        raise UserError(f"{problem}; this model transforms that layer's output further")
    return split


class TrainSettings(BaseSGDPlugin):
    """clbench's train settings inside Avalanche's loop: gradient clipping (``train.clip``), the
    epoch-wise lr decay, and the mean training loss per epoch for the record."""

    def __init__(self, train: Any, optimizer: torch.optim.Optimizer | None):
        super().__init__()
        self.clip = train.clip
        self.schedule = EpochDecay(optimizer, train) if train.lr_decay_every and optimizer is not None else None
        self.epoch_losses: list[float] = []
        self._sum, self._n = 0.0, 0

    def before_update(self, strategy: Any, **kwargs: Any) -> None:
        """Clip the gradient norm before the optimiser step."""
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(strategy.model.parameters(), self.clip)

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        """Accumulate the batch loss."""
        self._sum, self._n = self._sum + float(strategy.loss), self._n + 1

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        """Close the epoch: record its mean loss and step the lr schedule."""
        self.epoch_losses.append(self._sum / max(1, self._n))
        self._sum, self._n = 0.0, 0
        if self.schedule is not None:
            self.schedule.epoch_done()

    def pop_losses(self) -> list[float]:
        """The epoch losses recorded since the last call."""
        out, self.epoch_losses = self.epoch_losses, []
        return out


class NoMetrics(EvaluationPlugin):
    """An evaluator that computes and logs nothing (Avalanche's default one logs to stdout)."""

    def __init__(self) -> None:
        with quiet():
            super().__init__(loggers=[], collect_all=False)

    def _update_metrics_and_loggers(self, strategy: Any, callback: str) -> list:
        return []


def crosscheck_evaluator() -> EvaluationPlugin:
    """The metrics the cross-check asks Avalanche for; no loggers."""
    with quiet():
        return EvaluationPlugin(
            accuracy_metrics(experience=True, stream=True),
            forgetting_metrics(experience=True, stream=True),
            bwt_metrics(experience=True, stream=True),
            loggers=[],
        )


class Kit:
    """What a spec's ``build`` gets: the model clbench built, the run's settings, and :meth:`make`."""

    def __init__(self, context: BuildContext, evaluator: EvaluationPlugin, strategy_name: str, epochs: int):
        self.context, self.evaluator, self.strategy_name, self.epochs = context, evaluator, strategy_name, epochs
        self.train = context.train
        self.stream: TaskStream = context.stream
        self.input_shape, self.n_classes = tuple(self.stream.input_shape), self.stream.n_classes
        self.model: nn.Module = context.build_model()
        self.settings: TrainSettings | None = None

    def split_model(self) -> SplitModel:
        """The model cut at its last Linear (see :func:`split_last_linear`)."""
        return split_last_linear(self.model, self.input_shape, self.n_classes, f"avalanche.{self.strategy_name}")

    def make(self, cls_name: str | type, *, model: nn.Module | None = None, **kwargs: Any) -> Any:
        """Construct ``avalanche.training.<cls_name>`` (or the class given) with clbench's train settings.

        ``model`` defaults to the built model; ``None`` passes no model (strategies that take a
        feature extractor and classifier instead). The optimiser is built with
        :func:`clbench.training.build_optimizer` over the parameters of ``model`` (or, when None, of
        the built model), unless the strategy takes none (SLDA). The criterion is the strategy's own
        default, or cross-entropy where it has none; in the task scenario, a plain cross-entropy (given or
        default) becomes the stream's task-masked loss (:class:`MeanLoss`), while strategies with
        losses of their own keep them (their predictions are still masked when clbench evaluates).
        """
        cls = getattr(supervised, cls_name) if isinstance(cls_name, str) else cls_name
        params = inspect.signature(cls.__init__).parameters
        net = self.model if model is None else model
        optimizer = build_optimizer(net.parameters(), self.train) if "optimizer" in params else None
        # SLDA has no optimiser (nothing to clip or decay); MER steps it inside its inner loop (no clip hook)
        meta = issubclass(cls, SupervisedMetaLearningTemplate)
        settings = ("clip", "lr_decay_every") if optimizer is None else ("clip",) if meta else ()
        unsupported = [f"train.{k}" for k in settings if getattr(self.train, k)]
        if unsupported:
            raise UserError(f"avalanche.{self.strategy_name} does not support {', '.join(unsupported)}")
        self.settings = TrainSettings(self.train, optimizer)
        common: dict[str, Any] = {
            "train_mb_size": self.train.batch_size,
            "train_epochs": self.epochs,
            "eval_mb_size": self.train.eval_batch_size or 1024,
            "device": str(self.context.device or "cpu"),
            "evaluator": self.evaluator,
        }
        if optimizer is not None:
            common["optimizer"] = optimizer
        if model is not None or "model" in params:
            common["model"] = net
        if "criterion" in params and "criterion" not in kwargs:
            default = params["criterion"].default
            masked = self.context.stream is not None and self.context.stream.scenario == "task"
            if masked and (default is _NO_DEFAULT or isinstance(default, nn.CrossEntropyLoss)):
                common["criterion"] = MeanLoss(self.context.criterion())  # the task scenario's masked loss
            elif default is _NO_DEFAULT:
                common["criterion"] = nn.CrossEntropyLoss()
        plugins = list(kwargs.pop("plugins", []))
        with quiet():
            return cls(**common, **kwargs, plugins=[*plugins, self.settings])


class AvalancheLearner(Learner):
    """A clbench learner backed by an Avalanche strategy (see the module docstring)."""

    def __init__(self, spec: Any, options: Any, context: BuildContext):
        self.spec, self.options, self.ctx = spec, options, context
        if options.crosscheck and spec.mode != "task":
            raise UserError(
                f"avalanche.{spec.name} cannot cross-check: it does not train one Avalanche experience per task "
                f"({spec.mode} mode), so Avalanche's forgetting would not align with clbench's tasks"
            )
        self.benchmark = to_benchmark(context.stream)
        self.strategy: Any = None
        self.kit: Kit | None = None
        self.crosscheck: dict[str, Any] | None = None
        if options.crosscheck:
            self.crosscheck = {
                "accuracy_matrix": [],
                "stream": [],
                "test_sizes": [int(t.test_y.shape[0]) for t in context.stream.tasks],
            }
            context.extras[CROSSCHECK_KEY] = self.crosscheck
        self.evaluator = crosscheck_evaluator() if options.crosscheck else NoMetrics()
        self._build()  # joint rebuilds before each task; until then this is its untrained model

    def _build(self) -> None:
        epochs = 1 if self.spec.mode == "online" else self.ctx.train.epochs
        self.kit = Kit(self.ctx, self.evaluator, self.spec.name, epochs)
        self.strategy = self.spec.build(self.options, self.kit)

    def train_task(self, task_index: int, stream: TaskStream) -> dict[str, Any]:
        """Train the strategy on task ``task_index`` with Avalanche's loop; returns the epoch losses."""
        seed_all(self.ctx.derive_seed(TASK_SALT_STRIDE * (task_index + 1)))
        train_stream = self.benchmark.train_stream
        with quiet():
            if self.spec.mode == "joint":
                if self.options.mode == "final" and task_index < len(stream.tasks) - 1:
                    return {"skipped": True}
                self._build()  # a fresh model, seeded per task as clbench's joint
                self.strategy.train([train_stream[j] for j in range(task_index + 1)], eval_streams=[])
            elif self.spec.mode == "online":
                losses = []
                for epoch in range(self.ctx.train.epochs):
                    order_seed = self.ctx.derive_seed(ONLINE_ORDER_SALT + task_index * 1_000 + epoch)
                    online = split_online_stream([train_stream[task_index]], self.ctx.train.batch_size, seed=order_seed)
                    for sub in online:
                        self.strategy.train(sub, eval_streams=[])
                    epoch_losses = self.kit.settings.pop_losses()
                    losses.append(sum(epoch_losses) / max(1, len(epoch_losses)))
                return {"loss": losses}
            else:
                self.strategy.train(train_stream[task_index], eval_streams=[])
            if self.crosscheck is not None:
                self._crosscheck_eval()
        return {"loss": self.kit.settings.pop_losses()}

    def _crosscheck_eval(self) -> None:
        results = self.strategy.eval(self.benchmark.test_stream)
        self.crosscheck["accuracy_matrix"].append(row_from_metrics(results, len(self.ctx.stream.tasks)))
        self.crosscheck["stream"].append(stream_metrics(results))
        self.crosscheck["final_metrics"] = {k: v for k, v in results.items() if isinstance(v, (int, float))}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Scores [n, n_classes] for ``x`` [n, *input_shape] by the strategy's own test-time rule."""
        s, rule = self.strategy, self.spec.output
        model = s.model
        model.eval()
        if rule == "slda":
            return s.predict(model(x))
        if rule == "ncm" and not model.eval_classifier.class_means_dict:
            return torch.zeros(x.shape[0], self.ctx.stream.n_classes, device=x.device)  # no class seen yet
        out = model(x)
        if rule == "cope":
            (plugin,) = [p for p in s.plugins if isinstance(p, CoPEPlugin)]
            return plugin._get_nearest_neigbor_distr(out)
        if rule == "bic":
            (plugin,) = [p for p in s.plugins if isinstance(p, BiCPlugin)]
            if not plugin.is_first_experience:
                out = plugin.bias_forward(out)
        n_classes = self.ctx.stream.n_classes
        if out.shape[1] < n_classes:  # nearest-mean classifiers score only the classes seen so far
            out = torch.cat([out, torch.full((out.shape[0], n_classes - out.shape[1]), -torch.inf)], dim=1)
        return out
