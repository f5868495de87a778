"""The native airline domain: users, flights by date, reservations, and a refund/change policy."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from datagen.envs.base import NativeDomain

HERE = Path(__file__).parent


@cache
def load_domain() -> NativeDomain:
    from datagen.envs.airline import checks, tools
    from datagen.envs.airline.database import REFERENCES, AirlineDB, build_database
    from datagen.envs.policy import checks_in
    from datagen.envs.provenance import ProvenanceRule
    from datagen.envs.tools import tools_in

    return NativeDomain(
        name="airline",
        build_database=build_database,
        db_model=AirlineDB,
        tools=tools_in(tools),
        policy_path=HERE / "policy.md",
        checks=checks_in(checks),
        tasks_path=HERE / "tasks.json",
        examples_path=HERE / "examples.json",
        references=REFERENCES,
        # R4/R9: a fare split over payment methods and a certificate's worth are worked out by the
        # agent from prices and the policy, not repeated from the user or a tool.
        provenance=ProvenanceRule(
            computed={
                "book_reservation": frozenset({"payment_methods.amount"}),
                "send_certificate": frozenset({"amount"}),
            }
        ),
    )
