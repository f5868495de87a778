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
from datagen.blueprint.grounding.gate import PolicyGate, attempt_call
from datagen.blueprint.grounding.planner import StatePlanner, anchor_order, anchor_parameter
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
    """Actions for ``write_tools`` that execute in order on ``env`` (a fresh scratch environment)
    and keep the domain's policy.

    With a ``planner`` and ``user_id``, tools are anchored on the user's records (module docstring);
    without, arguments come from ``records`` alone. A candidate must succeed, change the state and
    break no policy rule (with the read the policy requires in front, :class:`PolicyGate`): a draft
    that breaks one is rejected by Phase 1's policy stage anyway, and a later try often draws the
    record or count that keeps it (a reservation still in the insurance window, the paid bags the
    allowance leaves). Returns (actions, notes): the read first when the policy requires one, then
    the writes; a tool whose ``tries`` candidates all fail is dropped with a note."""
    refs = references_of(domain)
    pool = build_value_pool(records, refs)
    gate = PolicyGate(domain, env.seed, Pools(build_value_pool(records, refs), refs), rng)
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
            trial = domain.new_env(env.seed)
            start = trial.state_hash()
            trial.replay(actions)
            observation, last_error = attempt_call(trial, call)
            if not last_error and trial.state_hash() == start:
                last_error = "it undoes the walk's earlier calls (a card blocked, then unblocked)"
            if not last_error:
                last_error = "; ".join(gate.blockers([*actions, call])[:2])
            if not last_error:
                actions.append(call)
                env.call(call)
                add_values(pool, observation.result, refs)
                break
        else:
            notes.append(f"{name}: no executable arguments in {tries} tries (last: {last_error[:200]})")
    if actions and gate.read is not None:
        notes.append(f"prefixed {gate.read['name']} for the policy")
        actions = [gate.read, *actions]
    return actions, notes
