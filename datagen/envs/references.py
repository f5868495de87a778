"""How a domain's records name each other, declared by the domain so that no part of the toolkit has
to guess it from spelling (``orders`` -> ``order_id``; "the first ``*_id`` parameter").

Phase 1 reads it to fill tool arguments from the data: which table an id parameter points into (the
record a write tool acts on), under which name a table's keys join the pool of values, and which
parameters are words the customer chooses rather than data. ``check`` says, naming the parameter,
what a domain forgot to declare.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from apigen_rules.errors import InputError


class ReferencesError(InputError, ValueError):
    """A domain's references are missing or do not fit its data; the message names what and how to fix it."""


@dataclass(frozen=True)
class References:
    """``user_table``: the table of the customers tasks are about (``users``, ``customers``).

    ``tables``: each table whose keys are ids that tools take -> the name those ids go by
    (``{"orders": "order_id"}``: an order's key is an ``order_id``).
    ``maps``: record fields that map ids to records (a user's ``payment_methods``) -> the name those
    ids go by (``payment_method_id``).
    ``names``: other parameter names that hold such ids -> the id name (``{"from_account_id":
    "account_id"}``); a list names its elements (``{"item_ids": "item_id"}``), and an id name may
    also be a field the records carry (an order item's ``item_id``).
    ``free_text``: parameters whose value the customer words (a reason given without a fixed list).
    """

    user_table: str
    tables: Mapping[str, str]
    maps: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    free_text: frozenset[str] = frozenset()

    @cached_property
    def id_names(self) -> frozenset[str]:
        return frozenset(self.tables.values()) | frozenset(self.maps.values())

    def held_by(self, name: str) -> str | None:
        """The id name that values of parameter or field ``name`` are (itself for an id name)."""
        found = self.names.get(name)
        if found is not None:
            return found
        return name if name in self.id_names else None

    def table_of(self, name: str) -> str | None:
        """The table whose keys parameter ``name`` holds (``from_account_id`` -> ``accounts``)."""
        held = self.held_by(name)
        return next((table for table, id_name in self.tables.items() if id_name == held), None)

    def check(self, domain: str, tables: Mapping[str, Any], parameters: Iterable[tuple[str, str]]) -> None:
        """Raises ReferencesError when the declaration does not fit the data, or when one of
        ``parameters`` ((tool, parameter) pairs whose values must come from the data) has no source:
        no declared reference, no field of that name in the data, not declared free text."""
        where = f"domain {domain!r} references"
        if self.user_table not in tables:
            raise ReferencesError(
                f"{where}: user_table {self.user_table!r} is not a table; the tables are {sorted(tables)}"
            )
        unknown = sorted(set(self.tables) - set(tables))
        if unknown:
            raise ReferencesError(f"{where}: tables {unknown} do not exist; the tables are {sorted(tables)}")
        fields = field_names(tables)
        for name, id_name in self.names.items():
            if id_name not in self.id_names and id_name not in fields:
                raise ReferencesError(
                    f"{where}: {name!r} holds {id_name!r}, which is neither the id name of a declared "
                    f"table or map ({sorted(self.id_names)}) nor a field of the records; declare the "
                    "table it points into"
                )
        for tool, parameter in parameters:
            if (
                self.held_by(parameter) is None
                and parameter not in fields
                and parameter not in self.free_text
            ):
                raise ReferencesError(
                    f"{where}: parameter {parameter!r} of tool {tool!r} cannot be resolved: no table "
                    "or field of that name, and no reference declared for it. Declare the table its "
                    f"values are keys of (References(tables={{'<table>': {parameter!r}}}) or "
                    f"names={{{parameter!r}: '<id name>'}}), or free_text={{{parameter!r}}} if the "
                    "customer words it"
                )


def field_names(tables: Mapping[str, Any]) -> frozenset[str]:
    """Every field name used anywhere in the records (nested ones too)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                found.add(str(key))
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for rows in tables.values():
        for record in rows.values() if isinstance(rows, dict) else ():
            walk(record)
    return frozenset(found)


def references_of(domain: Any) -> References:
    """The domain's declared references; a clear error for a domain that declares none."""
    found = getattr(domain, "references", None)
    if not isinstance(found, References):
        raise ReferencesError(
            f"domain {getattr(domain, 'name', domain)!r} declares no references: Phase 1 must know which "
            "table each id parameter of its tools points into. Give the domain a "
            "datagen.envs.references.References (a user domain: REFERENCES in database.py; see "
            "docs/guides/add-a-domain.md)"
        )
    return found


def data_parameters(domain: Any) -> list[tuple[str, str]]:
    """(tool, parameter) for every required parameter of ``domain``'s write tools whose values are
    text drawn from the data (strings, or lists of strings, without a fixed set of values)."""
    found = []
    for spec in domain.write_tools():
        parameters = spec.schema["function"]["parameters"]
        for name in parameters.get("required", []):
            schema = parameters.get("properties", {}).get(name, {})
            items = schema.get("items", {}) if schema.get("type") == "array" else schema
            if items.get("type") == "string" and "enum" not in items:
                found.append((spec.name, name))
    return found


def check_references(domain: Any, refs: References, tables: Mapping[str, Any]) -> None:
    """Raises ReferencesError, naming the parameter, when ``refs`` do not fit ``tables`` or leave an
    id that ``domain``'s write tools take unresolved."""
    refs.check(domain.name, tables, data_parameters(domain))
