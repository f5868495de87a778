"""The one check chain every Phase 1 draft goes through, base tasks and recombined ones alike: the
stages of ``datagen.blueprint.stages.CHECKS`` in that order, each recorded in ``Attempt.passed`` when
it passes. A check that is switched off (``grounded_outputs: false``, a disabled committee) counts as
passed, so the funnel's counts never go up from one stage to the next.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from datagen.blueprint.committee import CommitteeDecision, review
from datagen.blueprint.context import Attempt, RunContext
from datagen.blueprint.samplers import ContextRecord
from datagen.blueprint.stages import CHECKS, Stage
from datagen.blueprint.validators import (
    Draft,
    StageResult,
    duplicate_key,
    validate_execution,
    validate_format,
    validate_outputs,
    validate_policy,
)
from datagen.envs.base import ToolCallModel
from datagen.llm.admission import Priority, request_priority
from datagen.llm.types import Usage
from datagen.records import Blueprint


@dataclass
class Candidate:
    """What the chain judges: the model's reply (text, or the fields read from it) and the context it
    is judged in. ``evidence``: texts the expected outputs must be readable from besides the
    replay's observations (the customer data the task was drawn from)."""

    raw: str | dict[str, Any]
    user_id: str | None
    persona: str
    evidence: list[str] = field(default_factory=list)


@dataclass
class Checked:
    ok: bool
    stage: Stage | None = None
    reasons: list[str] = field(default_factory=list)
    draft: Draft | None = None
    diff: list[str] = field(default_factory=list)
    state_hash: str = ""
    decision: CommitteeDecision | None = None


@dataclass
class _Review:
    """What the stages have learned so far about one candidate."""

    candidate: Candidate
    seed: int
    usage: Usage
    draft: Draft | None = None
    execution: StageResult | None = None
    decision: CommitteeDecision | None = None

    @property
    def diff(self) -> list[str]:
        return self.execution.data["diff"] if self.execution is not None else []


Check = Callable[[RunContext, _Review], Awaitable[list[str]]]


async def _format(ctx: RunContext, r: _Review) -> list[str]:
    result = validate_format(r.candidate.raw, ctx.domain)
    r.draft = result.data["draft"] if result.ok else None  # a rejected draft is kept as the raw reply
    return result.reasons


async def _execution(ctx: RunContext, r: _Review) -> list[str]:
    assert r.draft is not None
    r.execution = validate_execution(r.draft.actions, ctx.domain, ctx.db_seed)
    return r.execution.reasons


async def _outputs(ctx: RunContext, r: _Review) -> list[str]:
    assert r.draft is not None and r.execution is not None
    if not ctx.config.grounded_outputs:
        return []
    return validate_outputs(r.draft.outputs, [*r.candidate.evidence, *r.execution.data["observations"]])


async def _policy(ctx: RunContext, r: _Review) -> list[str]:
    assert r.execution is not None
    return validate_policy(r.execution).reasons


async def _duplicate(ctx: RunContext, r: _Review) -> list[str]:
    assert r.draft is not None
    if duplicate_key(r.candidate.user_id, r.draft.actions) not in ctx.accepted_keys:
        return []
    return [
        "the same customer already has an accepted task with exactly these actions; build a different task"
    ]


async def _committee(ctx: RunContext, r: _Review) -> list[str]:
    assert r.draft is not None
    committee = ctx.config.committee
    if not committee.enabled:
        return []
    task = {
        "persona": r.candidate.persona,
        "instruction": r.draft.instruction,
        "outputs": r.draft.outputs,
        "actions": [a.model_dump() for a in r.draft.actions],
    }
    r.decision, spent = await review(
        ctx.judges,
        ctx.judge_system,
        task,
        r.diff,
        threshold=committee.threshold,
        temperature=committee.temperature,
        max_tokens=committee.max_tokens,
        json_output=ctx.config.json_output,
        seed=r.seed if ctx.config.request_seeds else None,
    )
    r.usage.add(spent)
    return [] if r.decision.ok else r.decision.reasons


_STAGE_CHECKS: dict[Stage, Check] = {
    Stage.FORMAT: _format,
    Stage.EXECUTION: _execution,
    Stage.OUTPUTS: _outputs,
    Stage.POLICY: _policy,
    Stage.DUPLICATE: _duplicate,
    Stage.COMMITTEE: _committee,
}
CHAIN: tuple[tuple[Stage, Check], ...] = tuple((stage, _STAGE_CHECKS[stage]) for stage in CHECKS)


async def check_draft(
    ctx: RunContext, candidate: Candidate, usage: Usage, seed: int, attempt: Attempt
) -> Checked:
    """Runs ``candidate`` through every stage of the chain in order until one fails; ``seed`` seeds
    the judges' requests (when the run asks for request seeds), ``usage`` collects their tokens."""
    r = _Review(candidate, seed, usage)
    for stage, check in CHAIN:
        with request_priority(Priority.REVIEW):  # the draft is already proposed: finish it first
            reasons = await check(ctx, r)
        if reasons:
            return Checked(False, stage, reasons, r.draft, r.diff, decision=r.decision)
        attempt.passed.append(stage.value)
    assert r.execution is not None
    return Checked(True, None, [], r.draft, r.diff, r.execution.data["state_hash"], r.decision)


def claim(ctx: RunContext, user_id: str | None, actions: list[ToolCallModel]) -> bool:
    """Records an accepted task's near-duplicate key; False when another task of the same customer
    with the same actions was accepted while this one was with the committee."""
    key = duplicate_key(user_id, actions)
    if key in ctx.accepted_keys:
        return False
    ctx.accepted_keys.add(key)
    return True


def records_evidence(records: list[ContextRecord]) -> str:
    """The customer data a task was drawn from, as the text its expected outputs are checked against."""
    return "\n".join(json.dumps(r.record, ensure_ascii=False) for r in records)


def build_blueprint(
    ctx: RunContext,
    task_id: str,
    user_id: str | None,
    persona: str,
    checked: Checked,
    round_: int,
    reviews: list[dict[str, Any]],
    provenance: dict[str, Any],
    usage: Usage,
) -> Blueprint:
    """The blueprint of a draft that passed the chain."""
    if checked.draft is None:
        raise ValueError("only a draft that passed the check chain becomes a blueprint")
    return Blueprint(
        id=task_id,
        env=ctx.domain.name,
        seed=ctx.db_seed,
        user_id=user_id,
        persona=persona,
        instruction=checked.draft.instruction,
        actions=checked.draft.actions,
        outputs=checked.draft.outputs,
        provenance={
            **provenance,
            "round": round_,
            "thought": checked.draft.thought,
            "reviews": reviews,
            "diff": checked.diff,
            "state_hash": checked.state_hash,
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
        },
    )
