"""Weights & Biases: one W&B run per clbench run, in the project named by the sweep (``clbench`` for
single runs), files under ``<results>/wandb``.

Without an account it works offline: the mode is ``WANDB_MODE`` when set, else ``offline`` unless
an API key is configured (``WANDB_API_KEY``, or ``wandb login``'s entry in ``~/.netrc``). Offline
runs are uploaded later with ``wandb sync RESULTS/wandb/wandb/offline-run-*``. The W&B run id is
the clbench run id, so a resumed run goes on in the same W&B run. Losses are plotted against
``epoch`` and accuracies against ``task`` (W&B's ``define_metric``); the final metrics go to the
run summary, the figures are images.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from clbench.loggers import run_title
from clbench_trackers.base import TrackerLogger

DEFAULT_PROJECT = "clbench"


def has_api_key() -> bool:
    """True when W&B has credentials here (``WANDB_API_KEY``, or an ``api.wandb.ai`` entry in ``~/.netrc``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text(errors="replace")
    except OSError:
        return False


def wandb_mode() -> str:
    """``WANDB_MODE`` when set, else online with credentials and offline without."""
    return os.environ.get("WANDB_MODE") or ("online" if has_api_key() else "offline")


class WandbLogger(TrackerLogger):
    """Logs one run with ``wandb.init(...)`` and the run object it returns."""

    def __init__(self, context: Any):
        super().__init__(context)
        import wandb

        folder = (context.results_dir or Path(".")) / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        self.wandb = wandb
        self.run = wandb.init(
            project=context.experiment or DEFAULT_PROJECT,
            name=run_title(context),
            id=context.run_id,
            resume="allow",
            dir=str(folder),
            mode=wandb_mode(),
            tags=[context.label] if context.label else None,
            settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
        )
        self.run.define_metric("epoch")
        self.run.define_metric("task")
        self.run.define_metric("train/*", step_metric="epoch")
        self.run.define_metric("accuracy/*", step_metric="task")

    def log_params(self, params: dict[str, Any]) -> None:
        """The parameters as the run's config."""
        self.run.config.update(params, allow_val_change=True)

    def log_scalars(self, values: dict[str, float], step: int, axis: str) -> None:
        """The values with their step (``epoch`` or ``task``)."""
        self.run.log({axis: step, **values})

    def log_image(self, name: str, title: str, png: bytes) -> None:
        """The figure as a ``wandb.Image`` under ``figures/<name>``."""
        from matplotlib.image import imread

        image = imread(io.BytesIO(png), format="png")[:, :, :3]  # float [H, W, 3] in [0, 1]
        self.run.log(
            {f"figures/{name.rsplit('.', 1)[0]}": self.wandb.Image((image * 255).astype("uint8"), caption=title)}
        )

    def log_final(self, metrics: dict[str, float], step: int, status: str) -> None:
        """The final metrics and the status in the run summary."""
        self.run.summary.update({**metrics, "clbench.status": status})

    def finish(self, status: str) -> None:
        """Finish the W&B run (exit code 0 when the run is ok, 1 otherwise)."""
        self.run.finish(exit_code=0 if status == "ok" else 1)
