"""Value pools: where a tool argument's candidate values come from.

A pool maps a field name to the values seen under it in some records (``order_id`` from records that
have that field, and from the keys of table ``orders``, whose keys the domain declares to be order
ids); results of earlier calls join it. ``Pools`` stacks the pools of one call in tiers, nearest
first: the anchor record, the records it names, the sampled data, the rest of the user's data.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datagen.blueprint.samplers import ContextRecord, UserIndex
from datagen.envs.base import Domain, Environment
from datagen.envs.references import References

ValuePool = dict[str, list[Any]]
OBJECTS = "\x00objects"  # pool slot holding every JSON object seen in the data


def _is_keyed_map(value: dict[str, Any]) -> bool:
    """``{"i1": {...}, "i2": {...}}``: records by id. A record that merely holds a nested object
    (an order item's ``options``) is not one: its other fields are plain values."""
    return bool(value) and all(isinstance(inner, dict) for inner in value.values())


def add_values(pool: ValuePool, value: Any, refs: References, name: str | None = None) -> None:
    """Every field of ``value`` (a record, a tool result) joins ``pool`` under its name; the keys of a
    map the domain declares (a user's ``payment_methods``) join under the declared id name."""
    if isinstance(value, dict):
        pool[OBJECTS].append(value)
        keyed_as = refs.maps.get(name) if name is not None and _is_keyed_map(value) else None
        for key, inner in value.items():
            add_values(pool, inner, refs, str(key))
            if keyed_as is not None:
                pool[keyed_as].append(str(key))
    elif isinstance(value, list):
        for inner in value:
            add_values(pool, inner, refs, name)
    elif name is not None and value is not None:
        pool[name].append(value)


def objects_in(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value] + [o for inner in value.values() for o in objects_in(inner)]
    if isinstance(value, list):
        return [o for inner in value for o in objects_in(inner)]
    return []


def build_value_pool(records: list[ContextRecord], refs: References) -> ValuePool:
    """The values of ``records``; a record's key joins under its table's declared id name."""
    pool: ValuePool = defaultdict(list)
    for item in records:
        id_name = refs.tables.get(item.table)
        if id_name is not None:
            pool[id_name].append(item.key)
        add_values(pool, item.record, refs)
    return pool


def type_ok(value: Any, schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if "enum" in schema:
        return value in schema["enum"]
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    return checks.get(kind, lambda v: True)(value) if isinstance(kind, str) else True


def candidates(pool: ValuePool, name: str, schema: dict[str, Any], refs: References) -> list[Any]:
    """Values for parameter ``name``: those under its own name, else those under the id name the
    domain declares it holds (``from_account_id`` -> ``account_id``) or under a name sharing its
    ending (a payee's ``name`` from ``first_name``, ``scheduled_date`` from ``date``)."""
    exact = [v for v in pool.get(name, []) if type_ok(v, schema)]
    if exact:
        return exact
    held = refs.held_by(name)
    return [
        v
        for key, values in pool.items()
        if key == held or key.endswith(name) or name.endswith(key)
        for v in values
        if type_ok(v, schema)
    ]


def value_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class Pools:
    """Where a call's values come from: the anchor record (``own``), the records it names and the
    user's own record (``reach``), the sampled data and earlier results (``base``), and the rest of
    the user's data (``wide``)."""

    base: ValuePool
    refs: References
    own: ValuePool = field(default_factory=dict)
    reach: ValuePool = field(default_factory=dict)
    wide: ValuePool = field(default_factory=dict)
    anchor: dict[str, Any] = field(default_factory=dict)  # the anchor record itself
    named: list[ValuePool] = field(default_factory=list)  # one pool per record the anchor names

    def candidates(self, pool: ValuePool, name: str, schema: dict[str, Any]) -> list[Any]:
        return candidates(pool, name, schema, self.refs)

    def members(self, name: str, schema: dict[str, Any]) -> list[Any]:
        """Values for a list that picks parts of the anchor (an order's ``item_ids``): nearest first."""
        if name.startswith("new_"):
            return self.replacements(name, schema)
        for pool in (self.own, self.reach, self.base, self.wide):
            found = self.candidates(pool, name, schema)
            if found:
                return found
        return []

    def replacements(self, name: str, schema: dict[str, Any]) -> list[Any]:
        """Values for a ``new_*`` parameter: named by the anchor's records, not the anchor's own."""
        kept = {value_key(v) for v in self.candidates(self.own, name, schema)}
        fresh = [v for v in self.candidates(self.reach, name, schema) if value_key(v) not in kept]
        return fresh or self.values(name.removeprefix("new_"), schema)

    def values(self, name: str, schema: dict[str, Any]) -> list[Any]:
        """Values for a single parameter: any the user's data holds, the anchor's current one among
        them (a new payment method, a transfer's other account or a new bag count must differ from
        the anchor's, so it cannot come first)."""
        if name.startswith("new_"):
            return self.replacements(name, schema)
        tiers = (self.own, self.reach, self.base, self.wide)
        found = [v for pool in tiers for v in self.candidates(pool, name, schema)]
        return list({value_key(v): v for v in found}.values())

    def add_alternatives(self, looked_up: Sequence[Any]) -> None:
        """What read tools returned about the anchor joins ``reach``, only as whole objects
        (alternatives for a list element), not as loose values: a transfer's amount or payee must
        not come from some past transaction a read returned."""
        self.reach.setdefault(OBJECTS, []).extend(o for result in looked_up for o in objects_in(result))

    def objects(self) -> list[dict[str, Any]]:
        """Objects seen nearby (the anchor's too: a changed passenger list keeps most passengers)."""
        found = [o for pool in (self.own, self.reach, self.base) for o in pool.get(OBJECTS, [])]
        return list({value_key(o): o for o in found}.values()) or list(self.wide.get(OBJECTS, []))


def user_pool(users: UserIndex, user_id: str) -> ValuePool:
    """Values from all of the user's data (``Pools.wide``)."""
    return build_value_pool([users.record(t, k) for t, k in users.related(user_id)], users.refs)


def anchored_pools(
    users: UserIndex, user_id: str, table: str, key: str, base: ValuePool, wide: ValuePool
) -> Pools:
    """The anchor record's values, and those of the records it names plus the user's own record."""
    refs = users.refs
    anchor = users.record(table, key)
    own = build_value_pool([anchor], refs)
    named = [users.record(t, k) for t, k in users.references(table, key)]
    reach = build_value_pool(named + [users.record(users.user_table, user_id)], refs)
    separately = [build_value_pool([record], refs) for record in named]
    return Pools(
        base=base, refs=refs, own=own, reach=reach, wide=wide, anchor=anchor.record, named=separately
    )


def look_up(domain: Domain, env: Environment, own: ValuePool, rng: random.Random) -> list[Any]:
    """Results of the read tools whose required parameters the anchor alone can fill (a flight
    search from a reservation's origin, destination and date): the alternatives a change can use."""
    found = []
    for spec in sorted(domain.read_tools(), key=lambda t: t.name):
        parameters = spec.schema["function"]["parameters"]
        required = parameters.get("required", [])
        if not required or any(not own.get(name) for name in required):
            continue
        arguments = {name: rng.choice(own[name]) for name in required}
        observation = env.call({"name": spec.name, "arguments": arguments})
        if observation.ok:
            found.append(observation.result)
    return found
