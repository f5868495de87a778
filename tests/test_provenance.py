"""The provenance check: every value of every agent write call was said before it (by the user or a
tool) or is a literal the policy allows; a dialogue failing it is kept as `ungrounded_arguments`,
counted, and exported only when asked."""

from __future__ import annotations

import asyncio
import json
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scripted import ScriptedModel
from toydomain import make_toy_domain

from apigen_rules.values import value_written, written_forms
from datagen.envs.registry import get_domain
from datagen.recipe.episode import AgentRole, SimulateConfig, UserRole
from datagen.records import Blueprint
from datagen.rundir import DatagenRun
from datagen.simulate.episode import EpisodeResult
from datagen.simulate.provenance import ungrounded_arguments
from datagen.simulate.runner import SimulationRunner
from datagen.simulate.verdict import gold_hash, judge_episode


def _call(name: str, arguments: dict, cid: str = "c0") -> dict:
    return {"role": "assistant", "content": "", "tool_calls": [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}
    ]}  # fmt: skip


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _tool(content: str) -> dict:
    return {"role": "tool", "tool_call_id": "c0", "name": "t", "content": content}


CANCEL = {"order_id": "#W15271601", "reason": "ordered by mistake"}


def test_a_value_the_user_said_is_grounded_and_a_guess_is_not():
    retail = get_domain("retail")
    said = [
        _user("Please cancel order #W15271601, I ordered it by mistake."),
        _call("cancel_pending_order", CANCEL),
    ]
    assert ungrounded_arguments(said, retail) == []
    guessed = [_user("Please cancel my last order."), _call("cancel_pending_order", CANCEL)]
    assert ungrounded_arguments(guessed, retail) == [
        {"message": 1, "tool": "cancel_pending_order", "argument": "order_id", "value": "#W15271601"}
    ]  # the reason is one of the values the tool's schema lists: a literal


def test_values_from_a_tool_observation_count_and_order_matters():
    retail = get_domain("retail")
    env = retail.new_env(retail.eval_seed)
    task = next(t for t in retail.gold_tasks if t.id == "retail-gold-005")
    details = env.call({"name": "get_user_details", "arguments": {"user_id": task.user_id}})
    assert details.ok and "paypal_1628988" in details.content
    change = {"order_id": "#W15387896", "payment_method_id": "paypal_1628988"}
    looked_up = [
        _user(f"I am {task.user_id}; move order #W15387896 to my PayPal."),
        _call("get_user_details", {"user_id": task.user_id}),
        _tool(details.content),
        _call("modify_pending_order_payment", change),
    ]
    assert ungrounded_arguments(looked_up, retail) == []
    # The same value, read only after the write: the call guessed it.
    late = [looked_up[0], looked_up[3], looked_up[1], looked_up[2]]
    assert [u["argument"] for u in ungrounded_arguments(late, retail)] == ["payment_method_id"]


def test_literals_the_policy_allows():
    retail, airline = get_domain("retail"), get_domain("airline")
    address = {"order_id": "#W1", "address1": "1 Elm St", "address2": "", "city": "Reno", "state": "NV",
               "country": "USA", "zip": "89501"}  # fmt: skip
    # "NV" is not said by "envelope" (a whole word is needed); "" is always allowed.
    dialogue = [
        _user("Order #W1: ship it to 1 Elm St, Reno, USA 89501, in an envelope"),
        _call("modify_pending_order_address", address),
    ]
    assert [(u["argument"], u["value"]) for u in ungrounded_arguments(dialogue, retail)] == [("state", "NV")]
    # Airline: counts up to 10 and booleans need no words; the certificate's worth is computed by the
    # agent (declared by the domain), the reason is listed by the schema, the ids were said.
    certificate = {
        "user_id": "mia_1",
        "reservation_id": "ABC123",
        "amount": 300,
        "reason": "cancelled_flight",
    }
    said = [
        _user("I am mia_1, my flight on reservation ABC123 was cancelled"),
        _call("send_certificate", certificate),
    ]
    assert ungrounded_arguments(said, airline) == []
    bags = {
        "reservation_id": "ABC123",
        "total_baggages": 3,
        "nonfree_baggages": 1,
        "payment_id": "gift_card_9",
    }
    found = ungrounded_arguments(
        [_user("Add bags to ABC123"), _call("update_reservation_baggages", bags)], airline
    )
    assert [u["argument"] for u in found] == ["payment_id"]


def test_a_value_written_in_the_policy_is_allowed(tmp_path: Path):
    toy = make_toy_domain(tmp_path)  # its policy: "Never withdraw more than 100 in one call."
    at_limit = [
        _user("take the most you may from a10"),
        _call("withdraw", {"account_id": "a10", "amount": 100}),
    ]
    assert ungrounded_arguments(at_limit, toy) == []
    other = [_user("take some from a10"), _call("withdraw", {"account_id": "a10", "amount": 55})]
    assert [u["argument"] for u in ungrounded_arguments(other, toy)] == ["amount"]
    # A system message in the dialogue is policy text too (a trajectory carries its system prompt).
    prompt = [{"role": "system", "content": "Standard withdrawals are $55."}, *other]
    assert ungrounded_arguments(prompt, toy) == []


def test_lists_and_objects_are_checked_value_by_value():
    retail = get_domain("retail")
    items = {
        "order_id": "#W7",
        "item_ids": ["111", "222"],
        "new_item_ids": ["333", "444"],
        "payment_method_id": "gift_card_1",
    }
    dialogue = [
        _user("In #W7 swap items 111 and 222 for 333; pay with gift_card_1"),
        _call("modify_pending_order_items", items),
    ]
    assert ungrounded_arguments(dialogue, retail) == [
        {"message": 1, "tool": "modify_pending_order_items", "argument": "new_item_ids[1]", "value": "444"}
    ]


def test_read_calls_are_not_checked():
    retail = get_domain("retail")
    assert ungrounded_arguments([_call("get_order_details", {"order_id": "#W999"})], retail) == []


# Authored gold tasks are written so that every value can be read somewhere. Played as an ideal
# dialogue (the user says the whole instruction, the agent makes exactly the gold calls and reads
# their results), all but these pass; each fails for a reason the check is right about.
GOLD_UNGROUNDED = {
    # the gift card id comes from get_user_details, which the gold actions leave to the dialogue
    "retail-gold-009": {"payment_method_id"},
    # the saved passenger's birth date comes from the profile, which no gold call reads
    "airline-eval-book-round-trip-basic": {"passengers[1].date_of_birth"},
    # "the rest from savings": an amount the agent works out by subtraction
    "bank_019": {"amount"},
}


@pytest.mark.parametrize("name", ["retail", "airline", "bank"])
def test_gold_tasks_played_ideally_are_grounded(name: str):
    domain = get_domain(name)
    for task in domain.gold_tasks:
        env = domain.env_for_task(task)
        messages = [_user(f"{task.instruction} {task.persona}")]
        for index, action in enumerate(task.actions):
            observation = env.call(action.model_dump())
            messages += [_call(action.name, action.arguments, f"c{index}"), _tool(observation.content)]
        found = {u["argument"] for u in ungrounded_arguments(messages, domain)}
        assert found == GOLD_UNGROUNDED.get(task.id, set()), task.id


@settings(max_examples=200, deadline=None)
@given(
    word=st.text(alphabet=string.ascii_letters + string.digits + "_#-", min_size=1, max_size=12),
    before=st.sampled_from(["", "my id is ", "(", '"id": "']),
    after=st.sampled_from(["", ".", ", thanks", '"}', " ok"]),
)
def test_a_value_is_written_when_it_stands_whole_in_a_text(word: str, before: str, after: str):
    forms = written_forms([f"{before}{word}{after}"])
    assert value_written(word, forms)
    assert value_written(word.upper(), forms)  # case does not matter
    # glued to a word character on either side, it is part of another word
    if word[0].isalnum() or word[0] == "_":
        assert not value_written(word, written_forms([f"x{word}{after}"]))


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False))
def test_numbers_are_written_by_value(amount):
    text = f"That is ${amount:,.2f} in total"
    assert value_written(float(amount), written_forms([text]))
    assert value_written(str(amount), written_forms([text]))
    assert not value_written(float(amount) + 1000, written_forms([text]))


WITHDRAW = {"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}


def test_verdict_keeps_an_ungrounded_dialogue_as_a_failure(tmp_path: Path):
    domain = make_toy_domain(tmp_path)
    expected, _, _ = gold_hash(domain, 1, [WITHDRAW])
    for line, failure in (("withdraw 40 from a10", None), ("withdraw some money", "ungrounded_arguments")):
        env = domain.new_env(1)
        before = env.snapshot()
        env.replay([WITHDRAW])
        episode = EpisodeResult(
            messages=[_user(line), _call("withdraw", WITHDRAW["arguments"]), {"role": "assistant", "content": "60 left"}],
            termination="user_stop", before=before,
        )  # fmt: skip
        checked = judge_episode(env, episode, expected_hash=expected, expected_outputs=[], provenance=True)
        assert checked.failure == failure and checked.success is (failure is None)
        plain = judge_episode(env, episode, expected_hash=expected, expected_outputs=[])
        assert plain.success and "ungrounded_arguments" not in plain.checks  # the τ harness's verdict


def test_phase2_keeps_counts_and_exports_ungrounded_dialogues_only_when_asked(tmp_path: Path):
    """A replay agent whose user never says the account: Phase 2 keeps the dialogue as a failure of
    class ungrounded_arguments, the funnel counts it, the export leaves it out unless asked."""
    from datagen.export import export_run

    domain = make_toy_domain(tmp_path)

    def user(messages, kwargs):
        said = [m for m in messages if m["role"] == "assistant"]
        vague = "vague" in messages[0]["content"]
        line = "I need some cash" if vague else "withdraw 40 from a10 please"
        return [line if len(said) <= 1 else "thanks ###STOP###"]

    models = {"agent": ScriptedModel(lambda m, k: ["done"]), "user": ScriptedModel(user)}

    class Pool:
        def get(self, alias):
            return models[alias]

    config = SimulateConfig(
        agent=AgentRole(model="agent", mode="replay", stop_after_script=True),
        user=UserRole(model="user", best_of_n=1), attempts=1, concurrency=4,
    )  # fmt: skip
    blueprints = [
        Blueprint(id=f"bp{i}", env="toy", seed=1, persona="Ann", instruction=f"{kind} task {i}", actions=[WITHDRAW])
        for i, kind in enumerate(["clear", "vague", "vague"])
    ]  # fmt: skip
    run = DatagenRun(tmp_path / "run")
    summary = asyncio.run(SimulationRunner(config, run, lambda n: domain, Pool()).run(blueprints))
    assert summary["successful_trajectories"] == 1 and summary["failures"] == {"ungrounded_arguments": 2}
    failed = [json.loads(line) for line in run.failures.read_text().splitlines()]
    assert all(r["checks"]["state_match"] and r["checks"]["ungrounded_arguments"] for r in failed)

    plain = export_run(run.root, tmp_path / "plain", fmt="jsonl", test=0.0)
    assert plain.splits == {"train": 1}
    both = export_run(run.root, tmp_path / "both", fmt="jsonl", test=0.0, include_ungrounded=True)
    rows = [json.loads(line) for line in (tmp_path / "both" / "train.jsonl").read_text().splitlines()]
    assert both.splits == {"train": 3} and sorted(r["grounded"] for r in rows) == [False, False, True]
    facts = json.loads((tmp_path / "both" / "export.json").read_text())
    assert (
        facts["provenance"]["ungrounded_dialogues_in_run"] == 2 and facts["provenance"]["ungrounded_included"]
    )
    card = (tmp_path / "plain" / "README.md").read_text()
    assert "2 dialogue(s) of the run passed every other check but failed this one" in card
    assert "left out of this export" in card
