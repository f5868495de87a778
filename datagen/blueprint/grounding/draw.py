"""Drawing one call's arguments from its tool's JSON schema and a call's ``Pools``.

Enum parameters draw from their schema; ids and values from the pools, nearest tier first. Lists
that pick parts of the anchor (``item_ids``) draw from the anchor first, then from the records it
names; a ``new_*`` parameter (``new_item_ids``) replaces the values of the parameter it prefixes:
from the named records but not the anchor itself, element by element from the record the replaced
value belongs to (another variant of the same product). Arrays in one call share one length. A
list of objects the anchor holds ("the complete new itinerary") is often the current list with one
element swapped for an alternative that agrees with it outside the schema's fields. Exploring
(later tries) may invent free text and nearby counts, never ids, dates or codes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from datagen.blueprint.grounding.pools import Pools, value_key
from datagen.envs.tools import ToolSpec


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follows a local ``$ref`` and takes the first non-null branch of an ``anyOf`` (``X | None``)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        schema = {**defs.get(ref.rsplit("/", 1)[-1], {}), **{k: v for k, v in schema.items() if k != "$ref"}}
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            return _resolve({**branch, **{k: v for k, v in schema.items() if k != "anyOf"}}, defs)
    return schema


def _looks_like_code(value: str) -> bool:
    """A date, number or code ("2026-05-20", "021954189", "ATL"), not free text ("12 Main St")."""
    return " " not in value.strip() and (any(ch.isdigit() for ch in value) or value.isupper())


@dataclass
class _Draw:
    """One call's drawing state: its value sources, its randomness, and the length its arrays share."""

    pools: Pools
    defs: dict[str, Any]
    rng: random.Random
    explore: bool
    count: int
    arguments: dict[str, Any] = field(default_factory=dict)  # drawn so far, in schema order

    def anchor_list(self, name: str) -> list[dict[str, Any]]:
        value = self.pools.anchor.get(name)
        return value if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) else []

    def element(self, name: str) -> str:
        """The name one element of list parameter ``name`` goes by, as the domain declares it
        (``item_ids`` -> ``item_id``); a ``new_*`` list's elements keep the prefix (``new_item_id``),
        since they replace the elements of the list it prefixes."""
        if name.startswith("new_"):
            return "new_" + self.element(name.removeprefix("new_"))
        return self.pools.refs.held_by(name) or name


def _draw_object(d: _Draw, schema: dict[str, Any]) -> dict[str, Any]:
    """An object for an object schema: a projection of a matching object from the data when there is
    one (a reservation's flight as ``{flight_number, date}``), else one drawn field by field."""
    properties = schema.get("properties", {})
    required = set(schema.get("required", properties))
    matches = [o for o in d.pools.objects() if required <= set(o)]
    if matches and not (d.explore and d.rng.random() < 0.5):
        chosen = d.rng.choice(matches)
        return {k: chosen[k] for k in properties if k in chosen}
    return {k: _draw_value(d, k, v) for k, v in properties.items() if k in required}


def _edited_list(d: _Draw, name: str, item_schema: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The anchor's own list under ``name`` with one element swapped for an alternative: "the
    complete new itinerary" is mostly the current one. An alternative is an object from the data
    that agrees with the element on every field they share outside the schema (a searched flight
    with the same origin and destination) and differs in the schema's fields; None if none."""
    current = d.anchor_list(name)
    if not current:
        return None
    keys = list(item_schema.get("properties", {}))
    index = d.rng.randrange(len(current))
    element = current[index]
    shown = {k: element.get(k) for k in keys}
    alternatives = [
        o
        for o in d.pools.objects()
        if set(keys) <= set(o)
        and {k: o[k] for k in keys} != shown
        and all(o[k] == element[k] for k in set(o) & set(element) - set(keys))
    ]
    if not alternatives:
        return None
    edited = [{k: o[k] for k in keys if k in o} for o in current]
    edited[index] = {k: v for k, v in d.rng.choice(alternatives).items() if k in keys}
    return edited


def _paired_replacements(d: _Draw, name: str, item_schema: dict[str, Any]) -> list[Any] | None:
    """``new_item_ids`` for the ``item_ids`` already drawn, element by element: each replacement
    comes from the named record the replaced value belongs to (another variant of the same
    product), never the value itself; None when the parameter has no such pair."""
    replaced = d.arguments.get(name.removeprefix("new_")) if name.startswith("new_") else None
    if not isinstance(replaced, list) or not replaced or not d.pools.named:
        return None
    old_name, new_name = d.element(name.removeprefix("new_")), d.element(name)
    paired = []
    for value in replaced:
        homes = [pool for pool in d.pools.named if value in d.pools.candidates(pool, old_name, item_schema)]
        options = [c for pool in homes for c in d.pools.candidates(pool, new_name, item_schema) if c != value]
        if not options:
            return None
        paired.append(d.rng.choice(options))
    return paired


def _draw_value(d: _Draw, name: str, schema: dict[str, Any]) -> Any:
    schema = _resolve(schema, d.defs)
    rng = d.rng
    is_id = d.pools.refs.held_by(name) is not None
    if d.explore and schema.get("type") == "string" and "enum" not in schema and not is_id:
        # a value already in the data often changes nothing (the same address again): try new text,
        # unless the data's values are codes, dates or numbers, which cannot be made up
        known = [v for v in d.pools.values(name, schema) if isinstance(v, str)]
        if not any(_looks_like_code(v) for v in known):
            return f"new {name.replace('_', ' ')} {rng.randint(1, 999)}"
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if d.explore and kind == "integer":
        # counts in the data are often the current ones (the same bags again): try a nearby count
        known = [v for v in d.pools.values(name, schema) if isinstance(v, int)]
        return rng.randint(0, max(known, default=1) + 2)
    if kind == "object" and schema.get("properties"):
        return _draw_object(d, schema)
    if kind == "array":
        item_schema = _resolve(schema.get("items", {}), d.defs)
        if item_schema.get("type") == "object":
            edited = _edited_list(d, name, item_schema) if rng.random() < 0.5 else None
            return edited if edited is not None else [_draw_object(d, item_schema) for _ in range(d.count)]
        paired = _paired_replacements(d, name, item_schema)
        if paired is not None:
            return paired
        options = d.pools.members(d.element(name), item_schema) or d.pools.members(name, item_schema)
        distinct = list({value_key(v): v for v in options}.values())
        return rng.sample(distinct, min(len(distinct), d.count)) if distinct else []
    options = d.pools.values(name, schema)
    if options:
        return rng.choice(options)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "integer":
        return rng.randint(1, 3)
    if kind == "number":
        return float(rng.randint(1, 50))
    return f"{name.replace('_', ' ')} requested by the customer"


def draw_arguments(
    spec: ToolSpec,
    pools: Pools,
    rng: random.Random,
    explore: bool = False,
    fixed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Arguments for one call; ``fixed`` holds values already chosen (the anchor's id)."""
    parameters = spec.schema["function"]["parameters"]
    d = _Draw(pools, parameters.get("$defs", {}), rng, explore, count=rng.randint(1, 2))
    required = set(parameters.get("required", []))
    arguments: dict[str, Any] = {}
    d.arguments = arguments
    for name, schema in parameters.get("properties", {}).items():
        if fixed and name in fixed:
            arguments[name] = fixed[name]
        elif name in required or rng.random() >= 0.7:
            arguments[name] = _draw_value(d, name, schema)
    return arguments
