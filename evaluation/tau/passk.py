"""pass^k: the chance that all k independent trials of a task succeed, averaged over tasks.

For a task with c successes in n trials the unbiased estimate is C(c, k) / C(n, k).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb


def pass_hat_k(successes: int, trials: int, k: int) -> float:
    if not 1 <= k <= trials:
        raise ValueError(f"k must be between 1 and the number of trials ({trials}); got {k}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and {trials}; got {successes}")
    return comb(successes, k) / comb(trials, k)


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
