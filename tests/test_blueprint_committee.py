"""Committee vote and threshold logic on fixed judge outputs."""

from __future__ import annotations

import asyncio
import json

import pytest
from scripted import ScriptedModel

from datagen.blueprint.committee import METRICS, Judge, JudgeVerdict, parse_verdict, review, vote
from datagen.recipe.datagen import ModelConfig


def verdict(name: str, *scores: int) -> JudgeVerdict:
    return JudgeVerdict(name, True, dict(zip(METRICS, scores, strict=True)), reflection=f"{name} thinks so")


def test_majority_per_metric_then_average_against_threshold():
    verdicts = [verdict("a", 1, 1, 0, 0), verdict("b", 1, 0, 1, 0), verdict("c", 1, 1, 1, 0)]
    decision = vote(verdicts, threshold=0.75)
    assert decision.voted == {"correctness": 1, "completeness": 1, "satisfaction": 1, "creativity": 0}
    assert decision.average == 0.75 and decision.ok
    assert not vote(verdicts, threshold=0.8).ok


def test_rejection_reasons_name_failed_metrics_and_dissenting_judges():
    decision = vote(
        [verdict("a", 0, 1, 1, 1), verdict("b", 0, 1, 1, 1), verdict("c", 1, 1, 1, 1)], threshold=1.0
    )
    assert not decision.ok
    assert "judges voted no on correctness" in decision.reasons
    assert any(r.startswith("a (correctness)") for r in decision.reasons)
    assert not any(r.startswith("c ") for r in decision.reasons)


def test_tie_is_a_no_and_unreadable_judges_abstain():
    tie = vote([verdict("a", 1, 1, 1, 1), verdict("b", 0, 0, 0, 0)], threshold=0.25)
    assert tie.voted == dict.fromkeys(METRICS, 0) and not tie.ok
    abstain = vote(
        [verdict("a", 1, 1, 1, 1), JudgeVerdict("b", False, error="bad"), JudgeVerdict("c", False)], 1.0
    )
    assert abstain.ok and abstain.average == 1.0
    nobody = vote([JudgeVerdict("b", False, error="no JSON")], 0.0)
    assert not nobody.ok and "no judge" in nobody.reasons[0]


@pytest.mark.parametrize(
    "text, valid",
    [
        (
            '{"reflection": "ok", "correctness": 1, "completeness": 0, "satisfaction": 1, "creativity": 1, "correction": ""}',
            True,
        ),
        (
            'Sure! ```json\n{"correctness": "yes", "completeness": "no", "satisfaction": true, "creativity": 0}\n```',
            True,
        ),
        ('{"correctness": 2, "completeness": 0, "satisfaction": 1, "creativity": 1}', False),
        ('{"correctness": 1}', False),
        ("I would rate this task highly.", False),
        ('{"correctness": 1, "completeness": ', False),
    ],
)
def test_parse_verdict(text, valid):
    parsed = parse_verdict(text, "j")
    assert parsed.valid is valid
    if valid:
        assert set(parsed.scores) == set(METRICS) and set(parsed.scores.values()) <= {0, 1}


def test_review_asks_every_judge_with_task_tools_and_diff():
    answers = iter(
        [
            {
                "reflection": "fine",
                "correctness": 1,
                "completeness": 1,
                "satisfaction": 1,
                "creativity": 0,
                "correction": "",
            },
            {
                "reflection": "wrong order",
                "correctness": 0,
                "completeness": 1,
                "satisfaction": 1,
                "creativity": 0,
                "correction": "x",
            },
            {
                "reflection": "fine",
                "correctness": 1,
                "completeness": 1,
                "satisfaction": 0,
                "creativity": 1,
                "correction": "",
            },
        ]
    )
    model = ScriptedModel(lambda messages, kwargs: [json.dumps(next(answers))])
    judges = [Judge(f"j{i}", model, ModelConfig()) for i in range(3)]
    task = {
        "persona": "P",
        "instruction": "Cancel o1",
        "actions": [{"name": "cancel_order", "arguments": {"order_id": "o1"}}],
        "outputs": ["done"],
    }
    decision, usage = asyncio.run(
        review(
            judges,
            "SYSTEM tools here",
            task,
            ["~ orders/o1.status: a -> b"],
            threshold=0.75,
            temperature=0.5,
            max_tokens=100,
            json_output=True,
            seed=1,
        )
    )
    assert (
        decision.voted == {"correctness": 1, "completeness": 1, "satisfaction": 1, "creativity": 0}
        and decision.ok
    )
    assert len(model.requests) == 3 and usage.completion_tokens == 15
    sent = model.requests[0]
    assert sent["messages"][0]["content"] == "SYSTEM tools here"
    assert (
        "~ orders/o1.status: a -> b" in sent["messages"][1]["content"]
        and "Cancel o1" in sent["messages"][1]["content"]
    )
    assert sent["json_schema"]["required"][1:5] == list(METRICS)
