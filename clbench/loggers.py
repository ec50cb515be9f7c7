"""Experiment trackers (loggers) for one run: opened from ``train.log`` when the run starts, added to
the run's plugin host as observers, closed when it ends.

A logger is registered by a plugin (hook ``clbench_register_loggers``) with a factory
``factory(context) -> logger``. The logger implements any lifecycle hooks it needs as methods
marked with ``@hookimpl`` (they receive the run's :class:`clbench.harness.RunContext` as
``context``, like any plugin's) and a ``close(status)`` method, called once when the run ends,
whatever its status (``ok``, ``failed``, ``interrupted``). Loggers are settings: they are not part
of the run id, so a run logged or not is the same run. A logger that raises, while it opens, in a
hook, or while it closes, is a recorded hook error (``hook_errors``); the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from clbench.config import sections_in_use
from clbench.plugins import call_guarded
from clbench.registry import LOGGERS

if TYPE_CHECKING:  # pragma: no cover
    from clbench.harness import RunContext


@runtime_checkable
class Logger(Protocol):
    """What a logger factory returns: an object with ``@hookimpl`` lifecycle methods and ``close``."""

    def close(self, status: str) -> None:
        """The run ended with ``status``: flush and release what the logger holds."""


@dataclass
class OpenLoggers:
    """The loggers a run opened: (logger name, observer name, object); :meth:`close` closes each once."""

    items: list[tuple[str, str, Any]] = field(default_factory=list)

    def close(self, context: RunContext, status: str) -> None:
        """Stop the loggers' hooks, then call each ``close(status)``; failures go to ``hook_errors``."""
        items, self.items = self.items, []
        for _name, observer, logger in items:
            context.host.remove_observer(observer)
            close = getattr(logger, "close", None)
            if callable(close):
                call_guarded(context.hook_errors, observer, "close", close, status=status)


def open_loggers(context: RunContext) -> OpenLoggers:
    """Build the loggers named in ``context.train.log`` and add them to the run's host as observers.
    A factory that raises (a tracking server that cannot be reached, say) is a hook error; the run
    goes on without that logger."""
    opened = OpenLoggers()
    for name in context.train.log:
        comp = context.host.registry.get(LOGGERS, name)
        observer = f"{comp.plugin}:{name}"
        logger = call_guarded(context.hook_errors, observer, "open", comp.factory, context=context)
        if logger is None:
            continue
        context.host.add_observer(logger, name=observer)
        opened.items.append((name, observer, logger))
    return opened


def run_title(context: RunContext) -> str:
    """A run's name in a tracker: its label (a variant's, when a sweep gave one) and its run id,
    e.g. ``dnc · maml · prioritized 3f2a9c1e0b7d4e55``."""
    label = context.label
    if not label:
        canonical = context.config.canonical()
        label = " · ".join(str(canonical[s]["name"]) for s in sections_in_use(canonical) if s != "benchmark")
    return f"{label} {context.run_id}"


def flat_params(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as flat ``section.key`` -> value pairs (lists kept whole), for trackers'
    parameter tables: ``{"model": {"name": "mlp", "options": {"hidden_sizes": [64]}}}`` ->
    ``{"model.name": "mlp", "model.hidden_sizes": [64]}``."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            key = str(key)
            sub = prefix if key == "options" and prefix else (f"{prefix}.{key}" if prefix else key)
            out.update(flat_params(item, sub))
    else:
        out[prefix or "value"] = value
    return out
