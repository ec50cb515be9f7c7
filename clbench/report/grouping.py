"""Group run records by stream, training settings and configuration, and label the groups.

Records are first split into *streams*: runs on the same benchmark with the same options and the
same training settings (the ``benchmark`` and ``train`` sections of the canonical config). Only
groups of one stream are compared with each other. Within a stream, records are grouped by
configuration (the canonical config minus the seed).

A label names the components in the order model · meta-learner · replay ("mlp · maml ·
prioritized"), or "strategy NAME" for a strategy that brings its own training loop ("strategy
avalanche.ewc"); it adds, in parentheses, every option that differs between groups of the same
stream using the same component ("mlp · maml · none (meta.inner_steps=3)"), and, in square
brackets, the settings that tell its stream apart when there are several ("mlp · none · none
[benchmark.n_tasks=5, train.clip=0.5]"). A group whose runs a sweep's variant labelled
(``[[variants]] label = ...``, the records' ``label``) is named by that label instead, followed by
the components in parentheses when the label covers several groups. Labels are unique and depend only on the set of
configurations, so the same records always give the same labels and the same order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clbench.config import COMPONENT_SECTIONS, STRATEGY_EXCLUDES, strategy_of

SEP = " · "
_MISSING = object()


@dataclass
class Group:
    """Runs of one configuration over seeds: ``records`` finished ok, ``failed`` did not."""

    key: str
    config: dict[str, Any]
    flat: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: unique across the report: ``name`` plus the stream's settings in square brackets when the
    #: records hold several streams
    label: str = ""
    #: unique within the group's stream: components, and options in parentheses
    name: str = ""
    #: the number (from 1) of the group's stream: see :class:`Stream`
    stream: int = 1

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


#: The config sections that define a stream: the benchmark with its options, and the training settings.
STREAM_SECTIONS = ("benchmark", "train")


@dataclass
class Stream:
    """The groups whose runs share a stream (the benchmark and its options) and training settings
    (the ``train`` section). Significance tests compare groups of one stream only."""

    index: int
    key: str
    #: ``{"benchmark": name, "benchmark.n_tasks": 20, ..., "train.lr": 0.001, ...}``
    settings: dict[str, Any]
    groups: list[Group] = field(default_factory=list)
    #: ``key=value`` for each setting that tells this stream apart from the others (none when alone)
    differing: list[str] = field(default_factory=list)

    @property
    def benchmark(self) -> str:
        """The benchmark's name."""
        return format_value(self.settings.get("benchmark"))

    @property
    def tag(self) -> str:
        """The settings that tell this stream apart, comma separated; empty when it is the only one."""
        return ", ".join(self.differing)

    @property
    def title(self) -> str:
        """``Stream 2: shifting-linear, benchmark.n_tasks=5, train.clip=0.5``: its number, its
        benchmark and the settings that tell it apart."""
        parts = [self.benchmark, *(d for d in self.differing if not d.startswith("benchmark="))]
        return f"Stream {self.index}: {', '.join(parts)}"

    @property
    def usable(self) -> list[Group]:
        """The stream's groups with at least one run that finished ok."""
        return [g for g in self.groups if g.has_results]


def stream_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The flat settings of ``config`` that define its stream: the benchmark's name and options,
    and the training settings."""
    flat = flatten_config({s: config[s] for s in STREAM_SECTIONS if s in config})
    return {k: v for k, v in flat.items() if k.split(".", 1)[0] in STREAM_SECTIONS}


def stream_key(config: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the config's ``benchmark`` and ``train`` sections."""
    part = {s: config.get(s) for s in STREAM_SECTIONS}
    text = json.dumps(part, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _natural(value: Any) -> tuple[int, float, str]:
    """A sort key that puts numbers in numeric order (5 before 20) and None first."""
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return (1, float(value), "")
    return (2, 0.0, format_value(value))


def _stream_sort_key(stream: Stream) -> tuple:
    rest = tuple((k, _natural(v)) for k, v in sorted(stream.settings.items()) if k != "benchmark")
    return (stream.benchmark, rest)


def _stream_differences(streams: list[Stream]) -> None:
    """Fill each stream's ``differing``: benchmark options compared among streams of the same
    benchmark, the benchmark's name and training settings among all."""
    if len(streams) < 2:
        return
    for key in sorted({k for st in streams for k in st.settings}):
        for st in streams:
            if key.startswith("benchmark."):
                peers = [p for p in streams if p.benchmark == st.benchmark]
            else:
                peers = streams
            values = {format_value(p.settings[key]) if key in p.settings else "\0missing" for p in peers}
            if len(values) > 1 and key in st.settings:
                st.differing.append(f"{key}={format_value(st.settings[key])}")


def _components(flat: dict[str, Any], vary: set[str]) -> list[str]:
    parts: list[str] = []
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


def _make_unique(groups: list[Group], attr: str) -> None:
    counts: dict[str, int] = {}
    for g in groups:
        counts[getattr(g, attr)] = counts.get(getattr(g, attr), 0) + 1
    for g in groups:
        if counts[getattr(g, attr)] > 1:  # should not happen for canonical configs; keep labels unique anyway
            setattr(g, attr, getattr(g, attr) + f" [#{g.key[:8]}]")


def variant_label(g: Group) -> str | None:
    """The label a sweep's variant gave every run of the group (the records' ``label``), or None
    when they have none or disagree."""
    labels = {r.get("label") for r in [*g.records, *g.failed]}
    if len(labels) != 1:
        return None
    (label,) = labels
    return " ".join(label.split()) if isinstance(label, str) and label.strip() else None


def make_labels(groups: list[Group], tag: str = "") -> None:
    """Give every group of one stream a readable ``name``, unique among them, and a ``label``:
    the name followed by ``[tag]`` (the settings of the stream, when there are several)."""
    vary = {
        k
        for k in {k for g in groups for k in g.flat if "." not in k}
        if len({format_value(g.flat.get(k)) for g in groups}) > 1
    }
    options = _varying_options(groups)
    given = {g.key: variant_label(g) for g in groups}
    counts: dict[str, int] = {}
    for label in given.values():
        if label:
            counts[label] = counts.get(label, 0) + 1
    for g in groups:
        name = SEP.join(_components(g.flat, vary))
        if options[g.key]:
            name += f" ({', '.join(options[g.key])})"
        label = given[g.key]
        if label:  # a sweep variant's label names the group; with the components when it names several
            name = label if counts[label] == 1 else f"{label} ({name})"
        g.name = name
    _make_unique(groups, "name")
    for g in groups:
        g.label = f"{g.name} [{tag}]" if tag else g.name


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


def group_streams(records: Iterable[dict[str, Any]]) -> tuple[list[Stream], list[Group], list[str]]:
    """Group records by configuration and split the groups into streams; return the streams and
    the labelled groups (stream by stream) in a stable order, and warnings.

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
    streams: dict[str, Stream] = {}
    for g in sorted(groups.values(), key=_sort_key):
        g.records.sort(key=lambda r: r["seed"])
        g.failed.sort(key=lambda r: (r["seed"], str(r["run_id"])))
        skey = stream_key(g.config)
        if skey not in streams:
            streams[skey] = Stream(index=0, key=skey, settings=stream_settings(g.config))
        streams[skey].groups.append(g)
    ordered = sorted(streams.values(), key=_stream_sort_key)
    _stream_differences(ordered)
    for index, st in enumerate(ordered, start=1):
        st.index = index
        for g in st.groups:
            g.stream = index
        make_labels(st.groups, st.tag)
    flat = [g for st in ordered for g in st.groups]
    _make_unique(flat, "label")
    return ordered, flat, warnings


def group_records(records: Iterable[dict[str, Any]]) -> tuple[list[Group], list[str]]:
    """The labelled groups of :func:`group_streams` (stream by stream) and its warnings."""
    _, groups, warnings = group_streams(records)
    return groups, warnings
