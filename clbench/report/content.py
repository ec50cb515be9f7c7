"""What a report says, independent of its format: groups, statistics, tests, claims, provenance."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clbench.errors import UserError
from clbench.report.grouping import Group, default_baseline, group_records, order_with_baseline, select_group
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
class Report:
    """Everything a report states; the renderers only format it."""

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

    @property
    def seeds(self) -> list[int]:
        """Every seed of a run that finished ok, ascending."""
        return sorted({s for g in self.groups for s in g.seeds})

    def summary(self, group: Group, metric: str) -> Summary:
        """The :class:`Summary` of ``metric`` for ``group``."""
        return self.summaries[(group.key, metric)]

    def comparison(self, group: Group, metric: str) -> Comparison | None:
        """The test of ``group`` against the baseline on ``metric`` (None for the baseline row)."""
        return self.comparisons.get((group.key, metric))


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
    found: dict[str, set[str]] = {"clbench": set(), "torch": set(), "python": set()}
    for rec in records:
        versions = rec.get("versions") or {}
        if isinstance(versions, dict):
            for key in found:
                if versions.get(key) is not None:
                    found[key].add(str(versions[key]))
    return {k: sorted(v) for k, v in found.items()}


def _first_line(text: Any, limit: int = 200) -> str:
    lines = (str(text) if text is not None else "unknown error").strip().splitlines()
    line = lines[0] if lines else "unknown error"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def build_report(
    loaded: Loaded,
    *,
    baseline: str | None = None,
    metrics: tuple[str, ...] | list[str] = (),
    claims: tuple[str, ...] | list[str] = (),
    claim_group: str | None = None,
) -> Report:
    """Group the loaded records, pick the baseline, and compute every statistic a report shows.

    ``metrics`` are the main metrics (tested against the baseline; default: average, latest and
    earliest task accuracy); every metric the records carry is summarised. User mistakes raise
    :class:`UserError`.
    """
    all_groups, warnings = group_records(loaded.records)
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

    usable = [g for g in all_groups if g.has_results]
    base = select_group(usable, baseline, "--baseline") if baseline is not None else default_baseline(usable)
    groups = order_with_baseline(all_groups, base)

    summaries = {(g.key, m): summarize(g.records, m) for g in groups for m in known}
    comparisons = {}
    for g in groups[1:]:
        for m in main:
            comparisons[(g.key, m)] = compare(summaries[(base.key, m)].values, summaries[(g.key, m)].values)

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
    )
