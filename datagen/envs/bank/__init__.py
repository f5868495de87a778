"""The bank domain: customers, accounts, transfers with limits, payees, cards and disputes."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from datagen.envs.bank import checks, tools
from datagen.envs.bank.database import REFERENCES, BankDB, build_database
from datagen.envs.base import NativeDomain

HERE = Path(__file__).parent


@cache
def load_domain() -> NativeDomain:
    return NativeDomain.in_folder(
        HERE,
        tools=tools,
        checks=checks,
        name="bank",
        build_database=build_database,
        db_model=BankDB,
        references=REFERENCES,
    )
