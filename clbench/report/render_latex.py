r"""LaTeX renderer: booktabs tables in ``table`` floats, a fragment to ``\input`` (needs
``\usepackage{booktabs}``). Every string is escaped for LaTeX text mode."""

from __future__ import annotations

from clbench.report.content import Report
from clbench.report.render import TITLE
from clbench.report.tables import Table, notes, overview, reading_notes, shared_settings, tables
from clbench.text import printable

_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "·": r"$\cdot$",
    "±": r"$\pm$",
    "—": "---",
    "…": r"\ldots{}",
    "\n": " ",
    "\r": " ",
}


def latex_escape(text: object) -> str:
    r"""``text`` safe in LaTeX text mode, and in a ``%`` comment: control characters (a carriage
    return ends a line for TeX) shown as escapes first, then ``_ % & # $ { } ~ ^ \`` and a few
    symbols replaced."""
    return "".join(_LATEX.get(c, c) for c in printable(text))


def latex_table(t: Table) -> list[str]:
    """A booktabs table float (caption = title, intro and notes below the rule) as lines."""
    title = f"{t.section} — {t.title}" if t.section else t.title
    out = [r"\begin{table}[htbp]", r"\centering", r"\small", f"\\caption{{{latex_escape(title)}}}"]
    out.append(f"\\begin{{tabular}}{{{''.join(t.align)}}}")
    out.append(r"\toprule")
    out.append(" & ".join(latex_escape(h) for h in t.header) + r" \\")
    out.append(r"\midrule")
    for row in t.rows:
        out.append(" & ".join(latex_escape(c) for c in row) + r" \\")
    out.append(r"\bottomrule")
    out.append(r"\end{tabular}")
    text = ([t.intro] if t.intro else []) + list(t.notes)
    if text:
        out.append(r"\par\smallskip{\footnotesize " + " ".join(latex_escape(s) for s in text) + "}")
    out.append(r"\end{table}")
    return out


def render_latex(report: Report) -> str:
    """The report's tables as a LaTeX fragment; overview, shared settings and notes as comments
    and an overview table."""
    head, tail = tables(report)
    out = [f"% {TITLE} -- needs \\usepackage{{booktabs}}"]
    out += [f"% about: {latex_escape(paragraph)}" for paragraph in report.about]
    out += [f"% warning: {latex_escape(alert)}" for alert in report.alerts]
    out += [f"% {latex_escape(k)}: {latex_escape(v)}" for k, v in overview(report)]
    out += [f"% shared setting: {latex_escape(s)}" for s in shared_settings(report)]
    out += [f"% note: {latex_escape(n)}" for n in notes(report)]
    out.append("")
    rows = [[k, v] for k, v in overview(report)]
    prose = [f"Warning: {alert}." for alert in report.alerts] + reading_notes(report)
    for t in [Table("Overview", ["item", "value"], rows, ["l", "l"], notes=prose)] + head + tail:
        out += latex_table(t) + [""]
    return "\n".join(out)
