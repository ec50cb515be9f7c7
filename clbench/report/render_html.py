"""Self-contained HTML renderer: one file, inline CSS, figures as base64 PNG data URIs.

Every string that comes from records (labels, plugin and option names, errors, paths) goes through
:func:`html.escape`; the page loads nothing from anywhere else.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from clbench.report.content import Report
from clbench.report.figures import Figure
from clbench.report.render import TITLE
from clbench.report.tables import Table, notes, overview, reading_notes, shared_settings, tables
from clbench.text import printable

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #1f2328; line-height: 1.45; }
h1 { border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: 4px 9px; vertical-align: top; }
th { background: #f6f8fa; }
td.r { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fbfbfc; }
p.note, li.note { color: #57606a; font-size: 13px; }
p.alert { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: .6em .9em; }
dl.overview dt { font-weight: 600; float: left; clear: left; width: 9em; }
dl.overview dd { margin-left: 10em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 13px; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: 13px; }
"""


def e(text: object) -> str:
    """HTML-escape anything (quotes included), control characters shown as escapes."""
    return html.escape(printable(text), quote=True)


def html_table(t: Table, level: int = 2) -> list[str]:
    """A table (with its title at heading ``level``, intro and notes) as HTML lines."""
    out = [f"<h{level}>{e(t.title)}</h{level}>"]
    if t.intro:
        out.append(f"<p>{e(t.intro)}</p>")
    out.append("<table>")
    out.append("<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead>")
    out.append("<tbody>")
    for row in t.rows:
        cells = "".join(f'<td class="{a}">{e(c)}</td>' for a, c in zip(t.align, row))
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    out += [f'<p class="note">{e(n)}</p>' for n in t.notes]
    return out


def html_tables(items: Sequence[Table]) -> list[str]:
    """Tables as HTML lines: a table of a section (a stream) comes under that section's heading
    (shown once, as h2) as h3; others as h2."""
    out: list[str] = []
    section = ""
    for t in items:
        if t.section and t.section != section:
            out.append(f"<h2>{e(t.section)}</h2>")
        section = t.section
        out += html_table(t, 3 if t.section else 2)
    return out


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI for ``png``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(report: Report, figures: Sequence[Figure] = ()) -> str:
    """The whole report as one self-contained HTML page."""
    head, tail = tables(report)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(TITLE)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{e(TITLE)}</h1>",
        *[f"<p>{e(paragraph)}</p>" for paragraph in report.about],
        *[f'<p class="alert"><strong>Warning:</strong> {e(alert)}.</p>' for alert in report.alerts],
        '<dl class="overview">',
    ]
    out += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in overview(report)]
    out.append("</dl>")
    out += [f"<p>{e(paragraph)}</p>" for paragraph in reading_notes(report)]
    out += html_tables(head)
    if figures:
        out.append("<h2>Figures</h2>")
        for f in figures:
            out += [
                f"<h3>{e(f.title)}</h3>",
                "<figure>",
                f'<img src="{data_uri(f.png)}" alt="{e(f.title)}">',
                f"<figcaption>{e(f.caption)}</figcaption>",
                "</figure>",
            ]
    out += html_tables(tail)
    shared = shared_settings(report)
    if shared:
        out += ["<h2>Settings shared by every group</h2>", "<pre>" + e("\n".join(shared)) + "</pre>"]
    extra = notes(report)
    if extra:
        out += ["<h2>Notes</h2>", "<ul>"] + [f'<li class="note">{e(n)}</li>' for n in extra] + ["</ul>"]
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
