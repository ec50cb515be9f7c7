"""TensorBoard: event files under ``<results>/tensorboard/<run_id>/`` (torch's ``SummaryWriter``).

Scalars under the tags of :mod:`clbench_trackers.base`; the configuration as a text table
(``config``) and, at the end, in TensorBoard's HParams view together with the final metrics; the
figures as images (``figures/<name>``). A resumed run appends to the same folder.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from clbench_trackers.base import TrackerLogger


def log_dir(context: Any) -> Path:
    """Where a run's event files go: ``<results>/tensorboard/<run_id>`` (``./tensorboard`` without a results folder)."""
    return (context.results_dir or Path(".")) / "tensorboard" / context.run_id


def hparam_value(value: Any) -> Any:
    """A value TensorBoard's HParams accept (bool, int, float, str): lists and None as JSON text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


class TensorBoardLogger(TrackerLogger):
    """Writes one run's event files with ``torch.utils.tensorboard.SummaryWriter``."""

    def __init__(self, context: Any):
        super().__init__(context)
        from torch.utils.tensorboard import SummaryWriter

        self.dir = log_dir(context)
        self.writer = SummaryWriter(log_dir=str(self.dir))
        self.params: dict[str, Any] = {}

    def log_params(self, params: dict[str, Any]) -> None:
        """The configuration as a markdown table (TEXT tab); kept for the HParams view at the end."""
        self.params = {k: hparam_value(v) for k, v in params.items()}
        rows = "\n".join(f"| {k} | {json.dumps(v) if not isinstance(v, str) else v} |" for k, v in params.items())
        self.writer.add_text("config", f"| parameter | value |\n|---|---|\n{rows}", 0)
        self.writer.flush()

    def log_scalars(self, values: dict[str, float], step: int, axis: str) -> None:
        """One scalar per tag at ``step``."""
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()  # rows show up in a TensorBoard that is watching the run

    def log_image(self, name: str, title: str, png: bytes) -> None:
        """The figure as an image [H, W, C] under ``figures/<name without .png>``."""
        from matplotlib.image import imread

        image = imread(io.BytesIO(png), format="png")  # float [H, W, 4] in [0, 1]
        self.writer.add_image(f"figures/{name.rsplit('.', 1)[0]}", image[:, :, :3], 0, dataformats="HWC")

    def log_final(self, metrics: dict[str, float], step: int, status: str) -> None:
        """The final metrics as scalars at ``step``, and the parameters with them in the HParams view."""
        from torch.utils.tensorboard.summary import hparams

        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, step)
        if self.params and metrics:
            experiment, start, end = hparams(self.params, metrics)
            for summary in (experiment, start, end):
                self.writer.file_writer.add_summary(summary)
        self.writer.flush()

    def finish(self, status: str) -> None:
        """Flush and close the event file."""
        self.writer.close()
