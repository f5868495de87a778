"""The state planner: which record a write tool acts on (its anchor), and in which states.

Most write tools act on one record that must be in a certain state (a delivered order to exchange, a
blocked card to unblock, a scheduled transfer to cancel). The anchor is the tool's first required
parameter that the domain declares to point into a table other than the users' (``order_id`` ->
``orders``, ``from_account_id`` -> ``accounts``; ``datagen.envs.references``). The planner learns,
by trying each tool on records of every status, which states it acts on, and picks users who have
such a record.
"""

from __future__ import annotations

import random
from typing import Any

from datagen.blueprint.grounding.draw import draw_arguments
from datagen.blueprint.grounding.gate import PolicyGate, attempt_call
from datagen.blueprint.grounding.pools import Pools, anchored_pools, build_value_pool, look_up, user_pool
from datagen.blueprint.samplers import UserIndex
from datagen.envs.base import Domain
from datagen.envs.references import check_references
from datagen.envs.tools import ToolSpec


def anchor_parameter(spec: ToolSpec, users: UserIndex) -> tuple[str, str] | None:
    """(parameter, table) of the record a tool acts on: its first required parameter that the
    domain declares to point into a table other than the users' (``order_id`` -> orders)."""
    parameters = spec.schema["function"]["parameters"]
    required = parameters.get("required", [])
    for name in parameters.get("properties", {}):
        table = users.refs.table_of(name) if name in required else None
        if table is not None and table != users.user_table and table in users.tables:
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


class StatePlanner:
    """Which of their anchor table's statuses the write tools can act on, and users to match.

    Learned once per tool by trying it, anchored, on a few records of each status (a cancel works on
    pending orders, an unblock on blocked cards), a try counting only when it keeps the policy too
    (``gate``); ``choose_user`` then picks a status the walk's first tool can act on, uniformly, and
    a user who has a record in it that the tool serves. Rare states (the few blocked
    cards) are thereby drawn as often as common ones, and the first tool is not handed a user whose
    data cannot serve it. Later tools of a walk get no such guarantee. Building one checks the
    domain's references (a clear error naming the parameter they leave unresolved).
    """

    def __init__(
        self, domain: Domain, users: UserIndex, seed: int, probes: int = 32, tries: int = 6, picks: int = 32
    ):
        if users.user_ids:  # an environment without state has nothing to ground in (LLM proposals only)
            check_references(domain, users.refs, users.tables)  # before any probing: a clear error
        self.domain, self.users, self.seed = domain, users, seed
        self.probes, self.tries, self.picks = probes, tries, picks
        self._serves: dict[tuple[str, str], bool] = {}
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
        rng = random.Random(f"probe-{tool}")
        return frozenset(
            status
            for status, keys in self._keys_by_status(anchor[1]).items()
            if any(self.serves(tool, key) for key in rng.sample(keys, min(self.probes, len(keys))))
        )

    def serves(self, tool: str, key: str) -> bool:
        """Whether ``tool`` anchored on record ``key`` has, within ``tries`` candidates, one that
        executes, changes the state and keeps the policy (``gate``); cached per (tool, record)."""
        if (tool, key) not in self._serves:
            self._serves[(tool, key)] = self._try_record(tool, key)
        return self._serves[(tool, key)]

    def _try_record(self, tool: str, key: str) -> bool:
        spec = self.domain.tool(tool)
        parameter, table = anchor_parameter(spec, self.users)  # type: ignore[arg-type,misc]
        user_id = self.owners()[(table, key)]
        rng = random.Random(f"probe-{tool}-{key}")
        wide = user_pool(self.users, user_id)
        pools = anchored_pools(self.users, user_id, table, key, {}, wide)
        pools.add_alternatives(look_up(self.domain, self.domain.new_env(self.seed), pools.own, rng))
        # the read the policy asks for first (identity) is filled from the user's own record
        own_record = build_value_pool([self.users.record(self.users.user_table, user_id)], self.users.refs)
        gate = PolicyGate(self.domain, self.seed, Pools(own_record, self.users.refs), rng)
        for attempt in range(self.tries):
            explore = attempt >= self.tries // 2  # as grounding does: later tries may invent new text
            call = {"name": tool, "arguments": draw_arguments(spec, pools, rng, explore, {parameter: key})}
            if not attempt_call(self.domain.new_env(self.seed), call)[1] and not gate.blockers([call]):
                return True
        return False

    def choose_user(self, write_tools: list[str], rng: random.Random) -> str | None:
        """A user for a walk: one with a record the first write tool can act on (a status it acts on,
        drawn uniformly, then the first of up to ``picks`` records of it the tool serves: a blocked
        card not held for fraud); None: draw any user."""
        spec = self.domain.tool(write_tools[0]) if write_tools else None
        anchor = anchor_parameter(spec, self.users) if spec is not None else None
        statuses = sorted(self.viable(write_tools[0])) if anchor else []
        if not statuses:
            return None
        table, tool = anchor[1], write_tools[0]
        keys = self._keys_by_status(table)[rng.choice(statuses)]
        first = rng.choice(keys)
        # the others in an order of their own, so the caller's stream is drawn from as before
        others = random.Random(f"{tool}-{first}").sample(keys, min(len(keys), self.picks))
        chosen = next((k for k in [first, *others] if self.serves(tool, k)), first)
        return self.owners()[(table, chosen)]
