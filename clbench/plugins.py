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
from clbench.registry import DuplicateComponentError, Registry
from clbench.text import printable

ENTRY_POINT_GROUP = "clbench"
DISABLE_ENV = "CLBENCH_DISABLE_PLUGINS"
#: The core's own components (the shifting-linear benchmark) are registered like any plugin.
CORE_PLUGINS = {"core": "clbench.benchmarks.shifting_linear"}

REGISTRATION_HOOKS = {
    "benchmarks": "clbench_register_benchmarks",
    "models": "clbench_register_models",
    "meta": "clbench_register_meta_learners",
    "replay": "clbench_register_replay",
    "strategies": "clbench_register_strategies",
}


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
        ``clbench plugins`` can always list the plugins and show the conflict)."""
        registry = Registry()
        for info in self.infos:
            if info.status == "failed":
                registry.broken_plugins[info.name] = info.error or "failed"
        for kind, hook_name in REGISTRATION_HOOKS.items():
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
        return registry

    def _mark_failed(self, name: str, error: str) -> None:
        for info in self.infos:
            if info.name == name:
                info.status, info.error = "failed", error

    def call_observers(self, hook_name: str, errors: list[dict[str, str]], **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin, one by one; a raising plugin is reported, not fatal.

        Each failure is appended to ``errors`` as ``{"plugin", "hook", "error"}`` and printed to stderr.
        """
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # registration order
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except BaseException as exc:  # noqa: BLE001 - contained: reraise_interrupt lets the user's interrupt through
                _contain(exc)
                entry = {"plugin": impl.plugin_name, "hook": hook_name, "error": _short_error(exc)}
                errors.append(entry)
                print(f"clbench: plugin {impl.plugin_name!r} failed in {hook_name}: {entry['error']}", file=sys.stderr)


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
            if ep.name in disabled:
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
        if module_name in disabled:
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

    for info in infos:
        plugin = pm.get_plugin(info.name)
        if plugin is not None:
            info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    return PluginHost(pm, infos)


def _own_version() -> str:
    from clbench import __version__

    return __version__
