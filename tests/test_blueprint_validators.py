"""Phase 1 validators on hand-written blueprints: one valid, one per failure kind at each stage."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from blueprint_toy import make_shop_domain

from datagen.blueprint.grounding import ground_actions
from datagen.blueprint.samplers import (
    FewshotPool,
    UserIndex,
    draw_context,
    load_traits,
    policy_paragraphs,
    walk_write_tools,
)
from datagen.blueprint.validators import (
    duplicate_key,
    validate_execution,
    validate_format,
    validate_policy,
)
from datagen.recipe.datagen import SamplerConfig


@pytest.fixture()
def shop(tmp_path: Path):
    return make_shop_domain(tmp_path)


def _task(*actions: dict, outputs: list | None = None) -> dict:
    return {
        "thought": "t",
        "instruction": "You are User 0. Cancel order o00.",
        "actions": list(actions),
        "outputs": outputs if outputs is not None else [],
    }


CANCEL = {"name": "cancel_order", "arguments": {"order_id": "o00", "reason": "no longer needed"}}


def _run_all(shop, raw):
    fmt = validate_format(raw, shop)
    if not fmt.ok:
        return fmt
    execution = validate_execution(fmt.data["draft"].actions, shop, seed=0)
    if not execution.ok:
        return execution
    return validate_policy(execution)


def test_valid_blueprint_passes_every_stage_and_keeps_the_diff(shop):
    result = _run_all(
        shop, "Here it is:\n```json\n" + json.dumps(_task(CANCEL, outputs=["cancelled"])) + "\n```"
    )
    assert result.ok and result.stage == "policy"
    execution = validate_execution(validate_format(_task(CANCEL), shop).data["draft"].actions, shop, 0)
    assert execution.data["diff"] == ['~ orders/o00.status: "pending" -> "cancelled"']


@pytest.mark.parametrize(
    "raw, stage, fragment",
    [
        ("I think the customer wants to cancel.", "format", "JSON object"),
        ('{"thought": "x", "instruction": "y", "actions": [', "format", "JSON object"),
        (_task(), "format", "actions"),
        ({"instruction": "x", "actions": [CANCEL], "outputs": [3]}, "format", "outputs"),
        (_task({"name": "refund_everything", "arguments": {}}), "format", "unknown tool"),
        (_task({"name": "cancel_order", "arguments": {"order_id": "o00"}}), "format", "reason"),
        (
            _task({"name": "cancel_order", "arguments": {"order_id": 7, "reason": "no longer needed"}}),
            "format",
            "order_id",
        ),
        (_task({"name": "get_order", "arguments": {"order_id": "o00"}}), "format", "write"),
        (
            _task({"name": "cancel_order", "arguments": {"order_id": "o01", "reason": "no longer needed"}}),
            "execution",
            "only pending",
        ),
        (_task(CANCEL, CANCEL), "execution", "actions[1]"),
        (
            _task({"name": "update_address", "arguments": {"user_id": "u0", "address": "0 Main St"}}),
            "execution",
            "empty diff",
        ),
        (_task(CANCEL, {"name": "return_order", "arguments": {"order_id": "o11"}}), "policy", "R2"),
    ],
)
def test_each_failure_is_caught_at_its_stage(shop, raw, stage, fragment):
    result = _run_all(shop, raw)
    assert not result.ok
    assert result.stage == stage
    assert any(fragment in r for r in result.reasons), result.reasons


def test_duplicate_key_ignores_order_but_not_user_or_arguments():
    a = {"name": "cancel_order", "arguments": {"order_id": "o00", "reason": "no longer needed"}}
    b = {"name": "return_order", "arguments": {"order_id": "o01"}}
    assert duplicate_key("u0", [a, b]) == duplicate_key("u0", [b, a])
    assert duplicate_key("u0", [a, b]) != duplicate_key("u1", [a, b])
    assert duplicate_key("u0", [a]) != duplicate_key("u0", [a, a])


def test_walk_collects_only_write_tools(shop):
    rng = random.Random(3)
    for _ in range(20):
        walk = walk_write_tools(shop, rng, 2)
        assert len(walk) == 2 and all(shop.tool(name).kind == "write" for name in walk)


def test_draws_are_seeded_and_vary_between_tasks(shop):
    index = UserIndex(shop.new_env(0))
    config = SamplerConfig(records_range=(1, 5), walk_length=(1, 3))

    def draw(seed):
        return draw_context(
            shop, index, random.Random(seed), seed, config, FewshotPool([], 5), load_traits()
        ).provenance()

    assert draw(1) == draw(1)
    draws = [draw(s) for s in range(12)]
    assert len({json.dumps(d["sizes"], sort_keys=True) for d in draws}) > 1
    assert len({d["user_id"] for d in draws}) > 1
    for d in draws:
        assert d["records"][0] == f"users/{d['user_id']}"
        assert all(r.startswith("orders/o" + d["user_id"][1:]) for r in d["records"][1:])


def test_grounded_actions_execute_by_construction(shop):
    index = UserIndex(shop.new_env(0))
    for seed in range(10):
        rng = random.Random(seed)
        d = draw_context(
            shop, index, rng, seed, SamplerConfig(walk_length=(1, 3)), FewshotPool([], 1), load_traits()
        )
        scratch = shop.new_env(0)
        actions, _ = ground_actions(shop, scratch, d.write_tools, d.records, rng, tries=12)
        assert actions
        replayed = validate_execution(validate_format(_task(*actions), shop).data["draft"].actions, shop, 0)
        assert replayed.ok, replayed.reasons


def test_policy_is_split_into_rules(shop):
    assert [p[:2] for p in policy_paragraphs(shop.policy)] == ["R1", "R2", "R3"]


def test_grounded_retail_tasks_get_the_reads_the_policy_requires():
    """Retail requires identity verification before any write: the walk puts the read in front."""
    from datagen.envs.base import ToolCallModel
    from datagen.envs.registry import get_domain

    retail = get_domain("retail")
    index = UserIndex(retail.new_env(retail.train_seed))
    built = 0
    for seed in range(12):
        rng = random.Random(seed)
        d = draw_context(retail, index, rng, seed, SamplerConfig(), FewshotPool([], 1), load_traits())
        actions, notes = ground_actions(
            retail, retail.new_env(retail.train_seed), d.write_tools, d.records, rng, 12
        )
        if not actions:
            continue
        execution = validate_execution(
            [ToolCallModel.model_validate(a) for a in actions], retail, retail.train_seed
        )
        assert execution.ok and validate_policy(execution).ok, validate_policy(execution).reasons
        assert retail.tool(actions[0]["name"]).kind == "read"
        assert any(note.startswith("prefixed ") for note in notes)
        writes_only = validate_execution(
            [ToolCallModel.model_validate(a) for a in actions[1:]], retail, retail.train_seed
        )
        assert writes_only.ok and not validate_policy(writes_only).ok  # the read is what makes them pass
        built += 1
    assert built >= 4


def test_outputs_must_be_readable_from_the_data():
    from datagen.blueprint.validators import validate_outputs

    evidence = ['{"total": 1234.50, "status": "Delivered"}', '{"refund": 10.0}']
    assert validate_outputs(["1,234.5", "delivered", "10"], evidence) == []
    problems = validate_outputs(["1234.5", "json", "thought"], evidence)
    assert [p.split("'")[1] for p in problems] == ["json", "thought"]


def test_instruction_needs_a_goal(shop):
    short = {"thought": "", "instruction": "5", "actions": [CANCEL], "outputs": []}
    result = validate_format(short, shop)
    assert not result.ok and "at least 5 words" in result.reasons[0]


def test_value_pool_takes_ids_from_keyed_maps_not_from_nested_fields():
    """An order item holds a nested ``options`` object; "options" once landed among the item ids and
    wasted grounding tries on calls such as modify_pending_order_items(item_ids=["options"])."""
    from datagen.blueprint.grounding import build_value_pool
    from datagen.blueprint.samplers import ContextRecord

    order = {
        "order_id": "#W1",
        "items": [{"item_id": "111", "options": {"color": "red"}, "price": 9.5}],
        "payment_methods": {"card_1": {"source": "credit_card"}, "gift_2": {"source": "gift_card"}},
    }
    from datagen.envs.retail.database import REFERENCES

    pool = build_value_pool([ContextRecord(table="orders", key="#W1", record=order)], REFERENCES)
    assert pool["item_id"] == ["111"]
    assert sorted(pool["payment_method_id"]) == ["card_1", "gift_2"]
