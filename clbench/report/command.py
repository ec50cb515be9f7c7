"""The ``clbench report`` command, and :func:`generate_report` for use from Python.

Importing this module is cheap: no torch, matplotlib or scipy until a report is generated.
Files are written atomically (temp file + rename); nothing is overwritten except the report
itself and its figure folder (``<out-stem>_figures/`` beside a markdown report), and that folder
only when it holds nothing but what a report wrote there.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from clbench.errors import UserError
from clbench.files import read_text_safely, temp_name, write_text_atomic
from clbench.records import runs_dir
from clbench.report import FORMATS
from clbench.text import printable

#: Accepted spellings of each format, and the file extension each writes.
ALIASES = {"md": "md", "markdown": "md", "html": "html", "htm": "html", "csv": "csv", "latex": "latex", "tex": "latex"}
EXTENSIONS = {"md": ".md", "html": ".html", "csv": ".csv", "latex": ".tex"}


def resolve_output(results: str | Path, fmt: str | None, out: str | Path | None) -> tuple[str, Path]:
    """The format and output path: ``--format`` wins, else the extension of ``--out``, else md;
    the default path is ``DIR/report.<ext>``. UserError for a bad format or an unusable path."""
    if fmt is not None:
        key = fmt.strip().lower()
        if key not in ALIASES:
            raise UserError(f"bad --format {fmt!r}: choose one of {', '.join(FORMATS)}")
        fmt = ALIASES[key]
    elif out is not None and Path(out).suffix.lower().lstrip(".") in ALIASES:
        fmt = ALIASES[Path(out).suffix.lower().lstrip(".")]
    else:
        fmt = "md"
    path = Path(out) if out is not None else Path(results) / f"report{EXTENSIONS[fmt]}"
    if path.is_dir():
        raise UserError(
            f"--out {str(path)!r} is a folder; give a file name such as {str(path / ('report' + EXTENSIONS[fmt]))!r}"
        )
    runs = runs_dir(results).resolve()
    if path.resolve().parent == runs:
        raise UserError(
            f"--out {str(path)!r} is inside the records folder {str(runs_dir(results))!r}; write it elsewhere"
        )
    return fmt, path


#: What the first lines of a report say, in each format: a file at ``--out`` is replaced only if it has one.
_REPORT_SIGNATURES = ("# clbench report", "<title>clbench report</title>", "% clbench report", "group,label,config,")


def check_replaceable(path: Path) -> None:
    """Refuse (one line) to overwrite an existing file at ``path`` that is not a clbench report,
    or anything that is not a regular file."""
    if not (path.exists() or path.is_symlink()):
        return
    try:
        head = read_text_safely(path)[:4096]
    except (OSError, UnicodeDecodeError):
        head = ""
    if not any(sig in head for sig in _REPORT_SIGNATURES):
        raise UserError(f"refusing to overwrite {printable(path)!r}: it is not a clbench report; choose another --out")


def figure_folder(out: Path) -> Path:
    """Where a markdown report's figures go: ``<out-stem>_figures/`` beside it."""
    return out.with_name(f"{out.stem}_figures")


#: The list of files a report wrote into its figure folder; a folder without it is replaced only
#: if it holds nothing but figures named as a report names them (reports written before the list).
MANIFEST = ".clbench-figures"
FIGURE_NAME = re.compile(r"^((accuracy_matrices|accuracy_along_stream|metric_bars)(_\d+)?|memory_\d+)\.png$")
_OWN_TEMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.(tmp|old)$")


def _is_report_folder(folder: Path) -> tuple[bool, list[str]]:
    """Whether ``folder`` holds only what a report wrote there, and the names that it did not."""
    entries = list(folder.iterdir())
    listed: set[str] | None = None
    manifest = folder / MANIFEST
    if manifest.is_file() and not manifest.is_symlink():
        try:
            listed = set(read_text_safely(manifest, limit=1024 * 1024).split("\n")) - {""}
        except (OSError, UnicodeDecodeError):
            listed = None
    foreign = []
    for entry in entries:
        if entry.name == MANIFEST:
            continue
        ours = (
            entry.is_file()
            and not entry.is_symlink()
            and (entry.name in listed if listed is not None else bool(FIGURE_NAME.match(entry.name)))
        )
        if not ours:
            foreign.append(entry.name)
    return not foreign, sorted(foreign)


def clean_stale(folder: Path) -> None:
    """Remove what an interrupted figure swap left beside ``folder`` (``.<name>.<hex>.tmp`` and
    ``.old`` folders); if the swap stopped between its two renames, put the old folder back."""
    if not folder.parent.is_dir():
        return
    for entry in sorted(folder.parent.iterdir()):
        match = _OWN_TEMP.match(entry.name)
        if not match or match.group("name") != folder.name or not entry.is_dir() or entry.is_symlink():
            continue
        if entry.name.endswith(".old") and not folder.exists():
            os.rename(entry, folder)
            continue
        if _is_report_folder(entry)[0]:
            shutil.rmtree(entry, ignore_errors=True)


def replace_folder(folder: Path, files: dict[str, bytes]) -> Path:
    """Make ``folder`` hold exactly ``files`` (name -> bytes) and the manifest: built beside it,
    then swapped in, with SIGINT and SIGTERM held back during the swap.

    An existing ``folder`` is replaced only if it holds nothing but what a report wrote there;
    otherwise :class:`UserError`, and nothing is touched.
    """
    clean_stale(folder)
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir() or folder.is_symlink():
            raise UserError(
                f"cannot write figures to {printable(folder)!r}: something else of that name exists; "
                "choose another --out"
            )
        ours, foreign = _is_report_folder(folder)
        if not ours:
            raise UserError(
                f"refusing to replace {printable(folder)!r}: it holds files a report did not write "
                f"({printable(', '.join(foreign[:3]))}); choose another --out"
            )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(folder)
    os.mkdir(tmp)
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / MANIFEST).write_text("\n".join(sorted(files)) + "\n", encoding="utf-8")
        with _signals_held():
            if folder.exists():
                old = temp_name(folder, "old")
                os.rename(folder, old)
                os.rename(tmp, folder)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Delay SIGINT and SIGTERM until the block is done (where the platform allows)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def plugin_tables(report: Any, host: Any) -> list[Any]:
    """The sections plugins add (hook ``clbench_report_tables``), each checked: a
    :class:`~clbench.report.tables.Table` whose rows have one cell per header column and an
    alignment per column. Anything else, or a plugin that raises, is left out with a line in
    ``report.notes``."""
    from clbench.report.tables import Table

    out = []
    for plugin, made in host.collect("clbench_report_tables", report.notes, report=report):
        for table in made or []:
            width = len(table.header) if isinstance(table, Table) else -1
            if not isinstance(table, Table) or len(table.align) != width or any(len(r) != width for r in table.rows):
                report.notes.append(
                    f"plugin {plugin!r} gave a section that is not a well-formed clbench Table; left out"
                )
                continue
            out.append(table)
    return out


def generate_report(
    results: str | Path = "results",
    *,
    fmt: str | None = None,
    out: str | Path | None = None,
    baseline: str | None = None,
    metrics: Sequence[str] = (),
    claims: Sequence[str] = (),
    claim_group: str | None = None,
    figures: bool = True,
    warn: Callable[[str], None] | None = None,
    about: Sequence[str] = (),
    plugins: Sequence[str] = (),
    across_streams: bool = False,
) -> Path:
    """Read ``results/runs/*.json``, write the report, and return its path.

    Figures come from the core and from the installed plugins (and the modules in ``plugins``)
    through the ``clbench_report_figures`` hook. Groups are tested only against the baseline of
    their own stream (benchmark options and training settings) unless ``across_streams``.

    ``warn`` receives one line per skipped file, oddity or alert (several streams, forced
    comparisons; default: stderr). User mistakes raise :class:`UserError`.
    """
    from clbench.report.content import build_report
    from clbench.report.loading import load_records

    warn = warn or (lambda line: click.echo(f"clbench: warning: {printable(line)}", err=True))
    fmt, path = resolve_output(results, fmt, out)
    check_replaceable(path)
    loaded = load_records(results)
    for p, why in loaded.skipped:
        warn(f"skipped {p}: {why}")
    report = build_report(
        loaded,
        baseline=baseline,
        metrics=tuple(metrics),
        claims=tuple(claims),
        claim_group=claim_group,
        across_streams=across_streams,
    )
    for line in report.alerts + report.warnings:
        warn(line)
    report.about = [str(paragraph) for paragraph in about]
    from clbench.plugins import make_plugin_host

    host = make_plugin_host(tuple(plugins))
    host.drop_broken_registrations()  # a plugin whose registration raised adds no tables or figures
    report.plugin_tables = plugin_tables(report, host)
    images = []
    if figures and fmt in ("md", "html"):
        from clbench.report.figures import make_figures

        images = make_figures(report, host)
    if fmt == "md":
        from clbench.report.render import render_md

        folder = figure_folder(path)
        if images:
            replace_folder(folder, {f.name: f.png for f in images})
        text = render_md(report, images, folder.name if images else None)
    elif fmt == "html":
        from clbench.report.render_html import render_html

        text = render_html(report, images)
    elif fmt == "csv":
        from clbench.report.render import render_csv

        text = render_csv(report)
    else:
        from clbench.report.render_latex import render_latex

        text = render_latex(report)
    return write_text_atomic(path, text)


@click.command("report")
@click.argument("results", default="results", required=False, metavar="[DIR]")
@click.option(
    "--format", "fmt", metavar="md|html|csv|latex", help="Output format (default: from --out's extension, else md)."
)
@click.option(
    "--out",
    metavar="PATH",
    help="Output file (default: DIR/report.<ext>). Markdown figures go to <stem>_figures/ beside it; HTML embeds them.",
)
@click.option(
    "--baseline",
    metavar="SPEC",
    help="Row to test against, looked up in each stream (benchmark options and training settings): a label, "
    "a unique part or glob of one, or section=name pairs like meta=none,replay=none. A stream without it is "
    "not tested. Default: mlp with no meta, replay or strategy, if present, else the stream's first group.",
)
@click.option(
    "--across-streams",
    is_flag=True,
    help="Test every group against one baseline even when the runs use different streams or training "
    "settings (the report warns); by default each stream is tested on its own.",
)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME",
    help="Main metric (repeatable): shown with p-values. Default: avg_accuracy, latest_task_accuracy, "
    "earliest_task_accuracy.",
)
@click.option(
    "--claim",
    "claims",
    multiple=True,
    metavar="METRIC=VALUE",
    help="A claimed value to check against the measured interval (repeatable), e.g. "
    "latest_task_accuracy=0.92 or latest_task_accuracy=92%.",
)
@click.option("--claim-group", metavar="SPEC", help="The group the claims are about (same syntax as --baseline).")
@click.option("--no-figures", is_flag=True, help="Tables only (faster; matplotlib not needed).")
@click.option(
    "--about",
    "about",
    multiple=True,
    metavar="TEXT",
    help="A paragraph saying what the experiment is, shown first (repeatable; not in csv).",
)
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help="Import MODULE as a plugin (repeatable).")
@click.pass_context
def report_command(
    ctx: click.Context,
    results: str,
    fmt: str | None,
    out: str | None,
    baseline: str | None,
    metrics: tuple[str, ...],
    claims: tuple[str, ...],
    claim_group: str | None,
    no_figures: bool,
    about: tuple[str, ...],
    plugins: tuple[str, ...],
    across_streams: bool,
) -> None:
    """Compare the runs in DIR (default: results): means with 95% intervals over seeds, tests
    against a baseline on the same stream, claims, and figures. Prints the path written.

    \b
    clbench report
    clbench report results --format html --out report.html
    clbench report --claim latest_task_accuracy=0.92 --claim earliest_task_accuracy=0.88 --claim-group dnc
    """
    path = generate_report(
        results,
        fmt=fmt,
        out=out,
        baseline=baseline,
        metrics=metrics,
        claims=claims,
        claim_group=claim_group,
        figures=not no_figures,
        about=about,
        plugins=tuple(ctx.find_root().params.get("plugins") or ()) + plugins,
        across_streams=across_streams,
    )
    click.echo(str(path))
