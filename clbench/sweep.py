"""Sweeps: a grid of configurations times seeds, expanded and validated before anything runs.

The grid comes from the command line (comma-separated names, ``--grid SECTION.KEY=v1,v2``) or from
a TOML experiment file: the run-config layout as the base, plus ``seeds``, a ``[grid]`` table of
lists, and ``[[variants]]`` tables merged onto the base (each may carry a ``label``).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clbench.config import (
    COMPONENT_SECTIONS,
    MAX_SEED,
    SET_SECTIONS,
    STRATEGY_EXCLUDES,
    ResolvedConfig,
    RunConfig,
    apply_dict,
    read_toml,
    resolve,
    run_id_of,
    strategy_of,
)
from clbench.errors import UserError
from clbench.options import parse_value, split_top_level
from clbench.registry import Registry

EXPERIMENT_KEYS = ("name", "description", "seeds", "grid", "variants")
#: The most runs one sweep may plan: larger grids are refused before anything is expanded.
MAX_PLAN = 10_000


def parse_seeds(text: str | list[int] | int) -> list[int]:
    """``"0-4"`` -> [0..4]; ``"0,3,7"`` -> [0, 3, 7]; ``"1-3,9"`` mixes both; lists pass through.

    Seeds are integers from 0 to :data:`MAX_SEED`, at most :data:`MAX_PLAN` of them; anything else
    is a one-line :class:`UserError` (checked before a range is expanded).
    """
    shown = repr(text) if len(repr(text)) <= 60 else repr(text)[:57] + "..."
    if isinstance(text, int) and not isinstance(text, bool):
        text = [text]
    if isinstance(text, list):
        if not text or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in text):
            raise UserError(f"bad seeds {shown}: expected integers from 0 to {MAX_SEED}")
        if len(text) > MAX_PLAN:
            raise UserError(f"bad seeds {shown}: {len(text)} seeds; at most {MAX_PLAN} per sweep")
        return list(dict.fromkeys(text))
    if not isinstance(text, str):
        raise UserError(f"bad seeds {shown}: expected e.g. 0-4, 0,3,7 or 1-3,9")
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip()
        try:
            lo, _, hi = part.partition("-")
            span = (int(lo), int(hi) if hi else int(lo))
        except ValueError:
            raise UserError(f"bad seeds {shown}: expected e.g. 0-4, 0,3,7 or 1-3,9") from None
        if not 0 <= span[0] <= span[1] <= MAX_SEED:
            raise UserError(f"bad seeds {shown}: seeds are integers from 0 to {MAX_SEED}, ranges go low-high")
        spans.append(span)
    count = sum(hi - lo + 1 for lo, hi in spans)
    if count > MAX_PLAN:
        raise UserError(f"bad seeds {shown}: {count} seeds; at most {MAX_PLAN} per sweep")
    seeds: list[int] = []
    for first, last in spans:
        seeds.extend(range(first, last + 1))
    return list(dict.fromkeys(seeds))


def parse_grid_option(assignment: str) -> tuple[str, list[Any]]:
    """``"meta.inner_steps=1,3,5"`` -> ("meta.inner_steps", [1, 3, 5])."""
    if "=" not in assignment:
        raise UserError(f"bad --grid {assignment!r}: expected SECTION.KEY=V1,V2,...")
    key, values = assignment.split("=", 1)
    key = key.strip()
    _check_grid_key(key, f"--grid {assignment!r}")
    parsed = [parse_value(v) for v in split_top_level(values)]
    if not parsed:
        raise UserError(f"bad --grid {assignment!r}: no values")
    return key, parsed


def _check_grid_key(key: str, where: str) -> None:
    section, _, option = key.partition(".")
    if section not in SET_SECTIONS or (option and "." in option) or (not option and section == "train"):
        raise UserError(f"bad {where}: expected SECTION or SECTION.KEY with SECTION one of {', '.join(SET_SECTIONS)}")


@dataclass
class SweepPlan:
    """The expanded sweep: validated configs in a stable order, with labels from variants."""

    configs: list[ResolvedConfig]
    labels: dict[str, str] = field(default_factory=dict)  # run_id -> variant label
    #: The sweep's name (one experiment in trackers): the experiment file's stem, else derived from
    #: the configurations without their seeds (so a sweep resumed with other seeds keeps it).
    name: str | None = None

    @property
    def run_ids(self) -> list[str]:
        """Run ids in plan order."""
        return [c.run_id for c in self.configs]


@dataclass
class SweepSpec:
    """What to cross: a base config, variants, a grid of values, and seeds."""

    base: RunConfig
    seeds: list[int]
    grid: dict[str, list[Any]] = field(default_factory=dict)  # "model" -> names; "meta.inner_steps" -> values
    variants: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    #: The sweep's name (an experiment file's stem); None: derived from the plan.
    name: str | None = None

    def expand(self, registry: Registry) -> SweepPlan:
        """Every variant x grid point x seed, resolved (bad input raises before anything runs);
        a plan of more than :data:`MAX_PLAN` runs is refused before it is expanded."""
        keys = list(self.grid)
        size = len(self.variants) * len(self.seeds)
        for values in self.grid.values():
            size *= len(values)
        if size > MAX_PLAN:
            raise UserError(
                f"the sweep would plan {size} runs; at most {MAX_PLAN}: use fewer seeds, values or variants"
            )
        seen: dict[str, ResolvedConfig] = {}
        labels: dict[str, str] = {}
        for v_index, variant in enumerate(self.variants):
            variant = dict(variant)
            label = variant.pop("label", None)
            for point in itertools.product(*(self.grid[k] for k in keys)):
                for seed in self.seeds:
                    config = copy.deepcopy(self.base)
                    apply_dict(config, variant, where=f"variant {label or v_index}")
                    for key, value in zip(keys, point):
                        _apply_grid_value(config, key, value)
                    config.seed = seed
                    config.drop_unused()  # strategies crossed with replays: one strategy run each
                    resolved = resolve(config, registry)
                    if resolved.run_id not in seen:
                        seen[resolved.run_id] = resolved
                        if label:
                            labels[resolved.run_id] = str(label)
        configs = list(seen.values())
        return SweepPlan(configs, labels, self.name or default_sweep_name(configs))


def default_sweep_name(configs: list[ResolvedConfig]) -> str:
    """``sweep-<hash>`` of the plan's configurations without their seeds: the same grid gives the
    same name whatever seeds it runs with."""
    unseeded = sorted({run_id_of({**c.canonical(), "seed": None}) for c in configs})
    return f"sweep-{run_id_of({'configs': unseeded})[:8]}"


def _apply_grid_value(config: RunConfig, key: str, value: Any) -> None:
    section, _, option = key.partition(".")
    if not option:  # a component name ("none" for no strategy: see RunConfig.set_name)
        if value is not None and not isinstance(value, str):
            raise UserError(f"bad grid value {value!r} for {section}: expected a component name")
        config.set_name(section, value if value is not None else "none")
        return
    if section == "train":
        config.train[option] = value
    else:
        config.options[section][option] = value


def spec_from_cli(
    base: RunConfig,
    names: dict[str, str | None],
    grid_options: tuple[str, ...],
    seeds: str | None,
) -> SweepSpec:
    """Build a spec from command-line values: comma-separated component names and ``--grid``."""
    grid: dict[str, list[Any]] = {}
    for section in COMPONENT_SECTIONS:
        text = names.get(section)
        if text:
            values: list[str | None] = list(split_top_level(text))
            if section == "strategy":
                values = [strategy_of(v) for v in values]
            grid[section] = values
    excluded = [s for s in STRATEGY_EXCLUDES if s in grid]
    if "strategy" in grid and excluded and None not in grid["strategy"]:
        grid["strategy"] = [None, *grid["strategy"]]  # --meta/--replay ask for composed runs too
    for assignment in grid_options:
        key, values = parse_grid_option(assignment)
        grid[key] = values
    return SweepSpec(base=base, seeds=parse_seeds(seeds) if seeds is not None else [base.seed], grid=grid)


def spec_from_toml(path: str, seeds_override: str | None = None) -> SweepSpec:
    """Read an experiment file: run-config layout + ``seeds``, ``[grid]`` and ``[[variants]]``."""
    data = read_toml(path)
    base_part = {k: v for k, v in data.items() if k not in EXPERIMENT_KEYS}
    base = RunConfig()
    apply_dict(base, base_part, where=path)
    seeds = parse_seeds(seeds_override if seeds_override is not None else data.get("seeds", [base.seed]))
    grid_table = data.get("grid", {})
    if not isinstance(grid_table, dict):
        raise UserError(f"{path}: [grid] must be a table of lists")
    grid: dict[str, list[Any]] = {}
    for key, values in grid_table.items():
        _check_grid_key(key, f"{path}: [grid] key {key!r}")
        if not isinstance(values, list) or not values:
            raise UserError(f"{path}: [grid] {key} must be a non-empty list")
        grid[key] = values
    variants = data.get("variants", [{}])
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise UserError(f"{path}: variants must be an array of tables ([[variants]])")
    return SweepSpec(base=base, seeds=seeds, grid=grid, variants=variants or [{}], name=Path(path).stem)


@dataclass
class SweepSummary:
    """How a sweep went: run ids that were skipped (already complete), succeeded and failed; and,
    when it was interrupted, the signal and the runs that were in flight (discarded) or not started."""

    planned: list[str]
    skipped: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # run_id -> error
    not_written: dict[str, str] = field(default_factory=dict)  # run_id -> why its record was not saved
    interrupted: BaseException | None = None
    discarded: list[str] = field(default_factory=list)  # in flight when interrupted
    not_started: list[str] = field(default_factory=list)


def run_sweep(
    plan: SweepPlan,
    results: str,
    *,
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    plugins: tuple[str, ...] = (),
    threads: int = 1,
    on_record: Any = None,
    gpus_per_run: float = 0.0,
) -> SweepSummary:
    """Run every planned config whose complete record is not yet in ``results``.

    ``gpus_per_run`` is what each run asks Ray for (``num_gpus``; the Ray executor only). Workers
    of the local executor share the machine's GPU (each run uses ``train.device``).

    Records are written by this process as workers return them (atomically, under a lock: a failed
    record never replaces a complete one). Workers save each run's checkpoint after every task in
    ``results/checkpoints`` and resume from it, so a sweep stopped in any way (Ctrl-C, SIGKILL of
    the driver and its workers, a crash) continues each unfinished run from its last task when it
    is started again. ``on_record(record)`` is called after each write. On the user's interrupt
    (SIGINT, SIGTERM) the workers are stopped at once and the summary says which runs were in
    flight; records already written stay.
    """
    from clbench.checkpoints import checkpoints_dir, remove_if_empty
    from clbench.executors import Job, Progress
    from clbench.executors import executor as get_executor
    from clbench.interrupts import interrupt_in
    from clbench.records import MalformedRecord, check_writable, is_complete, record_path, save_record

    summary = SweepSummary(planned=plan.run_ids)
    jobs = []
    for config in plan.configs:
        if is_complete(record_path(results, config.run_id)):
            summary.skipped.append(config.run_id)
            continue
        job = Job(
            config.run_id,
            config.canonical(),
            tuple(plugins),
            threads,
            str(checkpoints_dir(results)),
            config.settings(),
            results=str(results),
            experiment=plan.name,
            label=plan.labels.get(config.run_id),
        )
        jobs.append(job)
    if not jobs:
        remove_if_empty(checkpoints_dir(results))
        return summary
    check_writable(results)
    kwargs: dict[str, Any] = {"workers": workers}
    if executor == "ray":
        kwargs["address"] = ray_address
        kwargs["gpus_per_run"] = gpus_per_run
    progress = Progress()
    returned: set[str] = set()
    try:
        for record in get_executor(executor)(jobs, progress=progress, **kwargs):
            run_id = record["run_id"]
            returned.add(run_id)
            label = plan.labels.get(run_id)
            if label:
                record["label"] = label
            try:
                saved = save_record(results, record)
                if saved.note:
                    summary.not_written[run_id] = saved.note
            except OSError as exc:
                summary.not_written[run_id] = f"could not write the record: {exc.strerror or exc}"
            except MalformedRecord as exc:
                summary.not_written[run_id] = str(exc)
            if record["status"] == "ok":
                summary.ok.append(run_id)
            else:
                summary.failed[run_id] = record.get("error") or "unknown error"
            if on_record is not None:
                on_record(record)
    except BaseException as exc:
        found = interrupt_in(exc)
        if found is None:
            raise
        summary.interrupted = found
        summary.discarded = [job.run_id for job in jobs if job.run_id in progress.in_flight]
        summary.not_started = [
            job.run_id for job in jobs if job.run_id not in returned and job.run_id not in progress.in_flight
        ]
    remove_if_empty(checkpoints_dir(results))  # the workers are done: nothing writes there any more
    return summary
