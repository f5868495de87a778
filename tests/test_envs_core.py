"""The native environment core on a toy domain: schemas, validation, rollback, hashing, diff."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Literal, TypedDict

import pytest
from pydantic import BaseModel, ConfigDict

from datagen.envs.base import NativeDomain
from datagen.envs.policy import checks_in, policy_check
from datagen.envs.store import Store, state_hash_of
from datagen.envs.tools import ToolError, tool, tools_in


class Account(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str
    balance: float
    status: Literal["open", "frozen"]


class ToyDB(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accounts: dict[str, Account]


class AccountInfo(TypedDict):
    account_id: str
    balance: float


def _make_tools_module() -> types.ModuleType:
    module = types.ModuleType("toy_tools")

    @tool("read")
    def get_account(db: Store, account_id: str) -> AccountInfo:
        """Look up an account.

        Args:
            account_id: The account id, such as "a1".
        """
        record = db.get("accounts", account_id)
        if record is None:
            raise ToolError(f"account {account_id} not found")
        return {"account_id": account_id, "balance": record["balance"]}

    @tool("write")
    def withdraw(db: Store, account_id: str, amount: float) -> dict:
        """Withdraw money.

        Args:
            account_id: The account to debit.
            amount: How much, in dollars; must be positive.
        """
        record = db.edit("accounts", account_id)
        record["balance"] -= amount  # changed before the check on purpose: rollback must undo it
        if amount <= 0 or record["balance"] < 0:
            raise ToolError("amount must be positive and not exceed the balance")
        return {"balance": record["balance"]}

    module.get_account = get_account
    module.withdraw = withdraw
    return module


def _make_checks_module() -> types.ModuleType:
    module = types.ModuleType("toy_checks")

    @policy_check("R1", "Never withdraw more than 100 in one call.")
    def withdraw_limit(before, trace, after):
        return [f"withdrew {a.arguments['amount']}" for a in trace if a.name == "withdraw" and a.ok and a.arguments["amount"] > 100]

    module.withdraw_limit = withdraw_limit
    return module


@pytest.fixture()
def domain(tmp_path: Path) -> NativeDomain:
    policy = tmp_path / "policy.md"
    policy.write_text("# Toy\nR1. Never withdraw more than 100 in one call.\n")

    def build(seed: int):
        return {"accounts": {f"a{seed}{i}": {"owner": f"u{i}", "balance": 100.0 * (i + 1), "status": "open"} for i in range(5)}}

    return NativeDomain(
        name="toy", build_database=build, db_model=ToyDB, tools=tools_in(_make_tools_module()),
        policy_path=policy, checks=checks_in(_make_checks_module()),
    )


def test_schema_is_derived_from_signature_and_docstring(domain):
    schema = domain.tool("withdraw").schema["function"]
    assert schema["description"] == "Withdraw money."
    assert schema["parameters"]["properties"]["amount"] == {"type": "number", "description": "How much, in dollars; must be positive."}
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
