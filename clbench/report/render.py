"""Markdown (GitHub-flavoured) and CSV renderers.

Markdown: plain pipe tables, every string from records escaped, figures as relative image links
into the figure folder written beside the report. CSV: one row per group x metric.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from urllib.parse import quote

from clbench.report.content import Report
from clbench.report.figures import Figure
from clbench.report.stats import ALPHA
from clbench.report.tables import Table, notes, overview, reading_notes, shared_settings, tables
from clbench.text import printable

TITLE = "clbench report"
#: Leading characters that make a spreadsheet read a CSV cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Characters escaped with a backslash in markdown text (CommonMark allows escaping any ASCII punctuation).
_MD_SPECIAL = set("\\`*_[]<>|~&#!")


def md_escape(text: object) -> str:
    """``text`` safe inside a markdown paragraph or table cell: punctuation backslash-escaped,
    control characters shown as escapes (a cell is one line)."""
    s = printable(text)  # control characters (newlines included) become visible escapes: one line
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in s)


def md_table(t: Table, level: int = 2) -> list[str]:
    """A GitHub pipe table (with its title at heading ``level``, intro and notes) as lines."""
    lines = [f"{'#' * level} {md_escape(t.title)}", ""]
    if t.intro:
        lines += [md_escape(t.intro), ""]
    lines.append("| " + " | ".join(md_escape(h) for h in t.header) + " |")
    lines.append("|" + "|".join("---:" if a == "r" else "---" for a in t.align) + "|")
    for row in t.rows:
        lines.append("| " + " | ".join(md_escape(c) for c in row) + " |")
    lines.append("")
    for note in t.notes:
        lines += [md_escape(note), ""]
    return lines


def md_tables(items: Sequence[Table]) -> list[str]:
    """Tables as markdown lines: a table of a section (a stream) comes under that section's
    heading (shown once, at level 2) at level 3; others at level 2."""
    lines: list[str] = []
    section = ""
    for t in items:
        if t.section and t.section != section:
            lines += [f"## {md_escape(t.section)}", ""]
        section = t.section
        lines += md_table(t, 3 if t.section else 2)
    return lines


def md_alerts(report: Report) -> list[str]:
    """The report's alerts as markdown block quotes."""
    lines: list[str] = []
    for alert in report.alerts:
        lines += [f"> **Warning:** {md_escape(alert)}.", ""]
    return lines


def render_md(report: Report, figures: Sequence[Figure] = (), figure_dir: str | None = None) -> str:
    """The whole report as GitHub-flavoured markdown; figures link to ``figure_dir/NAME``."""
    head, tail = tables(report)
    lines = [f"# {TITLE}", ""]
    for paragraph in report.about:
        lines += [md_escape(paragraph), ""]
    lines += md_alerts(report)
    lines += [f"- **{md_escape(k)}**: {md_escape(v)}" for k, v in overview(report)]
    lines.append("")
    for paragraph in reading_notes(report):
        lines += [md_escape(paragraph), ""]
    lines += md_tables(head)
    if figures and figure_dir is not None:
        lines += ["## Figures", ""]
        for f in figures:
            target = quote(f"{figure_dir}/{f.name}")
            lines += [
                f"### {md_escape(f.title)}",
                "",
                md_escape(f.caption),
                "",
                f"![{md_escape(f.title)}]({target})",
                "",
            ]
    lines += md_tables(tail)
    shared = shared_settings(report)
    if shared:
        lines += (
            ["## Settings shared by every group", "", "```"]
            + [printable(s).replace("`", "'") for s in shared]
            + ["```", ""]
        )
    extra = notes(report)
    if extra:
        lines += ["## Notes", ""] + [f"- {md_escape(n)}" for n in extra] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


CSV_COLUMNS = [
    "group",
    "label",
    "config",
    "baseline",
    "metric",
    "main",
    "n",
    "seeds",
    "mean",
    "sd",
    "ci_low",
    "ci_high",
    "ci_half_width",
    "test",
    "p_value",
    "significant",
    "claimed",
    "claim_inside",
    "difference",
    "difference_half_width",
    "stream",
    "ci_clipped",
    "across_streams",
]


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def csv_text(value: object) -> str:
    """A text cell safe in a spreadsheet: control characters escaped, and a leading ``= + - @``
    (a formula to Excel or LibreOffice) neutralised with a quote, unless the cell is a number."""
    text = printable(value)
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def render_csv(report: Report) -> str:
    """One row per group x metric (columns :data:`CSV_COLUMNS`); empty cells for missing values.

    ``group`` is the group's position (0 = the first baseline), ``config`` the hash of its config
    minus seed, ``baseline`` whether it is its stream's baseline, ``seeds`` the seeds separated by
    ``;``; claims fill ``claimed``/``claim_inside`` on the claim group. ``ci_low`` and ``ci_high``
    are clipped to the metric's range (``ci_clipped``: whether that moved them; ``ci_half_width``
    is the unclipped half-width); ``stream`` is the group's stream number, and ``across_streams``
    says whether its test is against a baseline on another stream (forced).
    """
    claims = {c.metric: c for c in report.claims} if report.claim_group is not None else {}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for index, g in enumerate(report.groups):
        for m in report.metrics:
            s = report.summary(g, m)
            c = report.comparison(g, m)
            claim = claims.get(m) if g is report.claim_group else None
            writer.writerow(
                [
                    index,
                    csv_text(g.label),
                    csv_text(g.key),
                    str(report.is_baseline(g)).lower(),
                    csv_text(m),
                    str(m in report.main_metrics).lower(),
                    s.n,
                    ";".join(map(str, s.seeds)),
                    _num(s.mean),
                    _num(s.sd),
                    _num(s.low),
                    _num(s.high),
                    _num(s.half_width),
                    (c.test or "") if c else "",
                    _num(c.p) if c else "",
                    "" if c is None or c.p is None else str(c.p < ALPHA).lower(),
                    _num(claim.claimed) if claim else "",
                    "" if claim is None or claim.inside is None else str(claim.inside).lower(),
                    _num(c.difference) if c else "",
                    _num(c.difference_half_width) if c else "",
                    g.stream,
                    "" if s.half_width is None else str(s.clipped).lower(),
                    str(g.key in report.crossed).lower(),
                ]
            )
    return buf.getvalue()
