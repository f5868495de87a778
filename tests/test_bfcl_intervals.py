"""BFCL scores carry their intervals: Wilson per category, a stratified bootstrap for the groups and
the overall (BFCL's weights kept), and paired differences between two runs on the same items."""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bfcl_eval") is None, reason="needs bfcl-eval")

from cli_runs import run_json  # noqa: E402

from datagen.rundir import BfclRun  # noqa: E402
from evaluation.bfcl import results, scoring, synthetic  # noqa: E402
from evaluation.intervals import wilson_interval  # noqa: E402

CATEGORIES = ("simple_python", "live_simple", "irrelevance", "multi_turn_base")


def _scores(variant_every: int, stride: int = 2) -> dict[str, scoring.CategoryScore]:
    """Gold results with every `variant_every`-th item given a wrong-typed value (0: none)."""
    logging.disable(logging.WARNING)  # "partial category" warnings: the strides are on purpose
    try:
        scores = {}
        for category in CATEGORIES:
            gold = synthetic.results_for(category, "gold", "python", stride=stride)
            wrong = synthetic.results_for(category, "wrong_type", "python", stride=stride)
            rows = [
                w if variant_every and i % variant_every == 0 else g
                for i, (g, w) in enumerate(zip(gold, wrong, strict=True))
            ]
            scores[category] = scoring.score_category(category, rows, "python")
        return scores
    finally:
        logging.disable(logging.NOTSET)


def test_every_category_has_its_wilson_interval_and_the_overall_a_bootstrap_one():
    scores = _scores(variant_every=3)
    report = scoring.score_json(scores)
    intervals = report["intervals"]
    for category, score in scores.items():
        assert intervals["categories"][category] == wilson_interval(score.correct, score.total).as_dict()
    for key in ("v4", "v3", "overall_v4", "live", "multi_turn", "non_live"):
        interval = intervals["overall"][key]
        assert interval["low"] <= interval["value"] <= interval["high"]
    assert intervals["overall"]["v4"]["value"] == pytest.approx(report["overall"]["v4"])
    assert intervals["overall"]["v4"]["high"] > intervals["overall"]["v4"]["low"]
    assert "within each category" in intervals["method"]


def test_the_overall_interval_narrows_with_more_items_and_vanishes_when_all_agree():
    few, many = (
        scoring.summary_intervals(_scores(3, stride=8)),
        scoring.summary_intervals(_scores(3, stride=1)),
    )
    width = {name: i["overall_v3"].high - i["overall_v3"].low for name, i in (("few", few), ("many", many))}
    assert width["many"] < width["few"]
    every_item_right = {
        c: scoring.CategoryScore(c, 50, 50, [scoring.ItemVerdict(f"{c}_{i}", True) for i in range(50)])
        for c in CATEGORIES
    }
    perfect = scoring.summary_intervals(every_item_right)["overall_v4"]
    assert perfect.low == perfect.value == perfect.high


def test_paired_differences_tell_a_real_gap_from_noise():
    def verdicts(scores):
        return {c: {item.id: item.valid for item in s.items} for c, s in scores.items()}

    good, worse = verdicts(_scores(0)), verdicts(_scores(2))
    same = scoring.paired_summary_differences(good, good)["overall_v4"]
    assert same.difference.value == 0.0 and same.within_noise
    gap = scoring.paired_summary_differences(good, worse)["overall_v4"]
    assert gap.difference.value > 0 and not gap.within_noise
    assert gap.items == sum(len(v) for v in good.values())
    # One item flipped among hundreds is noise.
    flipped = {c: dict(items) for c, items in good.items()}
    first = next(iter(flipped["simple_python"]))
    flipped["simple_python"][first] = False
    assert scoring.paired_summary_differences(good, flipped)["overall_v4"].within_noise


def test_bfcl_score_prints_and_writes_the_intervals(tmp_path, plain_env):
    folder = tmp_path / "my-model"
    for category in ("simple_python", "irrelevance"):
        rows = synthetic.results_for(
            category, "wrong_type" if category == "simple_python" else "gold", "python", stride=10
        )
        results.write_results(BfclRun.result_file(folder, category), rows)
    BfclRun(tmp_path).write_metadata({"model": "m", "format": "python", "underscore_names": False})
    printed = run_json(["eval", "bfcl-score", str(tmp_path), "--json"], plain_env)
    saved = json.loads(BfclRun.scores_file(tmp_path / "score").read_text())
    assert printed["intervals"] == saved["intervals"]
    assert set(printed["intervals"]["categories"]) == {"simple_python", "irrelevance"}
    summary = BfclRun.summary_file(tmp_path / "score").read_text()
    assert "95% interval" in summary and "Brackets: 95% intervals" in summary
    rows = list(csv.reader((tmp_path / "score" / "data_intervals.csv").open()))
    assert rows[0] == ["figure", "kind", "value", "low", "high", "level"]
    assert {r[0] for r in rows[1:]} >= {"overall_v4", "simple_python", "irrelevance", "method"}


def test_the_table_shows_the_intervals(tmp_path, plain_env):
    import subprocess

    from cli_runs import APIGEN_MT, ROOT

    folder = tmp_path / "my-model"
    results.write_results(
        BfclRun.result_file(folder, "simple_python"),
        synthetic.results_for("simple_python", "gold", "python", stride=20),
    )
    BfclRun(tmp_path).write_metadata({"model": "m", "format": "python", "underscore_names": False})
    done = subprocess.run(
        [APIGEN_MT, "eval", "bfcl-score", str(tmp_path)],
        capture_output=True,
        text=True,
        env=plain_env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    line = next(row for row in done.stdout.splitlines() if row.startswith("simple_python"))
    correct, total = (int(n) for n in re.search(r"\((\d+)/(\d+)\)", line).groups())
    interval = wilson_interval(correct, total)
    assert f"[{interval.low * 100:5.1f}, {interval.high * 100:5.1f}]" in line
    assert Path(tmp_path / "score" / "data_intervals.csv").exists()
