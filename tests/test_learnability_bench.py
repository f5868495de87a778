"""benchmarks/learnability.py's plan and figures: the data it trains on passes every check, it trains
every assistant turn, both τ runs face the scripted user, and its figures carry intervals."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "learnability_bench", ROOT / "benchmarks" / "learnability.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["learnability_bench"] = module
    spec.loader.exec_module(module)
    return module


def _settings(bench, out: Path):
    return bench.Settings(
        out=out, domains=("retail", "bank"), drafts=4, test=0.25, method="lora", learning_rate=1e-3,
        epochs=2.0, save_every=10, batch=1, max_tokens=64, tau_tasks=3, tau_max_steps=10,
    )  # fmt: skip


def test_the_plan_exports_only_checked_data_trains_every_turn_and_uses_the_scripted_user(bench, tmp_path):
    settings = _settings(bench, tmp_path)
    demo = bench._demo()
    for step in bench.data_steps(demo, settings):
        assert "--include-ungrounded" not in step.command
    for domain in settings.domains:
        recipe = yaml.safe_load(bench.RECIPES[domain].read_text())
        assert recipe["simulate"]["user"]["mode"] == "scripted"
    tau = bench.tau_step(demo, settings, "base", "embedded").command
    assert tau[tau.index("--user-mode") + 1] == "scripted" and "--user-model" not in tau
    recipe = yaml.safe_load(bench.sft_recipe(settings).read_text())
    assert recipe["per_turn_examples"] is False and recipe["assistant_only_loss"] is True
    assert recipe["num_train_epochs"] == 2.0 and recipe["lr_scheduler_type"] == "cosine"


def test_figures_carry_bootstrap_intervals_over_dialogues_and_tasks(bench, tmp_path):
    settings = _settings(bench, tmp_path)
    turns = tmp_path / "eval" / "next_action" / "base"
    turns.mkdir(parents=True)
    rows = []
    for d in range(6):  # dialogue d: two calls, d % 3 of them exact; 4 arguments expected, 3 predicted
        for t in range(2):
            exact = t < d % 3
            rows.append({"source": "s", "dialogue_id": f"d{d}", "should_call": True, "exact_match": exact,
                         "name_match": True, "arguments_predicted": 3, "arguments_gold": 4,
                         "arguments_right": 2 + exact})  # fmt: skip
    rows.append({"source": "s", "dialogue_id": "d0", "should_call": False, "exact_match": False})
    (turns / "turns.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    figures = bench.turn_intervals(settings, "base")
    exact = figures["exact_match"]
    assert exact.value == pytest.approx(6 / 12) and exact.low < exact.value < exact.high
    assert figures["argument_recall"].value == pytest.approx((12 * 2 + 6) / 48)
    assert figures["argument_precision"].value == pytest.approx((12 * 2 + 6) / 36)
    for label, wins in (("base", [False, False, True]), ("tuned", [True, True, True])):
        out = tmp_path / "eval" / "tau" / label
        out.mkdir(parents=True)
        lines = [
            {"task_id": f"t{i}", "trial": 0, "success": w, "reward": float(w)} for i, w in enumerate(wins)
        ]
        (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    text = "\n".join(bench.tau_lines(settings))
    assert (
        "τ pass^1 before (base): 0.333 [" in text
        and "τ pass^1 after (fine-tuned): 1.000 [1.000, 1.000]" in text
    )
    assert "difference (after - before): 0.667 [" in text and "on 3 tasks" in text


def test_the_curve_shows_the_mean_loss_since_the_previous_checkpoint(bench):
    losses = {1: 1.0, 2: 0.5, 3: 0.3, 4: 0.1, 5: 0.9}
    assert bench.mean_losses(losses, [4, 2]) == {2: 0.75, 4: pytest.approx(0.2)}
    assert bench.mean_losses(losses, [5]) == {5: pytest.approx(2.8 / 5)}
