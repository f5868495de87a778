"""The bank domain: customers, accounts, transfers with limits, payees, cards and disputes."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from datagen.envs.bank import checks, tools
from datagen.envs.bank.database import REFERENCES, BankDB, build_database
from datagen.envs.base import NativeDomain
from datagen.envs.policy import checks_in
from datagen.envs.tools import tools_in

HERE = Path(__file__).parent


@cache
def load_domain() -> NativeDomain:
    return NativeDomain(
        name="bank",
        build_database=build_database,
        db_model=BankDB,
        tools=tools_in(tools),
        policy_path=HERE / "policy.md",
        checks=checks_in(checks),
        tasks_path=HERE / "tasks.json",
        examples_path=HERE / "examples.json",
        references=REFERENCES,
    )
