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

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from clbench import PROJECT_NAME

if TYPE_CHECKING:  # pragma: no cover
    import click

    from clbench.harness import RunContext
    from clbench.options import Options
    from clbench.report.content import Report
    from clbench.report.figures import Figure
    from clbench.report.tables import Table

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


class Register(Protocol):
    """The callable handed to registration hooks."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        description: str,
        options: type[Options] | None = None,
        requires: tuple[str, ...] = (),
        install_hint: str | None = None,
    ) -> None:
        """Register ``factory`` under ``name``; ``requires`` lists importable modules it needs."""


# --- registration ---------------------------------------------------------------------------
# One hook per component kind (clbench.registry.KIND_TABLE). Every factory is called as
# ``factory(options, build)`` with the component's validated options and a
# clbench.components.BuildContext (seed, train settings, the stream and its facts); the protocols
# BenchmarkFactory, ModelFactory, MetaLearnerFactory, ReplayFactory and StrategyFactory in
# clbench.components say what each returns.


@hookspec
def clbench_register_benchmarks(register: Register) -> None:
    """Register benchmarks: ``factory(options, build) -> TaskStream`` (``build.stream`` is None)."""


@hookspec
def clbench_register_models(register: Register) -> None:
    """Register models: ``factory(options, build) -> nn.Module``.

    The module maps ``x`` of shape [batch, *build.input_shape] to logits [batch, build.n_classes].
    """


@hookspec
def clbench_register_meta_learners(register: Register) -> None:
    """Register meta-learners: ``factory(options, build) -> clbench.components.MetaLearner``."""


@hookspec
def clbench_register_replay(register: Register) -> None:
    """Register replay buffers: ``factory(options, build) -> ReplayBuffer | None``."""


@hookspec
def clbench_register_strategies(register: Register) -> None:
    """Register whole learners with their own loop: ``factory(options, build) -> Learner``; they build
    models with ``build.build_model()``."""


@hookspec
def clbench_register_loggers(register: Register) -> None:
    """Register experiment trackers (loggers), chosen per run with ``--log NAME`` (``train.log``):
    ``factory(context) -> logger``, called when a run that asks for it starts (before the stream is
    built), with the run's :class:`clbench.harness.RunContext`. The logger is an object with
    lifecycle hook implementations (``@hookimpl def clbench_epoch_end(self, context, ...)``), added
    to the run as an observer, and a ``close(status)`` method called once when the run ends, however
    it ends (``ok``, ``failed``, ``interrupted``). What a logger raises is a recorded hook error; the
    run goes on. See :mod:`clbench.loggers`."""


# --- extending the command line and the report -------------------------------------------------


@hookspec
def clbench_register_commands(cli: click.Group) -> None:
    """Add commands to the ``clbench`` command line: ``cli.add_command(my_click_command)``.

    Called when ``clbench`` starts, for every installed plugin (and those given with ``--plugin``):
    keep the module light (import torch inside the command). A command whose name is taken is
    refused with a warning; the built-in commands cannot be replaced.
    """


@hookspec
def clbench_report_tables(report: Report) -> list[Table]:
    """Sections a plugin adds to ``clbench report`` (every format): a list of
    :class:`clbench.report.tables.Table` (a title, a header, rows of text cells, an alignment per
    column, and an optional intro and notes), placed after the core's time table. ``report`` is
    the :class:`clbench.report.content.Report` being written.
    """
    raise NotImplementedError  # a specification: plugins implement it


@hookspec
def clbench_report_figures(report: Report) -> list[Figure]:
    """Figures a plugin adds to ``clbench report`` (md and html), after the core's: a list of
    :class:`clbench.report.figures.Figure` (draw with ``new_figure`` and ``png_bytes`` from that
    module). ``report`` is the :class:`clbench.report.content.Report` being written: its groups
    hold the records, and a plugin may append a line to ``report.notes`` for what it left out.
    """
    raise NotImplementedError  # a specification: plugins implement it


@hookspec
def clbench_summary_lines(record: dict[str, Any]) -> list[str]:
    """Lines a plugin adds to the summary that ``clbench run`` and ``clbench show`` print for a
    record (after the metrics), for data it keeps in ``record["extras"]``: a list of strings
    (empty when the record holds nothing of the plugin's). Keep them short; import lazily."""
    raise NotImplementedError  # a specification: plugins implement it


# --- lifecycle ---------------------------------------------------------------------------------


@hookspec
def clbench_run_start(context: RunContext) -> None:
    """A run begins: the stream is built and the learner is ready; nothing is trained yet."""


@hookspec
def clbench_task_start(context: RunContext, task_index: int) -> None:
    """Training on task ``task_index`` (0-based) begins."""


@hookspec
def clbench_epoch_end(context: RunContext, task_index: int, epoch: int, loss: float) -> None:
    """One epoch on task ``task_index`` ended with mean training loss ``loss``.

    The composed learner calls it as each epoch ends; for a strategy (a learner whose
    ``reports_epochs`` is False) the harness calls it after the task's training, before
    ``clbench_task_end``, once per value of the ``"loss"`` list its ``train_task`` returned."""


@hookspec
def clbench_task_end(context: RunContext, task_index: int, train_seconds: float) -> None:
    """Training on task ``task_index`` ended (before its evaluation)."""


@hookspec
def clbench_evaluation_done(context: RunContext, after_task: int, accuracies: list[float]) -> None:
    """Every task's test split was evaluated; ``after_task`` is -1 for the evaluation at init."""


@hookspec
def clbench_run_end(context: RunContext, record: dict[str, Any]) -> None:
    """A run ended (``record["status"]`` is ok or failed); the record is not yet written."""
