"""Confidence intervals: Wilson against published values, bootstrap properties, paired differences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.intervals import (
    Interval,
    bootstrap_mean,
    paired_difference,
    pass_k_intervals,
    wilson_interval,
)
from evaluation.tau.passk import pass_k_curve


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Values from Newcombe (1998), Table I, and the usual textbook examples (95%).
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
    ],
)
def test_wilson_matches_published_values(successes, n, low, high):
    interval = wilson_interval(successes, n)
    assert interval.value == pytest.approx(successes / n)
    assert interval.low == pytest.approx(low, abs=1e-4)
    assert interval.high == pytest.approx(high, abs=1e-4)


@given(st.integers(min_value=1, max_value=5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_the_estimate_and_stays_in_unit_range(pair):
    successes, n = pair
    interval = wilson_interval(successes, n)
    assert 0.0 <= interval.low <= interval.value <= interval.high <= 1.0


def test_wilson_narrows_as_items_grow():
    widths = [wilson_interval(n // 2, n).high - wilson_interval(n // 2, n).low for n in (10, 100, 1000)]
    assert widths[0] > widths[1] > widths[2]


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="confidence level"):
        wilson_interval(1, 10, level=1.5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=40))
def test_bootstrap_mean_contains_the_mean_and_is_reproducible(values):
    first = bootstrap_mean(values, resamples=200)
    again = bootstrap_mean(values, resamples=200)
    assert first == again
    assert first.low <= first.value <= first.high
    assert min(values) - 1e-12 <= first.low and first.high <= max(values) + 1e-12


def test_bootstrap_of_constant_values_has_no_width():
    interval = bootstrap_mean([0.5] * 30)
    assert (interval.low, interval.value, interval.high) == (0.5, 0.5, 0.5)


def test_weighted_bootstrap_uses_the_weights():
    interval = bootstrap_mean([1.0, 0.0], weights=[3.0, 1.0], resamples=500)
    assert interval.value == pytest.approx(0.75)


def test_pass_k_intervals_carry_the_same_point_as_pass_k_curve():
    outcomes = {f"t{i}": [i % 2 == 0, i % 3 == 0, True] for i in range(12)}
    curve = pass_k_curve(outcomes)
    intervals = pass_k_intervals(outcomes, resamples=300)
    assert set(intervals) == set(curve)
    for k, interval in intervals.items():
        assert interval.value == pytest.approx(curve[k])
        assert interval.low <= interval.value <= interval.high
    assert intervals[1].high - intervals[1].low > 0


def test_pass_k_intervals_refuse_unequal_trials():
    with pytest.raises(ValueError, match="same number of trials"):
        pass_k_intervals({"a": [True], "b": [True, False]})


def test_paired_difference_sees_a_real_gap_and_calls_a_tie_noise():
    better = {f"t{i}": 1.0 for i in range(40)}
    worse = {f"t{i}": 0.0 if i % 4 else 1.0 for i in range(40)}
    gap = paired_difference(better, worse)
    assert gap.items == 40 and not gap.within_noise and gap.difference.low > 0
    noisy = {f"t{i}": float(i % 2) for i in range(40)}
    shifted = {f"t{i}": float((i + 1) % 2) for i in range(40)}
    assert paired_difference(noisy, shifted).within_noise


def test_paired_difference_uses_only_shared_items():
    result = paired_difference({"a": 1.0, "b": 1.0}, {"b": 0.0, "c": 0.0})
    assert result.items == 1
    assert paired_difference({"a": 1.0}, {"b": 0.0}).within_noise


def test_interval_text_forms():
    interval = Interval(0.5, 0.25, 0.75)
    assert interval.text() == "0.500 [0.250, 0.750]"
    assert interval.percent() == "50.0% [25.0, 75.0]"
    assert interval.as_dict() == {"value": 0.5, "low": 0.25, "high": 0.75, "level": 0.95}
