"""The component registry: per kind, name -> factory, description, options schema, plugin."""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clbench.errors import UserError
from clbench.options import NoOptions, Options


@dataclass(frozen=True)
class Kind:
    """One kind of component, described once: everything else (the config sections, the CLI flags,
    ``clbench list``, the registration hooks, the defaults) is derived from :data:`KIND_TABLE`.

    ``plural`` names the kind in the registry and in ``clbench list KIND``; ``section`` is its config
    section, ``--set`` prefix and CLI flag (``--model``); ``label`` is the singular used in messages;
    ``hook`` is the registration hook that plugins implement; ``default`` is the component a run
    uses when none is named (None: the kind is optional, as strategies are); ``factory`` names the
    protocol in :mod:`clbench.components` that its factories follow; ``help`` is the flag's help.

    ``neutral``, for a kind added after runs exist, names the component that reproduces the
    behaviour from before the kind existed (e.g. a scheduler ``none``): a run that uses it with
    its default options has no section for the kind in its canonical config, so its run id, and
    the records a sweep skips, stay what they were; a record without the section reads as using it.
    The kinds clbench started with have none (their sections are always there).
    """

    plural: str
    section: str
    label: str
    hook: str
    default: str | None
    factory: str
    help: str
    neutral: str | None = None


#: Every component kind, in the order ``clbench list`` shows them and configs hold them.
KIND_TABLE: tuple[Kind, ...] = (
    Kind("benchmarks", "benchmark", "benchmark", "clbench_register_benchmarks", "shifting-linear",
         "BenchmarkFactory", "Benchmark (stream of tasks)."),
    Kind("models", "model", "model", "clbench_register_models", "mlp", "ModelFactory", "Model."),
    Kind("meta", "meta", "meta-learner", "clbench_register_meta_learners", "none", "MetaLearnerFactory",
         "Meta-learner (update rule)."),
    Kind("replay", "replay", "replay", "clbench_register_replay", "none", "ReplayFactory", "Replay buffer."),
    Kind("strategies", "strategy", "strategy", "clbench_register_strategies", None, "StrategyFactory",
         "A whole learner with its own loop (e.g. joint); excludes --meta and --replay."),
)  # fmt: skip

#: Kind plural -> the singular used in messages (``"meta"`` -> ``"meta-learner"``).
KINDS: dict[str, str] = {k.plural: k.label for k in KIND_TABLE}
#: Kind plural -> config section; and back.
SECTION_OF_KIND: dict[str, str] = {k.plural: k.section for k in KIND_TABLE}
KIND_OF_SECTION: dict[str, str] = {k.section: k.plural for k in KIND_TABLE}
#: Config sections that name a component, in table order.
COMPONENT_SECTIONS: tuple[str, ...] = tuple(k.section for k in KIND_TABLE)
#: Section -> the component a run uses when none is named (None: no component of that kind).
DEFAULT_NAMES: dict[str, str | None] = {k.section: k.default for k in KIND_TABLE}
#: Kind plural -> its registration hook.
REGISTRATION_HOOKS: dict[str, str] = {k.plural: k.hook for k in KIND_TABLE}

#: Loggers (experiment trackers) are registered like components but are not part of a run's
#: composition: a run names them in ``train.log`` (a setting, outside the run id); see
#: :mod:`clbench.loggers`.
LOGGERS = "loggers"
LOGGER_HOOK = "clbench_register_loggers"
#: Every registry kind (the components' and the loggers') -> the singular used in messages.
LABELS: dict[str, str] = {**KINDS, LOGGERS: "logger"}


def kind_of_section(section: str) -> Kind:
    """The :class:`Kind` whose config section is ``section``."""
    return next(k for k in KIND_TABLE if k.section == section)


class DuplicateComponentError(Exception):
    """Two plugins registered the same name for one kind."""


@dataclass(frozen=True)
class Component:
    """One registered component: its factory, one-line description, options schema and origin."""

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str
    options: type[Options]
    plugin: str
    requires: tuple[str, ...] = ()
    install_hint: str | None = None

    def missing_requirements(self) -> list[str]:
        """Modules in ``requires`` that cannot be found (checked without importing them)."""
        missing = []
        for module in self.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(module)
        return missing

    @property
    def available(self) -> bool:
        """True when every required module is installed."""
        return not self.missing_requirements()

    def unavailable_reason(self) -> str | None:
        """Why the component cannot run here, with the install command; None when it can."""
        missing = self.missing_requirements()
        if not missing:
            return None
        hint = f"; install with: {self.install_hint}" if self.install_hint else ""
        return f"needs {', '.join(missing)}, which is not installed{hint}"


@dataclass
class Registry:
    """Name -> :class:`Component`, per kind. Built by :class:`clbench.plugins.PluginHost`."""

    _items: dict[str, dict[str, Component]] = field(default_factory=lambda: {k: {} for k in LABELS})
    #: Plugins that failed to load, name -> error, so lookups can mention them.
    broken_plugins: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        kind: str,
        plugin: str,
        name: str,
        factory: Callable[..., Any],
        *,
        description: str,
        options: type[Options] | None = None,
        requires: tuple[str, ...] | list[str] = (),
        install_hint: str | None = None,
    ) -> Component:
        """Register one component; reject a duplicate name naming both plugins."""
        if kind not in self._items:
            raise ValueError(f"unknown component kind {kind!r}; known: {', '.join(LABELS)}")
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ValueError(f"plugin {plugin!r} registered a {LABELS[kind]} with an invalid name {name!r}")
        if not callable(factory):
            raise ValueError(f"plugin {plugin!r}: factory of {LABELS[kind]} {name!r} is not callable")
        options = options or NoOptions
        if not (isinstance(options, type) and issubclass(options, Options)):
            raise ValueError(f"plugin {plugin!r}: options of {LABELS[kind]} {name!r} must subclass clbench.Options")
        existing = self._items[kind].get(name)
        if existing is not None:
            raise DuplicateComponentError(
                f"{LABELS[kind]} {name!r} is registered twice: by plugin {existing.plugin!r} and by plugin {plugin!r}"
            )
        description = " ".join(str(description).split())
        comp = Component(kind, name, factory, description, options, plugin, tuple(requires), install_hint)
        self._items[kind][name] = comp
        return comp

    def remove_plugin(self, plugin: str) -> list[str]:
        """Drop every component and logger ``plugin`` registered; return them as ``kind:name``."""
        removed = []
        for kind, items in self._items.items():
            for name in [n for n, c in items.items() if c.plugin == plugin]:
                del items[name]
                removed.append(f"{LABELS[kind]}:{name}")
        return removed

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self._items[kind])

    def components(self, kind: str) -> list[Component]:
        """Registered components of one kind, sorted by name."""
        return [self._items[kind][n] for n in self.names(kind)]

    def get(self, kind: str, name: str) -> Component:
        """Look up a component; unknown names raise a :class:`UserError` with a did-you-mean."""
        try:
            return self._items[kind][name]
        except KeyError:
            pass
        known = self.names(kind)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        msg = f"unknown {LABELS[kind]} {name!r}"
        if close:
            msg += f"; did you mean {close[0]!r}?"
        msg += f" Known: {', '.join(known) or 'none'}"
        if self.broken_plugins:
            msg += f" (plugins that failed to load: {', '.join(sorted(self.broken_plugins))}; see 'clbench plugins')"
        raise UserError(msg)
