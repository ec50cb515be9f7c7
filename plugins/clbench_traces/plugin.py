"""Memory traces as a lifecycle-hook plugin.

When the run's model options have ``trace_samples > 0`` (the ``dnc`` and ``ntm`` models do) and the
model has a ``trace(x)`` method, this plugin runs the first ``trace_samples`` test samples of every
task through it after the last task and stores, per task, the read and write weightings and the
usage averaged over samples and heads, as slots x steps lists, in ``extras["memory_traces"]``:

    {"after_task": T-1, "samples": n, "tasks": {"0": {"read": [[...]], "write": [[...]], "usage": [[...]]}, ...}}

``clbench traces RUN_ID`` and ``clbench report`` draw them as heatmaps.
"""

from __future__ import annotations

from typing import Any

from clbench import hookimpl

KEY = "memory_traces"


def _slots_by_steps(weights: Any) -> list[list[float]]:
    """[B, T, heads, N] or [B, T, N] -> mean over samples (and heads) as N x T nested lists."""
    w = weights.detach().float()
    if w.dim() == 4:
        w = w.mean(dim=2)
    return [[round(float(v), 5) for v in row] for row in w.mean(dim=0).T]  # [N, T]


def _model_of(learner: Any) -> Any:
    return getattr(learner, "model", None)


@hookimpl
def clbench_run_end(context: Any, record: dict[str, Any]) -> None:
    """After a successful run, trace a few test samples of every task."""
    opts = context.config.options.get("model")
    n = int(getattr(opts, "trace_samples", 0) or 0)
    model = _model_of(context.learner)
    if n <= 0 or record.get("status") != "ok" or model is None or not hasattr(model, "trace"):
        return
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
