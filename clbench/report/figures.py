"""Report figures, drawn with matplotlib's Agg canvas into PNG bytes (dpi 100).

Each figure is a ``matplotlib.figure.Figure`` on a ``FigureCanvasAgg``: no pyplot state, no
interactive backend, nothing left open after saving. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clbench.interrupts import reraise_interrupt
from clbench.report.content import Block, Report
from clbench.report.stats import mean_matrix, metric_range
from clbench.text import printable

DPI = 100
#: Groups per accuracy-matrix image; more groups give more images.
MATRICES_PER_IMAGE = 12
#: Characters per line of a legend entry; longer labels are wrapped, never cut short of this.
LEGEND_WIDTH = 60
#: Lines a legend entry may take before the middle of the label is left out.
LEGEND_LINES = 4


@dataclass
class Figure:
    """One PNG image of a report: file name, title, a caption, and the bytes."""

    name: str
    title: str
    caption: str
    png: bytes


def new_figure(width: float, height: float, layout: Any = None) -> Any:
    """A matplotlib figure of ``width`` x ``height`` inches (capped) that belongs to no pyplot state,
    for a report figure; turn it into PNG bytes with :func:`png_bytes`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(min(width, 30.0), min(height, 40.0)), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Any) -> bytes:
    """The PNG of ``fig`` (tight bounding box); the figure is cleared afterwards."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    fig.clear()  # release the artists; the figure is not registered anywhere else
    return buf.getvalue()


def safe_text(label: str, limit: int = 48) -> str:
    """A label safe for matplotlib text (no mathtext) and short enough for a subplot title."""
    label = printable(label)
    label = label if len(label) <= limit else label[: limit - 1] + "…"
    return label.replace("$", r"\$")


def wrap_label(label: str, width: int = LEGEND_WIDTH, lines: int = LEGEND_LINES) -> str:
    """``label`` safe for matplotlib text (see :func:`safe_text`), wrapped onto lines of at most
    ``width`` characters (at spaces where it can). A label longer than ``lines`` lines loses the
    middle of its text, not its end: the options and stream settings that tell labels apart come
    last."""
    import textwrap

    full = printable(label)
    limit = len(full)
    while True:
        text = full
        if len(full) > limit:
            tail = min(len(full) // 2, limit // 2)
            text = full[: limit - tail - 1] + "…" + full[-tail:]
        wrapped = textwrap.wrap(text, width=width, break_long_words=True, break_on_hyphens=False) or [""]
        if len(wrapped) <= lines or limit <= width:
            break
        limit = min(limit, width * lines) - width // 4
    return "\n".join(wrapped).replace("$", r"\$")


def _legend(fig: Any, handles: list[Any], labels: list[str], anchor: Any) -> None:
    """A legend below ``anchor`` (an axes, or the figure), outside the plot: one column when the
    entries are long, two otherwise."""
    longest = max((len(line) for label in labels for line in label.split("\n")), default=0)
    ncol = 1 if longest > 34 or len(labels) < 2 else 2
    kwargs = {"loc": "upper center", "ncol": ncol, "fontsize": 8, "frameon": False, "handlelength": 2.5}
    if anchor is fig:
        fig.legend(handles, labels, bbox_to_anchor=(0.5, 0.0), **kwargs)
    else:
        anchor.legend(handles, labels, bbox_to_anchor=(0.5, -0.1), **kwargs)


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
        fig = new_figure(4.2 * ncols, 3.8 * nrows, layout="constrained")  # room for titles of several lines
        image = None
        for k, (_i, g, mean, n) in enumerate(chunk):
            ax = fig.add_subplot(nrows, ncols, k + 1)
            size = len(mean)
            image = ax.imshow(mean, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
            title = wrap_label(g.label, width=44, lines=4)
            ax.set_title(f"{title}\nmean of {n} seed{'s' if n != 1 else ''}", fontsize=8)
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
                png=png_bytes(fig),
            )
        )
    return out


def _style(k: int) -> dict[str, Any]:
    return {"color": f"C{k % 10}", "linestyle": ("-", "--", ":", "-.")[(k // 10) % 4], "marker": "o", "markersize": 3}


def _suffix(report: Report, block: Block) -> tuple[str, str]:
    """The file-name suffix (none when there is one block) and the title suffix (the block's
    heading: a stream of several, or all streams compared by force) of a block's figure."""
    name = "" if len(report.blocks) == 1 else f"_{block.number}"
    return name, (f" — {block.title}" if block.title else "")


def _legend_text(block: Block, group: Any) -> str:
    """What a block's figure calls a group: its name when the block is one stream (the title names
    the stream), its whole label when the block mixes streams."""
    return wrap_label(group.label if block.across else group.name)


def _along_stream(mean: list[list[float]]) -> tuple[list[float], list[float]]:
    """From a mean accuracy matrix [T][T]: the first task's accuracy after each task [T] and the
    average over the tasks seen so far [T]."""
    return [row[0] for row in mean], [sum(row[: i + 1]) / (i + 1) for i, row in enumerate(mean)]


def _stream_figure(report: Report, block: Block) -> Figure | None:
    curves = []
    for g in block.groups:
        mean, _ = mean_matrix(g.records)
        if mean is not None:
            adapted, _ = mean_matrix(g.records, "adapted_accuracy_matrix")
            curves.append((g, *_along_stream(mean), _along_stream(adapted) if adapted is not None else None))
    if not curves:
        return None
    fig = new_figure(11, 4.2)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for k, (g, first, seen, adapted_curves) in enumerate(curves):
        xs = list(range(1, len(first) + 1))
        style = _style(k)
        if block.across:  # one line style per stream: curves of different streams stay apart
            style["linestyle"] = ("-", "--", ":", "-.")[(g.stream - 1) % 4]
        left.plot(xs, first, label=_legend_text(block, g), **style)
        right.plot(xs, seen, **style)
        if adapted_curves is not None:  # the same colour, thin, crosses: after test-time adaptation
            thin = {**style, "linewidth": 1.0, "marker": "x", "markersize": 4, "alpha": 0.8}
            left.plot(xs[: len(adapted_curves[0])], adapted_curves[0], **thin)
            right.plot(xs[: len(adapted_curves[1])], adapted_curves[1], **thin)
    any_adapted = any(c[3] is not None for c in curves)
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
    name, title = _suffix(report, block)
    if title:
        fig.suptitle(wrap_label(block.title, width=110, lines=2), fontsize=10)
    handles, labels = left.get_legend_handles_labels()
    caption = (
        "Left: R[i][0], the first task's accuracy after each task. Right: mean_{j<=i} R[i][j], "
        "the average over the tasks seen so far. Means over seeds."
    )
    if any_adapted:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="0.3", linewidth=1.0, marker="x", markersize=4))
        labels.append("thin, x: after test-time adaptation (the group's colour)")
        caption += (
            " Thin lines with crosses: the same from the adapted accuracy matrix (each task evaluated"
            " after the meta-learner's test-time adaptation), for the groups that record one."
        )
    _legend(fig, handles, labels, fig)
    return Figure(
        name=f"accuracy_along_stream{name}.png",
        title=f"Accuracy along the stream{title}",
        caption=caption,
        png=png_bytes(fig),
    )


def _bars_figure(report: Report, block: Block) -> Figure | None:
    metrics = report.main_metrics
    groups = [g for g in block.groups if any(report.summary(g, m).n for m in metrics)]
    if not groups or not metrics:
        return None
    fig = new_figure(max(6.0, 1.2 + len(metrics) * (0.5 + 0.35 * len(groups))), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(groups)
    clipped = False
    for k, g in enumerate(groups):
        xs, ys, below, above = [], [], [], []
        for j, m in enumerate(metrics):
            s = report.summary(g, m)
            if s.n:
                mean = float(s.mean or 0.0)
                xs.append(j - 0.4 + width * (k + 0.5))
                ys.append(mean)
                low, high = s.low, s.high  # clipped to the metric's range
                below.append(0.0 if low is None else max(0.0, mean - low))
                above.append(0.0 if high is None else max(0.0, high - mean))
                clipped = clipped or s.clipped
                ax.scatter([xs[-1]] * s.n, list(s.values.values()), s=8, color="black", zorder=3)
        ax.bar(
            xs, ys, width=width * 0.95, yerr=[below, above], capsize=3, color=f"C{k % 10}", label=_legend_text(block, g)
        )
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics, fontsize=9)
    ax.set_ylabel("mean over seeds (95% interval; dots: seeds)")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.grid(axis="y", alpha=0.3)
    ranges = [metric_range(m) for m in metrics]
    if all(r is not None for r in ranges):  # keep the axis within what the metrics can be
        lows = [r[0] for r in ranges if r is not None]
        highs = [r[1] for r in ranges if r is not None]
        bottom, top = ax.get_ylim()
        span = max(highs) - min(lows)
        ax.set_ylim(max(bottom, min(lows)), min(top, max(highs) + 0.02 * span))
    name, title = _suffix(report, block)
    if title:
        ax.set_title(wrap_label(block.title, width=90, lines=2), fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    _legend(fig, handles, labels, ax)
    caption = "Mean over seeds with 95% Student-t intervals (none for n=1); dots are single seeds."
    if clipped:
        caption += (
            " Intervals that reached past a metric's range are clipped to it (accuracies lie in [0, 1];"
            " bwt, fwt and forgetting in [-1, 1])."
        )
    return Figure(name=f"metric_bars{name}.png", title=f"Main metrics{title}", caption=caption, png=png_bytes(fig))


def make_figures(report: Report, host: Any = None) -> list[Figure]:
    """Every figure of ``report``: the core's, then those plugins add through the
    ``clbench_report_figures`` hook of ``host`` (a :class:`clbench.plugins.PluginHost`; None: no
    plugin figures). A figure that cannot be drawn, or a plugin that fails, is left out with a note
    in ``report.notes`` (the tables are still written)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        report.notes.append("figures left out: matplotlib is not installed")
        return []
    figures: list[Figure] = []
    makers: list[tuple[str, Callable[[], Any]]] = [("accuracy matrices", lambda: _matrix_figures(report))]
    for what, maker in (("accuracy along the stream", _stream_figure), ("metric bars", _bars_figure)):
        for block in report.blocks:
            where = f" ({block.title})" if block.title else ""
            makers.append((what + where, functools.partial(maker, report, block)))
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
    if host is not None:
        for plugin, made in host.collect("clbench_report_figures", report.notes, report=report):
            for figure in made or []:
                if isinstance(figure, Figure):
                    figures.append(figure)
                else:
                    report.notes.append(f"plugin {plugin!r} gave a figure that is not a clbench Figure; left out")
    return _unique_names(figures)


def _unique_names(figures: list[Figure]) -> list[Figure]:
    """The figures, each later one whose file name is taken renamed ``<stem>_2.png`` and so on."""
    seen: set[str] = set()
    out = []
    for figure in figures:
        name, stem, k = figure.name, figure.name.rsplit(".", 1)[0], 1
        while name in seen:
            k += 1
            name = f"{stem}_{k}.png"
        seen.add(name)
        out.append(figure if name == figure.name else Figure(name, figure.title, figure.caption, figure.png))
    return out
