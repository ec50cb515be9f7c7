"""``clbench traces RUN_ID``: memory traces of one run drawn as heatmaps (slots x steps, per task).

Traces are what a lifecycle plugin stored in the record's ``extras["memory_traces"]`` (see
``clbench_traces``): per task, read and write weightings and usage, each slots x steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from clbench.errors import UserError

KINDS = ("read", "write", "usage")


def pick_tasks(available: list[str], wanted: str | None, limit: int = 6) -> list[str]:
    """Task keys to draw: those asked for (``"0,5,19"``), else up to ``limit`` spread evenly."""
    if wanted:
        keys = [k.strip() for k in wanted.split(",") if k.strip()]
        missing = [k for k in keys if k not in available]
        if missing:
            raise UserError(f"no traces for task(s) {', '.join(missing)}; traced tasks: {', '.join(available)}")
        return keys
    if len(available) <= limit:
        return available
    step = (len(available) - 1) / (limit - 1)
    return [available[round(i * step)] for i in range(limit)]


def draw(traces: dict[str, Any], tasks: list[str], out: Path, title: str) -> Path:
    """One row per task, one column per kind (read, write, usage): heatmaps of slots x steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in KINDS if any(k in traces["tasks"][t] for t in tasks)]
    fig, axes = plt.subplots(len(tasks), len(kinds), figsize=(3.2 * len(kinds), 2.4 * len(tasks)), squeeze=False)
    for r, task in enumerate(tasks):
        for c, kind in enumerate(kinds):
            ax = axes[r][c]
            data = traces["tasks"][task].get(kind)
            if not data:
                ax.axis("off")
                continue
            im = ax.imshow(data, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
            ax.set_title(f"task {task}: {kind}", fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            ax.set_ylabel("memory slot", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out


@click.command("traces")
@click.argument("run_id")
@click.option("--results", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Results folder to look in.")
@click.option("--out", type=click.Path(dir_okay=False), help="PNG to write. Default: RESULTS/traces_RUN_ID.png.")
@click.option("--tasks", metavar="I,J,...", help="Tasks to draw (default: up to 6, spread over the stream).")
def traces_command(run_id: str, results: str, out: str | None, tasks: str | None) -> None:
    """Draw the memory traces of RUN_ID (run with model.trace_samples > 0) as heatmaps."""
    from clbench.records import find_record, read_record

    path = find_record(results, run_id)
    record = read_record(path) or {}
    traces = (record.get("extras") or {}).get("memory_traces")
    if not traces or not traces.get("tasks"):
        raise UserError(f"run {record.get('run_id', run_id)} has no memory traces; "
                        "run a memory model with --set model.trace_samples=4")
    target = Path(out) if out else Path(results) / f"traces_{record['run_id']}.png"
    if target.suffix.lower() != ".png":
        raise UserError(f"--out {str(target)!r} must end in .png")
    keys = pick_tasks(sorted(traces["tasks"], key=int), tasks)
    model = record["config"]["model"]["name"]
    title = f"memory traces of run {record['run_id']} ({model}), after task {traces.get('after_task')}, " \
            f"mean over {traces.get('samples')} test samples"
    click.echo(str(draw(traces, keys, target, title)))
