"""Avalanche's own metrics beside clbench's: reading them, and comparing the two (pure Python).

Avalanche's definitions (avalanche/evaluation/metrics/forgetting_bwt.py, accuracy.py), for T tasks
after the last one, with ``R[i][j]`` = accuracy on experience j after training on experience i:

- ``StreamForgetting`` = mean over j < T-1 of (R[j][j] - R[T-1][j]): the accuracy "when first
  trained" (recorded when the training and evaluated experience ids are equal) minus the last one;
  the last experience has no "last" value yet and untrained ones no "initial" value, so both drop out.
  No max over time (clbench's ``forgetting`` takes max_{l<T-1} R[l][j], Chaudhry et al. 2018).
- ``StreamBWT`` = -StreamForgetting = mean_{j<T-1} (R[T-1][j] - R[j][j]): GEM's BWT, which clbench's
  ``bwt`` is; both divide by T-1.
- ``Top1_Acc_Stream`` = accuracy over every test sample of the stream, i.e. the mean of R[T-1][j]
  weighted by test-set sizes (clbench's ``avg_accuracy`` weighs tasks equally).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CROSSCHECK_KEY = "avalanche_crosscheck"
STREAM = "eval_phase/test_stream"


def row_from_metrics(results: dict[str, Any], n_tasks: int) -> list[float | None]:
    """Avalanche's per-experience accuracies after one ``strategy.eval(test_stream)``."""
    return [results.get(f"Top1_Acc_Exp/{STREAM}/Task000/Exp{j:03d}") for j in range(n_tasks)]


def stream_metrics(results: dict[str, Any]) -> dict[str, float | None]:
    """Avalanche's stream-level accuracy, forgetting and BWT from one evaluation."""
    return {
        "accuracy": results.get(f"Top1_Acc_Stream/{STREAM}/Task000"),
        "forgetting": results.get(f"StreamForgetting/{STREAM}"),
        "bwt": results.get(f"StreamBWT/{STREAM}"),
    }


def forgetting_avalanche_convention(R: Sequence[Sequence[float]]) -> float | None:
    """mean_{j<T-1} (R[j][j] - R[T-1][j]) from clbench's matrix; None for T=1."""
    T = len(R)
    if T < 2:
        return None
    return sum(R[j][j] - R[T - 1][j] for j in range(T - 1)) / (T - 1)


def weighted_final_accuracy(R: Sequence[Sequence[float]], sizes: Sequence[int]) -> float:
    """mean_j R[T-1][j] weighted by the test-set sizes (Avalanche's stream accuracy)."""
    return sum(a * n for a, n in zip(R[-1], sizes)) / max(1, sum(sizes))


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else abs(a - b)


def compare(crosscheck: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """Put clbench's numbers, under Avalanche's conventions, beside Avalanche's and give the gaps."""
    R = record.get("accuracy_matrix") or []
    A = crosscheck.get("accuracy_matrix") or []
    if not R or len(R) != len(A) or not crosscheck.get("stream"):
        return {"status": "incomplete: the run did not finish every task"}
    final = crosscheck["stream"][-1]
    metrics = record.get("metrics") or {}
    cl = {
        "bwt": metrics.get("bwt"),
        "forgetting_avalanche_convention": forgetting_avalanche_convention(R),
        "forgetting_clbench_convention": metrics.get("forgetting"),
        "stream_accuracy_weighted": weighted_final_accuracy(R, crosscheck["test_sizes"]),
        "avg_accuracy": metrics.get("avg_accuracy"),
    }
    gaps = [abs(r - a) for row_r, row_a in zip(R, A) for r, a in zip(row_r, row_a) if a is not None]
    return {
        "status": "ok",
        "clbench": cl,
        "avalanche": final,
        "abs_diff": {
            "bwt_vs_StreamBWT": _diff(cl["bwt"], final["bwt"]),
            "forgetting_vs_StreamForgetting": _diff(cl["forgetting_avalanche_convention"], final["forgetting"]),
            "stream_accuracy": _diff(cl["stream_accuracy_weighted"], final["accuracy"]),
            "accuracy_matrix_max": max(gaps) if gaps else None,
        },
        "conventions": {
            "StreamBWT": "mean_{j<T-1} (R[T-1][j] - R[j][j]) = clbench bwt (GEM, divides by T-1)",
            "StreamForgetting": "mean_{j<T-1} (R[j][j] - R[T-1][j]) = -bwt; clbench's forgetting takes "
            "max_{l<T-1} R[l][j] instead of R[j][j]",
            "Top1_Acc_Stream": "sample-weighted mean of R[T-1][j]; clbench avg_accuracy weighs tasks equally",
        },
    }


def summary_lines(crosscheck: Any) -> list[str]:
    """The cross-check as ``clbench run`` and ``show`` print it: clbench's numbers under Avalanche's
    conventions beside Avalanche's own, with the largest gap over the accuracy matrix."""
    comparison = crosscheck.get("comparison") if isinstance(crosscheck, dict) else None
    if not isinstance(comparison, dict):
        return []
    if comparison.get("status") != "ok":
        return [f"avalanche cross-check: {comparison.get('status')}"]

    def num(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"

    cl, av, gap = comparison["clbench"], comparison["avalanche"], comparison["abs_diff"]
    rows = [
        ("StreamBWT", cl.get("bwt"), av.get("bwt"), gap.get("bwt_vs_StreamBWT")),
        ("StreamForgetting", cl.get("forgetting_avalanche_convention"), av.get("forgetting"),
         gap.get("forgetting_vs_StreamForgetting")),
        ("Top1_Acc_Stream", cl.get("stream_accuracy_weighted"), av.get("accuracy"), gap.get("stream_accuracy")),
    ]  # fmt: skip
    lines = ["avalanche cross-check (clbench's numbers under Avalanche's conventions, beside Avalanche's):"]
    lines += [f"  {name:<17} clbench {num(c)}  avalanche {num(a)}  |diff| {num(d)}" for name, c, a, d in rows]
    lines.append(f"  accuracy matrix   largest |diff| {num(gap.get('accuracy_matrix_max'))}")
    return lines
