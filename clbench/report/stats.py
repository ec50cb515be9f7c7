"""Statistics over seeds: means, Student-t 95% intervals, t-tests against a baseline group.

scipy is imported inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clbench.metrics import CONVENTIONS

#: The significance level that marks a p-value in the report.
ALPHA = 0.05
#: The confidence level of every interval.
CONFIDENCE = 0.95
#: Metrics that get a significance test by default (those the recipe's claims are about).
DEFAULT_MAIN = ("avg_accuracy", "latest_task_accuracy", "earliest_task_accuracy")
#: Prefix of the metrics computed from the adapted accuracy matrix (``adapted_metrics``).
ADAPTED = "adapted."

PAIRED = "paired t-test"
WELCH = "Welch t-test"

#: (lowest, highest) value a metric can take, for the metrics of :data:`clbench.metrics.CONVENTIONS`:
#: accuracies lie in [0, 1]; bwt, fwt and forgetting are differences of two accuracies, in [-1, 1].
#: The ``adapted.*`` metrics have the same ranges. Intervals are clipped to these ranges.
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "avg_accuracy": (0.0, 1.0),
    "latest_task_accuracy": (0.0, 1.0),
    "earliest_task_accuracy": (0.0, 1.0),
    "learning_accuracy": (0.0, 1.0),
    "bwt": (-1.0, 1.0),
    "fwt": (-1.0, 1.0),
    "forgetting": (-1.0, 1.0),
}

#: (lowest, highest) a value can take; None for an end without a bound.
Bounds = tuple[float | None, float | None]


def metric_range(metric: str) -> tuple[float, float] | None:
    """The range of ``metric`` (``adapted.X`` as ``X``) from :data:`METRIC_RANGES`; None when unknown."""
    name = metric[len(ADAPTED) :] if metric.startswith(ADAPTED) else metric
    return METRIC_RANGES.get(name)


@dataclass
class Summary:
    """A metric over seeds: mean, sample sd, the 95% Student-t interval (None when n < 2).

    ``bounds``: the range the metric's values lie in, (low, high), either end None for unbounded.
    The interval's ends (:attr:`low`, :attr:`high`) are clipped to it; :attr:`clipped` says
    whether that changed them. Bounds that some value lies outside of are ignored (the metric is
    not what they assume, e.g. a percentage).
    """

    values: dict[int, float] = field(default_factory=dict)
    bounds: Bounds | None = None

    @property
    def n(self) -> int:
        """Number of seeds with a value."""
        return len(self.values)

    @property
    def seeds(self) -> list[int]:
        """The seeds with a value, ascending."""
        return sorted(self.values)

    def _mean(self) -> float:
        return sum(self.values.values()) / self.n

    def _sd(self) -> float:
        m = self._mean()
        return math.sqrt(sum((v - m) ** 2 for v in self.values.values()) / (self.n - 1))

    @property
    def mean(self) -> float | None:
        """Mean over seeds, None when no seed has a value."""
        return self._mean() if self.n else None

    @property
    def sd(self) -> float | None:
        """Sample standard deviation (ddof=1), None when n < 2."""
        return self._sd() if self.n >= 2 else None

    @property
    def half_width(self) -> float | None:
        """Half-width of the interval: t.ppf(0.975, n-1) * sd / sqrt(n); None when n < 2."""
        if self.n < 2:
            return None
        return t_quantile(self.n - 1) * self._sd() / math.sqrt(self.n)

    @property
    def bounds_apply(self) -> bool:
        """True when there are bounds and every value lies within them."""
        if self.bounds is None:
            return False
        lo, hi = self.bounds
        return all((lo is None or v >= lo) and (hi is None or v <= hi) for v in self.values.values())

    @property
    def raw_low(self) -> float | None:
        """Lower end of the 95% interval before clipping (None when n < 2)."""
        h = self.half_width
        return None if h is None else self._mean() - h

    @property
    def raw_high(self) -> float | None:
        """Upper end of the 95% interval before clipping (None when n < 2)."""
        h = self.half_width
        return None if h is None else self._mean() + h

    @property
    def low(self) -> float | None:
        """Lower end of the 95% interval, clipped to the bounds (None when n < 2)."""
        low = self.raw_low
        if low is None or not self.bounds_apply or self.bounds is None or self.bounds[0] is None:
            return low
        return max(low, self.bounds[0])

    @property
    def high(self) -> float | None:
        """Upper end of the 95% interval, clipped to the bounds (None when n < 2)."""
        high = self.raw_high
        if high is None or not self.bounds_apply or self.bounds is None or self.bounds[1] is None:
            return high
        return min(high, self.bounds[1])

    @property
    def clipped(self) -> bool:
        """True when clipping to the bounds moved an end of the interval."""
        return self.half_width is not None and (self.low != self.raw_low or self.high != self.raw_high)

    def contains(self, value: float) -> bool | None:
        """Whether ``value`` lies inside the (clipped) interval; None when there is no interval."""
        low, high = self.low, self.high
        if low is None or high is None:
            return None
        return low <= value <= high


def t_quantile(df: int) -> float:
    """The two-sided 95% Student-t quantile, ``scipy.stats.t.ppf(0.975, df)``."""
    from scipy import stats

    return float(stats.t.ppf(1 - (1 - CONFIDENCE) / 2, df))


@dataclass
class Comparison:
    """A test of one group's metric against the baseline's: which test, its p-value, and why not."""

    test: str | None
    p: float | None
    n: int = 0
    note: str = ""
    #: group minus baseline: the mean paired difference (paired test) or the difference of the
    #: means (Welch), and the half-width of its 95% interval (None when it has none)
    difference: float | None = None
    difference_half_width: float | None = None

    @property
    def significant(self) -> bool:
        """True when the test gave p < :data:`ALPHA`."""
        return self.p is not None and self.p < ALPHA


def compare(baseline: dict[int, float], other: dict[int, float]) -> Comparison:
    """Two-sided t-test of ``other`` against ``baseline`` (both seed -> value).

    Paired (``scipy.stats.ttest_rel``) over the seeds both share when they share at least two;
    else Welch's (``ttest_ind(equal_var=False)``) when both have at least two values; else none.
    """
    import warnings

    from scipy import stats

    shared = sorted(set(baseline) & set(other))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant samples give nan with a RuntimeWarning
        if len(shared) >= 2:
            test, n = PAIRED, len(shared)
            result = stats.ttest_rel([other[s] for s in shared], [baseline[s] for s in shared])
            diffs = Summary({s: other[s] - baseline[s] for s in shared})
            difference, half = diffs.mean, diffs.half_width
        elif len(baseline) >= 2 and len(other) >= 2:
            test, n = WELCH, len(baseline) + len(other)
            result = stats.ttest_ind(list(other.values()), list(baseline.values()), equal_var=False)
            difference, half = welch_difference(Summary(dict(other)), Summary(dict(baseline)))
        else:
            return Comparison(None, None, 0, "too few seeds")
    p = float(result.pvalue)
    if math.isnan(p):
        return Comparison(test, None, n, "no variance", difference, half)
    if math.isinf(float(result.statistic)):  # scipy: a constant non-zero difference gives p = 0
        return Comparison(test, p, n, "no variance", difference, half)
    return Comparison(test, p, n, "", difference, half)


def welch_difference(a: Summary, b: Summary) -> tuple[float, float | None]:
    """``mean(a) - mean(b)`` and the half-width of its 95% Welch interval (Welch-Satterthwaite
    degrees of freedom); None when both samples are constant."""
    from scipy import stats

    va, vb = a._sd() ** 2 / a.n, b._sd() ** 2 / b.n
    difference = a._mean() - b._mean()
    if va + vb == 0:
        return difference, None
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    return difference, float(stats.t.ppf(1 - (1 - CONFIDENCE) / 2, df)) * math.sqrt(va + vb)


def metric_value(record: dict[str, Any], metric: str) -> float | None:
    """The value of ``metric`` in a record (``adapted.X`` reads ``adapted_metrics``), or None."""
    if metric.startswith(ADAPTED):
        block = record.get("adapted_metrics") or {}
        value = block.get(metric[len(ADAPTED) :])
    else:
        value = (record.get("metrics") or {}).get(metric)
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def summarize(records: Iterable[dict[str, Any]], metric: str) -> Summary:
    """The :class:`Summary` of ``metric`` over ``records`` (one per seed), bounded by the metric's
    range (:func:`metric_range`); None values skipped."""
    values = {}
    for rec in records:
        value = metric_value(rec, metric)
        if value is not None:
            values[rec["seed"]] = value
    return Summary(values, metric_range(metric))


def metric_names(records: Iterable[dict[str, Any]]) -> list[str]:
    """Every metric the records carry: the standard ones in definition order, then others, then
    the ``adapted.*`` metrics in the same order."""
    plain: set[str] = set()
    adapted: set[str] = set()
    for rec in records:
        plain.update((rec.get("metrics") or {}).keys())
        adapted.update((rec.get("adapted_metrics") or {}).keys())

    def _order(names: set[str]) -> list[str]:
        known = [m for m in CONVENTIONS if m in names]
        return known + sorted(names - set(known))

    return _order(plain) + [ADAPTED + m for m in _order(adapted)]


def mean_matrix(
    records: Iterable[dict[str, Any]], key: str = "accuracy_matrix"
) -> tuple[list[list[float]] | None, int]:
    """Element-wise mean of the records' square matrices under ``key`` and how many were averaged.

    Matrices of a shape other than the most common one are left out. None when there are none.
    """
    mats = [r[key] for r in records if isinstance(r.get(key), list) and r[key]]
    mats = [m for m in mats if all(isinstance(row, list) and len(row) == len(m) for row in m)]
    if not mats:
        return None, 0
    shape = Counter(len(m) for m in mats).most_common(1)[0][0]
    mats = [m for m in mats if len(m) == shape]
    mean = [[sum(float(m[i][j]) for m in mats) / len(mats) for j in range(shape)] for i in range(shape)]
    return mean, len(mats)
