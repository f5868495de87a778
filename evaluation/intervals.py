"""How sure a figure is: confidence intervals for every rate and pass^k the evaluations print, and a
paired test of whether two models' difference on the same items is larger than noise.

- A rate over independent items (a BFCL category, next-action turns) gets a Wilson score interval,
  which stays inside [0, 1] and behaves at 0 and n (the normal interval does not).
- A mean over tasks of a per-task figure (pass^k, BFCL's weighted overall, a next-action metric
  averaged over dialogues) gets a percentile bootstrap over the tasks: tasks are the unit that was
  sampled, trials within a task are not independent of the task.
- A figure combining strata of fixed size (BFCL's overall: a weighted mean of category accuracies)
  gets a stratified percentile bootstrap: items are resampled within their category, every category
  keeps its size and its weight (:func:`stratified_bootstrap`).
- A rate over turns grouped in dialogues (next-action) gets a cluster bootstrap: dialogues are
  resampled whole and the rate is the ratio of the resampled sums (:func:`ratio_intervals`).
- Two models on the same tasks: a paired bootstrap of the difference of their means (or of their
  stratified figures, or of their ratios over shared dialogues). The difference is "within noise"
  when the interval of the difference contains 0.

Every bootstrap is seeded, so the same inputs print the same interval.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import comb, sqrt
from statistics import NormalDist
from typing import Any

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
    return Interval(
        point, min(point, _percentile(draws, tail)), max(point, _percentile(draws, 1 - tail)), level
    )


def pass_hat_k(successes: int, trials: int, k: int) -> float:
    """The unbiased estimate of pass^k for one task with ``successes`` in ``trials``: C(c, k) / C(n, k)."""
    if not 1 <= k <= trials:
        raise ValueError(f"k must be between 1 and the number of trials ({trials}); got {k}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and {trials}; got {successes}")
    return comb(successes, k) / comb(trials, k)


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
    if not outcomes:
        return {}
    counts = {len(v) for v in outcomes.values()}
    if len(counts) != 1:
        raise ValueError(
            f"every task needs the same number of trials to compare pass^k; found {sorted(counts)}"
        )
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
        """True when the interval of the difference contains 0, or when fewer than two tasks/items are
        shared (a bootstrap over one unit has no spread: it cannot tell a difference from noise)."""
        return self.items < 2 or self.difference.low <= 0.0 <= self.difference.high

    def as_dict(self) -> dict[str, object]:
        return {
            "difference": self.difference.as_dict(),
            "items": self.items,
            "within_noise": self.within_noise,
        }


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


# ---------------------------------------------------------------- resampling units within strata
#
# The figures below are computed from sums over units (BFCL items within categories, next-action
# dialogues): a resample draws each stratum's units with replacement, as many as it has, and sums
# every column of the drawn units at once. numpy is imported only here (the rest of this module is
# plain Python).


def _rng(seed: int) -> Any:
    import numpy as np

    return np.random.default_rng(seed)


_CELLS_PER_CHUNK = 4_000_000  # values gathered at once: bounds memory for many units × columns


def _resampled_sums(units: Sequence[Sequence[float]], resamples: int, rng: Any) -> Any:
    """(resamples × columns) sums of the units' columns, the units drawn with replacement."""
    import numpy as np

    values = np.asarray(units, dtype=float)
    if values.ndim == 1:
        values = values.reshape(len(values), -1)
    n, columns = values.shape if values.ndim == 2 else (0, 0)
    sums = np.zeros((resamples, columns))
    if n == 0:
        return sums
    chunk = max(1, _CELLS_PER_CHUNK // (n * max(columns, 1)))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        sums[start : start + rows] = values[rng.integers(0, n, size=(rows, n))].sum(axis=1)
    return sums


def _percentile_interval(point: float, draws: Any, level: float) -> Interval:
    """The percentile interval of the resampled values (undefined draws left out), always
    holding the point estimate."""
    import numpy as np

    draws = np.asarray(draws, dtype=float)
    draws = draws[~np.isnan(draws)]
    if len(draws) == 0:
        return Interval(point, point, point, level)
    tail = (1 - level) / 2
    low, high = np.percentile(draws, [100 * tail, 100 * (1 - tail)])
    return Interval(point, min(point, float(low)), max(point, float(high)), level)


def stratified_bootstrap(
    strata: Mapping[str, Sequence[Sequence[float]]],
    figures: Callable[[Mapping[str, Sequence[float]]], Mapping[str, float]],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, Interval]:
    """Percentile bootstrap of figures computed from per-stratum column sums, resampling the units of
    each stratum within it (strata keep their sizes: a weighted mean of per-stratum rates keeps its
    weights). ``figures`` maps {stratum: column sums} to named values; it is called once on the data
    and once per resample."""
    _z(level)
    import numpy as np

    point = figures(
        {s: np.asarray(units, dtype=float).reshape(len(units), -1).sum(axis=0) for s, units in strata.items()}
    )
    rng = _rng(seed)
    draws = {s: _resampled_sums(units, resamples, rng) for s, units in strata.items()}
    samples: dict[str, list[float]] = {name: [] for name in point}
    for r in range(resamples):
        resampled = figures({s: draws[s][r] for s in strata})
        for name in samples:
            samples[name].append(resampled.get(name, float("nan")))
    return {name: _percentile_interval(float(point[name]), samples[name], level) for name in point}


def _ratio(numerator: Any, denominator: Any) -> Any:
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _ratio_columns(units: Sequence[Mapping[str, tuple[float, float]]], names: list[str]) -> list[list[float]]:
    return [[v for name in names for v in unit.get(name, (0.0, 0.0))] for unit in units]


def ratio_intervals(
    units: Sequence[Mapping[str, tuple[float, float]]],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, Interval]:
    """Cluster bootstrap of ratio figures: each unit (a dialogue) gives, per figure, its (numerator,
    denominator) sums over its turns; a figure is sum(numerators) / sum(denominators), and units are
    resampled whole (turns of one dialogue are not independent). Figures whose denominator sums to 0
    are left out."""
    _z(level)
    import numpy as np

    names = sorted({name for unit in units for name in unit})
    if not units or not names:
        return {}
    columns = np.asarray(_ratio_columns(units, names), dtype=float)
    totals = columns.sum(axis=0)
    draws = _resampled_sums(columns, resamples, _rng(seed))
    out = {}
    for i, name in enumerate(names):
        if totals[2 * i + 1] > 0:
            point = float(totals[2 * i] / totals[2 * i + 1])
            out[name] = _percentile_interval(point, _ratio(draws[:, 2 * i], draws[:, 2 * i + 1]), level)
    return out


def paired_ratio_differences(
    a: Mapping[str, Mapping[str, tuple[float, float]]],
    b: Mapping[str, Mapping[str, tuple[float, float]]],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, PairedDifference]:
    """Per ratio figure, run A's minus run B's on the units (dialogues, by key) both have, with a
    paired cluster bootstrap: each resample draws the same units for both runs."""
    _z(level)
    import numpy as np

    shared = sorted(set(a) & set(b))
    names = sorted({name for key in shared for name in (*a[key], *b[key])})
    if not shared or not names:
        return {}
    columns = np.asarray(
        [row_a + row_b for row_a, row_b in zip(
            _ratio_columns([a[k] for k in shared], names), _ratio_columns([b[k] for k in shared], names), strict=True
        )],
        dtype=float,
    )  # fmt: skip
    totals = columns.sum(axis=0)
    draws = _resampled_sums(columns, resamples, _rng(seed))
    offset = 2 * len(names)
    out = {}
    for i, name in enumerate(names):
        num_a, den_a, num_b, den_b = 2 * i, 2 * i + 1, offset + 2 * i, offset + 2 * i + 1
        if totals[den_a] > 0 and totals[den_b] > 0:
            point = float(totals[num_a] / totals[den_a] - totals[num_b] / totals[den_b])
            spread = _ratio(draws[:, num_a], draws[:, den_a]) - _ratio(draws[:, num_b], draws[:, den_b])
            out[name] = PairedDifference(_percentile_interval(point, spread, level), len(shared))
    return out
