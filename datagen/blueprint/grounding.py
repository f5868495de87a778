"""Grounded proposal: the walked write tools get arguments drawn from the sampled user data, each
candidate tried on a scratch environment, so the resulting a_gt executes by construction.

Values come from a pool keyed by field name (``order_id`` from records that have that field and
from the keys of table ``orders``); results of earlier successful calls join the pool, so a later
call can use an id an earlier one created. Enum parameters draw from their schema.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from typing import Any

from datagen.blueprint.samplers import ContextRecord
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


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follows a local ``$ref`` and takes the first non-null branch of an ``anyOf`` (``X | None``)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        schema = {**defs.get(ref.rsplit("/", 1)[-1], {}), **{k: v for k, v in schema.items() if k != "$ref"}}
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            return _resolve({**branch, **{k: v for k, v in schema.items() if k != "anyOf"}}, defs)
    return schema


def _draw_object(
    pool: ValuePool, schema: dict[str, Any], defs: dict[str, Any], rng: random.Random, explore: bool
) -> dict[str, Any]:
    """An object for an object schema: a projection of a matching object from the data when there is
    one (a reservation's flight as ``{flight_number, date}``), else one drawn field by field."""
    properties = schema.get("properties", {})
    required = set(schema.get("required", properties))
    matches = [o for o in pool.get(OBJECTS, []) if required <= set(o)]
    if matches and not (explore and rng.random() < 0.5):
        chosen = rng.choice(matches)
        return {k: chosen[k] for k in properties if k in chosen}
    return {k: _draw_value(pool, k, v, defs, rng, explore) for k, v in properties.items() if k in required}


def _draw_value(
    pool: ValuePool,
    name: str,
    schema: dict[str, Any],
    defs: dict[str, Any],
    rng: random.Random,
    explore: bool,
) -> Any:
    schema = _resolve(schema, defs)
    if explore and schema.get("type") == "string" and "enum" not in schema and not name.endswith("id"):
        # a value already in the data often changes nothing (the same address again): try a new one
        return f"new {name.replace('_', ' ')} {rng.randint(1, 999)}"
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "object" and schema.get("properties"):
        return _draw_object(pool, schema, defs, rng, explore)
    if kind == "array":
        item_schema = _resolve(schema.get("items", {}), defs)
        count = rng.randint(1, 2)
        if item_schema.get("type") == "object":
            return [_draw_object(pool, item_schema, defs, rng, explore) for _ in range(count)]
        options = _candidates(pool, _singular(name), item_schema) or _candidates(pool, name, item_schema)
        distinct = sorted(set(options), key=str)
        return rng.sample(distinct, min(len(distinct), count)) if distinct else []
    options = _candidates(pool, name, schema)
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
    spec: ToolSpec, pool: ValuePool, rng: random.Random, explore: bool = False
) -> dict[str, Any]:
    parameters = spec.schema["function"]["parameters"]
    defs = parameters.get("$defs", {})
    required = set(parameters.get("required", []))
    arguments: dict[str, Any] = {}
    for name, schema in parameters.get("properties", {}).items():
        if name not in required and rng.random() < 0.7:
            continue
        arguments[name] = _draw_value(pool, name, schema, defs, rng, explore)
    return arguments


def ground_actions(
    domain: Domain,
    env: Environment,
    write_tools: list[str],
    records: list[ContextRecord],
    rng: random.Random,
    tries: int,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Actions for ``write_tools`` that execute in order on ``env`` (a fresh scratch environment).

    A candidate must succeed and change the state. Returns (actions, notes); a tool whose ``tries``
    candidates all fail is dropped with a note."""
    pool = build_value_pool(records)
    actions: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in write_tools:
        spec = domain.tool(name)
        if spec is None:
            notes.append(f"{name}: not a tool of {domain.name}")
            continue
        last_error = ""
        for attempt in range(tries):
            call = {"name": name, "arguments": draw_arguments(spec, pool, rng, explore=attempt >= tries // 2)}
            before = env.state_hash()
            observation = env.call(call)
            if observation.ok and env.state_hash() == before:
                last_error = "the call succeeded but changed nothing"
            elif observation.ok:
                actions.append(call)
                _add_values(pool, observation.result, None)
                break
            last_error = observation.content
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
