"""The viewer shows each figure's 95% interval where it shows the figure: BFCL categories and
overall scores, τ pass^k, next-action rates."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from datagen.rundir import BfclRun, NextActionRun, TauRun
from viewer.kinds import Options


def _section(source, title: str):
    return next(s for s in source.sections if s.title == title)


@pytest.mark.skipif(importlib.util.find_spec("bfcl_eval") is None, reason="needs bfcl-eval")
def test_bfcl_tables_show_the_intervals(tmp_path: Path):
    from evaluation.bfcl.cli import score_main
    from evaluation.bfcl.results import write_results
    from evaluation.bfcl.synthetic import results_for
    from viewer.kinds import bfcl

    write_results(
        BfclRun.result_file(tmp_path / "m", "simple_python"),
        results_for("simple_python", "gold", "python", stride=20),
    )
    BfclRun(tmp_path).write_metadata({"model": "m", "format": "python"})
    assert score_main([str(tmp_path), "--result-format", "python", "--json"]) == 0
    saved = json.loads(BfclRun.scores_file(tmp_path / "score").read_text())["intervals"]
    source = bfcl.build(tmp_path, Options(stats=False))
    row = next(r for r in _section(source, "Categories").data["rows"] if r[0] == "simple_python")
    expected = saved["categories"]["simple_python"]
    assert row[2] == f"[{100 * expected['low']:.1f}, {100 * expected['high']:.1f}]"
    overall = {r[0]: r[2] for r in _section(source, "Overall").data["rows"]}
    assert overall["overall_v4"].startswith("[")


def test_tau_pass_k_shows_the_intervals(tmp_path: Path):
    from viewer.kinds import tau

    summary = {"env": "toy", "agent": "a", "trials": 2, "tasks": 20,
               "per_task_successes": {f"t{i}": min(2, i % 3) for i in range(20)},
               "pass_k": {"1": 0.5, "2": 0.35}, "pass_k_state_changing_only": {"1": 0.5, "2": 0.35},
               "pass_k_without_user_error_tasks": {"1": 0.5, "2": 0.35},
               "pass_k_interval": {"1": {"value": 0.5, "low": 0.375, "high": 0.625, "level": 0.95}}}  # fmt: skip
    TauRun(tmp_path).summary.write_text(json.dumps(summary))
    table = _section(tau.build(tmp_path, Options(stats=False)), "pass^k").data
    all_tasks = table["rows"][0]
    assert all_tasks[1] == "0.500 [0.375, 0.625]"  # the run's own interval
    assert "[" in all_tasks[2]  # computed from the per-task successes where the run has none


def test_next_action_figures_show_the_intervals(tmp_path: Path):
    from viewer.kinds import next_action

    overall = {"turns": 10, "should_call_turns": 8, "exact_match": 0.5, "name_match": 0.75,
               "intervals": {"exact_match": {"value": 0.5, "low": 0.25, "high": 0.75, "level": 0.95}}}  # fmt: skip
    NextActionRun(tmp_path).write_summary({"model": "m", "data": ["d"], "split": "test", "overall": overall,
                                           "per_domain": {}, "per_tool": {}})  # fmt: skip
    table = _section(next_action.build(tmp_path, Options(stats=False)), "Figures").data
    header, row = table["header"], table["rows"][0]
    assert row[header.index("exact match")] == "50.0% [25.0, 75.0]"
    assert row[header.index("name match")] == "75.0%"  # no interval saved: the figure alone
