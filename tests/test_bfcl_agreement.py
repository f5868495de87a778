"""Our BFCL scores equal the official checker's, item by item, on the same result files.

Result files are built from the installed answer keys (correct outputs plus systematically wrong
variants, see evaluation/bfcl/synthetic.py) for every non-live, live and multi-turn category, in
both the prompt-mode (``python``) and FC (``json``) layouts. The official checker runs
in-process from the installed `bfcl-eval` package (evaluation/bfcl/official.py). The default run
takes an evenly spaced subsample of each category; ``-m slow`` checks every item.
"""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(
    any(
        importlib.util.find_spec(m) is None
        for m in ("bfcl_eval", "tree_sitter_java", "tree_sitter_javascript", "tenacity")
    ),
    reason="needs bfcl-eval and the official checker's light deps (requirements/data-packages.txt, data-light.txt)",
)

from evaluation.bfcl import data, scoring, synthetic  # noqa: E402

SINGLE_TURN = data.NON_LIVE + data.LIVE
SAMPLE_PER_CATEGORY = 24


def _agreement(category: str, variant: str, fmt: str, sample: int | None) -> tuple[float, float, list]:
    from evaluation.bfcl.official import OfficialScorer

    underscore = fmt == "json"
    stride = max(1, len(data.load_entries(category)) // sample) if sample else 1
    rows = synthetic.results_for(category, variant, fmt, underscore_names=underscore, stride=stride)
    ours = scoring.score_category(category, rows, fmt, underscore_names=underscore)
    official = OfficialScorer(fmt, f"agreement-{variant}-{sample}")
    prompts, answers = official.entries(category)
    index = {p["id"]: k for k, p in enumerate(prompts)}
    theirs = {}
    for row in rows:
        k = index[row["id"]]
        theirs[row["id"]] = official.verdict(
            category, prompts[k], row["result"], answers[k] if answers else None
        )
    mismatched = [(i.id, i.valid, theirs[i.id], i.error_type) for i in ours.items if i.valid != theirs[i.id]]
    official_accuracy = sum(theirs.values()) / len(theirs)
    return ours.accuracy, official_accuracy, mismatched


def _variants(category: str) -> list[str]:
    if category in data.MULTI_TURN:
        return synthetic.MULTI_TURN_VARIANTS
    if category in data.MEMORY:
        return synthetic.MEMORY_VARIANTS
    return synthetic.AST_VARIANTS


def _cases(categories: list[str]) -> list[tuple[str, str, str]]:
    return [(c, v, fmt) for fmt in ("python", "json") for c in categories for v in _variants(c)]


@pytest.mark.parametrize(("category", "variant", "fmt"), _cases(SINGLE_TURN))
def test_single_turn_accuracy_equals_official(category, variant, fmt):
    ours, theirs, mismatched = _agreement(category, variant, fmt, SAMPLE_PER_CATEGORY)
    assert not mismatched, f"items scored differently from the official checker: {mismatched[:5]}"
    assert ours == theirs


@pytest.mark.parametrize(("category", "variant", "fmt"), _cases(data.MULTI_TURN))
def test_multi_turn_accuracy_equals_official(category, variant, fmt):
    ours, theirs, mismatched = _agreement(category, variant, fmt, 6)
    assert not mismatched, f"items scored differently from the official checker: {mismatched[:5]}"
    assert ours == theirs


@pytest.mark.parametrize(("category", "variant", "fmt"), _cases(data.MEMORY_RUN))
def test_memory_accuracy_equals_official(category, variant, fmt):
    """Every memory question, against the official agentic evaluation of the same steps."""
    ours, theirs, mismatched = _agreement(category, variant, fmt, None)
    assert not mismatched, f"items scored differently from the official checker: {mismatched[:5]}"
    assert ours == theirs


def test_memory_variants_exercise_the_answer_check():
    """Whole-word matching after normalisation: some spaced-out answers pass, some do not."""

    def accuracy_of(variant: str) -> float:
        rows = synthetic.results_for("memory_kv", variant, "python")
        return scoring.score_category("memory_kv", rows, "python").accuracy

    accuracy = {variant: accuracy_of(variant) for variant in synthetic.MEMORY_VARIANTS}
    assert accuracy["gold"] == accuracy["padded"] == accuracy["answer_then_call"] == 1.0
    assert accuracy["wrong"] == accuracy["glued"] == accuracy["call_only"] == accuracy["empty_last"] == 0.0
    assert 0.5 < accuracy["spaced"] < 1.0


def test_wrong_variants_really_lose_points():
    """The variants must exercise the checker: gold scores high, broken outputs score lower."""
    gold = scoring.score_category(
        "simple_python", synthetic.results_for("simple_python", "gold", "python"), "python"
    )
    for variant in ("wrong_type", "missing_param", "extra_call", "no_call"):
        broken = synthetic.results_for("simple_python", variant, "python")
        assert scoring.score_category("simple_python", broken, "python").accuracy < gold.accuracy - 0.5


def test_unpassable_live_items_fail_on_both_sides():
    """Items whose answer key contradicts the schema fail for us and for the official checker alike."""
    ours, theirs, mismatched = _agreement("live_simple", "gold", "python", None)
    assert not mismatched
    assert ours == theirs < 1.0


@pytest.mark.slow
@pytest.mark.parametrize(("category", "variant", "fmt"), _cases(SINGLE_TURN + data.MULTI_TURN))
def test_every_item_agrees_with_official(category, variant, fmt):
    ours, theirs, mismatched = _agreement(category, variant, fmt, None)
    assert not mismatched, f"items scored differently from the official checker: {mismatched[:5]}"
    assert ours == theirs


def _official_overall(accuracies: dict[str, tuple[int, int]], tmp_path, monkeypatch) -> dict[str, float]:
    """The official leaderboard aggregation (`generate_leaderboard_csv`) on per-category scores."""
    import csv
    import types

    from evaluation.bfcl.official import load

    load()  # the stand-in model_config and a private BFCL_PROJECT_ROOT
    from bfcl_eval.eval_checker import eval_runner_helper as helper

    info = types.SimpleNamespace(
        display_name="probe",
        url="",
        org="",
        license="",
        input_price=None,
        output_price=None,
        underscore_to_dot=False,
    )
    monkeypatch.setattr(helper, "MODEL_CONFIG_MAPPING", {"org/probe": info})
    table = {"org_probe": {c: {"accuracy": ok / n, "total_count": n} for c, (ok, n) in accuracies.items()}}
    helper.generate_leaderboard_csv(table, tmp_path)
    with (tmp_path / "data_overall.csv").open() as handle:
        row = next(csv.DictReader(handle))

    def value(column: str) -> float:
        return float(row[column].rstrip("%")) / 100 if row[column].endswith("%") else float(row[column])

    return {"overall": value("Overall Acc"), "live": value("Live Acc"), "multi_turn": value("Multi Turn Acc")}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overall_score_equals_the_official_leaderboard_aggregation(seed, tmp_path, monkeypatch):
    """Categories with any counts, some not evaluated (count 0 at their full size on both sides)."""
    import random

    rng = random.Random(seed)
    evaluated = [c for c in data.SCORED if rng.random() < 0.7]
    counts = {}
    for category in evaluated:
        total = rng.randint(1, 60)
        counts[category] = (rng.randint(0, total), total)
    ours = scoring.summarise({c: scoring.CategoryScore(c, ok, n) for c, (ok, n) in counts.items()})
    theirs = _official_overall(counts, tmp_path, monkeypatch)
    assert ours["overall_v4"] == pytest.approx(theirs["overall"], abs=5e-5)
    assert ours["live"] == pytest.approx(theirs["live"], abs=5e-5)
    assert ours["multi_turn"] == pytest.approx(theirs["multi_turn"], abs=5e-5)
