"""The native environment core on a toy domain: schemas, validation, rollback, hashing, diff."""

from __future__ import annotations

from pathlib import Path

import pytest
from toydomain import make_toy_domain

from datagen.envs.base import NativeDomain
from datagen.envs.store import state_hash_of


@pytest.fixture()
def domain(tmp_path: Path) -> NativeDomain:
    return make_toy_domain(tmp_path)


def test_schema_is_derived_from_signature_and_docstring(domain):
    schema = domain.tool("withdraw").schema["function"]
    assert schema["description"] == "Withdraw money."
    assert schema["parameters"]["properties"]["amount"] == {
        "type": "number",
        "description": "How much, in dollars; must be positive.",
    }
    assert sorted(schema["parameters"]["required"]) == ["account_id", "amount"]
    assert domain.dependency_graph()["get_account"] == ["withdraw"]


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        ({"account_id": "a10"}, "amount"),
        ({"account_id": "a10", "amount": "5"}, "amount"),
        ({"account_id": "a10", "amount": 5, "extra": 1}, "extra"),
        ({"account_id": ["a10"], "amount": 5}, "account_id"),
        ({"account_id": "x" * 5000, "amount": 5}, "longer than"),
        ("not a dict", "JSON object"),
    ],
)
def test_bad_arguments_give_error_observation_and_no_change(domain, arguments, fragment):
    env = domain.new_env(1)
    before = env.state_hash()
    obs = env.call({"name": "withdraw", "arguments": arguments})
    assert not obs.ok and obs.content.startswith("Error:") and fragment in obs.content
    assert env.state_hash() == before


def test_failed_write_rolls_back_partial_change(domain):
    env = domain.new_env(1)
    before = env.state_hash()
    assert not env.call({"name": "withdraw", "arguments": {"account_id": "a10", "amount": 1000}}).ok
    assert env.state_hash() == before
    assert env.store.get("accounts", "a10")["balance"] == 100.0
    assert not env.call({"name": "nope", "arguments": {}}).ok


def test_int_accepted_for_float_and_hash_is_canonical(domain):
    env = domain.new_env(1)
    obs = env.call({"name": "withdraw", "arguments": {"account_id": "a10", "amount": 10}})
    assert obs.ok and obs.result == {"balance": 90.0}
    other = domain.new_env(1)
    other.call({"name": "withdraw", "arguments": {"account_id": "a10", "amount": 10.0}})
    assert env.state_hash() == other.state_hash() == state_hash_of(env.snapshot())


def test_episodes_are_isolated_and_reset_restores(domain):
    a, b = domain.new_env(1), domain.new_env(1)
    fresh = a.state_hash()
    a.call({"name": "withdraw", "arguments": {"account_id": "a10", "amount": 10}})
    assert b.state_hash() == fresh != a.state_hash()
    assert b.store.get("accounts", "a10")["balance"] == 100.0
    a.reset()
    assert a.state_hash() == fresh and a.trace == []


def test_diff_and_policy_check(domain):
    env = domain.new_env(1)
    before = env.snapshot()
    env.replay([{"name": "withdraw", "arguments": {"account_id": "a14", "amount": 150}}])
    assert env.diff(before, env.snapshot()) == ["~ accounts/a14.balance: 500 -> 350"]
    violations = env.policy_violations(before)
    assert [(v.rule, v.check) for v in violations] == [("R1", "withdraw_limit")]
