"""Error types that the command line turns into one-line messages."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message is one line saying what was wrong and what is allowed.

    The CLI prints it without a traceback and exits with status 2.
    """


class RunFailed(Exception):
    """A run started but did not complete; its record was written with status ``failed``."""


class NonFiniteLoss(ArithmeticError):
    """The training loss became NaN or infinite: the run diverged and is recorded as failed."""

    def __init__(self, task_index: int, epoch: int, loss: float):
        super().__init__(
            f"training loss became {loss} at task {task_index}, epoch {epoch}: the run diverged "
            "(try a lower train.lr or set train.clip)"
        )
        self.task_index, self.epoch, self.loss = task_index, epoch, loss


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, on one line."""
    return " ".join(f"{type(exc).__name__}: {exc}".split()) or type(exc).__name__
