"""A small bank-like domain for testing the environment core and Phase 2 logic without a real domain."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict

from datagen.envs.base import NativeDomain
from datagen.envs.policy import checks_in, policy_check
from datagen.envs.store import Store
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
        return [
            f"withdrew {a.arguments['amount']}"
            for a in trace
            if a.name == "withdraw" and a.ok and a.arguments["amount"] > 100
        ]

    module.withdraw_limit = withdraw_limit
    return module


def make_toy_domain(tmp_path: Path) -> NativeDomain:
    policy = tmp_path / "policy.md"
    policy.write_text("# Toy\nR1. Never withdraw more than 100 in one call.\n")

    def build(seed: int):
        return {
            "accounts": {
                f"a{seed}{i}": {"owner": f"u{i}", "balance": 100.0 * (i + 1), "status": "open"}
                for i in range(5)
            }
        }

    return NativeDomain(
        name="toy",
        build_database=build,
        db_model=ToyDB,
        tools=tools_in(_make_tools_module()),
        policy_path=policy,
        checks=checks_in(_make_checks_module()),
    )
