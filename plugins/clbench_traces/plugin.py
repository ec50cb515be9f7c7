"""Memory traces: a lifecycle-hook plugin, its ``clbench traces`` command and its report figure.

When the run's model is :class:`clbench.components.Traceable` and asks for traces
(``samples_to_trace > 0``: the ``dnc`` and ``ntm`` models with ``--set model.trace_samples=N``), this plugin runs that many test samples of every
task through it after the last task and stores, per task, the read and write weightings and the
usage averaged over samples and heads, as slots x steps lists, in ``extras["memory_traces"]``:

    {"after_task": T-1, "samples": n, "tasks": {"0": {"read": [[...]], "write": [[...]], "usage": [[...]]}, ...}}

``clbench traces RUN_ID`` (:mod:`clbench_traces.command`) and ``clbench report``
(:mod:`clbench_traces.figures`) draw them as heatmaps; both come from this plugin's hooks.
"""

from __future__ import annotations

from typing import Any

from clbench import hookimpl
from clbench.components import Traceable
from clbench_traces.figures import KEY


def _slots_by_steps(weights: Any) -> list[list[float]]:
    """[B, T, heads, N] or [B, T, N] -> mean over samples (and heads) as N x T nested lists."""
    w = weights.detach().float()
    if w.dim() == 4:
        w = w.mean(dim=2)
    return [[round(float(v), 5) for v in row] for row in w.mean(dim=0).T]  # [N, T]


@hookimpl
def clbench_run_end(context: Any, record: dict[str, Any]) -> None:
    """After a successful run, trace a few test samples of every task, when the model is
    :class:`~clbench.components.Traceable` and asks for it (``samples_to_trace > 0``)."""
    model = context.learner.model if context.learner is not None else None
    if record.get("status") != "ok" or not isinstance(model, Traceable) or model.samples_to_trace <= 0:
        return
    n = int(model.samples_to_trace)
    import torch

    model.eval()
    tasks: dict[str, Any] = {}
    with torch.no_grad():
        for index, task in enumerate(context.stream.tasks):
            trace = model.trace(task.test_x[:n])
            entry = {}
            for name, key in (("read", "read_weights"), ("write", "write_weights"), ("usage", "usage")):
                if key in trace:
                    entry[name] = _slots_by_steps(trace[key])
            tasks[str(index)] = entry
    context.extras[KEY] = {"after_task": len(context.stream.tasks) - 1, "samples": n, "tasks": tasks}


@hookimpl
def clbench_register_commands(cli: Any) -> None:
    """Add ``clbench traces``."""
    from clbench_traces.command import traces_command

    cli.add_command(traces_command)


@hookimpl
def clbench_report_figures(report: Any) -> list[Any]:
    """One memory-trace figure per report group with a traced run."""
    from clbench_traces.figures import report_figures

    return report_figures(report)
