"""Helpers for the report tests: synthetic records with known matrices, written as real files.

(No tests here; the name keeps it among the report's test files.)
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from clbench.config import run_id_of
from clbench.metrics import CONVENTIONS, compute_all

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

BASE_CONFIG: dict[str, Any] = {
    "benchmark": {"name": "shifting-linear", "options": {"n_tasks": 3, "seed": None}},
    "model": {"name": "mlp", "options": {"hidden_sizes": [128, 128]}},
    "meta": {"name": "none", "options": {}},
    "replay": {"name": "none", "options": {}},
    "strategy": None,
    "train": {"epochs": 1, "lr": 0.001},
    "seed": 0,
}


def config(
    *,
    model: str = "mlp",
    meta: str = "none",
    replay: str = "none",
    strategy: str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    train: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A canonical-looking config with the given components and extra options per section."""
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["model"]["name"], cfg["meta"]["name"], cfg["replay"]["name"] = model, meta, replay
    if model != "mlp":
        cfg["model"]["options"] = {}
    if strategy is not None:
        cfg["strategy"] = {"name": strategy, "options": {}}
    for section, opts in (options or {}).items():
        cfg[section]["options"].update(opts)
    cfg["train"].update(train or {})
    cfg["seed"] = seed
    return cfg


def matrix_with_final_row(final: list[float], diag: float = 0.9) -> list[list[float]]:
    """A T x T matrix whose last row is ``final`` and whose earlier rows have ``diag`` on the diagonal."""
    T = len(final)
    rows = [[diag if j == i else (0.95 if j < i else 0.2) for j in range(T)] for i in range(T - 1)]
    return rows + [list(final)]


def record(
    cfg: dict[str, Any],
    *,
    matrix: list[list[float]] | None = None,
    status: str = "ok",
    error: str | None = None,
    metrics: dict[str, Any] | None = None,
    extras: dict[str, Any] | None = None,
    adapted: list[list[float]] | None = None,
) -> dict[str, Any]:
    """A record for ``cfg`` with metrics computed from ``matrix`` (or given), like the harness writes."""
    T = len(matrix) if matrix else 3
    init = [0.2] * T
    rec: dict[str, Any] = {
        "schema_version": 1,
        "run_id": run_id_of(cfg),
        "status": status,
        "error": error,
        "config": cfg,
        "seed": cfg["seed"],
        "versions": {"clbench": "0.1.0", "torch": "2.x-test", "python": "3.11", "plugins": {}},
        "accuracy_matrix": matrix or [],
        "init_accuracy": init if matrix else [],
        "metric_conventions": dict(CONVENTIONS),
        "metrics": {},
        "timings": {},
        "started_at": "2025-01-01T00:00:00+00:00",
        "duration_s": 1.0,
        "extras": extras or {},
        "hook_errors": [],
    }
    if status == "ok":
        rec["metrics"] = compute_all(matrix, init)
        if metrics:
            rec["metrics"].update(metrics)
        if adapted:
            rec["adapted_accuracy_matrix"] = adapted
            rec["adapted_metrics"] = compute_all(adapted, init)
    return rec


def write(results: Path, rec: dict[str, Any], name: str | None = None) -> Path:
    """Write ``rec`` to ``results/runs/<run_id>.json`` (or ``name``)."""
    runs = results / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / (name or f"{rec['run_id']}.json")
    path.write_text(json.dumps(rec), encoding="utf-8")
    return path


def write_group(results: Path, finals: dict[int, list[float]], **kwargs: Any) -> list[Path]:
    """Write one record per seed of one configuration; ``finals`` maps seed -> last row of R."""
    extras = kwargs.pop("extras", None)
    return [
        write(results, record(config(seed=s, **kwargs), matrix=matrix_with_final_row(f), extras=extras))
        for s, f in finals.items()
    ]


def standard_results(results: Path) -> Path:
    """Two groups over seeds 0-2: the plain baseline (avg 0.5/0.6/0.7) and maml+prioritized (higher)."""
    write_group(results, {0: [0.5] * 3, 1: [0.6] * 3, 2: [0.7] * 3})
    write_group(
        results,
        {0: [0.7, 0.8, 0.9], 1: [0.75, 0.8, 0.9], 2: [0.9, 0.9, 0.95]},
        model="dnc",
        meta="maml",
        replay="prioritized",
    )
    return results
