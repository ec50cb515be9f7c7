"""The trackers plugin: TensorBoard, MLflow and Weights & Biases loggers for ``--log``.

Each is an optional extra (``pip install 'clbench[tensorboard]'`` and so on); without it the logger
is listed by ``clbench list loggers`` as unavailable with that command, and asking for it is a
one-line error. The modules that import the trackers are loaded only when a run uses them.
"""

from __future__ import annotations

from typing import Any

from clbench import hookimpl


def tensorboard(context: Any) -> Any:
    """A :class:`clbench_trackers.tensorboard.TensorBoardLogger` for the run."""
    from clbench_trackers.tensorboard import TensorBoardLogger

    return TensorBoardLogger(context)


def mlflow(context: Any) -> Any:
    """A :class:`clbench_trackers.mlflow_logger.MlflowLogger` for the run."""
    from clbench_trackers.mlflow_logger import MlflowLogger

    return MlflowLogger(context)


def wandb(context: Any) -> Any:
    """A :class:`clbench_trackers.wandb_logger.WandbLogger` for the run."""
    from clbench_trackers.wandb_logger import WandbLogger

    return WandbLogger(context)


@hookimpl
def clbench_register_loggers(register: Any) -> None:
    """Register the three trackers."""
    register(
        "tensorboard",
        tensorboard,
        description="TensorBoard event files in RESULTS/tensorboard/RUN_ID",
        requires=("tensorboard",),
        install_hint="pip install 'clbench[tensorboard]'",
    )
    register(
        "mlflow",
        mlflow,
        description="MLflow: MLFLOW_TRACKING_URI, else a local store in RESULTS/mlruns; a sweep is one experiment",
        requires=("mlflow",),
        install_hint="pip install 'clbench[mlflow]'",
    )
    register(
        "wandb",
        wandb,
        description="Weights & Biases, files in RESULTS/wandb; offline without an API key (WANDB_MODE)",
        requires=("wandb",),
        install_hint="pip install 'clbench[wandb]'",
    )
