"""The plugin host: a pluggy manager built by a factory, plugin discovery, and the registry.

Plugins come from the ``clbench`` entry-point group (built-in and third-party alike) and from
``--plugin module.path``. ``CLBENCH_DISABLE_PLUGINS=a,b`` blocks plugins by name. A plugin that
fails to import is recorded with its error and skipped: commands that do not need it still work.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pluggy

from clbench import PROJECT_NAME, hookspecs
from clbench.errors import UserError
from clbench.interrupts import reraise_interrupt
from clbench.registry import LOGGER_HOOK, LOGGERS, REGISTRATION_HOOKS, DuplicateComponentError, Registry
from clbench.text import printable

ENTRY_POINT_GROUP = "clbench"
DISABLE_ENV = "CLBENCH_DISABLE_PLUGINS"
#: The core's own components (the shifting-linear benchmark) are registered like any plugin.
CORE_PLUGINS = {"core": "clbench.streams.shifting_linear"}
#: Plugins that cannot be disabled (as pytest's ``essential_plugins``): ``core`` and ``basic``
#: provide the defaults every run starts from (the shifting-linear stream, the ``mlp`` model,
#: meta-learner and replay ``none``) and the report's default baseline.
ESSENTIAL_PLUGINS = ("core", "basic")
#: Hooks whose implementations clbench calls one by one (:meth:`PluginHost.call_observers`,
#: :meth:`PluginHost.collect`), so that one that raises is reported with its plugin's name while the
#: others still run. A wrapper cannot wrap the others there: plugins that declare one are refused.
ONE_BY_ONE_HOOKS = frozenset(
    {"clbench_run_start", "clbench_task_start", "clbench_epoch_end", "clbench_task_end",
     "clbench_evaluation_done", "clbench_run_end", "clbench_register_commands", "clbench_report_figures",
     "clbench_report_tables", "clbench_summary_lines"}
)  # fmt: skip


@dataclass
class PluginInfo:
    """What ``clbench plugins`` shows about one plugin."""

    name: str
    source: str  # "core", "entry point", "--plugin"
    module: str
    version: str | None = None
    distribution: str | None = None
    status: str = "ok"  # ok | failed | disabled
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    #: An essential plugin (:data:`ESSENTIAL_PLUGINS`) cannot be disabled.
    essential: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for ``--json``."""
        return dict(self.__dict__)


def disabled_plugins(environ: dict[str, str] | None = None) -> set[str]:
    """Names listed in ``CLBENCH_DISABLE_PLUGINS`` (comma-separated)."""
    value = (environ if environ is not None else os.environ).get(DISABLE_ENV, "")
    return {part.strip() for part in value.split(",") if part.strip()}


def _short_error(exc: BaseException) -> str:
    """``Type: first line of the message``, with control characters made visible."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return printable((text.splitlines() or [type(exc).__name__])[0])


def _contain(exc: BaseException) -> None:
    """Re-raise the user's own interrupt; any other exception (``SystemExit``, a plugin's
    ``KeyboardInterrupt`` or ``GeneratorExit`` included) is the plugin's failure, to be recorded."""
    reraise_interrupt(exc)


class PluginHost:
    """Owns one pluggy manager, the list of plugins found, and the registry they fill."""

    def __init__(self, pm: pluggy.PluginManager, infos: list[PluginInfo]):
        self.pm = pm
        self.infos = infos
        self._registry: Registry | None = None
        #: Name conflicts found while building the registry leniently (see :meth:`build_registry`).
        self.conflicts: list[str] = []

    @property
    def hook(self) -> Any:
        """The pluggy hook relay."""
        return self.pm.hook

    def has_observers(self, hook_name: str) -> bool:
        """True when some plugin implements the lifecycle hook ``hook_name``."""
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def add_observer(self, plugin: object, name: str) -> None:
        """Register an in-process plugin object (a progress bar, a logger) for this host's runs;
        its hook implementations are checked as an entry-point plugin's are."""
        self.pm.register(plugin, name=name)
        problem = _unsupported_impls(self.pm, plugin)
        if problem:
            self.pm.unregister(plugin)
            raise ValueError(f"plugin {name!r}: {problem}")

    def plugin_versions(self) -> dict[str, str | None]:
        """Loaded plugin name -> version (of its distribution, when it has one)."""
        return {i.name: i.version for i in self.infos if i.status == "ok"}

    @property
    def registry(self) -> Registry:
        """The registry, filled on first use by calling every registration hook; two plugins
        registering the same name is a :class:`UserError` naming both."""
        if self._registry is None:
            self._registry = self.build_registry()
        return self._registry

    def build_registry(self, *, lenient: bool = False) -> Registry:
        """Call every registration hook into a new registry. ``lenient``: a duplicate name marks
        the later plugin as failed and is kept in :attr:`conflicts` instead of raising (so that
        ``clbench plugins`` can always list the plugins and show the conflict).

        A plugin whose registration hook raises is failed as a whole: the components it registered
        before (or in its other hooks) are dropped, and it is unregistered, so that none of its
        lifecycle, command or report hooks runs (:meth:`plugin_commands` and the report build the
        registry first for that reason). A name conflict is not dropped: the strict build raises
        it, every time."""
        registry = Registry()
        failed: list[str] = []
        for info in self.infos:
            if info.status == "failed":
                registry.broken_plugins[info.name] = info.error or "failed"
        for kind, hook_name in [*REGISTRATION_HOOKS.items(), (LOGGERS, LOGGER_HOOK)]:
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                register = partial(registry.add, kind, impl.plugin_name)
                try:
                    impl.function(register=register)
                except DuplicateComponentError as exc:
                    if not lenient:
                        raise UserError(printable(exc)) from None
                    self.conflicts.append(printable(exc))
                    self._mark_failed(impl.plugin_name, f"name conflict: {printable(exc)}")
                except BaseException as exc:  # noqa: BLE001 - a broken plugin must not stop the others
                    _contain(exc)
                    self._mark_failed(impl.plugin_name, f"{hook_name} raised {_short_error(exc)}")
                    registry.broken_plugins[impl.plugin_name] = _short_error(exc)
                    failed.append(impl.plugin_name)
        for name in dict.fromkeys(failed):
            registry.remove_plugin(name)
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
        return registry

    def drop_broken_registrations(self) -> None:
        """Build the registry once (leniently, without keeping it), so that plugins whose
        registration hook raises are dropped before their command or report hooks are called."""
        if self._registry is None:
            self.build_registry(lenient=True)
            self.conflicts = []  # the strict build reports them where the registry is needed

    def _mark_failed(self, name: str, error: str) -> None:
        for info in self.infos:
            if info.name == name:
                info.status, info.error = "failed", error

    def collect(self, hook_name: str, notes: list[str], **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook that returns something (commands, report figures) on every plugin, one by
        one, in pluggy's order; return ``(plugin name, result)`` pairs. A plugin that raises is
        left out with a line in ``notes``; the others still answer."""
        out = []
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
            ok, result = self.collect_one(impl, notes, **kwargs)
            if ok:
                out.append((impl.plugin_name, result))
        return out

    def plugin_commands(self, notes: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """The Click commands each plugin adds (hook ``clbench_register_commands``), as
        ``(plugin name, {command name: command})``: every plugin fills a group of its own, so that
        the caller can refuse names that are taken. A plugin that raises gets a line in ``notes``."""
        import click

        self.drop_broken_registrations()
        out = []
        for impl in reversed(self.pm.hook.clbench_register_commands.get_hookimpls()):
            group = click.Group(name=impl.plugin_name)
            ok, _ = self.collect_one(impl, notes, cli=group)
            if ok:
                out.append((impl.plugin_name, dict(group.commands)))
        return out

    def collect_one(self, impl: Any, notes: list[str], **kwargs: Any) -> tuple[bool, Any]:
        """Call one hook implementation: ``(True, result)``, or ``(False, None)`` with a line in
        ``notes`` when it raised."""
        try:
            return True, impl.function(**{k: kwargs[k] for k in impl.argnames})
        except BaseException as exc:  # noqa: BLE001 - contained: reraise_interrupt lets the user's interrupt through
            _contain(exc)
            notes.append(f"plugin {impl.plugin_name!r} failed in {impl.function.__name__}: {_short_error(exc)}")
            return False, None

    def call_observers(self, hook_name: str, errors: list[dict[str, str]], **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin, one by one; a raising plugin is reported, not fatal.

        The order is pluggy's: ``tryfirst`` implementations first, ``trylast`` ones last, and
        otherwise the plugin registered last first. Wrappers are refused when plugins load (an
        observer cannot wrap the others). Each failure is appended to ``errors`` as
        ``{"plugin", "hook", "error"}`` and printed to stderr.
        """
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # pluggy's call order (see above)
            call_guarded(errors, impl.plugin_name, hook_name, impl.function, **{k: kwargs[k] for k in impl.argnames})

    def remove_observer(self, name: str) -> None:
        """Unregister the in-process plugin object added as ``name`` (nothing if it is not there)."""
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)


def call_guarded(errors: list[dict[str, str]], plugin: str, hook: str, function: Any, **kwargs: Any) -> Any:
    """Call ``function(**kwargs)`` for ``plugin``; if it raises (anything but the user's own
    interrupt), append ``{"plugin", "hook", "error"}`` to ``errors``, say so on stderr and return None."""
    try:
        return function(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - contained: reraise_interrupt lets the user's interrupt through
        _contain(exc)
        entry = {"plugin": plugin, "hook": hook, "error": _short_error(exc)}
        errors.append(entry)
        print(f"clbench: plugin {plugin!r} failed in {hook}: {entry['error']}", file=sys.stderr)
        return None


def make_plugin_host(
    extra_plugins: Iterable[str] = (),
    *,
    use_entry_points: bool = True,
    environ: dict[str, str] | None = None,
    objects: Iterable[tuple[str, object]] = (),
) -> PluginHost:
    """Build a fresh plugin host: core components, entry-point plugins, then ``extra_plugins``.

    ``extra_plugins`` are module paths given with ``--plugin``; one that cannot be imported is a
    :class:`UserError` (the user asked for it by name). ``objects`` registers already-built plugin
    objects (name, object), which is how tests and embedding code add plugins in-process.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    disabled = disabled_plugins(environ)
    essential = sorted(disabled & set(ESSENTIAL_PLUGINS))
    if essential:
        raise UserError(
            f"{DISABLE_ENV} names {', '.join(map(repr, essential))}: essential plugins provide the default "
            f"components and cannot be disabled (essential: {', '.join(ESSENTIAL_PLUGINS)})"
        )
    for name in sorted(disabled):
        pm.set_blocked(name)
    infos: list[PluginInfo] = []

    for name, module_name in CORE_PLUGINS.items():
        pm.register(importlib.import_module(module_name), name=name)
        infos.append(PluginInfo(name=name, source="core", module=module_name, version=_own_version()))

    if use_entry_points:
        seen: set[str] = set()
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                source="entry point",
                module=ep.value,
                version=dist.version if dist is not None else None,
                distribution=dist.metadata["Name"] if dist is not None else None,
            )
            infos.append(info)
            if pm.is_blocked(ep.name):
                info.status = "disabled"
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except BaseException as exc:  # noqa: BLE001 - contained: reraise_interrupt lets the user's interrupt through
                _contain(exc)
                info.status, info.error = "failed", _short_error(exc)
                info.hooks = []
                if os.environ.get("CLBENCH_DEBUG"):
                    traceback.print_exc()

    for module_name in extra_plugins:
        if pm.is_blocked(module_name):
            infos.append(PluginInfo(name=module_name, source="--plugin", module=module_name, status="disabled"))
            continue
        if pm.has_plugin(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except BaseException as exc:  # noqa: BLE001 - contained: reraise_interrupt lets the user's interrupt through
            _contain(exc)
            raise UserError(f"cannot import plugin {module_name!r} given with --plugin: {_short_error(exc)}") from None
        if pm.is_registered(module):  # already loaded through its entry point
            continue
        pm.register(module, name=module_name)
        infos.append(PluginInfo(name=module_name, source="--plugin", module=module_name))

    for name, obj in objects:
        pm.register(obj, name=name)
        infos.append(PluginInfo(name=name, source="object", module=type(obj).__module__))

    _check_hook_names(pm, infos)
    for info in infos:
        info.essential = info.name in ESSENTIAL_PLUGINS
        plugin = pm.get_plugin(info.name)
        if plugin is not None:
            info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    return PluginHost(pm, infos)


def _unsupported_impls(pm: pluggy.PluginManager, plugin: object) -> str | None:
    """Why ``plugin``'s hook implementations cannot be used (a wrapper on a lifecycle hook), or None."""
    for caller in pm.get_hookcallers(plugin) or []:
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper) and caller.name in ONE_BY_ONE_HOOKS:
                return f"{caller.name} is a wrapper; lifecycle hooks are observers: drop wrapper=True/hookwrapper=True"
    return None


def _check_hook_names(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> None:
    """Fail every plugin that implements a hook clbench does not define (a misspelled name would
    otherwise never be called: pluggy's ``check_pending``) or wraps a lifecycle hook. Such a
    plugin is unregistered and shown as failed by ``clbench plugins``, as one that does not import."""
    by_name = {info.name: info for info in infos}
    while True:
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or str(exc.plugin)
            pm.unregister(exc.plugin)
            info = by_name.get(name)
            if info is not None:
                info.status, info.error = "failed", f"unknown hook: {printable(exc)}"
    for name, plugin in pm.list_name_plugin():
        problem = _unsupported_impls(pm, plugin)
        if problem:
            pm.unregister(plugin)
            info = by_name.get(name)
            if info is not None:
                info.status, info.error = "failed", problem


def _own_version() -> str:
    from clbench import __version__

    return __version__
