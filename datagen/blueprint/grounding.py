"""Grounded proposal: the walked write tools get arguments drawn from the sampled user data, each
candidate tried on a scratch environment, so the resulting a_gt executes by construction.

Values come from a pool keyed by field name (``order_id`` from records that have that field and
from the keys of table ``orders``); results of earlier successful calls join the pool, so a later
call can use an id an earlier one created. Enum parameters draw from their schema.

State-aware anchoring (with a ``StatePlanner``, which holds the user index): most write tools act
on one record that must be in a certain state (a delivered order to exchange, a blocked card to
unblock, a scheduled transfer to cancel), and their other arguments must belong to it (the order's
items, variants of those items' products). A tool whose id parameter names a table (``order_id`` ->
``orders``) is anchored: each try takes another of the user's records of that table, those in a
state the tool is known to act on first, then one status at a time in turn. Lists that pick parts
of the anchor (``item_ids``) draw from the anchor first, then from the records it names; a
``new_*`` parameter (``new_item_ids``) from the named records but not the anchor itself (it is a
replacement), element by element from the record the replaced value belongs to (another variant
of the same product); a single value from any of the user's data, the anchor's current one among
the rest (a new payment method must differ from the current one). Arrays in one call share one
length. A list of objects the anchor holds ("the complete new itinerary") is often the current list
with one element swapped for an alternative that agrees with it outside the schema's fields, such
as a flight on the same route that a read tool returned: read tools whose required parameters the
anchor alone can fill are run first (a flight search from the reservation's origin, destination
and date). The planner also learns, by trying each tool on records of every status, which states
it acts on, and picks users who have such a record.
"""

from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datagen.blueprint.samplers import ContextRecord, UserIndex
from datagen.envs.base import Domain, Environment
from datagen.envs.tools import ToolSpec

log = logging.getLogger(__name__)

ValuePool = dict[str, list[Any]]
OBJECTS = "\x00objects"  # pool slot holding every JSON object seen in the data


def _singular(table: str) -> str:
    return table[:-1] if table.endswith("s") else table


def _is_keyed_map(value: dict[str, Any]) -> bool:
    """``{"i1": {...}, "i2": {...}}``: records by id. A record that merely holds a nested object
    (an order item's ``options``) is not one: its other fields are plain values."""
    return bool(value) and all(isinstance(inner, dict) for inner in value.values())


def _add_values(pool: ValuePool, value: Any, name: str | None) -> None:
    if isinstance(value, dict):
        pool[OBJECTS].append(value)
        keyed = name is not None and _is_keyed_map(value)
        for key, inner in value.items():
            _add_values(pool, inner, str(key))
            if keyed:
                pool[f"{_singular(name)}_id"].append(str(key))
    elif isinstance(value, list):
        for inner in value:
            _add_values(pool, inner, name)
    elif name is not None and value is not None:
        pool[name].append(value)


def _objects_in(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value] + [o for inner in value.values() for o in _objects_in(inner)]
    if isinstance(value, list):
        return [o for inner in value for o in _objects_in(inner)]
    return []


def build_value_pool(records: list[ContextRecord]) -> ValuePool:
    pool: ValuePool = defaultdict(list)
    for item in records:
        pool[f"{_singular(item.table)}_id"].append(item.key)
        _add_values(pool, item.record, None)
    return pool


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
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


def _candidates(pool: ValuePool, name: str, schema: dict[str, Any]) -> list[Any]:
    exact = [v for v in pool.get(name, []) if _type_ok(v, schema)]
    if exact:
        return exact
    related = [
        v
        for key, values in pool.items()
        if key.endswith(name) or name.endswith(key) or _singular(name) == key
        for v in values
        if _type_ok(v, schema)
    ]
    return related


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class Pools:
    """Where a call's values come from: the anchor record (``own``), the records it names and the
    user's own record (``reach``), the sampled data and earlier results (``base``), and the rest of
    the user's data (``wide``)."""

    base: ValuePool
    own: ValuePool = field(default_factory=dict)
    reach: ValuePool = field(default_factory=dict)
    wide: ValuePool = field(default_factory=dict)
    anchor: dict[str, Any] = field(default_factory=dict)  # the anchor record itself
    named: list[ValuePool] = field(default_factory=list)  # one pool per record the anchor names

    def members(self, name: str, schema: dict[str, Any]) -> list[Any]:
        """Values for a list that picks parts of the anchor (an order's ``item_ids``): nearest first."""
        if name.startswith("new_"):
            return self.replacements(name, schema)
        for pool in (self.own, self.reach, self.base, self.wide):
            found = _candidates(pool, name, schema)
            if found:
                return found
        return []

    def replacements(self, name: str, schema: dict[str, Any]) -> list[Any]:
        """Values for a ``new_*`` parameter: named by the anchor's records, not the anchor's own."""
        kept = {_key(v) for v in _candidates(self.own, name, schema)}
        fresh = [v for v in _candidates(self.reach, name, schema) if _key(v) not in kept]
        return fresh or self.values(name.removeprefix("new_"), schema)

    def values(self, name: str, schema: dict[str, Any]) -> list[Any]:
        """Values for a single parameter: any the user's data holds, the anchor's current one among
        them (a new payment method, a transfer's other account or a new bag count must differ from
        the anchor's, so it cannot come first)."""
        if name.startswith("new_"):
            return self.replacements(name, schema)
        tiers = (self.own, self.reach, self.base, self.wide)
        found = [v for pool in tiers for v in _candidates(pool, name, schema)]
        return list({_key(v): v for v in found}.values())

    def add_alternatives(self, looked_up: Sequence[Any]) -> None:
        """What read tools returned about the anchor joins ``reach``, only as whole objects
        (alternatives for a list element), not as loose values: a transfer's amount or payee must
        not come from some past transaction a read returned."""
        self.reach.setdefault(OBJECTS, []).extend(o for result in looked_up for o in _objects_in(result))

    def objects(self) -> list[dict[str, Any]]:
        """Objects seen nearby (the anchor's too: a changed passenger list keeps most passengers)."""
        found = [o for pool in (self.own, self.reach, self.base) for o in pool.get(OBJECTS, [])]
        return list({_key(o): o for o in found}.values()) or list(self.wide.get(OBJECTS, []))


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
    old_name, new_name = _singular(name.removeprefix("new_")), _singular(name)
    paired = []
    for value in replaced:
        homes = [pool for pool in d.pools.named if value in _candidates(pool, old_name, item_schema)]
        options = [c for pool in homes for c in _candidates(pool, new_name, item_schema) if c != value]
        if not options:
            return None
        paired.append(d.rng.choice(options))
    return paired


def _draw_value(d: _Draw, name: str, schema: dict[str, Any]) -> Any:
    schema = _resolve(schema, d.defs)
    rng = d.rng
    if d.explore and schema.get("type") == "string" and "enum" not in schema and not name.endswith("id"):
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
        options = d.pools.members(_singular(name), item_schema) or d.pools.members(name, item_schema)
        distinct = list({_key(v): v for v in options}.values())
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
    pool: ValuePool | Pools,
    rng: random.Random,
    explore: bool = False,
    fixed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Arguments for one call; ``fixed`` holds values already chosen (the anchor's id)."""
    parameters = spec.schema["function"]["parameters"]
    pools = pool if isinstance(pool, Pools) else Pools(base=pool)
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


def anchor_parameter(spec: ToolSpec, users: UserIndex) -> tuple[str, str] | None:
    """(parameter, table) of the record a tool acts on: its first required ``*_id`` parameter that
    names a table other than the users' (``order_id`` -> orders, ``from_account_id`` -> accounts)."""
    parameters = spec.schema["function"]["parameters"]
    required = parameters.get("required", [])
    for name in parameters.get("properties", {}):
        if name not in required or not name.endswith("_id"):
            continue
        stem = name[: -len("_id")]
        for table in users.tables:
            singular = _singular(table)
            if table != users.user_table and (stem == singular or stem.endswith("_" + singular)):
                return name, table
    return None


def _status(record: Any) -> str:
    return str(record.get("status")) if isinstance(record, dict) else ""


def anchor_order(
    users: UserIndex, user_id: str, table: str, rng: random.Random, preferred: frozenset[str] = frozenset()
) -> list[str]:
    """The user's records of ``table`` in the order anchoring tries them: shuffled, then taken one
    status at a time in turn, so a record in a rarer state (the one blocked card) comes up early;
    records in a ``preferred`` status (one the tool is known to act on) go first."""
    keys = [k for t, k in users.related(user_id) if t == table]
    rng.shuffle(keys)
    by_status: dict[str, list[str]] = {}
    for key in keys:
        by_status.setdefault(_status(users.tables[table][key]), []).append(key)
    groups = list(by_status.values())
    rng.shuffle(groups)
    groups.sort(key=lambda g: _status(users.tables[table][g[0]]) not in preferred)
    ordered = []
    for position in range(max((len(g) for g in groups), default=0)):
        ordered += [g[position] for g in groups if position < len(g)]
    return ordered


def user_pool(users: UserIndex, user_id: str) -> ValuePool:
    """Values from all of the user's data (``Pools.wide``)."""
    return build_value_pool([users.record(t, k) for t, k in users.related(user_id)])


def anchored_pools(
    users: UserIndex, user_id: str, table: str, key: str, base: ValuePool, wide: ValuePool
) -> Pools:
    """The anchor record's values, and those of the records it names plus the user's own record."""
    anchor = users.record(table, key)
    own = build_value_pool([anchor])
    named = [users.record(t, k) for t, k in users.references(table, key)]
    reach = build_value_pool(named + [users.record(users.user_table, user_id)])
    separately = [build_value_pool([record]) for record in named]
    return Pools(base=base, own=own, reach=reach, wide=wide, anchor=anchor.record, named=separately)


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


def _attempt(env: Environment, call: dict[str, Any]) -> tuple[Any, str]:
    """(the call's observation, why it does not count; "" when it succeeded and changed the state)."""
    before = env.state_hash()
    observation = env.call(call)
    if not observation.ok:
        return observation, observation.content
    if env.state_hash() == before:
        return observation, "the call succeeded but changed nothing"
    return observation, ""


class StatePlanner:
    """Which of their anchor table's statuses the write tools can act on, and users to match.

    Learned once per tool by trying it, anchored, on a few records of each status (a cancel works on
    pending orders, an unblock on blocked cards); ``choose_user`` then picks a status the walk's first
    tool can act on, uniformly, and a user who has a record in it. Rare states (the few blocked
    cards) are thereby drawn as often as common ones, and the first tool is not handed a user whose
    data cannot serve it. Later tools of a walk get no such guarantee.
    """

    def __init__(self, domain: Domain, users: UserIndex, seed: int, probes: int = 3, tries: int = 6):
        self.domain, self.users, self.seed = domain, users, seed
        self.probes, self.tries = probes, tries
        self._viable: dict[str, frozenset[str]] = {}
        self._owners: dict[tuple[str, str], str] | None = None
        self._by_status: dict[str, dict[str, list[str]]] = {}

    def owners(self) -> dict[tuple[str, str], str]:
        """Record -> the (first) user whose data it belongs to."""
        if self._owners is None:
            self._owners = {}
            for user_id in self.users.user_ids:
                for ref in self.users.related(user_id):
                    self._owners.setdefault(ref, user_id)
        return self._owners

    def _keys_by_status(self, table: str) -> dict[str, list[str]]:
        """Status -> the keys of ``table``'s records that belong to some user."""
        if table not in self._by_status:
            by_status: dict[str, list[str]] = {}
            for t, key in sorted(self.owners()):
                if t == table:
                    by_status.setdefault(_status(self.users.tables[table][key]), []).append(key)
            self._by_status[table] = by_status
        return self._by_status[table]

    def viable(self, tool: str) -> frozenset[str]:
        """The statuses of its anchor table that ``tool`` has been seen to act on (empty: none or no anchor)."""
        if tool not in self._viable:
            self._viable[tool] = self._probe(tool)
        return self._viable[tool]

    def _probe(self, tool: str) -> frozenset[str]:
        spec = self.domain.tool(tool)
        anchor = anchor_parameter(spec, self.users) if spec is not None else None
        if anchor is None:
            return frozenset()
        parameter, table = anchor
        rng = random.Random(f"probe-{tool}")
        viable = set()
        for status, keys in self._keys_by_status(table).items():
            for key in rng.sample(keys, min(self.probes, len(keys))):
                user_id = self.owners()[(table, key)]
                env = self.domain.new_env(self.seed)
                pools = anchored_pools(self.users, user_id, table, key, {}, user_pool(self.users, user_id))
                pools.add_alternatives(look_up(self.domain, env, pools.own, rng))
                if any(
                    self._try(env, spec, pools, rng, {parameter: key}, attempt)
                    for attempt in range(self.tries)
                ):
                    viable.add(status)
                    break
        return frozenset(viable)

    def _try(
        self,
        env: Environment,
        spec: ToolSpec,
        pools: Pools,
        rng: random.Random,
        fixed: dict[str, Any],
        attempt: int,
    ) -> bool:
        explore = attempt >= self.tries // 2  # as grounding does: later tries may invent new text
        call = {"name": spec.name, "arguments": draw_arguments(spec, pools, rng, explore, fixed)}
        return not _attempt(env, call)[1]

    def choose_user(self, write_tools: list[str], rng: random.Random) -> str | None:
        """A user for a walk: one with a record the first write tool can act on; None: draw any user."""
        spec = self.domain.tool(write_tools[0]) if write_tools else None
        anchor = anchor_parameter(spec, self.users) if spec is not None else None
        statuses = sorted(self.viable(write_tools[0])) if anchor else []
        if not statuses:
            return None
        keys = self._keys_by_status(anchor[1])[rng.choice(statuses)]
        return self.owners()[(anchor[1], rng.choice(keys))]


def _call_drawer(
    spec: ToolSpec,
    pool: ValuePool,
    rng: random.Random,
    planner: StatePlanner | None,
    user_id: str | None,
    env: Environment,
) -> Any:
    """A function of the attempt number that draws that attempt's arguments."""
    users = planner.users if planner is not None else None
    anchor = anchor_parameter(spec, users) if users is not None and user_id is not None else None
    if not anchor:
        return lambda attempt, explore: draw_arguments(spec, pool, rng, explore)
    parameter, table = anchor
    keys = anchor_order(users, user_id, table, rng, planner.viable(spec.name))
    if not keys:
        return lambda attempt, explore: draw_arguments(spec, pool, rng, explore)
    wide = user_pool(users, user_id)
    looked_up: dict[str, list[Any]] = {}

    def draw(attempt: int, explore: bool) -> dict[str, Any]:
        key = keys[attempt % len(keys)]
        pools = anchored_pools(users, user_id, table, key, pool, wide)
        if key not in looked_up:
            looked_up[key] = look_up(planner.domain, env, pools.own, rng)
        pools.add_alternatives(looked_up[key])
        return draw_arguments(spec, pools, rng, explore, fixed={parameter: key})

    return draw


def ground_actions(
    domain: Domain,
    env: Environment,
    write_tools: list[str],
    records: list[ContextRecord],
    rng: random.Random,
    tries: int,
    planner: StatePlanner | None = None,
    user_id: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Actions for ``write_tools`` that execute in order on ``env`` (a fresh scratch environment).

    With a ``planner`` (which holds the user index) and ``user_id``, tools are anchored on the
    user's records (module docstring); without, arguments come from ``records`` alone. A candidate
    must succeed and change the state. Returns (actions, notes); a tool whose ``tries`` candidates
    all fail is dropped with a note."""
    pool = build_value_pool(records)
    actions: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in write_tools:
        spec = domain.tool(name)
        if spec is None:
            notes.append(f"{name}: not a tool of {domain.name}")
            continue
        draw = _call_drawer(spec, pool, rng, planner, user_id, env)
        last_error = ""
        for attempt in range(tries):
            call = {"name": name, "arguments": draw(attempt, attempt >= tries // 2)}
            observation, last_error = _attempt(env, call)
            if not last_error:
                actions.append(call)
                _add_values(pool, observation.result, None)
                break
        else:
            notes.append(f"{name}: no executable arguments in {tries} tries (last: {last_error[:200]})")
    return actions, notes


def add_policy_reads(
    domain: Domain,
    seed: int,
    actions: list[dict[str, Any]],
    records: list[ContextRecord],
    rng: random.Random,
    tries: int = 4,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Prefixes one read call when the policy requires it before the writes (identity verification
    before any change, as τ-bench's gold actions have it); returns the actions unchanged when they
    already pass, or when no single read makes them pass (the policy stage then says why)."""
    env = domain.new_env(seed)
    before = env.snapshot()
    env.replay(actions)
    violations = env.policy_violations(before)
    if not violations:
        return actions, []
    pool = build_value_pool(records)
    reads = sorted(domain.read_tools(), key=lambda spec: spec.name)
    rng.shuffle(reads)
    for spec in reads:
        for _ in range(tries):
            call = {"name": spec.name, "arguments": draw_arguments(spec, pool, rng)}
            trial = domain.new_env(seed)
            if not trial.call(call).ok:
                continue
            if all(o.ok for o in trial.replay(actions)) and not trial.policy_violations(before):
                return [call, *actions], [f"prefixed {spec.name} for the policy ({violations[0]})"]
    return actions, [f"no single read satisfies the policy: {'; '.join(str(v) for v in violations)[:300]}"]
