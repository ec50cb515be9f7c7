"""The plugin's section of ``clbench report``: time and accuracy per task, per configuration.

Built from the timelines the hooks stored in the records (``extras["timeline"]``); records without
one (runs made without the plugin) are left out, and a group with none gets no row.
"""

from __future__ import annotations

from typing import Any

from clbench_example_hooks.plugin import KEY


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def timeline_table(report: Any) -> Any:
    """A :class:`clbench.report.tables.Table` with one row per report group that has timelines:
    runs, mean training and wall seconds per task, mean last-epoch loss; None when no record has a
    timeline. Cells are plain text (each report format escapes them)."""
    from clbench.report.tables import Table

    rows = []
    for group in report.groups:
        timelines = [r["extras"][KEY] for r in group.records if isinstance((r.get("extras") or {}).get(KEY), dict)]
        tasks = [t for tl in timelines for t in tl.get("tasks", []) if isinstance(t, dict)]
        if not tasks:
            continue
        train = _mean([t["train_s"] for t in tasks if isinstance(t.get("train_s"), (int, float))])
        wall = _mean([t["wall_s"] for t in tasks if isinstance(t.get("wall_s"), (int, float))])
        last = _mean([t["epoch_loss"][-1] for t in tasks if t.get("epoch_loss")])
        rows.append(
            [group.label, str(len(timelines))] + ["-" if v is None else f"{v:.3f}" for v in (train, wall, last)]
        )
    if not rows:
        return None
    return Table(
        title="Time per task (example-hooks plugin)",
        header=["configuration", "runs", "train s / task", "wall s / task", "last-epoch loss"],
        rows=rows,
        align=["l", "r", "r", "r", "r"],
        intro="Means over every task of every run with a timeline (extras.timeline).",
        notes=["The last-epoch loss is empty for strategies: they emit no clbench_epoch_end."],
    )
