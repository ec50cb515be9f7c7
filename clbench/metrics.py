"""Continual-learning metrics: pure functions of the accuracy matrix and the initial accuracies.

``R[i][j]`` is the test accuracy on task j after training through task i (T x T); ``b[j]`` is the
accuracy on task j before any training. The definitions (GEM's BWT and FWT, Chaudhry et al.'s
forgetting) and their conventions are stated in :data:`CONVENTIONS` and stored in every record.
"""

from __future__ import annotations

from collections.abc import Sequence

Matrix = Sequence[Sequence[float]]

CONVENTIONS = {
    "avg_accuracy": "mean_j R[T-1][j]",
    "latest_task_accuracy": "R[T-1][T-1]",
    "earliest_task_accuracy": "R[T-1][0]",
    "learning_accuracy": "mean_j R[j][j]",
    "bwt": "mean_{j<T-1} (R[T-1][j] - R[j][j]); divides by T-1 (GEM, Lopez-Paz & Ranzato 2017); null when T=1",
    "fwt": "mean_{j>0} (R[j-1][j] - b_j); divides by T-1 (GEM); null when T=1",
    "forgetting": "mean_{j<T-1} (max_{l<T-1} R[l][j] - R[T-1][j]); Chaudhry et al. 2018; null when T=1",
}


def _check(R: Matrix) -> int:
    T = len(R)
    if T == 0:
        raise ValueError("the accuracy matrix is empty")
    if any(len(row) != T for row in R):
        raise ValueError(f"the accuracy matrix must be square (T x T); got rows of lengths {[len(r) for r in R]}")
    return T


def avg_accuracy(R: Matrix) -> float:
    """ACC: mean accuracy over all tasks after the last task."""
    T = _check(R)
    return sum(R[T - 1]) / T


def latest_task_accuracy(R: Matrix) -> float:
    """Accuracy on the last task after training on it."""
    T = _check(R)
    return float(R[T - 1][T - 1])


def earliest_task_accuracy(R: Matrix) -> float:
    """Accuracy on the first task after the whole stream."""
    T = _check(R)
    return float(R[T - 1][0])


def learning_accuracy(R: Matrix) -> float:
    """LA: mean over tasks of the accuracy right after learning each."""
    T = _check(R)
    return sum(R[j][j] for j in range(T)) / T


def bwt(R: Matrix) -> float | None:
    """Backward transfer (GEM): negative when later tasks hurt earlier ones; None for T=1."""
    T = _check(R)
    if T < 2:
        return None
    return sum(R[T - 1][j] - R[j][j] for j in range(T - 1)) / (T - 1)


def fwt(R: Matrix, init: Sequence[float]) -> float | None:
    """Forward transfer (GEM): accuracy on a task before training on it, minus at init; None for T=1."""
    T = _check(R)
    if len(init) != T:
        raise ValueError(f"init accuracies must have T={T} entries, got {len(init)}")
    if T < 2:
        return None
    return sum(R[j - 1][j] - init[j] for j in range(1, T)) / (T - 1)


def forgetting(R: Matrix) -> float | None:
    """Average forgetting (Chaudhry et al. 2018): best earlier accuracy minus final; None for T=1."""
    T = _check(R)
    if T < 2:
        return None
    total = 0.0
    for j in range(T - 1):
        best = max(R[l][j] for l in range(T - 1))
        total += best - R[T - 1][j]
    return total / (T - 1)


def compute_all(R: Matrix, init: Sequence[float]) -> dict[str, float | None]:
    """Every metric of :data:`CONVENTIONS`, by name."""
    return {
        "avg_accuracy": avg_accuracy(R),
        "latest_task_accuracy": latest_task_accuracy(R),
        "earliest_task_accuracy": earliest_task_accuracy(R),
        "learning_accuracy": learning_accuracy(R),
        "bwt": bwt(R),
        "fwt": fwt(R, init),
        "forgetting": forgetting(R),
    }
