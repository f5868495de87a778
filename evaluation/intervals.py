"""How sure a figure is: confidence intervals for every rate and pass^k the evaluations print, and a
paired test of whether two models' difference on the same items is larger than noise.

- A rate over independent items (a BFCL category, next-action turns) gets a Wilson score interval,
  which stays inside [0, 1] and behaves at 0 and n (the normal interval does not).
- A mean over tasks of a per-task figure (pass^k, BFCL's weighted overall, a next-action metric
  averaged over dialogues) gets a percentile bootstrap over the tasks: tasks are the unit that was
  sampled, trials within a task are not independent of the task.
- Two models on the same tasks: a paired bootstrap of the difference of their means. The difference is
  "within noise" when the interval of the difference contains 0.

Every bootstrap is seeded, so the same inputs print the same interval.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import sqrt
from statistics import NormalDist

LEVEL = 0.95
RESAMPLES = 2000
SEED = 0


@dataclass(frozen=True)
class Interval:
    """A point estimate with its lower and upper bound at `level` confidence."""

    value: float
    low: float
    high: float
    level: float = LEVEL

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "level": self.level}

    def text(self, digits: int = 3) -> str:
        """`0.500 [0.300, 0.700]`: how every table prints a figure with its interval."""
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def percent(self, digits: int = 1) -> str:
        """`50.0% [30.0, 70.0]`."""
        return f"{100 * self.value:.{digits}f}% [{100 * self.low:.{digits}f}, {100 * self.high:.{digits}f}]"


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"a confidence level is between 0 and 1 (exclusive); got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> Interval:
    """Wilson score interval of `successes` out of `n` independent items; n = 0 gives [0, 1] around 0."""
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"expected 0 <= successes <= n; found successes={successes}, n={n}")
    if n == 0:
        return Interval(0.0, 0.0, 1.0, level)
    z = _z(level)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # Exact ends where the interval touches them (floating point leaves 1e-17 otherwise).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high, level)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default rule)."""
    if not sorted_values:
        raise ValueError("a percentile needs at least one value")
    position = q * (len(sorted_values) - 1)
    below = int(position)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * (position - below)


def bootstrap_mean(
    values: Sequence[float],
    *,
    weights: Sequence[float] | None = None,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Percentile bootstrap interval of the (weighted) mean of per-task values, resampling tasks."""
    return bootstrap_statistic(values, _weighted_mean(weights), level=level, resamples=resamples, seed=seed)


def _weighted_mean(weights: Sequence[float] | None) -> Callable[[Sequence[int], Sequence[float]], float]:
    def mean(indices: Sequence[int], values: Sequence[float]) -> float:
        if weights is None:
            return sum(values[i] for i in indices) / len(indices)
        total = sum(weights[i] for i in indices)
        return sum(values[i] * weights[i] for i in indices) / total if total else 0.0

    return mean


def bootstrap_statistic(
    values: Sequence[float],
    statistic: Callable[[Sequence[int], Sequence[float]], float],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Percentile bootstrap of `statistic(indices, values)` over resampled item indices."""
    _z(level)
    n = len(values)
    if n == 0:
        return Interval(0.0, 0.0, 1.0, level)
    point = statistic(range(n), values)
    if n == 1:
        return Interval(point, point, point, level)
    rng = random.Random(seed)
    draws = sorted(statistic([rng.randrange(n) for _ in range(n)], values) for _ in range(resamples))
    tail = (1 - level) / 2
    return Interval(point, min(point, _percentile(draws, tail)), max(point, _percentile(draws, 1 - tail)), level)


def pass_k_intervals(
    outcomes: Mapping[str, Sequence[bool]],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[int, Interval]:
    """pass^k for k = 1..n with a bootstrap interval over tasks (each task keeps its own n trials).

    Resampling tasks carries the spread of trials within a task along, since each task's pass^k
    estimate C(c, k) / C(n, k) is computed from all of its trials.
    """
    from evaluation.tau.passk import pass_hat_k

    if not outcomes:
        return {}
    counts = {len(v) for v in outcomes.values()}
    if len(counts) != 1:
        raise ValueError(f"every task needs the same number of trials to compare pass^k; found {sorted(counts)}")
    n = counts.pop()
    per_task = [list(v) for v in outcomes.values()]
    result: dict[int, Interval] = {}
    for k in range(1, n + 1):
        values = [pass_hat_k(sum(trials), n, k) for trials in per_task]
        result[k] = bootstrap_mean(values, level=level, resamples=resamples, seed=seed)
    return result


@dataclass(frozen=True)
class PairedDifference:
    """Model A's mean minus model B's on the items both have, with a paired bootstrap interval."""

    difference: Interval
    items: int

    @property
    def within_noise(self) -> bool:
        """True when the interval of the difference contains 0 (or there is nothing to compare)."""
        return self.items == 0 or self.difference.low <= 0.0 <= self.difference.high

    def as_dict(self) -> dict[str, object]:
        return {"difference": self.difference.as_dict(), "items": self.items, "within_noise": self.within_noise}


def paired_difference(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> PairedDifference:
    """Paired bootstrap of mean(a) - mean(b) over the keys (tasks or items) both runs scored."""
    shared = sorted(set(a) & set(b))
    if not shared:
        return PairedDifference(Interval(0.0, 0.0, 0.0, level), 0)
    deltas = [float(a[key]) - float(b[key]) for key in shared]
    return PairedDifference(bootstrap_mean(deltas, level=level, resamples=resamples, seed=seed), len(shared))
