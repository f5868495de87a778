"""The grounding loop: the walked write tools get arguments drawn from the sampled user data, each
candidate tried on a scratch environment, so the resulting a_gt executes by construction.

With a ``StatePlanner`` (which holds the user index) each tool is anchored on one of the user's
records of its anchor table, those in a state the tool is known to act on first, then one status
at a time in turn; its other arguments come from the anchor, the records it names and the rest of
the user's data (``pools``), after read tools the anchor alone can fill have been run (a flight
search from the reservation's origin, destination and date). Without one, arguments come from the
sampled records alone. Results of successful calls join the pool, so a later call can use an id an
earlier one created.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from datagen.blueprint.grounding.draw import draw_arguments
from datagen.blueprint.grounding.planner import StatePlanner, anchor_order, anchor_parameter, attempt_call
from datagen.blueprint.grounding.pools import (
    Pools,
    ValuePool,
    add_values,
    anchored_pools,
    build_value_pool,
    look_up,
    user_pool,
)
from datagen.blueprint.samplers import ContextRecord
from datagen.envs.base import Domain, Environment
from datagen.envs.references import References, references_of
from datagen.envs.tools import ToolSpec

Drawer = Callable[[int, bool], dict[str, Any]]  # (attempt, explore) -> that attempt's arguments


def _call_drawer(
    spec: ToolSpec,
    pool: ValuePool,
    refs: References,
    rng: random.Random,
    planner: StatePlanner | None,
    user_id: str | None,
    env: Environment,
) -> Drawer:
    """A function of the attempt number that draws that attempt's arguments."""
    users = planner.users if planner is not None else None
    anchor = anchor_parameter(spec, users) if users is not None and user_id is not None else None
    if not anchor:
        return lambda attempt, explore: draw_arguments(spec, Pools(pool, refs), rng, explore)
    parameter, table = anchor
    keys = anchor_order(users, user_id, table, rng, planner.viable(spec.name))
    if not keys:
        return lambda attempt, explore: draw_arguments(spec, Pools(pool, refs), rng, explore)
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

    With a ``planner`` and ``user_id``, tools are anchored on the user's records (module docstring);
    without, arguments come from ``records`` alone. A candidate must succeed and change the state.
    Returns (actions, notes); a tool whose ``tries`` candidates all fail is dropped with a note."""
    refs = references_of(domain)
    pool = build_value_pool(records, refs)
    actions: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in write_tools:
        spec = domain.tool(name)
        if spec is None:
            notes.append(f"{name}: not a tool of {domain.name}")
            continue
        draw = _call_drawer(spec, pool, refs, rng, planner, user_id, env)
        last_error = ""
        for attempt in range(tries):
            call = {"name": name, "arguments": draw(attempt, attempt >= tries // 2)}
            observation, last_error = attempt_call(env, call)
            if not last_error:
                actions.append(call)
                add_values(pool, observation.result, refs)
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
    refs = references_of(domain)
    pools = Pools(build_value_pool(records, refs), refs)
    reads = sorted(domain.read_tools(), key=lambda spec: spec.name)
    rng.shuffle(reads)
    for spec in reads:
        for _ in range(tries):
            call = {"name": spec.name, "arguments": draw_arguments(spec, pools, rng)}
            trial = domain.new_env(seed)
            if not trial.call(call).ok:
                continue
            if all(o.ok for o in trial.replay(actions)) and not trial.policy_violations(before):
                return [call, *actions], [f"prefixed {spec.name} for the policy ({violations[0]})"]
    return actions, [f"no single read satisfies the policy: {'; '.join(str(v) for v in violations)[:300]}"]
