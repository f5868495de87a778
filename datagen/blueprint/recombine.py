"""Reverse task recombination: 2-3 accepted blueprints of one user become one longer task.

Actions and outputs are concatenated, execution and policy are re-checked on the combination
(returning and then cancelling the same order fails here), the generator writes one coherent
instruction, and the result goes through the committee again.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from typing import Any

from datagen.blueprint.committee import review
from datagen.blueprint.context import Attempt, RunContext, TaskOutcome
from datagen.blueprint.proposal import ask, instruction_json_schema, render_prompt
from datagen.blueprint.validators import (
    duplicate_key,
    extract_json_object,
    validate_execution,
    validate_format,
    validate_policy,
)
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


async def recombine(ctx: RunContext, group: list[Blueprint]) -> TaskOutcome:
    config = ctx.config
    task_id = group_id(config.name, group)
    usage = Usage()
    attempt = Attempt(0)
    actions = [a for b in group for a in b.actions]
    outputs = list(dict.fromkeys(o for b in group for o in b.outputs))
    provenance: dict[str, Any] = {
        "kind": "recombined",
        "parents": [b.id for b in group],
        "session": ctx.session,
        "generator": ctx.generator.name,
        "judges": [j.label for j in ctx.judges],
    }

    def rejected(stage: str, reasons: list[str], draft: dict[str, Any] | None = None) -> TaskOutcome:
        attempt.failed_stage, attempt.reasons = stage, reasons
        return TaskOutcome(
            task_id,
            "recombined",
            [attempt],
            usage,
            stage=stage,
            reasons=reasons,
            draft=draft,
            provenance=provenance,
        )

    execution = validate_execution(actions, ctx.domain, ctx.db_seed)
    if not execution.ok:
        return rejected("execution", execution.reasons)
    policy = validate_policy(execution)
    if not policy.ok:
        return rejected("policy", policy.reasons)
    if duplicate_key(group[0].user_id, actions) in ctx.accepted_keys:
        return rejected("duplicate", ["the combination equals an accepted task"])
    prompt = render_prompt(
        "recombine",
        persona=group[0].persona,
        tasks=[b.instruction for b in group],
        actions=[a.model_dump() for a in actions],
    )
    messages = [{"role": "system", "content": ctx.generator_system}, {"role": "user", "content": prompt}]
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
    except ValueError as exc:
        return rejected("format", [str(exc)], {"raw": reply.text[:2000]})
    fmt = validate_format(
        {
            "thought": payload.get("thought", ""),
            "instruction": payload.get("instruction", ""),
            "outputs": outputs,  # the parents' checked outputs; the model only rewrites the instruction
            "actions": [a.model_dump() for a in actions],
        },
        ctx.domain,
    )
    if not fmt.ok:
        return rejected("format", fmt.reasons, {"raw": reply.text[:2000]})
    attempt.passed += ["format", "execution", "outputs", "policy", "duplicate"]
    draft = fmt.data["draft"]
    reviews: list[dict[str, Any]] = []
    if config.committee.enabled:
        task = {
            "persona": group[0].persona,
            "instruction": draft.instruction,
            "outputs": draft.outputs,
            "actions": [a.model_dump() for a in actions],
        }
        decision, spent = await review(
            ctx.judges,
            ctx.judge_system,
            task,
            execution.data["diff"],
            threshold=config.committee.threshold,
            temperature=config.committee.temperature,
            max_tokens=config.committee.max_tokens,
            json_output=config.json_output,
            seed=random.Random(task_id + "judge").randrange(2**31) if config.request_seeds else None,
        )
        usage.add(spent)
        reviews.append({"round": 0, **decision.record()})
        provenance["reviews"] = reviews
        if not decision.ok:
            return rejected("committee", decision.reasons, draft.model_dump())
    attempt.passed.append("committee")  # a switched-off committee counts as passed
    ctx.accepted_keys.add(duplicate_key(group[0].user_id, actions))
    blueprint = Blueprint(
        id=task_id,
        env=ctx.domain.name,
        seed=ctx.db_seed,
        user_id=group[0].user_id,
        persona=group[0].persona,
        instruction=draft.instruction,
        actions=actions,
        outputs=draft.outputs,
        provenance={
            **provenance,
            "round": 0,
            "thought": draft.thought,
            "reviews": reviews,
            "diff": execution.data["diff"],
            "state_hash": execution.data["state_hash"],
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
        },
    )
    return TaskOutcome(task_id, "recombined", [attempt], usage, blueprint=blueprint, provenance=provenance)
