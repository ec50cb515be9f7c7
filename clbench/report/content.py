"""What a report says, independent of its format: groups, statistics, tests, claims, provenance."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clbench.errors import UserError
from clbench.report.baseline import default_baseline, find_groups, listing, order_with_baseline, select_group
from clbench.report.grouping import Group, Stream, group_streams
from clbench.report.loading import Loaded
from clbench.report.stats import DEFAULT_MAIN, Comparison, Summary, compare, metric_names, summarize

#: What the report says about its significance tests.
TEST_NOTE = (
    "p: two-sided t-test of each group against the baseline, per metric: paired (scipy.stats.ttest_rel) "
    "over the seeds both groups share when they share at least 2, else Welch's (scipy.stats.ttest_ind, "
    "equal_var=False) when both have at least 2 seeds, else none. * marks p < 0.05; no correction for "
    "multiple comparisons."
)
CI_NOTE = (
    "mean ± half-width of the 95% Student-t interval over seeds: t.ppf(0.975, n-1) · sd / sqrt(n), "
    "sd with n-1; n=1 has no interval."
)
#: What the report says when it clipped an interval to the metric's range.
CLIP_NOTE = (
    "mean [low, high]: the interval reached past the metric's range and is clipped to it (accuracies lie "
    "in [0, 1]; bwt, fwt and forgetting in [-1, 1]; times are not negative), so it is not symmetric. The "
    "Student-t interval assumes unbounded values: near a bound, and with few seeds, read it as rough."
)
#: How to read a group's label.
LABEL_NOTE = (
    "Group labels: model · meta-learner · replay for a composed learner ('mlp · maml · prioritized' is an mlp "
    "trained with MAML and a prioritized replay buffer; 'none' means no meta-learner or no replay), or "
    "'strategy NAME' for a strategy that brings its own training loop and memory, such as the Avalanche "
    "baselines ('strategy avalanche.ewc', followed by its model when the models differ). Options in "
    "parentheses tell apart groups of one stream that use the same components; settings in square brackets "
    "name the group's stream when the runs use several. Runs that a sweep's variant labelled are named by that "
    "label (the components follow in parentheses when one label covers several groups)."
)
STREAM_NOTE = (
    "A stream is a benchmark with its options (stream length, sizes, seed) together with the training "
    "settings (the train section of the config). Runs on different streams differ in more than the learner, "
    "so each stream is reported on its own, with its own baseline, and no test compares groups of different "
    "streams unless --across-streams forces it."
)


@dataclass
class Claim:
    """A claimed value of a metric, and what clbench measured for the claim group."""

    metric: str
    claimed: float
    text: str
    measured: Summary | None = None

    @property
    def inside(self) -> bool | None:
        """Whether the claim lies inside the measured 95% interval (None: no interval)."""
        return None if self.measured is None else self.measured.contains(self.claimed)


@dataclass
class Failure:
    """A run that did not finish: excluded from the statistics, listed in the report."""

    label: str
    seed: int
    run_id: str
    error: str


@dataclass
class Block:
    """Groups tested against one baseline: the groups of one stream, or of every stream when
    ``--across-streams`` forces comparisons across them."""

    #: the section heading (empty when the report has a single block)
    title: str
    #: the groups with results, baseline first
    groups: list[Group]
    baseline: Group | None
    streams: list[Stream]
    #: why the block's groups are not tested, when it has no baseline
    untested: str = ""

    @property
    def across(self) -> bool:
        """True when the block holds groups of several streams (forced)."""
        return len(self.streams) > 1

    @property
    def number(self) -> int:
        """The block's stream number, or 0 for a block of several streams."""
        return 0 if self.across else self.streams[0].index


@dataclass
class Report:
    """Everything a report states; the renderers only format it.

    ``groups`` lists every group with results, block by block, each block's baseline first;
    ``baseline`` is the first block's baseline that exists (each block has its own: see
    :meth:`baseline_of`).
    """

    folder: Path
    groups: list[Group]
    baseline: Group
    metrics: list[str]
    main_metrics: list[str]
    summaries: dict[tuple[str, str], Summary]
    comparisons: dict[tuple[str, str], Comparison]
    failures: list[Failure]
    skipped: list[tuple[str, str]]
    conventions: dict[str, str]
    versions: dict[str, list[str]]
    n_records: int
    n_failed: int
    warnings: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    claim_group: Group | None = None
    notes: list[str] = field(default_factory=list)
    #: What the experiment is, in the user's words (``clbench report --about``): shown first.
    about: list[str] = field(default_factory=list)
    #: Sections plugins add (hook ``clbench_report_tables``): :class:`clbench.report.tables.Table`.
    plugin_tables: list[Any] = field(default_factory=list)
    #: Every stream (benchmark with its options, and training settings) the groups run on.
    streams: list[Stream] = field(default_factory=list)
    #: The groups tested against one baseline: one block per stream, or one for all when forced.
    blocks: list[Block] = field(default_factory=list)
    #: What a reader must see first (several streams, forced comparisons, streams left untested).
    alerts: list[str] = field(default_factory=list)
    #: Keys of the groups tested against a baseline on another stream (``--across-streams``).
    crossed: set[str] = field(default_factory=set)

    @property
    def seeds(self) -> list[int]:
        """Every seed of a run that finished ok, ascending."""
        return sorted({s for g in self.groups for s in g.seeds})

    def summary(self, group: Group, metric: str) -> Summary:
        """The :class:`Summary` of ``metric`` for ``group``."""
        return self.summaries[(group.key, metric)]

    def comparison(self, group: Group, metric: str) -> Comparison | None:
        """The test of ``group`` against its baseline on ``metric`` (None for a baseline row, and
        for a group of a block without a baseline)."""
        return self.comparisons.get((group.key, metric))

    def block_of(self, group: Group) -> Block | None:
        """The block ``group`` is tested in (None for a group without results)."""
        return next((b for b in self.blocks if any(g is group for g in b.groups)), None)

    def baseline_of(self, group: Group) -> Group | None:
        """The baseline ``group`` is tested against (itself for a baseline; None when untested)."""
        block = self.block_of(group)
        return block.baseline if block is not None else None

    def is_baseline(self, group: Group) -> bool:
        """True when ``group`` is the baseline of its block."""
        return any(b.baseline is group for b in self.blocks)


def parse_claims(claims: tuple[str, ...] | list[str]) -> list[Claim]:
    """``("latest_task_accuracy=0.92", "earliest_task_accuracy=88%")`` -> claims; UserError on bad syntax."""
    out = []
    for text in claims:
        name, eq, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or not value:
            raise UserError(f"bad --claim {text!r}: expected METRIC=VALUE, e.g. latest_task_accuracy=0.92")
        try:
            number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
        except ValueError:
            raise UserError(f"bad --claim {text!r}: {value!r} is not a number (0.92 or 92%)") from None
        if not math.isfinite(number):
            raise UserError(f"bad --claim {text!r}: the value must be finite")
        out.append(Claim(metric=name, claimed=number, text=text))
    return out


def _check_metric(name: str, known: list[str], option: str) -> None:
    if name not in known:
        from difflib import get_close_matches

        close = get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"unknown metric {name!r} in {option}{hint}; known: {', '.join(known)}")


def _conventions(records: list[dict[str, Any]], warnings: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for rec in records:
        for name, text in (rec.get("metric_conventions") or {}).items():
            if name in out and out[name] != str(text):
                msg = f"records state different conventions for {name}; the report shows the first"
                if msg not in warnings:
                    warnings.append(msg)
                continue
            out.setdefault(name, str(text))
    return out


def _versions(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The clbench, torch and python versions and the commits the records name, each sorted;
    commits as 12 hex digits (``+dirty`` kept) and ``not recorded`` for records without one."""
    found: dict[str, set[str]] = {"clbench": set(), "commit": set(), "torch": set(), "python": set()}
    for rec in records:
        versions = rec.get("versions") or {}
        if not isinstance(versions, dict):
            continue
        for key in found:
            value = versions.get(key)
            if key == "commit":
                found[key].add(_short_commit(value) if isinstance(value, str) and value else "not recorded")
            elif value is not None:
                found[key].add(str(value))
    if found["commit"] == {"not recorded"}:
        found["commit"] = set()  # the overview says nothing rather than "commit not recorded"
    return {k: sorted(v) for k, v in found.items()}


def _short_commit(value: str) -> str:
    sha, dirty, rest = value.partition("+")
    return sha[:12] + dirty + rest


def _first_line(text: Any, limit: int = 200) -> str:
    lines = (str(text) if text is not None else "unknown error").strip().splitlines()
    line = lines[0] if lines else "unknown error"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _blocks(streams: list[Stream], spec: str | None, across: bool, alerts: list[str]) -> list[Block]:
    """The groups to test, in blocks with their baselines (see :func:`build_report`); the notices
    a reader must see go to ``alerts``."""
    live = [st for st in streams if st.usable]
    if across and len(live) > 1:
        every = [g for st in live for g in st.usable]
        base = select_group(every, spec, "--baseline") if spec is not None else default_baseline(every)
        title = f"All {len(live)} streams, compared across streams (forced)"
        return [Block(title, order_with_baseline(every, base), base, live)]
    if len(live) > 1:
        alerts.append(
            f"the runs use {len(live)} different streams (benchmark options or training settings differ): "
            "each stream has its own section and baseline, and no test compares groups of different streams"
        )
    blocks = []
    for st in live:
        title = st.title if len(live) > 1 else ""
        if spec is None:
            base = default_baseline(st.usable)
            blocks.append(Block(title, order_with_baseline(st.usable, base), base, [st]))
            continue
        if not spec.strip():
            raise UserError("--baseline needs a group: a label, a part of one, or section=name pairs")
        found = find_groups(st.usable, spec)
        where = f" on stream {st.index}" if len(live) > 1 else ""
        if len(found) > 1:
            raise UserError(f"--baseline {spec.strip()!r} is ambiguous{where}: it matches {listing(found)}")
        if found:
            blocks.append(Block(title, order_with_baseline(st.usable, found[0]), found[0], [st]))
        else:
            why = f"no group of this stream matches --baseline {spec.strip()!r}, so its groups are not tested"
            blocks.append(Block(title, list(st.usable), None, [st], untested=why))
    if all(b.baseline is None for b in blocks):
        every = [g for st in live for g in st.usable]
        raise UserError(f"unknown --baseline {(spec or '').strip()!r}: no group matches; groups: {listing(every)}")
    for b in blocks:
        if b.baseline is None:
            alerts.append(f"{b.title}: {b.untested}")
    return blocks


def build_report(
    loaded: Loaded,
    *,
    baseline: str | None = None,
    metrics: tuple[str, ...] | list[str] = (),
    claims: tuple[str, ...] | list[str] = (),
    claim_group: str | None = None,
    across_streams: bool = False,
) -> Report:
    """Group the loaded records by stream and configuration, pick each stream's baseline, and
    compute every statistic a report shows.

    ``metrics`` are the main metrics (tested against the baseline; default: average, latest and
    earliest task accuracy); every metric the records carry is summarised. Groups are tested only
    against the baseline of their own stream, unless ``across_streams`` puts every group in one
    block with one baseline (the report then warns). User mistakes raise :class:`UserError`.
    """
    streams, all_groups, warnings = group_streams(loaded.records)
    ok = [r for r in loaded.records if r["status"] == "ok"]
    failed = [r for r in loaded.records if r["status"] != "ok"]
    if not ok:
        raise UserError(f"no run in {str(loaded.folder)!r} finished ok ({len(failed)} failed); nothing to compare")
    known = metric_names(ok)
    for name in metrics:
        _check_metric(name, known, "--metric")
    main = list(dict.fromkeys(metrics)) or [m for m in DEFAULT_MAIN if m in known] or known[:3]
    parsed = parse_claims(claims)
    for claim in parsed:
        _check_metric(claim.metric, known, "--claim")

    alerts: list[str] = []
    blocks = _blocks(streams, baseline, across_streams, alerts)
    groups = [g for b in blocks for g in b.groups]
    base = next(b.baseline for b in blocks if b.baseline is not None)

    summaries = {(g.key, m): summarize(g.records, m) for g in groups for m in known}
    comparisons = {}
    crossed: set[str] = set()
    for b in blocks:
        if b.baseline is None:
            continue
        for g in b.groups[1:]:
            if g.stream != b.baseline.stream:
                crossed.add(g.key)
            for m in main:
                comparisons[(g.key, m)] = compare(summaries[(b.baseline.key, m)].values, summaries[(g.key, m)].values)
    if crossed:
        alerts.append(
            f"comparisons across streams were forced (--across-streams): {len(crossed)} group(s) are tested "
            f"against the baseline {base.label!r} although their runs use another stream or other training "
            "settings; such a difference mixes the learner with the stream, and its p-value does not isolate "
            "the learner"
        )

    chosen = None
    if claim_group is not None and not parsed:
        raise UserError("--claim-group needs at least one --claim METRIC=VALUE")
    if parsed:
        if claim_group is not None:
            chosen = select_group(groups, claim_group, "--claim-group")
        elif len(groups) == 1:
            chosen = groups[0]
        else:
            raise UserError(
                f"--claim needs --claim-group: the results hold {len(groups)} groups ({', '.join(repr(g.label) for g in groups[:4])}{', ...' if len(groups) > 4 else ''})"
            )
        for claim in parsed:
            claim.measured = summaries[(chosen.key, claim.metric)]

    failures = [
        Failure(label=g.label, seed=r["seed"], run_id=str(r["run_id"]), error=_first_line(r.get("error")))
        for g in all_groups
        for r in g.failed
    ]
    return Report(
        folder=loaded.folder,
        groups=groups,
        baseline=base,
        metrics=known,
        main_metrics=main,
        summaries=summaries,
        comparisons=comparisons,
        failures=failures,
        skipped=[(str(p), why) for p, why in loaded.skipped],
        conventions=_conventions(ok, warnings),
        versions=_versions(loaded.records),
        n_records=len(loaded.records),
        n_failed=len(failed),
        warnings=warnings,
        claims=parsed,
        claim_group=chosen,
        streams=streams,
        blocks=blocks,
        alerts=alerts,
        crossed=crossed,
    )
