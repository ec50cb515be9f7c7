"""Run configuration: the TOML file, command-line overrides, validation and the canonical form.

A :class:`RunConfig` names a component per section (benchmark, model, meta, replay, or a strategy)
with raw options. :func:`resolve` validates every option against its component's schema and fills
in defaults, giving the canonical config whose hash is the ``run_id``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from clbench.errors import UserError
from clbench.files import UnsafeFile, read_text_safely
from clbench.options import Options, identity_of, parse_value, setting, settings_of, validate_options
from clbench.registry import (
    COMPONENT_SECTIONS,
    DEFAULT_NAMES,
    KIND_OF_SECTION,
    LOGGERS,
    Component,
    Registry,
    kind_of_section,
)
from clbench.text import printable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Seeds are unsigned 32-bit integers: every generator a run seeds (torch, numpy, Avalanche) accepts them.
MAX_SEED = 2**32 - 1
SET_SECTIONS = (*COMPONENT_SECTIONS, "train")
#: Config and experiment files larger than this are refused (they are a few kB).
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: The sections a strategy makes meaningless: it brings its own training loop (and its own memory).
STRATEGY_EXCLUDES = ("meta", "replay")


# --- the one rule for "composed learner or strategy" -------------------------------------------


def strategy_of(value: Any) -> str | None:
    """The strategy a config value names: None, ``""`` and ``"none"`` all mean no strategy (the
    composed learner: model x meta x replay)."""
    return None if value in (None, "", "none") else value


def unused_sections(names: dict[str, Any]) -> tuple[str, ...]:
    """The sections a run with these component ``names`` does not use: meta and replay when a
    strategy is named (it brings its own loop), else none."""
    return STRATEGY_EXCLUDES if strategy_of(names.get("strategy")) else ()


def sections_in_use(names: dict[str, Any]) -> list[str]:
    """The component sections that describe a run, in table order: every named component but the
    ones a strategy makes unused. ``names`` maps section -> name (or a canonical config's
    ``{"name": ...}`` entries)."""
    flat = {k: (v.get("name") if isinstance(v, dict) else v) for k, v in names.items()}
    unused = unused_sections(flat)
    return [
        s
        for s in COMPONENT_SECTIONS
        if s not in unused and (strategy_of(flat.get(s)) if s == "strategy" else flat.get(s))
    ]


def check_composition(names: dict[str, Any]) -> None:
    """Raise a one-line :class:`UserError` when a strategy is combined with a meta-learner or a
    replay buffer (other than none): the strategy's own loop would silently ignore them."""
    strategy = strategy_of(names.get("strategy"))
    for section in unused_sections(names):
        if names.get(section) not in (None, "none"):
            raise UserError(
                f"--strategy {strategy} brings its own training loop; it cannot be combined with "
                f"--{section} {names[section]} (use --{section} none)"
            )


class TrainConfig(Options):
    """Training settings shared by every learner."""

    epochs: int = Field(5, ge=1, description="epochs per task")
    batch_size: int = Field(32, ge=1, description="samples per training batch")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="optimiser (outer optimiser for meta-learners)")
    lr: float = Field(1e-3, gt=0, description="learning rate")
    momentum: float = Field(0.0, ge=0, lt=1, description="sgd momentum")
    weight_decay: float = Field(0.0, ge=0, description="L2 weight decay")
    clip: float | None = Field(
        None, gt=0, description="clip gradient norm to this value; null = off (in a TOML file: leave the key out)"
    )
    lr_decay: float = Field(1.0, gt=0, le=1, description="multiply lr by this every lr_decay_every epochs")
    lr_decay_every: int = Field(0, ge=0, description="epochs between lr decays, counted over the stream; 0 = off")
    device: str = setting(
        "auto",
        pattern=r"^(auto|cpu|mps|cuda(:[0-9]+)?)$",
        description="where the run computes: auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N, mps; not part of the run id",
    )
    log: list[str] = setting(
        [],
        description='experiment trackers this run logs to (clbench list loggers), e.g. ["tensorboard"]; '
        "not part of the run id",
    )
    eval_batch_size: int | None = Field(
        None,
        ge=1,
        description="batch size for evaluation; null = the model's preference (eval_batch_size attribute) or 1024",
    )

    @model_validator(mode="after")
    def _decay_consistent(self) -> TrainConfig:
        if self.lr_decay < 1.0 and self.lr_decay_every == 0:
            raise ValueError("lr_decay < 1 needs lr_decay_every > 0")
        return self


@dataclass
class RunConfig:
    """An unvalidated run description: component names, raw options, train settings and seed."""

    names: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_NAMES))
    options: dict[str, dict[str, Any]] = field(default_factory=lambda: {s: {} for s in COMPONENT_SECTIONS})
    train: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def set_name(self, section: str, name: str | None) -> None:
        """Choose the component of ``section``; options given for another component are dropped.
        ``None`` leaves the section as it is; for ``strategy``, ``"none"`` and ``""`` choose no strategy."""
        if name is None:
            return
        if section == "strategy" and strategy_of(name) is None:
            self.names["strategy"], self.options["strategy"] = None, {}
            return
        if self.names.get(section) != name:
            self.options[section] = {}
        self.names[section] = name

    def apply_set(self, assignment: str) -> None:
        """Apply one ``SECTION.KEY=VALUE`` override."""
        if "=" not in assignment:
            raise UserError(
                f"bad --set {assignment!r}: expected SECTION.KEY=VALUE with SECTION one of {', '.join(SET_SECTIONS)}"
            )
        lhs, value = assignment.split("=", 1)
        section, _, key = lhs.strip().partition(".")
        if section not in SET_SECTIONS or not key or "." in key:
            raise UserError(
                f"bad --set {assignment!r}: expected SECTION.KEY=VALUE with SECTION one of {', '.join(SET_SECTIONS)}"
            )
        parsed = parse_value(value.strip())
        if section == "train":
            self.train[key] = parsed
        else:
            if section == "strategy" and not self.names.get("strategy"):
                raise UserError(f"--set {assignment!r} needs a strategy: add --strategy NAME")
            self.options[section][key] = parsed

    def drop_unused(self) -> None:
        """Set the sections a strategy makes unused (meta, replay) back to none, with their options:
        what a sweep does when it crosses strategies with meta-learners or replay buffers."""
        for section in unused_sections(self.names):
            self.names[section], self.options[section] = "none", {}


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing, unreadable or malformed file is a one-line :class:`UserError`."""
    shown = printable(path)
    try:
        text = read_text_safely(path, limit=MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise UserError(f"config file {shown!r} does not exist") from None
    except UnsafeFile as exc:
        raise UserError(f"cannot read config file: {printable(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config file {shown!r}: {printable(exc)}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {shown!r} is not valid TOML: {printable(exc)}") from None
    except RecursionError:
        raise UserError(f"config file {shown!r} is nested too deeply") from None
    bad = _non_finite(data)
    if bad:
        raise UserError(f"config file {shown!r}: {bad} is not a finite number; options take finite values only")
    return data


def _non_finite(value: Any, where: str = "") -> str | None:
    """The dotted key of the first NaN or infinite float in a parsed TOML table, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "a value"
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _non_finite(item, f"{where}[{index}]")
            if found:
                return found
    return None


def load_toml(path: str | Path) -> RunConfig:
    """Read a run config from TOML; errors are one-line :class:`UserError`s.

    Layout: top-level ``seed``; a table per section with ``name`` and the options as keys, e.g.
    ``[model]`` ``name = "dnc"`` ``memory_slots = 128``; ``[train]`` holds train settings.
    """
    return config_from_dict(read_toml(path), where=printable(path))


def config_from_dict(data: dict[str, Any], where: str = "config") -> RunConfig:
    """Build a :class:`RunConfig` from the TOML layout described in :func:`load_toml`."""
    config = RunConfig()
    apply_dict(config, data, where)
    return config


def apply_dict(config: RunConfig, data: dict[str, Any], where: str = "config") -> None:
    """Merge a (partial) config in the TOML layout onto ``config``; a changed name drops old options."""
    allowed = ("seed", *SET_SECTIONS)
    for key, value in data.items():
        if key not in allowed:
            raise UserError(f"{where}: unknown key {key!r}; allowed: {', '.join(allowed)}")
        if key == "seed":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED:
                raise UserError(f"{where}: seed must be an integer from 0 to {MAX_SEED}, got {value!r}")
            config.seed = value
            continue
        if not isinstance(value, dict):
            raise UserError(f"{where}: [{key}] must be a table")
        if key == "train":
            config.train.update(value)
            continue
        table = dict(value)
        name = table.pop("name", None)
        if name is not None and not isinstance(name, str):
            raise UserError(f"{where}: [{key}] name must be a string, got {name!r}")
        if name is None and key == "strategy" and not config.names.get("strategy"):
            raise UserError(f"{where}: [strategy] needs a name")
        config.set_name(key, name)
        config.options[key].update(table)


def config_from_canonical(canonical: dict[str, Any], settings: dict[str, dict[str, Any]] | None = None) -> RunConfig:
    """The :class:`RunConfig` of a canonical config (as stored in records), with ``settings``
    (:meth:`ResolvedConfig.settings`) applied: resolving it gives the same canonical config and
    run id back."""
    config = RunConfig(seed=canonical["seed"])
    for section in COMPONENT_SECTIONS:
        if section not in canonical and kind_of_section(section).neutral is not None:
            config.set_name(section, kind_of_section(section).neutral)  # a record from before the kind existed
            continue
        entry = canonical.get(section)
        if entry is None:
            config.names[section] = None
            continue
        config.names[section] = entry["name"]
        config.options[section] = dict(entry["options"])
    config.train = dict(canonical["train"])
    for section, values in (settings or {}).items():
        target = config.train if section == "train" else config.options.setdefault(section, {})
        target.update(values)
    return config


@dataclass
class ResolvedConfig:
    """A validated config: the components, their option objects, train settings and seed."""

    components: dict[str, Component]
    options: dict[str, Options]
    train: TrainConfig
    seed: int

    def canonical(self) -> dict[str, Any]:
        """The run's identity, in a stable JSON-ready form: every component name and every option
        that can change the results, defaults filled in, and the seed. What the record's ``config``
        holds and what the run id hashes. Left out: settings that cannot change the accuracy
        matrix (declared with :func:`clbench.options.setting`, such as ``train.device``: see
        :meth:`settings`) and options added later that still hold their neutral value (declared
        with :func:`clbench.options.added_option`). Adding such an option leaves existing run ids,
        the records a sweep skips and the groups of a report as they were; moving its default
        away from the neutral value changes them."""
        out: dict[str, Any] = {}
        for section in COMPONENT_SECTIONS:
            comp = self.components.get(section)
            if comp is None:
                out[section] = None
                continue
            options = identity_of(self.options[section])
            if comp.name == kind_of_section(section).neutral and not options:
                continue  # a kind added later, used as before it existed: no section (see Kind.neutral)
            out[section] = {"name": comp.name, "options": options}
        out["train"] = identity_of(self.train)
        out["seed"] = self.seed
        return out

    def identity(self) -> dict[str, Any]:
        """What the run id hashes: :meth:`canonical`."""
        return self.canonical()

    def settings(self) -> dict[str, dict[str, Any]]:
        """The settings left out of :meth:`canonical` (section -> {option: value}), e.g.
        ``{"train": {"device": "auto"}}``: how a run executes, not what it computes."""
        out: dict[str, dict[str, Any]] = {}
        sections: list[tuple[str, Options]] = [(s, o) for s, o in self.options.items()] + [("train", self.train)]
        for section, options in sections:
            values = settings_of(options)
            if values:
                out[section] = values
        return out

    @property
    def run_id(self) -> str:
        """A stable hash of :meth:`canonical` (seed included)."""
        return run_id_of(self.canonical())


def run_id_of(identity: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of a config's identity (:meth:`ResolvedConfig.identity`) as
    sorted, compact JSON."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def resolve(config: RunConfig, registry: Registry) -> ResolvedConfig:
    """Validate names and options against the registry; raise :class:`UserError` on bad input."""
    seed = config.seed
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    train = validate_options("train", "", TrainConfig, config.train)
    check_composition(config.names)
    components: dict[str, Component] = {}
    options: dict[str, Options] = {}
    for section in COMPONENT_SECTIONS:
        name = config.names.get(section)
        if section == "strategy" and strategy_of(name) is None:
            continue
        if name is None:
            raise UserError(f"no {section} chosen")
        comp = registry.get(KIND_OF_SECTION[section], name)
        reason = comp.unavailable_reason()
        if reason:
            raise UserError(f"{section} {name!r} is unavailable: {reason}")
        components[section] = comp
        options[section] = validate_options(section, name, comp.options, config.options.get(section, {}))
    check_loggers(train.log, registry)
    return ResolvedConfig(components, options, train, config.seed)


def check_loggers(names: list[str], registry: Registry) -> None:
    """Every logger in ``train.log`` must be registered and installed (one line otherwise, naming
    the known loggers or the install command), and named once."""
    for name in names:
        comp = registry.get(LOGGERS, name)
        reason = comp.unavailable_reason()
        if reason:
            raise UserError(f"logger {name!r} is unavailable: {reason}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"logger {', '.join(map(repr, repeated))} named twice in train.log / --log")
