"""Choosing groups by name: the report's baseline (``--baseline``) and claim group (``--claim-group``).

A group is named by its label, a unique part or glob of one, or ``section=name`` pairs
(:func:`select_group`); without a name the baseline is the plain row (:func:`default_baseline`).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from clbench.config import SET_SECTIONS, STRATEGY_EXCLUDES, strategy_of
from clbench.errors import UserError
from clbench.options import parse_value, split_top_level
from clbench.registry import DEFAULT_NAMES
from clbench.report.grouping import Group, format_value

#: The default comparison row: what ``clbench run`` runs with no flags (benchmark aside), the
#: baseline when no ``--baseline`` is given. Its components come from the essential plugin ``basic``
#: (see clbench.plugins.ESSENTIAL_PLUGINS).
DEFAULT_BASELINE: dict[str, Any] = {s: DEFAULT_NAMES[s] for s in ("model", *STRATEGY_EXCLUDES, "strategy")}


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


def listing(groups: list[Group]) -> str:
    """Up to eight labels, quoted and comma separated, and how many more there are."""
    labels = [repr(g.label) for g in groups[:8]]
    more = f" and {len(groups) - 8} more" if len(groups) > 8 else ""
    return ", ".join(labels) + more


def find_groups(groups: list[Group], spec: str) -> list[Group]:
    """The groups with results that ``spec`` names (see :func:`select_group`); several when ambiguous."""
    usable = [g for g in groups if g.has_results]
    spec = (spec or "").strip()
    exact = [g for g in usable if g.label == spec] or [g for g in usable if g.name == spec]
    if exact:
        return exact
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
    return found


def select_group(groups: list[Group], spec: str, option: str = "--baseline") -> Group:
    """The one group ``spec`` names; :class:`UserError` when none or several match.

    ``spec`` is a label (or a name: the label without the stream's settings in square brackets),
    a unique substring or glob of one (``*ewc*``), or ``section=name`` pairs separated by commas
    (``meta=none,replay=none``, ``model.hidden_sizes=[64,64]``, ``strategy=none``). When several
    groups match section pairs, the one closest to the default configuration (mlp, no meta, no
    replay, no strategy) wins if there is exactly one.
    """
    usable = [g for g in groups if g.has_results]
    if not (spec or "").strip():
        raise UserError(f"{option} needs a group: a label, a part of one, or section=name pairs")
    found = find_groups(usable, spec)
    spec = spec.strip()
    if not found:
        raise UserError(f"unknown {option} {spec!r}: no group matches; groups: {listing(usable)}")
    if len(found) > 1:
        raise UserError(f"{option} {spec!r} is ambiguous: it matches {listing(found)}")
    return found[0]


def order_with_baseline(groups: list[Group], baseline: Group) -> list[Group]:
    """The groups with results, baseline first, the others in their stable order."""
    return [baseline] + [g for g in groups if g.has_results and g is not baseline]
