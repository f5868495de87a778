"""The retail store domain: customers, products with variants, and orders through their life cycle."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from datagen.envs.base import NativeDomain
from datagen.envs.policy import checks_in
from datagen.envs.retail import checks, tools
from datagen.envs.retail.database import REFERENCES, RetailDB, build_database
from datagen.envs.tools import tools_in

HERE = Path(__file__).parent


@cache
def load_domain() -> NativeDomain:
    return NativeDomain(
        name="retail",
        build_database=build_database,
        db_model=RetailDB,
        tools=tools_in(tools),
        policy_path=HERE / "policy.md",
        checks=checks_in(checks),
        tasks_path=HERE / "tasks.json",
        examples_path=HERE / "examples.json",
        references=REFERENCES,
    )
