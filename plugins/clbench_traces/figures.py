"""The traces plugin's report figure: per group, the memory weightings of one traced run.

What the plugin stored in ``extras["memory_traces"]`` is checked before it is drawn: a malformed
entry (a hand-edited or foreign record) becomes a note in the report, never an error.
"""

from __future__ import annotations

import math
from typing import Any

#: The record's ``extras`` key the plugin writes (see :mod:`clbench_traces.plugin`).
KEY = "memory_traces"
#: Tasks shown per memory-trace figure (first, evenly spaced middle ones, last).
MAX_TRACE_TASKS = 4


def heatmap(value: Any) -> list[list[float]] | None:
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
                mat = heatmap(entry[kind])
                if mat is None:
                    return [], f"task {key} {kind!r} is not a slots x steps matrix of numbers"
                mats[kind] = mat
        if "read" not in mats and "write" not in mats:
            return [], f"task {key} has neither 'read' nor 'write'"
        out.append((str(key), mats))
    return out, None


def memory_figure(index: int, g: Any, notes: list[str]) -> Any:
    """The memory-trace figure of report group ``g`` (from its first record that holds traces), or
    None when none does; malformed traces add a line to ``notes`` instead."""
    from clbench.report.figures import Figure, new_figure, png_bytes, safe_text

    rec = next((r for r in g.records if isinstance(r.get("extras"), dict) and KEY in r["extras"]), None)
    if rec is None:
        return None
    traces = rec["extras"][KEY]
    tasks, problem = trace_tasks(traces)
    if problem:
        notes.append(f"memory traces of {g.label!r} (seed {rec['seed']}) not drawn: {problem}")
        return None
    kinds = [k for k in ("read", "write", "usage") if any(k in mats for _, mats in tasks)]
    fig = new_figure(3.6 * len(kinds), 3.0 * len(tasks) + 0.6, layout="constrained")
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
    fig.suptitle(f"{safe_text(g.label, 80)} (seed {rec['seed']}{when})", fontsize=10)
    return Figure(
        name=f"memory_{index}.png",
        title=f"Memory weightings: {g.label}",
        caption=f"Read and write weightings per task (slots x steps, averaged over heads and samples) as "
        f"recorded in extras.memory_traces by the traces plugin; seed {rec['seed']}{when}.",
        png=png_bytes(fig),
    )


def report_figures(report: Any) -> list[Any]:
    """One memory-trace figure per report group that has a traced run."""
    figures = []
    for index, group in enumerate(report.groups):
        figure = memory_figure(index, group, report.notes)
        if figure is not None:
            figures.append(figure)
    return figures
