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


def _cases(categories: list[str]) -> list[tuple[str, str, str]]:
    cases = []
    for fmt in ("python", "json"):
        for category in categories:
            variants = (
                synthetic.MULTI_TURN_VARIANTS if category in data.MULTI_TURN else synthetic.AST_VARIANTS
            )
            cases += [(category, variant, fmt) for variant in variants]
    return cases


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
