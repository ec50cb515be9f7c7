"""Group run records by configuration (the canonical config minus the seed) and label the groups.

A label names the components ("mlp · maml · prioritized", or "strategy avalanche.ewc") and adds,
in parentheses, every option that differs between groups using the same component
("mlp · maml · none (meta.inner_steps=3)"). Labels are unique and depend only on the set of
configurations, so the same records always give the same labels and the same order.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clbench.config import COMPONENT_SECTIONS, SET_SECTIONS, STRATEGY_EXCLUDES, strategy_of
from clbench.errors import UserError
from clbench.options import parse_value, split_top_level
from clbench.registry import DEFAULT_NAMES

SEP = " · "
_MISSING = object()
#: The default comparison row: what ``clbench run`` runs with no flags (benchmark aside). Its
#: components come from the essential plugin ``basic`` (see clbench.plugins.ESSENTIAL_PLUGINS).
DEFAULT_BASELINE = {s: DEFAULT_NAMES[s] for s in ("model", *STRATEGY_EXCLUDES, "strategy")}


@dataclass
class Group:
    """Runs of one configuration over seeds: ``records`` finished ok, ``failed`` did not."""

    key: str
    config: dict[str, Any]
    flat: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    label: str = ""

    @property
    def seeds(self) -> list[int]:
        """Seeds of the runs that finished ok, ascending."""
        return [r["seed"] for r in self.records]

    @property
    def has_results(self) -> bool:
        """True when at least one run of this configuration finished ok."""
        return bool(self.records)


def config_without_seed(config: dict[str, Any]) -> dict[str, Any]:
    """The canonical config minus its ``seed`` entry."""
    return {k: v for k, v in config.items() if k != "seed"}


def config_key(config: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the config minus seed, as sorted compact JSON."""
    text = json.dumps(config_without_seed(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def flatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """``{"model": "mlp", "model.hidden_sizes": [128, 128], "strategy": None, "train.lr": 0.001, ...}``."""
    flat: dict[str, Any] = {}
    for section, value in config_without_seed(config).items():
        if isinstance(value, dict) and "name" in value:
            flat[section] = value.get("name")
            options = value.get("options") or {}
            if isinstance(options, dict):
                for key, option in options.items():
                    flat[f"{section}.{key}"] = option
            else:
                flat[f"{section}.options"] = options
        elif isinstance(value, dict):
            for key, option in value.items():
                flat[f"{section}.{key}"] = option
        else:
            flat[section] = value
    return flat


def format_value(value: Any) -> str:
    """An option value as a label shows it: text as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _components(flat: dict[str, Any], vary: set[str]) -> list[str]:
    parts: list[str] = []
    if "benchmark" in vary:
        parts.append(str(flat.get("benchmark")))
    if strategy_of(flat.get("strategy")):
        parts.append(f"strategy {flat['strategy']}")
        if "model" in vary:
            parts.append(str(flat.get("model")))
    else:
        parts.append(SEP.join(str(flat.get(s)) for s in ("model", *STRATEGY_EXCLUDES)))
    return parts


def _varying_options(groups: list[Group]) -> dict[str, list[str]]:
    """For each group key, the ``section.option=value`` strings that tell it apart."""
    keys = sorted({k for g in groups for k in g.flat if "." in k})
    shown: dict[str, list[str]] = {g.key: [] for g in groups}
    for key in keys:
        section = key.split(".", 1)[0]
        for g in groups:
            if section in COMPONENT_SECTIONS:  # compare only among groups using the same component
                peers = [p for p in groups if p.flat.get(section) == g.flat.get(section)]
            else:
                peers = groups
            values = {format_value(p.flat.get(key, None)) if key in p.flat else "\0missing" for p in peers}
            if len(values) > 1 and key in g.flat:
                shown[g.key].append(f"{key}={format_value(g.flat[key])}")
    return shown


def make_labels(groups: list[Group]) -> None:
    """Give every group a readable, unique ``label`` (see the module docstring)."""
    vary = {
        k
        for k in {k for g in groups for k in g.flat if "." not in k}
        if len({format_value(g.flat.get(k)) for g in groups}) > 1
    }
    options = _varying_options(groups)
    for g in groups:
        label = SEP.join(_components(g.flat, vary))
        if options[g.key]:
            label += f" ({', '.join(options[g.key])})"
        g.label = label
    counts: dict[str, int] = {}
    for g in groups:
        counts[g.label] = counts.get(g.label, 0) + 1
    for g in groups:
        if counts[g.label] > 1:  # should not happen for canonical configs; keep labels unique anyway
            g.label += f" [#{g.key[:8]}]"


def _sort_key(g: Group) -> tuple:
    f = g.flat
    names = tuple(str(f.get(s) or "") for s in ("benchmark", "model", "meta", "replay"))
    return (
        names[0],
        bool(f.get("strategy")),
        str(f.get("strategy") or ""),
        *names[1:],
        json.dumps(f, sort_keys=True, default=str),
    )


def group_records(records: Iterable[dict[str, Any]]) -> tuple[list[Group], list[str]]:
    """Group records by configuration; return the labelled groups in a stable order, and warnings.

    Two records of one configuration and seed keep the first (by the order given) with a warning.
    """
    groups: dict[str, Group] = {}
    seen: dict[tuple[str, int], str] = {}
    warnings: list[str] = []
    for rec in records:
        key = config_key(rec["config"])
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(
                key=key, config=config_without_seed(rec["config"]), flat=flatten_config(rec["config"])
            )
        if rec["status"] != "ok":
            g.failed.append(rec)
            continue
        first = seen.get((key, rec["seed"]))
        if first is not None:
            warnings.append(f"run {rec['run_id']} repeats seed {rec['seed']} of run {first}; using run {first}")
            continue
        seen[(key, rec["seed"])] = rec["run_id"]
        g.records.append(rec)
    ordered = sorted(groups.values(), key=_sort_key)
    for g in ordered:
        g.records.sort(key=lambda r: r["seed"])
        g.failed.sort(key=lambda r: (r["seed"], str(r["run_id"])))
    make_labels(ordered)
    return ordered, warnings


def default_baseline(groups: list[Group]) -> Group:
    """The plain row (model mlp, meta none, replay none, no strategy) if present, else the first group."""
    candidates = [g for g in groups if g.has_results]
    for g in candidates:
        if all(g.flat.get(k) == v for k, v in DEFAULT_BASELINE.items()):
            return g
    return candidates[0]


def _section_spec(spec: str) -> list[tuple[str, str]] | None:
    pairs = []
    for part in split_top_level(spec, keep_empty=True):
        lhs, eq, rhs = part.partition("=")
        lhs, rhs = lhs.strip(), rhs.strip()
        if not eq or lhs.split(".", 1)[0] not in SET_SECTIONS or not rhs:
            return None
        pairs.append((lhs, rhs))
    return pairs


def _matches(g: Group, pairs: list[tuple[str, str]]) -> bool:
    for lhs, rhs in pairs:
        if "." not in lhs:
            value = g.flat.get(lhs)
            if rhs.lower() in ("none", "null") and lhs == "strategy":
                if strategy_of(value) is not None:
                    return False
            elif format_value(value) != rhs:
                return False
        elif lhs not in g.flat or format_value(g.flat[lhs]) != format_value(parse_value(rhs)):
            return False
    return True


def _closeness_to_default(g: Group) -> int:
    return sum(g.flat.get(k) == v for k, v in DEFAULT_BASELINE.items())


def _listing(groups: list[Group]) -> str:
    labels = [repr(g.label) for g in groups[:8]]
    more = f" and {len(groups) - 8} more" if len(groups) > 8 else ""
    return ", ".join(labels) + more


def select_group(groups: list[Group], spec: str, option: str = "--baseline") -> Group:
    """The one group ``spec`` names; :class:`UserError` when none or several match.

    ``spec`` is a label, a unique substring or glob of one (``*ewc*``), or ``section=name`` pairs
    separated by commas (``meta=none,replay=none``, ``model.hidden_sizes=[64,64]``,
    ``strategy=none``). When several groups match section pairs, the one closest to the default
    configuration (mlp, no meta, no replay, no strategy) wins if there is exactly one.
    """
    usable = [g for g in groups if g.has_results]
    spec = (spec or "").strip()
    if not spec:
        raise UserError(f"{option} needs a group: a label, a part of one, or section=name pairs")
    exact = [g for g in usable if g.label == spec]
    if exact:
        return exact[0]
    pairs = _section_spec(spec)
    if pairs is not None:
        found = [g for g in usable if _matches(g, pairs)]
        if len(found) > 1:
            best = max(_closeness_to_default(g) for g in found)
            closest = [g for g in found if _closeness_to_default(g) == best]
            found = closest if len(closest) == 1 else found
    elif any(c in spec for c in "*?["):
        found = [g for g in usable if fnmatch.fnmatchcase(g.label, spec)]
    else:
        found = [g for g in usable if spec in g.label] or [g for g in usable if spec.lower() in g.label.lower()]
    if not found:
        raise UserError(f"unknown {option} {spec!r}: no group matches; groups: {_listing(usable)}")
    if len(found) > 1:
        raise UserError(f"{option} {spec!r} is ambiguous: it matches {_listing(found)}")
    return found[0]


def order_with_baseline(groups: list[Group], baseline: Group) -> list[Group]:
    """The groups with results, baseline first, the others in their stable order."""
    return [baseline] + [g for g in groups if g.has_results and g is not baseline]
