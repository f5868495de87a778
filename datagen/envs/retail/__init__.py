"""The retail store domain: customers, products with variants, and orders through their life cycle."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from datagen.envs.base import NativeDomain
from datagen.envs.retail import checks, tools
from datagen.envs.retail.database import REFERENCES, RetailDB, build_database

HERE = Path(__file__).parent


@cache
def load_domain() -> NativeDomain:
    return NativeDomain.in_folder(
        HERE,
        tools=tools,
        checks=checks,
        name="retail",
        build_database=build_database,
        db_model=RetailDB,
        references=REFERENCES,
    )
