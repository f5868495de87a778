"""Reverse task recombination: 2-3 accepted blueprints of one user become one longer task.

Actions and outputs are concatenated, the generator writes one coherent instruction for them, and
the combination goes through the whole check chain again, every stage in order: execution and
policy on the combination (returning and then cancelling the same order fails here), the outputs
against the parents' data and the combination's results, duplicates, the committee.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from typing import Any

from datagen.blueprint.chain import Candidate, Checked, build_blueprint, check_draft, claim, records_evidence
from datagen.blueprint.context import Attempt, RunContext, TaskOutcome
from datagen.blueprint.proposal import ask, instruction_json_schema, render_prompt
from datagen.blueprint.stages import Stage, stage_name
from datagen.blueprint.validators import extract_json_object
from datagen.llm.admission import Priority, request_priority
from datagen.llm.types import Usage
from datagen.records import Blueprint


def plan_groups(
    accepted: list[Blueprint], share: float, group_size: tuple[int, int], seed: int
) -> list[list[Blueprint]]:
    """Deterministic groups from the accepted base blueprints: about ``share`` x their number, each
    of 2-3 blueprints of the same user, no blueprint in two groups. The same accepted set always
    gives the same groups, so a resumed run plans exactly what the killed one did."""
    base = sorted((b for b in accepted if b.provenance.get("kind", "base") == "base"), key=lambda b: b.id)
    wanted = int(share * len(base) + 1e-9)
    rng = random.Random(f"{seed}:recombine:{len(base)}")
    by_user: dict[str, list[Blueprint]] = defaultdict(list)
    for blueprint in base:
        if blueprint.user_id is not None:
            by_user[blueprint.user_id].append(blueprint)
    users = sorted(by_user)
    rng.shuffle(users)
    groups: list[list[Blueprint]] = []
    for user in users:
        pool = list(by_user[user])
        rng.shuffle(pool)
        while len(groups) < wanted and len(pool) >= group_size[0]:
            size = min(rng.randint(*group_size), len(pool))
            groups.append(sorted(pool[:size], key=lambda b: b.id))
            pool = pool[size:]
    return groups


def group_id(name: str, group: list[Blueprint]) -> str:
    digest = hashlib.sha256("|".join(b.id for b in group).encode()).hexdigest()[:10]
    return f"{name}-r{digest}"


def parents_evidence(ctx: RunContext, group: list[Blueprint]) -> str:
    """The customer data the parents were drawn from (their sampler records), against which the
    combined task's outputs are checked as each parent's were."""
    records = []
    for blueprint in group:
        for ref in blueprint.provenance.get("sampler", {}).get("records", []):
            table, _, key = str(ref).partition("/")
            if key in ctx.users.tables.get(table, {}):
                records.append(ctx.users.record(table, key))
    return records_evidence(records)


async def recombine(ctx: RunContext, group: list[Blueprint]) -> TaskOutcome:
    """One combined task through the same check chain as a base task (every stage, in order), after
    the generator has written one instruction for the parents' concatenated actions and outputs."""
    config = ctx.config
    task_id = group_id(config.name, group)
    usage = Usage()
    attempt = Attempt(0)
    user_id, persona = group[0].user_id, group[0].persona
    actions = [a for b in group for a in b.actions]
    outputs = list(dict.fromkeys(o for b in group for o in b.outputs))
    provenance: dict[str, Any] = {
        "kind": "recombined",
        "parents": [b.id for b in group],
        "session": ctx.session,
        "generator": ctx.generator.name,
        "judges": [j.label for j in ctx.judges],
    }
    prompt = render_prompt(
        "recombine",
        persona=persona,
        tasks=[b.instruction for b in group],
        actions=[a.model_dump() for a in actions],
    )
    messages = [{"role": "system", "content": ctx.generator_system}, {"role": "user", "content": prompt}]
    with request_priority(Priority.PROPOSAL):
        reply = await ask(
            ctx.generator,
            messages,
            config.generator,
            json_schema=instruction_json_schema() if config.json_output else None,
            seed=random.Random(task_id).randrange(2**31) if config.request_seeds else None,
        )
    usage.add(reply.usage)
    try:
        payload = extract_json_object(reply.text)
        # the parents' checked outputs and actions; the model only rewrites the instruction
        raw: str | dict[str, Any] = {
            "thought": payload.get("thought", ""),
            "instruction": payload.get("instruction", ""),
            "outputs": outputs,
            "actions": [a.model_dump() for a in actions],
        }
    except ValueError:
        raw = reply.text  # the format stage says why
    candidate = Candidate(raw, user_id, persona, [parents_evidence(ctx, group)])
    judge_seed = random.Random(task_id + "judge").randrange(2**31)
    checked = await check_draft(ctx, candidate, usage, judge_seed, attempt)
    reviews = [{"round": 0, **checked.decision.record()}] if checked.decision is not None else []
    if reviews:
        provenance["reviews"] = reviews
    if checked.ok and checked.draft is not None:
        if claim(ctx, user_id, checked.draft.actions):
            blueprint = build_blueprint(
                ctx, task_id, user_id, persona, checked, 0, reviews, provenance, usage
            )
            return TaskOutcome(
                task_id, "recombined", [attempt], usage, blueprint=blueprint, provenance=provenance
            )
        checked = Checked(
            False, Stage.DUPLICATE, ["an identical task was accepted meanwhile"], checked.draft, checked.diff
        )
    attempt.failed_stage, attempt.reasons = stage_name(checked.stage), checked.reasons
    return TaskOutcome(
        task_id,
        "recombined",
        [attempt],
        usage,
        stage=stage_name(checked.stage),
        reasons=checked.reasons,
        draft=checked.draft.model_dump() if checked.draft is not None else {"raw": reply.text[:2000]},
        provenance=provenance,
    )
