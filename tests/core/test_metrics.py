"""Metrics against hand-computed matrices (DESIGN.md section 5)."""

import pytest

from clbench import metrics


def test_single_task():
    R, b = [[0.8]], [0.1]
    m = metrics.compute_all(R, b)
    assert m["avg_accuracy"] == pytest.approx(0.8)
    assert m["latest_task_accuracy"] == m["earliest_task_accuracy"] == pytest.approx(0.8)
    assert m["learning_accuracy"] == pytest.approx(0.8)
    assert m["bwt"] is None and m["fwt"] is None and m["forgetting"] is None


def test_two_tasks():
    R = [[0.9, 0.3], [0.6, 0.8]]
    b = [0.1, 0.2]
    m = metrics.compute_all(R, b)
    assert m["avg_accuracy"] == pytest.approx(0.7)
    assert m["latest_task_accuracy"] == pytest.approx(0.8)
    assert m["earliest_task_accuracy"] == pytest.approx(0.6)
    assert m["learning_accuracy"] == pytest.approx(0.85)
    assert m["bwt"] == pytest.approx(0.6 - 0.9)
    assert m["fwt"] == pytest.approx(0.3 - 0.2)
    assert m["forgetting"] == pytest.approx(0.9 - 0.6)


def test_three_tasks_max_over_earlier_rows():
    # task 0 peaks after task 1 (0.95), not right after learning it (0.9): forgetting uses the max
    R = [
        [0.90, 0.20, 0.10],
        [0.95, 0.85, 0.30],
        [0.50, 0.70, 0.80],
    ]
    b = [0.10, 0.25, 0.15]
    m = metrics.compute_all(R, b)
    assert m["avg_accuracy"] == pytest.approx((0.5 + 0.7 + 0.8) / 3)
    assert m["learning_accuracy"] == pytest.approx((0.9 + 0.85 + 0.8) / 3)
    assert m["bwt"] == pytest.approx(((0.5 - 0.9) + (0.7 - 0.85)) / 2)
    assert m["fwt"] == pytest.approx(((0.20 - 0.25) + (0.30 - 0.15)) / 2)
    assert m["forgetting"] == pytest.approx(((0.95 - 0.5) + (0.85 - 0.7)) / 2)


def test_no_forgetting_when_accuracy_only_grows():
    R = [[0.5, 0.1], [0.7, 0.9]]
    assert metrics.forgetting(R) == pytest.approx(-0.2)  # negative: the final accuracy beats the earlier best
    assert metrics.bwt(R) == pytest.approx(0.2)


@pytest.mark.parametrize("bad", [[], [[0.1, 0.2]], [[0.1], [0.2, 0.3]]])
def test_non_square_matrices_are_rejected(bad):
    with pytest.raises(ValueError):
        metrics.avg_accuracy(bad)


def test_init_length_must_match():
    with pytest.raises(ValueError):
        metrics.fwt([[0.5, 0.5], [0.5, 0.5]], [0.1])
