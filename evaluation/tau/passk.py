"""pass^k: the chance that all k independent trials of a task succeed, averaged over tasks.

For a task with c successes in n trials the unbiased estimate is C(c, k) / C(n, k)
(:func:`evaluation.intervals.pass_hat_k`, which the intervals around it resample).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from evaluation.intervals import Interval, bootstrap_mean, pass_hat_k, pass_k_intervals


def pass_k_curve(outcomes: Mapping[str, Sequence[bool]]) -> dict[int, float]:
    """pass^k for k = 1..n over tasks that all have n trials."""
    if not outcomes:
        return {}
    counts = {len(v) for v in outcomes.values()}
    if len(counts) != 1:
        raise ValueError(
            f"every task needs the same number of trials to compare pass^k; found {sorted(counts)}"
        )
    n = counts.pop()
    return {
        k: sum(pass_hat_k(sum(v), n, k) for v in outcomes.values()) / len(outcomes) for k in range(1, n + 1)
    }


def is_success(reward: float) -> bool:
    """A trial passes when its reward is 1 (τ²'s ``is_successful``: within 1e-6)."""
    return abs(float(reward) - 1.0) <= 1e-6


def pass_k_table(outcomes: Mapping[str, Sequence[bool]]) -> dict[int, Interval]:
    """pass^k with its bootstrap interval over tasks, also where tasks have different numbers of trials
    (a re-scored file with a simulation missing): then, as τ²'s metrics do, k goes up to the fewest
    trials any task has and each task's estimate uses all of its own trials."""
    counts = {len(v) for v in outcomes.values()}
    if len(counts) <= 1:
        return pass_k_intervals(outcomes)
    per_task = list(outcomes.values())
    return {
        k: bootstrap_mean([pass_hat_k(sum(v), len(v), k) for v in per_task])
        for k in range(1, min(counts) + 1)
    }
