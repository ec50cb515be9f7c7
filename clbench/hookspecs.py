"""The hooks that plugins implement (pluggy project ``clbench``).

Registration hooks receive a ``register`` callable bound to one component kind and to the plugin
that implements the hook. Call it once per component::

    register(name, factory, description="one line", options=MyOptions)

``factory`` is called only when a run needs the component, so a plugin module should import
heavy packages (torch, Avalanche) inside its factories, never at module level. What each kind's
factory receives and returns is documented in :mod:`clbench.components`.

Lifecycle hooks are observers (progress bars, loggers, tracers, exporters). They get a
:class:`clbench.harness.RunContext`; they may add JSON-serialisable data to ``context.extras``,
which is saved in the record. A lifecycle hook that raises is reported with its plugin's name in
the record's ``hook_errors`` and on stderr; the run goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from clbench import PROJECT_NAME

if TYPE_CHECKING:  # pragma: no cover
    from clbench.harness import RunContext

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


class Register(Protocol):
    """The callable handed to registration hooks."""

    def __call__(
        self,
        name: str,
        factory: Any,
        *,
        description: str,
        options: Any = None,
        requires: tuple[str, ...] = (),
        install_hint: str | None = None,
    ) -> None:
        """Register ``factory`` under ``name``; ``requires`` lists importable modules it needs."""


# --- registration ---------------------------------------------------------------------------


@hookspec
def clbench_register_benchmarks(register: Register) -> None:
    """Register benchmarks: ``factory(options, *, seed: int) -> clbench.components.TaskStream``."""


@hookspec
def clbench_register_models(register: Register) -> None:
    """Register models: ``factory(options, *, input_shape, n_classes, sequence_steps) -> nn.Module``.

    The module maps ``x`` of shape [batch, *input_shape] to logits [batch, n_classes].
    """


@hookspec
def clbench_register_meta_learners(register: Register) -> None:
    """Register meta-learners: ``factory(options) -> clbench.components.MetaLearner``."""


@hookspec
def clbench_register_replay(register: Register) -> None:
    """Register replay buffers: ``factory(options, *, input_shape, train) -> ReplayBuffer | None``."""


@hookspec
def clbench_register_strategies(register: Register) -> None:
    """Register whole learners with their own loop: ``factory(options, *, context) -> Learner``."""


# --- lifecycle ---------------------------------------------------------------------------------


@hookspec
def clbench_run_start(context: RunContext) -> None:
    """A run begins: the stream is built and the learner is ready; nothing is trained yet."""


@hookspec
def clbench_task_start(context: RunContext, task_index: int) -> None:
    """Training on task ``task_index`` (0-based) begins."""


@hookspec
def clbench_epoch_end(context: RunContext, task_index: int, epoch: int, loss: float) -> None:
    """One epoch on task ``task_index`` ended with mean training loss ``loss``."""


@hookspec
def clbench_task_end(context: RunContext, task_index: int, train_seconds: float) -> None:
    """Training on task ``task_index`` ended (before its evaluation)."""


@hookspec
def clbench_evaluation_done(context: RunContext, after_task: int, accuracies: list[float]) -> None:
    """Every task's test split was evaluated; ``after_task`` is -1 for the evaluation at init."""


@hookspec
def clbench_run_end(context: RunContext, record: dict[str, Any]) -> None:
    """A run ended (``record["status"]`` is ok or failed); the record is not yet written."""
