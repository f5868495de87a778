"""Context samplers for task drafts: the API-graph walk, one user's data, policy excerpts, a persona
and few-shot examples. Every draw comes from random streams seeded per task (``TaskStreams``), and
the whole draw (including the per-draw sizes, so sampler frequencies vary between tasks) is recorded.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datagen.envs.base import Domain, Environment, Task
from datagen.envs.references import References, references_of
from datagen.envs.store import Record
from datagen.records import Blueprint

PROMPTS = Path(__file__).parent / "prompts"


@dataclass
class TaskStreams:
    """One task's random streams, each derived from the run seed and the task key alone.

    A sampler whose draws depend on the run's progress (the few-shot pool grows as tasks are
    accepted) has a stream of its own, so a resumed or re-run task draws the same user, walk, data
    and arguments whatever the pool held; grounding and the per-request sampling seeds likewise."""

    context: random.Random  # the walk, the user, their records, policy excerpts, persona traits
    fewshot: random.Random
    grounding: random.Random
    requests: random.Random

    @classmethod
    def for_task(cls, run_seed: int, task_key: str) -> TaskStreams:
        # str seeds hash with sha512: stable across processes, unlike hash()
        base = f"{run_seed}:{task_key}"
        return cls(
            context=random.Random(base),
            fewshot=random.Random(f"{base}:fewshot"),
            grounding=random.Random(f"{base}:grounding"),
            requests=random.Random(f"{base}:requests"),
        )


def draw_size(rng: random.Random, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return rng.randint(low, high)  # inclusive on both ends, which is what (low, high) means here


def walk_write_tools(domain: Domain, rng: random.Random, length: int, max_steps: int = 50) -> list[str]:
    """A random walk over the tool dependency graph collecting ``length`` write tools.

    Read tools are nodes the walk may pass through (their outputs feed later writes) but they are
    not collected: reads are left to the dialogue. A dead end restarts at a random write tool.
    """
    writes = sorted(t.name for t in domain.write_tools())
    if not writes:
        raise ValueError(f"domain {domain.name!r} has no write tools; Phase 1 needs state-changing tools")
    graph = domain.dependency_graph()
    kinds = {t.name: t.kind for t in domain.tools}
    chosen: list[str] = []
    node = rng.choice(sorted(graph)) if graph else rng.choice(writes)
    for _ in range(max_steps):
        if kinds.get(node) == "write" and (node not in chosen or len(set(chosen)) == len(writes)):
            chosen.append(node)
            if len(chosen) >= length:
                break
        successors = sorted(graph.get(node, []))
        node = rng.choice(successors) if successors and rng.random() < 0.85 else rng.choice(writes)
    if not chosen:
        chosen.append(rng.choice(writes))
    return chosen


def _references(value: Any, target: str) -> bool:
    if isinstance(value, str):
        return value == target
    if isinstance(value, dict):
        return any(_references(v, target) for v in value.values())
    if isinstance(value, list):
        return any(_references(v, target) for v in value)
    return False


def _strings_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings_in(v) for v in value)) if value else set()
    return set()


@dataclass
class ContextRecord:
    table: str
    key: str
    record: Record


class UserIndex:
    """The database an episode starts from, and which records mention each user; built once per run
    (scanning every table per draw would cost a pass over the whole database each time). Works on
    any environment's ``snapshot()``, so adapters (τ²-bench) are sampled the same way. The users are
    the domain's declared ``references.user_table`` unless ``user_table`` names another table."""

    def __init__(self, env: Environment, user_table: str = "auto"):
        self.tables = env.snapshot()
        if not self.tables and env.domain.references is None and env.domain.verification == "actions":
            # A remote environment that exposes no state: there is no data to draw a user from, so the
            # generator writes tasks from the tools and the policy alone (LLM proposals).
            self.refs, self.user_table, self.user_ids = References(user_table="", tables={}), "", []
            self.mentions, self.mentioned_by = {}, {}
            return
        self.refs = references_of(env.domain)
        if user_table == "auto":
            user_table = self.refs.user_table
        if user_table not in self.tables:
            raise ValueError(
                f"the user table is {user_table!r} but the domain's tables are {sorted(self.tables)}; "
                "set samplers.user_table (or the domain's references.user_table) to the table of customers"
            )
        self.user_table = user_table
        self.user_ids = sorted(self.tables[user_table])
        if not self.user_ids:
            raise ValueError(f"table {user_table!r} is empty; Phase 1 samples a user from it")
        users = set(self.user_ids)
        keys = {key for table, rows in self.tables.items() if table != user_table for key in rows}
        self.mentions: dict[str, list[tuple[str, str]]] = {u: [] for u in self.user_ids}
        # record key -> the records that name it (an account's transactions, an order's dispute)
        self.mentioned_by: dict[str, list[tuple[str, str]]] = {}
        for table, rows in self.tables.items():
            if table == user_table:
                continue
            for key, record in rows.items():
                strings = _strings_in(record)
                for value in strings & users:
                    self.mentions[value].append((table, key))
                for value in strings & keys:
                    if value != key:
                        self.mentioned_by.setdefault(value, []).append((table, key))

    def record(self, table: str, key: str) -> ContextRecord:
        return ContextRecord(table, key, copy.deepcopy(self.tables[table][key]))

    def related(self, user_id: str) -> list[tuple[str, str]]:
        """Every record of the user: those that name the user, then those that name one of them
        (a bank customer's transactions name the customer's accounts, not the customer)."""
        direct = sorted(self.mentions[user_id])
        seen = set(direct)
        second: list[tuple[str, str]] = []
        for _, key in direct:
            for ref in self.mentioned_by.get(key, []):
                if ref not in seen:
                    seen.add(ref)
                    second.append(ref)
        return direct + sorted(second)

    def references(self, table: str, key: str) -> list[tuple[str, str]]:
        """The records that one record names by key (an order's products), the user table excepted."""
        found = []
        for value in sorted(_strings_in(self.tables[table][key])):
            found += [(t, value) for t, rows in self.tables.items() if t != self.user_table and value in rows]
        return [ref for ref in found if ref != (table, key)]


def sample_user_records(
    index: UserIndex, rng: random.Random, count: int, user_id: str | None = None
) -> tuple[str, list[ContextRecord]]:
    """One user (random unless given) and up to ``count`` related records: the user's own record,
    records that mention the user id anywhere, then records those reference by key. An index without
    users (an environment without state) gives no user and no records."""
    if not index.user_ids:
        return "", []
    user_id = user_id if user_id is not None else rng.choice(index.user_ids)
    found = [index.record(index.user_table, user_id)]
    direct = [index.record(t, k) for t, k in sorted(index.mentions[user_id])]
    rng.shuffle(direct)
    found.extend(direct[: max(0, count - 1)])
    seen = {(c.table, c.key) for c in found}
    referenced: list[ContextRecord] = []
    for item in list(found):
        for ref in sorted(_strings_in(item.record)):
            for table, rows in index.tables.items():
                if (table, ref) not in seen and ref in rows:
                    seen.add((table, ref))
                    referenced.append(index.record(table, ref))
    rng.shuffle(referenced)
    found.extend(referenced[: max(0, count - len(found))])
    return user_id, found


def render_records(records: list[ContextRecord], max_chars: int) -> str:
    """Records as compact JSON lines, cut to ``max_chars`` (the whole prompt must fit small contexts);
    one record gets at most half of it, so a huge one (a flight's 30-day calendar) cannot crowd out the rest."""
    lines: list[str] = []
    used = 0
    per_record = max(200, max_chars // 2)
    for item in records:
        body = json.dumps(item.record, ensure_ascii=False, sort_keys=True)
        body = body if len(body) <= per_record else body[:per_record] + " ...(truncated)"
        line = f"{item.table}/{item.key}: {body}"
        if used + len(line) > max_chars:
            if not lines:
                lines.append(line[:max_chars] + " ...")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def policy_paragraphs(policy: str) -> list[str]:
    """Policy split into rule-sized pieces: list items and paragraphs, headings dropped."""
    pieces: list[str] = []
    for block in re.split(r"\n\s*\n", policy):
        lines = [ln for ln in block.strip().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        items = re.split(r"\n(?=\s*(?:[-*]|\d+\.|R\d+)\s)", "\n".join(lines))
        pieces.extend(" ".join(i.split()) for i in items if i.strip())
    return pieces


def sample_policy_excerpts(policy: str, tool_names: list[str], rng: random.Random, extra: int) -> list[str]:
    """Paragraphs that name a sampled tool (or its words), plus ``extra`` random others, in policy order."""
    pieces = policy_paragraphs(policy)
    words = {w for name in tool_names for w in name.split("_") if len(w) > 3}
    relevant = [
        i
        for i, p in enumerate(pieces)
        if any(n in p for n in tool_names) or any(w in p.lower() for w in words)
    ]
    others = [i for i in range(len(pieces)) if i not in relevant]
    chosen = set(relevant[:8]) | set(rng.sample(others, min(extra, len(others))))
    return [pieces[i] for i in sorted(chosen)]


def load_traits() -> list[str]:
    text = (PROMPTS / "persona_traits.md").read_text(encoding="utf-8")
    return [ln[2:].strip() for ln in text.splitlines() if ln.startswith("- ")]


def _display_name(record: Record) -> str | None:
    name = record.get("name")
    if isinstance(name, dict):
        parts = [str(v) for k, v in sorted(name.items()) if isinstance(v, str) and "first" in k] + [
            str(v) for k, v in sorted(name.items()) if isinstance(v, str) and "last" in k
        ]
        return " ".join(parts) or None
    if isinstance(name, str):
        return name
    first, last = record.get("first_name"), record.get("last_name")
    return " ".join(str(x) for x in (first, last) if x) or None


def make_persona(user_id: str, user_record: Record, traits: list[str]) -> str:
    """A persona from the user's own data plus sampled traits."""
    who = _display_name(user_record) or "A customer"
    trait_text = ", ".join(traits) if traits else "matter-of-fact"
    return f"{who} (user id {user_id}); {trait_text}." if user_id else f"{who}; {trait_text}."


class FewshotPool:
    """Example tasks for the generator: the domain's training-seed examples, then accepted blueprints.

    The held-out gold tasks are never in it. Accepted blueprints join up to ``max_size`` entries."""

    def __init__(self, seeds: list[Task], max_size: int):
        self.max_size = max_size
        self.entries: list[dict[str, Any]] = [
            self._entry(t.id, t.instruction, t.actions, t.outputs) for t in seeds
        ]

    @staticmethod
    def _entry(id_: str, instruction: str, actions: list[Any], outputs: list[str]) -> dict[str, Any]:
        calls = [a.model_dump() if hasattr(a, "model_dump") else dict(a) for a in actions]
        return {"id": id_, "instruction": instruction, "actions": calls, "outputs": list(outputs)}

    def add(self, blueprint: Blueprint) -> None:
        if len(self.entries) < self.max_size and all(e["id"] != blueprint.id for e in self.entries):
            self.entries.append(
                self._entry(blueprint.id, blueprint.instruction, blueprint.actions, blueprint.outputs)
            )

    def sample(self, rng: random.Random, k: int) -> list[dict[str, Any]]:
        return rng.sample(self.entries, min(k, len(self.entries)))


@dataclass
class SamplerDraw:
    """Everything sampled for one task draft; ``provenance()`` is what gets recorded."""

    task_seed: int
    sizes: dict[str, int]
    user_id: str
    write_tools: list[str]
    records: list[ContextRecord]
    records_text: str
    policy_excerpts: list[str]
    traits: list[str]
    persona: str
    fewshot: list[dict[str, Any]] = field(default_factory=list)

    def provenance(self) -> dict[str, Any]:
        return {
            "task_seed": self.task_seed,
            "sizes": self.sizes,
            "user_id": self.user_id,
            "write_tools": self.write_tools,
            "records": [f"{r.table}/{r.key}" for r in self.records],
            "policy_excerpts": len(self.policy_excerpts),
            "traits": self.traits,
            "fewshot": [e["id"] for e in self.fewshot],
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def draw_context(
    domain: Domain,
    index: UserIndex,
    rng: random.Random,
    task_seed: int,
    config: Any,
    pool: FewshotPool,
    traits: list[str],
    choose_user: Callable[[list[str], random.Random], str | None] | None = None,
    fewshot_rng: random.Random | None = None,
) -> SamplerDraw:
    """One full draw from ``rng`` (the task's context stream); ``config`` is a ``SamplerConfig``.
    ``choose_user`` picks the user for the walked write tools (a ``StatePlanner``'s: one whose data
    the first tool can act on); by default, or when it returns None, the user is drawn uniformly.
    The few-shot examples come from ``fewshot_rng`` (by default a stream derived from
    ``task_seed``), never from ``rng``: how many examples the pool holds must not change the rest."""
    sizes = {
        "walk_length": draw_size(rng, config.walk_length),
        "records": draw_size(rng, config.records_range),
        "policy_extra": draw_size(rng, config.policy_excerpt_range),
        "fewshot": draw_size(rng, config.fewshot_range),
        "traits": draw_size(rng, config.trait_range),
    }
    write_tools = walk_write_tools(domain, rng, sizes["walk_length"])
    chosen = choose_user(write_tools, rng) if choose_user is not None else None
    user_id, records = sample_user_records(index, rng, sizes["records"], chosen)
    excerpts = sample_policy_excerpts(domain.policy, write_tools, rng, sizes["policy_extra"])
    chosen_traits = rng.sample(traits, min(sizes["traits"], len(traits)))
    return SamplerDraw(
        task_seed=task_seed,
        sizes=sizes,
        user_id=user_id,
        write_tools=write_tools,
        records=records,
        records_text=render_records(records, config.max_context_chars),
        policy_excerpts=excerpts,
        traits=chosen_traits,
        persona=make_persona(user_id, records[0].record if records else {}, chosen_traits),
        fewshot=pool.sample(
            fewshot_rng if fewshot_rng is not None else random.Random(f"fewshot:{task_seed}"),
            sizes["fewshot"],
        ),
    )
