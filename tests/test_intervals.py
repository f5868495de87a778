"""Confidence intervals: Wilson against published values, bootstrap properties, paired differences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.intervals import (
    Interval,
    bootstrap_mean,
    paired_difference,
    paired_ratio_differences,
    pass_k_intervals,
    ratio_intervals,
    stratified_bootstrap,
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


# ---------------------------------------------------------------- strata and clusters


def _binary(successes: int, n: int) -> list[list[float]]:
    return [[1.0] if i < successes else [0.0] for i in range(n)]


def test_one_stratum_of_items_agrees_with_wilson():
    """Resampling 400 independent items gives (nearly) the Wilson interval of their rate."""
    result = stratified_bootstrap({"c": _binary(140, 400)}, lambda sums: {"rate": sums["c"][0] / 400})
    wilson = wilson_interval(140, 400)
    assert result["rate"].value == pytest.approx(0.35)
    assert result["rate"].low == pytest.approx(wilson.low, abs=0.01)
    assert result["rate"].high == pytest.approx(wilson.high, abs=0.01)


def test_strata_keep_their_weights_and_the_seed_repeats():
    strata = {"big": _binary(300, 400), "small": _binary(4, 16)}

    def mean_of_rates(sums):
        return {"mean": (sums["big"][0] / 400 + sums["small"][0] / 16) / 2}

    first = stratified_bootstrap(strata, mean_of_rates, resamples=500)
    assert first == stratified_bootstrap(strata, mean_of_rates, resamples=500)
    assert first["mean"].value == pytest.approx((0.75 + 0.25) / 2)
    # The small category carries half the weight: its 16 items dominate the spread, which is far
    # wider than the 416 items pooled would suggest.
    pooled = wilson_interval(304, 416)
    assert first["mean"].high - first["mean"].low > 2 * (pooled.high - pooled.low)


def test_a_stratum_of_one_kind_of_outcome_has_no_spread():
    result = stratified_bootstrap({"c": _binary(10, 10)}, lambda sums: {"rate": sums["c"][0] / 10})
    assert (result["rate"].low, result["rate"].high) == (1.0, 1.0)


def test_dialogue_clusters_widen_the_interval_of_correlated_turns():
    """Ten turns per dialogue, all right or all wrong: 200 turns, but only 20 independent units."""
    dialogues = [{"exact": (10.0 if d % 2 else 0.0, 10.0)} for d in range(20)]
    clustered = ratio_intervals(dialogues)["exact"]
    per_turn = wilson_interval(100, 200)
    assert clustered.value == pytest.approx(0.5)
    assert clustered.high - clustered.low > 2 * (per_turn.high - per_turn.low)


def test_one_turn_dialogues_give_about_the_wilson_interval():
    turns = [{"exact": (1.0 if t < 60 else 0.0, 1.0)} for t in range(200)]
    interval, wilson = ratio_intervals(turns)["exact"], wilson_interval(60, 200)
    assert interval.low == pytest.approx(wilson.low, abs=0.015)
    assert interval.high == pytest.approx(wilson.high, abs=0.015)


def test_ratio_figures_without_a_denominator_are_left_out():
    result = ratio_intervals([{"precision": (0.0, 0.0), "recall": (1.0, 2.0)}] * 5)
    assert set(result) == {"recall"}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=30))
def test_ratio_intervals_hold_the_pooled_ratio(pairs):
    units = [{"f": (float(min(a, b)), float(b))} for a, b in pairs]
    result = ratio_intervals(units, resamples=200)
    total = sum(b for _, b in pairs)
    if total == 0:
        assert result == {}
    else:
        interval = result["f"]
        assert interval.value == pytest.approx(sum(min(a, b) for a, b in pairs) / total)
        assert 0.0 <= interval.low <= interval.value <= interval.high <= 1.0


def test_paired_ratio_differences_pair_dialogues_by_key():
    runs_a = {f"d{i}": {"exact": (3.0, 4.0)} for i in range(30)}
    same = paired_ratio_differences(runs_a, dict(runs_a))["exact"]
    assert same.difference.value == 0.0 and same.within_noise and same.items == 30
    worse = {f"d{i}": {"exact": (1.0, 4.0)} for i in range(10, 40)}
    gap = paired_ratio_differences(runs_a, worse)["exact"]
    assert gap.items == 20 and not gap.within_noise
    assert gap.difference.value == pytest.approx(0.5)
