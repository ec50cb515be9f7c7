"""Report figures, drawn with matplotlib's Agg canvas into PNG bytes (dpi 100).

Each figure is a ``matplotlib.figure.Figure`` on a ``FigureCanvasAgg``: no pyplot state, no
interactive backend, nothing left open after saving. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from clbench.interrupts import reraise_interrupt
from clbench.report.content import Report
from clbench.report.grouping import Group
from clbench.report.stats import mean_matrix
from clbench.text import printable

DPI = 100
#: Groups per accuracy-matrix image; more groups give more images.
MATRICES_PER_IMAGE = 12
#: Tasks shown per memory-trace figure (first, evenly spaced middle ones, last).
MAX_TRACE_TASKS = 4


@dataclass
class Figure:
    """One PNG image of a report: file name, title, a caption, and the bytes."""

    name: str
    title: str
    caption: str
    png: bytes


def _new(width: float, height: float, layout: Any = None) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(min(width, 30.0), min(height, 40.0)), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    fig.clear()  # release the artists; the figure is not registered anywhere else
    return buf.getvalue()


def _text(label: str, limit: int = 48) -> str:
    """A label safe for matplotlib text (no mathtext) and short enough for a subplot title."""
    label = printable(label)
    label = label if len(label) <= limit else label[: limit - 1] + "…"
    return label.replace("$", r"\$")


def _matrix_figures(report: Report) -> list[Figure]:
    items = []
    for i, g in enumerate(report.groups):
        mean, n = mean_matrix(g.records)
        if mean is not None:
            items.append((i, g, mean, n))
    out = []
    for start in range(0, len(items), MATRICES_PER_IMAGE):
        chunk = items[start : start + MATRICES_PER_IMAGE]
        ncols = min(3, len(chunk))
        nrows = math.ceil(len(chunk) / ncols)
        fig = _new(4.2 * ncols, 3.8 * nrows)
        image = None
        for k, (_i, g, mean, n) in enumerate(chunk):
            ax = fig.add_subplot(nrows, ncols, k + 1)
            size = len(mean)
            image = ax.imshow(mean, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
            ax.set_title(f"{_text(g.label)}\nmean of {n} seed{'s' if n != 1 else ''}", fontsize=8)
            ax.set_xlabel("task j (evaluated)", fontsize=8)
            ax.set_ylabel("after task i (trained)", fontsize=8)
            step = max(1, size // 10)
            ax.set_xticks(range(0, size, step))
            ax.set_yticks(range(0, size, step))
            ax.tick_params(labelsize=7)
            if size <= 8:
                for r in range(size):
                    for c in range(size):
                        ax.text(
                            c,
                            r,
                            f"{mean[r][c]:.2f}",
                            ha="center",
                            va="center",
                            fontsize=6,
                            color="white" if mean[r][c] < 0.6 else "black",
                        )
        if image is not None:
            fig.colorbar(image, ax=fig.axes, shrink=0.8, label="test accuracy R[i][j]")
        suffix = "" if len(items) <= MATRICES_PER_IMAGE else f"_{start // MATRICES_PER_IMAGE + 1}"
        out.append(
            Figure(
                name=f"accuracy_matrices{suffix}.png",
                title="Accuracy matrices",
                caption="Mean over seeds of R[i][j], the test accuracy on task j (column) after training "
                "through task i (row); the lower triangle is memory, the upper is transfer.",
                png=_png(fig),
            )
        )
    return out


def _style(k: int) -> dict[str, Any]:
    return {"color": f"C{k % 10}", "linestyle": ("-", "--", ":", "-.")[(k // 10) % 4], "marker": "o", "markersize": 3}


def _stream_figure(report: Report) -> Figure | None:
    curves = []
    for g in report.groups:
        mean, _ = mean_matrix(g.records)
        if mean is not None:
            first = [row[0] for row in mean]
            seen = [sum(row[: i + 1]) / (i + 1) for i, row in enumerate(mean)]
            curves.append((g, first, seen))
    if not curves:
        return None
    fig = _new(11, 4.2)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for k, (g, first, seen) in enumerate(curves):
        xs = list(range(1, len(first) + 1))
        left.plot(xs, first, label=_text(g.label, 70), **_style(k))
        right.plot(xs, seen, **_style(k))
    left.set_title("first task's accuracy along the stream", fontsize=10)
    right.set_title("average accuracy over the tasks seen so far", fontsize=10)
    for ax in (left, right):
        ax.set_xlabel("tasks trained")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(
        *left.get_legend_handles_labels(),
        loc="upper center",
        ncol=min(2, len(curves)),
        fontsize=8,
        bbox_to_anchor=(0.5, 0.0),
        frameon=False,
    )
    return Figure(
        name="accuracy_along_stream.png",
        title="Accuracy along the stream",
        caption="Left: R[i][0], the first task's accuracy after each task. Right: mean_{j<=i} R[i][j], "
        "the average over the tasks seen so far. Means over seeds.",
        png=_png(fig),
    )


def _bars_figure(report: Report) -> Figure | None:
    metrics = report.main_metrics
    groups = [g for g in report.groups if any(report.summary(g, m).n for m in metrics)]
    if not groups or not metrics:
        return None
    fig = _new(max(6.0, 1.2 + len(metrics) * (0.5 + 0.35 * len(groups))), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(groups)
    for k, g in enumerate(groups):
        xs, ys, errs = [], [], []
        for j, m in enumerate(metrics):
            s = report.summary(g, m)
            if s.n:
                xs.append(j - 0.4 + width * (k + 0.5))
                ys.append(s.mean)
                errs.append(s.half_width or 0.0)
                ax.scatter([xs[-1]] * s.n, list(s.values.values()), s=8, color="black", zorder=3)
        ax.bar(xs, ys, width=width * 0.95, yerr=errs, capsize=3, color=f"C{k % 10}", label=_text(g.label, 70))
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics, fontsize=9)
    ax.set_ylabel("mean over seeds (95% interval; dots: seeds)")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(2, len(groups)), fontsize=8, frameon=False)
    return Figure(
        name="metric_bars.png",
        title="Main metrics",
        caption="Mean over seeds with 95% Student-t intervals (none for n=1); dots are single seeds.",
        png=_png(fig),
    )


def _heatmap(value: Any) -> list[list[float]] | None:
    """``value`` as a rectangular slots x steps matrix of finite numbers, or None."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        value = [[v] for v in value]  # one value per slot
    if not isinstance(value, list) or not value or not all(isinstance(r, list) and r for r in value):
        return None
    width = len(value[0])
    rows = []
    for row in value:
        if len(row) != width or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
            return None
        if not all(math.isfinite(v) for v in row):
            return None
        rows.append([float(v) for v in row])
    return rows


def trace_tasks(traces: Any) -> tuple[list[tuple[str, dict[str, list[list[float]]]]], str | None]:
    """The tasks of ``extras["memory_traces"]`` to draw (up to :data:`MAX_TRACE_TASKS`), each with
    its slots x steps matrices; or ``([], why)`` when the traces are malformed."""
    if not isinstance(traces, dict) or not isinstance(traces.get("tasks"), dict) or not traces["tasks"]:
        return [], "no 'tasks' mapping"
    try:
        keys = sorted(traces["tasks"], key=lambda k: int(k))
    except (TypeError, ValueError):
        return [], "task keys are not task indices"
    if len(keys) > MAX_TRACE_TASKS:
        picks = sorted({round(i * (len(keys) - 1) / (MAX_TRACE_TASKS - 1)) for i in range(MAX_TRACE_TASKS)})
        keys = [keys[i] for i in picks]
    out = []
    for key in keys:
        entry = traces["tasks"][key]
        if not isinstance(entry, dict):
            return [], f"task {key} is not an object"
        mats = {}
        for kind in ("read", "write", "usage"):
            if kind in entry:
                mat = _heatmap(entry[kind])
                if mat is None:
                    return [], f"task {key} {kind!r} is not a slots x steps matrix of numbers"
                mats[kind] = mat
        if "read" not in mats and "write" not in mats:
            return [], f"task {key} has neither 'read' nor 'write'"
        out.append((str(key), mats))
    return out, None


def _memory_figure(index: int, g: Group, notes: list[str]) -> Figure | None:
    rec = next((r for r in g.records if isinstance(r.get("extras"), dict) and "memory_traces" in r["extras"]), None)
    if rec is None:
        return None
    traces = rec["extras"]["memory_traces"]
    tasks, problem = trace_tasks(traces)
    if problem:
        notes.append(f"memory traces of {g.label!r} (seed {rec['seed']}) not drawn: {problem}")
        return None
    kinds = [k for k in ("read", "write", "usage") if any(k in mats for _, mats in tasks)]
    fig = _new(3.6 * len(kinds), 3.0 * len(tasks) + 0.6, layout="constrained")
    for r, (task, mats) in enumerate(tasks):
        for c, kind in enumerate(kinds):
            ax = fig.add_subplot(len(tasks), len(kinds), r * len(kinds) + c + 1)
            if kind not in mats:
                ax.axis("off")
                continue
            image = ax.imshow(mats[kind], aspect="auto", cmap="magma", interpolation="nearest")
            ax.set_title(f"task {task}: {kind}", fontsize=9)
            ax.set_ylabel("slot", fontsize=8)
            if len(mats[kind][0]) == 1:  # one value per slot
                ax.set_xticks([])
            else:
                ax.set_xlabel("step", fontsize=8)
            ax.tick_params(labelsize=7)
            fig.colorbar(image, ax=ax).ax.tick_params(labelsize=7)
    after = traces.get("after_task")
    when = f", traced after task {after}" if isinstance(after, int) else ""
    fig.suptitle(f"{_text(g.label, 80)} (seed {rec['seed']}{when})", fontsize=10)
    return Figure(
        name=f"memory_{index}.png",
        title=f"Memory weightings: {g.label}",
        caption=f"Read and write weightings per task (slots x steps, averaged over heads and samples) as "
        f"recorded in extras.memory_traces; seed {rec['seed']}{when}.",
        png=_png(fig),
    )


def make_figures(report: Report) -> list[Figure]:
    """Every figure of ``report``; a figure that cannot be drawn is left out with a note in
    ``report.notes`` (the tables are still written)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        report.notes.append("figures left out: matplotlib is not installed")
        return []
    figures: list[Figure] = []
    makers: list[tuple[str, Callable[[], Any]]] = [
        ("accuracy matrices", lambda: _matrix_figures(report)),
        ("accuracy along the stream", lambda: _stream_figure(report)),
        ("metric bars", lambda: _bars_figure(report)),
    ]
    for index, g in enumerate(report.groups):
        makers.append((f"memory traces of {g.label!r}", partial(_memory_figure, index, g, report.notes)))
    for what, make in makers:
        try:
            made = make()
        except Exception as exc:  # noqa: BLE001 - a figure must not cost the tables
            reraise_interrupt(exc)  # an interrupt that surfaced wrapped in another error
            report.notes.append(f"figure {what} left out: {type(exc).__name__}: {exc}")
            continue
        if isinstance(made, list):
            figures.extend(made)
        elif made is not None:
            figures.append(made)
    return figures
