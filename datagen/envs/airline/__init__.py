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
    from datagen.envs.provenance import ProvenanceRule

    return NativeDomain.in_folder(
        HERE,
        tools=tools,
        checks=checks,
        name="airline",
        build_database=build_database,
        db_model=AirlineDB,
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
