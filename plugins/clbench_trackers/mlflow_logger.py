"""MLflow: one MLflow run per clbench run, named by the run's label and id; a sweep is one experiment.

The tracking URI is ``MLFLOW_TRACKING_URI`` when set (a server, ``http://host:5000``, or any store
MLflow knows); else a local store under ``<results>/mlruns``: a SQLite database
(``mlruns/mlflow.db``) with artifacts in ``mlruns/artifacts``. (MLflow 3 keeps its file-system
store in maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``; a
``file:`` URI in ``MLFLOW_TRACKING_URI`` works with that opt-out.) Browse the local store with
``mlflow ui --backend-store-uri sqlite:///RESULTS/mlruns/mlflow.db``.

The experiment is the sweep's name (an experiment file's stem, e.g. ``verdict``), or ``clbench``
for single runs. Runs carry the tags ``clbench.run_id``, ``clbench.label`` and ``clbench.status``;
a resumed run goes on in the MLflow run its interrupted attempt left.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clbench.loggers import run_title
from clbench_trackers.base import TrackerLogger

#: The experiment of runs started with ``clbench run``.
DEFAULT_EXPERIMENT = "clbench"
#: MLflow's limit on a parameter value's length (MLflow 2.x and later).
MAX_PARAM = 6000
STATUS = {"ok": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


def local_store(results: Path) -> tuple[str, str]:
    """The default store under ``results``: (tracking URI, artifact root URI)."""
    root = (results / "mlruns").resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


class MlflowLogger(TrackerLogger):
    """Logs one run through ``mlflow.tracking.MlflowClient`` (no global state: several runs may
    log from one process, one after the other)."""

    def __init__(self, context: Any):
        super().__init__(context)
        import logging

        from mlflow.tracking import MlflowClient

        for name in ("mlflow.store.db.utils", "alembic"):  # "Creating initial MLflow database tables...": not news
            logging.getLogger(name).setLevel(logging.WARNING)

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        self.lock_dir: Path | None = None
        artifacts = None
        if not uri:
            uri, artifacts = local_store(context.results_dir or Path("."))
            self.lock_dir = (context.results_dir or Path(".")) / "mlruns"  # parallel workers share one SQLite file
        with self._locked():
            self.client = MlflowClient(tracking_uri=uri)
            experiment_id = self._experiment(context.experiment or DEFAULT_EXPERIMENT, artifacts)
            self.run_id = self._resumable(experiment_id, context.run_id)
            if self.run_id is None:
                run = self.client.create_run(
                    experiment_id,
                    run_name=run_title(context),
                    tags={"clbench.run_id": context.run_id, "clbench.label": context.label or ""},
                )
                self.run_id = run.info.run_id
        self.uri = uri

    def _experiment(self, name: str, artifacts: str | None) -> str:
        """The id of experiment ``name``, created if need be (the sweep's parallel workers may race
        to create it: the loser takes the winner's)."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(
                self.client.create_experiment(name, artifact_location=f"{artifacts}/{name}" if artifacts else None)
            )
        except Exception:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the local store's folder lock (nothing for a server or another store)."""
        if self.lock_dir is None:
            yield
            return
        from clbench.files import folder_lock

        self.lock_dir.mkdir(parents=True, exist_ok=True)
        with folder_lock(self.lock_dir):
            yield

    def _resumable(self, experiment_id: str, run_id: str) -> str | None:
        """The MLflow run that an interrupted attempt at this run left (running or killed), set
        running again; None when there is none (a failed or finished attempt is not continued)."""
        found = self.client.search_runs([experiment_id], filter_string=f"tags.`clbench.run_id` = '{run_id}'")
        for run in found:
            if run.info.status in ("RUNNING", "KILLED"):
                self.client.update_run(run.info.run_id, status="RUNNING")
                return str(run.info.run_id)
        return None

    def log_params(self, params: dict[str, Any]) -> None:
        """Every parameter as text (cut at MLflow's length limit)."""
        from mlflow.entities import Param

        items = [Param(k, (v if isinstance(v, str) else repr(v))[:MAX_PARAM]) for k, v in params.items()]
        existing = self.client.get_run(self.run_id).data.params
        items = [p for p in items if p.key not in existing]  # a resumed run: MLflow refuses to change a parameter
        with self._locked():
            for start in range(0, len(items), 100):  # log_batch takes at most 100 parameters a call
                self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_scalars(self, values: dict[str, float], step: int, axis: str) -> None:
        """One batch of metrics at ``step``."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        with self._locked():
            self.client.log_batch(self.run_id, metrics=metrics)

    def log_image(self, name: str, title: str, png: bytes) -> None:
        """The figure as an artifact ``figures/<name>``."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(png)
            with self._locked():
                self.client.log_artifact(self.run_id, str(path), artifact_path="figures")

    def log_final(self, metrics: dict[str, float], step: int, status: str) -> None:
        """The final metrics at ``step`` and the run's status as a tag."""
        if metrics:
            self.log_scalars(metrics, step, "final")
        with self._locked():
            self.client.set_tag(self.run_id, "clbench.status", status)

    def finish(self, status: str) -> None:
        """End the MLflow run: FINISHED, FAILED or KILLED (interrupted), with the status as a tag."""
        with self._locked():
            self.client.set_tag(self.run_id, "clbench.status", status)
            self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))
