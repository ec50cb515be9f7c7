"""The report's tables and text as plain strings; each output format escapes and lays them out.

Cells hold unescaped text (labels come straight from records): renderers must escape them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clbench.report.content import CI_NOTE, CLIP_NOTE, LABEL_NOTE, STREAM_NOTE, TEST_NOTE, Block, Report
from clbench.report.grouping import Group, format_value
from clbench.report.stats import ALPHA, PAIRED, WELCH, Comparison, Summary

DASH = "—"


@dataclass
class Table:
    """A titled table of plain-text cells; ``align`` has one of "l" / "r" per column."""

    title: str
    header: list[str]
    rows: list[list[str]]
    align: list[str]
    intro: str = ""
    notes: list[str] = field(default_factory=list)
    #: the section the table belongs to (a stream's heading), empty for none: renderers show a
    #: section's heading once, before its first table, and nest its tables under it
    section: str = ""


def fmt(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` decimals, or a dash for None."""
    return DASH if value is None else f"{value:.{digits}f}"


def shows_clip(s: Summary, digits: int = 3) -> bool:
    """True when clipping moved an end of the interval by enough to show at ``digits`` decimals."""
    if not s.clipped or s.low is None or s.high is None or s.raw_low is None or s.raw_high is None:
        return False
    step = 0.5 * 10**-digits
    return abs(s.low - s.raw_low) >= step or abs(s.high - s.raw_high) >= step


def fmt_summary(s: Summary, of: int | None = None) -> str:
    """``0.600 ± 0.248``; ``0.985 [0.963, 1.000]`` when the interval was clipped to the metric's
    range; ``0.727 (n=1)`` without an interval; a dash when there is no value. ``of``: the
    group's number of seeds; when fewer of them have a value (null or NaN in a record), the cell
    says how many were used: ``0.600 ± 0.248 (n=3 of 5)``."""
    if s.n == 0:
        return DASH
    if s.half_width is None:
        text = f"{fmt(s.mean)} (n=1"
    elif shows_clip(s):
        text = f"{fmt(s.mean)} [{fmt(s.low)}, {fmt(s.high)}]"
    else:
        text = f"{fmt(s.mean)} ± {fmt(s.half_width)}"
    if of is not None and s.n < of:
        return f"{text} (n={s.n} of {of})" if s.half_width is not None else f"{text} of {of})"
    return text + (")" if s.half_width is None else "")


def fmt_p(c: Comparison | None) -> str:
    """``0.012*`` (``*``: p < 0.05), ``<0.001*``, ``baseline`` for None, or why there is no test."""
    if c is None:
        return "baseline"
    if c.p is None:
        return f"{DASH} ({c.note})" if c.note else DASH
    mark = "*" if c.p < ALPHA else ""
    text = f"<0.001{mark}" if c.p < 0.001 else f"{c.p:.3f}{mark}"
    return f"{text} ({c.note})" if c.note else text


def _test_cell(report: Report, g: Group) -> str:
    if report.is_baseline(g):
        return DASH
    if report.baseline_of(g) is None:
        return "none (no baseline on this stream)"
    tests = []
    for m in report.main_metrics:
        c = report.comparison(g, m)
        if c is not None and c.test is not None:
            short = {PAIRED: "paired", WELCH: "Welch"}[c.test]
            text = f"{short}, {c.n} seeds" if c.test == PAIRED else short
            if text not in tests:
                tests.append(text)
    text = " / ".join(tests) if tests else "none"
    return f"{text}; across streams (forced)" if g.key in report.crossed else text


def _baselines(report: Report) -> str:
    if len(report.blocks) == 1:
        return report.baseline.label
    return "; ".join(
        f"stream {b.number}: {b.baseline.label if b.baseline is not None else 'none (not tested)'}"
        for b in report.blocks
    )


def overview(report: Report) -> list[tuple[str, str]]:
    """Key facts: folder, counts, streams, seeds, versions, baseline(s)."""
    ok = report.n_records - report.n_failed
    versions = [f"{k} {', '.join(v)}" for k, v in report.versions.items() if v]
    live = [s for s in report.streams if s.usable]
    streams = []
    if len(live) > 1:
        how = "tested across streams (forced)" if report.crossed else "each tested on its own"
        streams = [("streams", f"{len(live)} (benchmark options or training settings differ; {how})")]
    return [
        ("results folder", str(report.folder)),
        (
            "records",
            f"{report.n_records} ({ok} ok, {report.n_failed} failed)"
            + (f"; {len(report.skipped)} file(s) skipped" if report.skipped else ""),
        ),
        ("groups", f"{len(report.groups)} configuration(s) with results"),
        *streams,
        ("seeds", ", ".join(str(s) for s in report.seeds) or DASH),
        ("versions", "; ".join(versions) or "not recorded"),
        ("baseline" if len(report.blocks) == 1 else "baselines", _baselines(report)),
    ]


def reading_notes(report: Report) -> list[str]:
    """What a reader needs to read the tables: the order of the parts of a label."""
    return [LABEL_NOTE]


def _clip_notes(*summaries: Summary) -> list[str]:
    return [CLIP_NOTE] if any(shows_clip(s) for s in summaries) else []


def _block_intro(report: Report, block: Block) -> str:
    if block.baseline is None:
        return f"No baseline: {block.untested}."
    text = f"Baseline: {block.baseline.label}."
    if block.across:
        text += (
            " Warning: the groups run on different streams or with different training settings, and are tested "
            "against this baseline only because --across-streams forced it."
        )
    return text


def streams_table(report: Report) -> Table | None:
    """One row per stream (benchmark with its options, and training settings): what tells it
    apart, its groups, seeds and baseline; None when there is only one."""
    if len(report.streams) < 2:
        return None
    rows = []
    for st in report.streams:
        block = next((b for b in report.blocks if st in b.streams), None)
        if block is None:
            base = "none (no run finished ok)"
        elif block.baseline is None:
            base = "none (not tested)"
        else:
            base = block.baseline.label + (" (forced across streams)" if block.across else "")
        seeds = sorted({s for g in st.usable for s in g.seeds})
        rows.append(
            [
                str(st.index),
                st.benchmark,
                ", ".join(d for d in st.differing if not d.startswith("benchmark=")) or DASH,
                str(len(st.usable)),
                ", ".join(map(str, seeds)) or DASH,
                base,
            ]
        )
    return Table(
        "Streams",
        ["stream", "benchmark", "settings that differ between streams", "groups", "seeds", "baseline"],
        rows,
        ["r", "l", "l", "r", "l", "l"],
        intro=f"The runs use {len(report.streams)} streams.",
        notes=[STREAM_NOTE],
    )


def _block(report: Report, block: Block | None) -> Block:
    return block if block is not None else report.blocks[0]


def results_table(report: Report, block: Block | None = None) -> Table:
    """Main metrics per group of ``block`` (default: the first): mean ± CI, p-value against the
    block's baseline, n and the test used."""
    block = _block(report, block)
    header = ["group", "n"]
    for m in report.main_metrics:
        header += [m, "p"]
    header.append("test")
    rows = []
    for g in block.groups:
        row = [g.label, str(len(g.records))]
        for m in report.main_metrics:
            row += [fmt_summary(report.summary(g, m), len(g.records)), fmt_p(report.comparison(g, m))]
        row.append(_test_cell(report, g))
        rows.append(row)
    align = ["l", "r"] + ["r"] * (2 * len(report.main_metrics)) + ["l"]
    clip = _clip_notes(*(report.summary(g, m) for g in block.groups for m in report.main_metrics))
    return Table(
        "Results",
        header,
        rows,
        align,
        intro=_block_intro(report, block),
        notes=[CI_NOTE, *clip, TEST_NOTE],
        section=block.title,
    )


def metrics_table(report: Report, block: Block | None = None) -> Table:
    """Every metric per group of ``block`` (default: the first), mean ± CI, with the seeds used."""
    block = _block(report, block)
    header = ["group", "n", "seeds"] + list(report.metrics)
    rows = [
        [g.label, str(len(g.records)), ", ".join(str(s) for s in g.seeds)]
        + [fmt_summary(report.summary(g, m), len(g.records)) for m in report.metrics]
        for g in block.groups
    ]
    notes = [
        "n counts the seeds of the group; a metric that some seeds lack (null in the record, e.g. bwt with "
        "one task) is averaged over the others, and its cell says over how many (n=k of n)."
    ]
    notes += _clip_notes(*(report.summary(g, m) for g in block.groups for m in report.metrics))
    if any(m.startswith("adapted.") for m in report.metrics):
        notes.append(
            "adapted.*: the same metrics computed from the adapted accuracy matrix (after test-time adaptation)."
        )
    return Table(
        "All metrics", header, rows, ["l", "r", "l"] + ["r"] * len(report.metrics), notes=notes, section=block.title
    )


def claims_table(report: Report) -> Table | None:
    """The claims beside what clbench measured for the claim group (None without claims)."""
    if not report.claims or report.claim_group is None:
        return None
    rows = []
    for c in report.claims:
        s = c.measured
        interval = DASH if s is None or s.half_width is None else f"[{fmt(s.low)}, {fmt(s.high)}]"
        inside = {True: "yes", False: "no", None: "no interval (n<2)"}[c.inside]
        rows.append([c.metric, fmt(c.claimed), fmt(s.mean) if s else DASH, interval, str(s.n if s else 0), inside])
    g = report.claim_group
    intro = f"Claimed values beside what clbench measured for {g.label} (seeds {', '.join(map(str, g.seeds))})."
    return Table(
        "Claims",
        ["metric", "claimed", "measured mean", "95% interval", "n", "claim inside interval"],
        rows,
        ["l", "r", "r", "r", "r", "l"],
        intro=intro,
        notes=[
            "A claim outside the interval disagrees with these runs at about the 5% level; "
            "with few seeds the interval is wide.",
            *_clip_notes(*(c.measured for c in report.claims if c.measured is not None)),
        ],
    )


def fmt_difference(c: Comparison | None) -> str:
    """``-0.052 ± 0.031`` (group minus baseline, 95% interval), a dash when there is none."""
    if c is None or c.difference is None:
        return DASH
    text = f"{c.difference:+.3f}"
    return text if c.difference_half_width is None else f"{text} ± {c.difference_half_width:.3f}"


def differences_table(report: Report, block: Block | None = None) -> Table | None:
    """Each group of ``block`` (default: the first) minus its baseline on the main metrics, with
    the 95% interval of the difference and the p-value; None when there is only the baseline, or
    no baseline."""
    block = _block(report, block)
    others = [g for g in block.groups if g is not block.baseline and g.has_results]
    if not others or block.baseline is None:
        return None
    header = ["group"]
    for m in report.main_metrics:
        header += [f"{m} - baseline", "p"]
    rows = []
    for g in others:
        row = [g.label]
        for m in report.main_metrics:
            c = report.comparison(g, m)
            row += [fmt_difference(c), fmt_p(c)]
        rows.append(row)
    return Table(
        "Differences from the baseline",
        header,
        rows,
        ["l"] + ["r"] * (2 * len(report.main_metrics)),
        intro=f"Group minus {block.baseline.label}: the mean of the per-seed differences over shared "
        "seeds (paired), else the difference of the means (Welch), with its 95% interval."
        + (
            " Warning: groups of other streams are compared only because --across-streams forced it."
            if block.across
            else ""
        ),
        notes=[TEST_NOTE],
        section=block.title,
    )


def _seconds(record: dict, key: str) -> float | None:
    """The total of ``timings[key]`` (a number or a list of per-task numbers) in a record."""
    value = (record.get("timings") or {}).get(key) if isinstance(record.get("timings"), dict) else None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return float(sum(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def times_table(report: Report) -> Table:
    """Mean training, evaluation and total time per run of each group, in minutes."""
    rows = []
    summaries = []
    for g in report.groups:
        ok = [r for r in g.records if r["status"] == "ok"]
        cells = []
        for key in ("train_s", "eval_s", "total_s"):
            values = {i: v / 60 for i, r in enumerate(ok) if (v := _seconds(r, key)) is not None}
            summary = Summary(values, (0.0, None))
            summaries.append(summary)
            cells.append(fmt_summary(summary, len(ok)) if values else DASH)
        rows.append([g.label, str(len(ok)), *cells])
    return Table(
        "Time per run",
        ["group", "n", "training (min)", "evaluation (min)", "total (min)"],
        rows,
        ["l", "r", "r", "r", "r"],
        intro="Wall-clock minutes per run as the records time them (mean ± 95% interval over runs); "
        "runs that shared a busy machine take longer, so compare rows measured alike.",
        notes=_clip_notes(*summaries),
    )


def failures_table(report: Report) -> Table | None:
    """Runs that failed (excluded from the statistics); None when there are none."""
    if not report.failures:
        return None
    rows = [[f.label, str(f.seed), f.run_id, f.error] for f in report.failures]
    return Table(
        "Failed runs",
        ["group", "seed", "run", "error"],
        rows,
        ["l", "r", "l", "l"],
        intro=f"{len(rows)} run(s) failed; they are excluded from every statistic.",
    )


def skipped_table(report: Report) -> Table | None:
    """Files that could not be read as finished records; None when there are none."""
    if not report.skipped:
        return None
    return Table("Skipped files", ["file", "reason"], [[p, why] for p, why in report.skipped], ["l", "l"])


def conventions_table(report: Report) -> Table:
    """Each metric's definition as the records state it."""
    rows = [[m, text] for m, text in report.conventions.items()]
    return Table(
        "Metric conventions",
        ["metric", "definition"],
        rows,
        ["l", "l"],
        intro="R[i][j] is the test accuracy on task j after training through task i (T tasks); "
        "b_j is task j's accuracy before any training. As stated in the records:",
    )


def groups_table(report: Report) -> Table:
    """Each group's stream (when there are several), configuration hash, seeds and run ids."""
    several = len(report.streams) > 1
    rows = []
    for g in report.groups:
        failed = ", ".join(str(r["seed"]) for r in g.failed) or DASH
        row = [g.label, g.key, ", ".join(map(str, g.seeds)), failed, ", ".join(str(r["run_id"])[:8] for r in g.records)]
        rows.append(([str(g.stream)] if several else []) + row)
    header = ["group", "config", "seeds", "failed seeds", "runs"]
    return Table(
        "Groups",
        (["stream"] if several else []) + header,
        rows,
        (["r"] if several else []) + ["l", "l", "l", "l", "l"],
        intro="config: the first 12 hex digits of the SHA-256 of the canonical config without its seed.",
    )


def shared_settings(report: Report) -> list[str]:
    """``section.option=value`` for every setting that all groups share."""
    groups = report.groups
    keys = sorted(set.intersection(*(set(g.flat) for g in groups))) if groups else []
    return [
        f"{k}={format_value(groups[0].flat[k])}" for k in keys if len({format_value(g.flat[k]) for g in groups}) == 1
    ]


def tables(report: Report) -> tuple[list[Table], list[Table]]:
    """The report's tables in order, split where the figures go; optional ones left out when empty.

    With one block: results, differences, claims, all metrics. With several (one per stream): the
    streams, then each stream's results, differences and all metrics in a section of its own,
    then the claims.
    """
    if len(report.blocks) == 1:
        block = report.blocks[0]
        head = [
            streams_table(report),
            results_table(report, block),
            differences_table(report, block),
            claims_table(report),
            metrics_table(report, block),
        ]
    else:
        head = [streams_table(report)]
        for block in report.blocks:
            head += [results_table(report, block), differences_table(report, block), metrics_table(report, block)]
        head.append(claims_table(report))
    tail = [
        times_table(report),
        *report.plugin_tables,
        failures_table(report),
        skipped_table(report),
        conventions_table(report),
        groups_table(report),
    ]
    return [t for t in head if t is not None], [t for t in tail if t is not None]


def notes(report: Report) -> list[str]:
    """Warnings met while building the report and figure notes."""
    return list(report.warnings) + list(report.notes)
