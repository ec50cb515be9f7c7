"""What a console shows of runs: a run's composition and the options that differ from their defaults.

Helpers for ``clbench run`` / ``clbench sweep`` output; they read canonical configs (see
:mod:`clbench.config`) and, when given, a registry for the components' defaults.
"""

from __future__ import annotations

import json
from typing import Any

from clbench.config import STRATEGY_EXCLUDES, TrainConfig, sections_in_use, strategy_of
from clbench.errors import UserError
from clbench.options import Options
from clbench.registry import COMPONENT_SECTIONS, KIND_OF_SECTION, Registry


def composition(canonical: dict[str, Any]) -> str:
    """What a run composes, as reports label it: ``model · meta · replay`` (``mlp · maml ·
    prioritized``), or ``model · strategy NAME`` for a strategy; ``on BENCHMARK`` after it."""
    names = {s: (v.get("name") if isinstance(v, dict) else v) for s, v in canonical.items() if s in COMPONENT_SECTIONS}
    strategy = strategy_of(names.get("strategy"))
    if strategy:
        parts = [str(names.get("model")), f"strategy {strategy}"]
    else:
        parts = [str(names.get(s)) for s in ("model", *STRATEGY_EXCLUDES)]
    return f"{' · '.join(parts)} on {names.get('benchmark')}"


def non_default_options(canonical: dict[str, Any], registry: Registry | None) -> dict[str, Any]:
    """The options of a canonical config that differ from their defaults, as ``section.key`` ->
    value, in config order: the component options (against the registered component's defaults)
    and the ``train`` section (against :class:`TrainConfig`'s). A component that is not registered
    here (``registry`` None, or a plugin missing) shows every option it has."""
    out: dict[str, Any] = {}
    for section in sections_in_use(canonical):
        entry = canonical.get(section)
        if not isinstance(entry, dict):
            continue
        defaults: dict[str, Any] = {}
        if registry is not None:
            try:
                defaults = field_defaults(registry.get(KIND_OF_SECTION[section], str(entry.get("name"))).options)
            except UserError:
                defaults = {}
        for key, value in (entry.get("options") or {}).items():
            if key not in defaults or defaults[key] != value:
                out[f"{section}.{key}"] = value
    train_defaults = field_defaults(TrainConfig)
    for key, value in (canonical.get("train") or {}).items():
        if key not in train_defaults or train_defaults[key] != value:
            out[f"train.{key}"] = value
    return out


def field_defaults(options: type[Options]) -> dict[str, Any]:
    """The default of every field of ``options`` that has one, JSON-ready (as canonical configs hold them)."""
    from pydantic_core import PydanticUndefined

    out = {}
    for name, info in options.model_fields.items():
        if info.default is PydanticUndefined and info.default_factory is None:
            continue
        value = info.get_default(call_default_factory=True)
        out[name] = json.loads(json.dumps(value, default=str))
    return out


def describe_options(values: dict[str, Any], limit: int = 400) -> str:
    """``section.key=value`` pairs, space separated, values as compact JSON (text as is); cut
    with an ellipsis past ``limit`` characters. ``defaults`` when there are none."""
    if not values:
        return "defaults"
    parts = [f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}" for k, v in values.items()]
    text = " ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_plan(canonicals: list[dict[str, Any]], registry: Registry | None) -> tuple[str, list[str]]:
    """How a console shows many runs: the non-default options they all share (one text), and for
    each run its composition and the non-default options that are its own."""
    each = [non_default_options(c, registry) for c in canonicals]
    shared = {k: v for k, v in each[0].items() if all(k in e and e[k] == v for e in each[1:])} if each else {}
    lines = []
    for canonical, options in zip(canonicals, each):
        own = {k: v for k, v in options.items() if k not in shared}
        lines.append(f"{composition(canonical)}  {describe_options(own) if own else ''}".rstrip())
    return describe_options(shared), lines
