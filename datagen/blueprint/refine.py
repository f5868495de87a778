"""One task from draft to verdict: sample, propose, validate in order, and on failure turn the
validators' and judges' points into feedback for a bounded number of revision rounds (Stage 3).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from datagen.blueprint.committee import CommitteeDecision, review
from datagen.blueprint.context import Attempt, RunContext, TaskOutcome
from datagen.blueprint.grounding import add_policy_reads, ground_actions
from datagen.blueprint.proposal import (
    ask,
    grounded_json_schema,
    grounded_messages,
    instruction_json_schema,
    llm_messages,
    render_prompt,
    revision_messages,
)
from datagen.blueprint.samplers import SamplerDraw, draw_context
from datagen.blueprint.validators import (
    Draft,
    draft_json_schema,
    duplicate_key,
    extract_json_object,
    validate_execution,
    validate_format,
    validate_outputs,
    validate_policy,
)
from datagen.llm.types import Usage
from datagen.records import Blueprint

log = logging.getLogger(__name__)

# In grounded mode the actions are fixed by construction, so only the text can be revised.
REVISABLE = {
    "llm": {"format", "execution", "outputs", "policy", "duplicate", "committee"},
    "grounded": {"format", "outputs", "committee"},
}


@dataclass
class Checked:
    ok: bool
    stage: str | None = None
    reasons: list[str] = field(default_factory=list)
    draft: Draft | None = None
    diff: list[str] = field(default_factory=list)
    state_hash: str = ""
    decision: CommitteeDecision | None = None


def task_rng(run_seed: int, task_key: str) -> random.Random:
    return random.Random(f"{run_seed}:{task_key}")  # str seeds hash with sha512: stable across processes


def parse_reply(
    text: str, grounded_actions: list[dict[str, Any]] | None, with_outputs: bool = True
) -> str | dict[str, Any]:
    """Grounded replies carry only the text fields; the fixed actions are added before validation.
    Without outputs, any the model wrote anyway are dropped: o_gt stays empty."""
    if grounded_actions is None:
        return text
    try:
        payload = extract_json_object(text)
    except ValueError:
        return text  # validate_format reports it
    fields = ("thought", "instruction", "outputs") if with_outputs else ("thought", "instruction")
    return {k: v for k, v in payload.items() if k in fields} | {"actions": grounded_actions}


async def check_draft(
    ctx: RunContext,
    raw: str | dict[str, Any],
    user_id: str | None,
    persona: str,
    usage: Usage,
    seed: int,
    attempt: Attempt,
    evidence: str = "",
) -> Checked:
    """Format -> execution -> outputs -> policy -> near-duplicate -> committee; ``attempt.passed`` lists
    what passed. The outputs check (o_gt readable from the data) is part of the paper's execution
    stage, kept apart because in grounded mode it is the part the generator can still revise."""
    fmt = validate_format(raw, ctx.domain)
    if not fmt.ok:
        return Checked(False, "format", fmt.reasons)
    attempt.passed.append("format")
    draft: Draft = fmt.data["draft"]
    execution = validate_execution(draft.actions, ctx.domain, ctx.db_seed)
    if not execution.ok:
        return Checked(False, "execution", execution.reasons, draft, execution.data["diff"])
    attempt.passed.append("execution")
    diff = execution.data["diff"]
    # A check that is switched off counts as passed, so the funnel's counts never go up stage to stage.
    missing = validate_outputs(draft.outputs, [evidence, *execution.data["observations"]])
    if missing and ctx.config.grounded_outputs:
        return Checked(False, "outputs", missing, draft, diff)
    attempt.passed.append("outputs")
    policy = validate_policy(execution)
    if not policy.ok:
        return Checked(False, "policy", policy.reasons, draft, diff)
    attempt.passed.append("policy")
    if duplicate_key(user_id, draft.actions) in ctx.accepted_keys:
        return Checked(
            False,
            "duplicate",
            [
                "the same customer already has an accepted task with exactly these "
                "actions; build a different task"
            ],
            draft,
            diff,
        )
    attempt.passed.append("duplicate")
    decision = None
    if ctx.config.committee.enabled:
        committee = ctx.config.committee
        task = {
            "persona": persona,
            "instruction": draft.instruction,
            "outputs": draft.outputs,
            "actions": [a.model_dump() for a in draft.actions],
        }
        decision, spent = await review(
            ctx.judges,
            ctx.judge_system,
            task,
            diff,
            threshold=committee.threshold,
            temperature=committee.temperature,
            max_tokens=committee.max_tokens,
            json_output=ctx.config.json_output,
            seed=seed if ctx.config.request_seeds else None,
        )
        usage.add(spent)
        if not decision.ok:
            return Checked(False, "committee", decision.reasons, draft, diff, decision=decision)
    attempt.passed.append("committee")
    return Checked(True, None, [], draft, diff, execution.data["state_hash"], decision)


async def summarise_feedback(
    ctx: RunContext, draft_text: str, stage: str, reasons: list[str], usage: Usage
) -> str:
    """The feedback step: the generator model condenses the points into changes to make."""
    points = "\n".join(f"- {r}" for r in reasons)[:1500]
    prompt = render_prompt("feedback", task=draft_text[:2000], stage=stage, reasons=reasons[:12])
    reply = await ask(
        ctx.generator,
        [{"role": "user", "content": prompt}],
        ctx.config.generator,
        json_schema=None,
        max_tokens=ctx.config.refinement.feedback_max_tokens,
    )
    usage.add(reply.usage)
    summary = reply.text.strip()
    return (
        f"{summary}\n\nPoints raised ({stage} stage):\n{points}"
        if summary
        else f"Points raised ({stage} stage):\n{points}"
    )


def build_blueprint(
    ctx: RunContext,
    task_id: str,
    draw: SamplerDraw,
    checked: Checked,
    round_: int,
    reviews: list[dict[str, Any]],
    provenance: dict[str, Any],
    usage: Usage,
) -> Blueprint:
    assert checked.draft is not None
    return Blueprint(
        id=task_id,
        env=ctx.domain.name,
        seed=ctx.db_seed,
        user_id=draw.user_id,
        persona=draw.persona,
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


async def develop_task(ctx: RunContext, index: int) -> TaskOutcome:
    """Runs task ``index`` to acceptance or final rejection."""
    config = ctx.config
    task_id = f"{config.name}-{index:05d}"
    rng = task_rng(config.seed, str(index))
    usage = Usage()
    mode = config.proposal.type
    choose_user = ctx.planner.choose_user if config.samplers.user_choice == "state_aware" else None

    def new_draw() -> SamplerDraw:
        return draw_context(
            ctx.domain, ctx.users, rng, index, config.samplers, ctx.pool, ctx.traits, choose_user
        )

    draw = new_draw()
    grounded_actions: list[dict[str, Any]] | None = None
    notes: list[str] = []
    if mode == "grounded":
        for redraw in range(config.proposal.redraws + 1):
            if redraw:  # this user's data cannot serve the walk (no pending order to cancel): draw again
                draw = new_draw()
            scratch = ctx.domain.new_env(ctx.db_seed)
            grounded_actions, tried = ground_actions(
                ctx.domain,
                scratch,
                draw.write_tools,
                draw.records,
                rng,
                config.proposal.argument_tries,
                planner=ctx.planner,
                user_id=draw.user_id,
            )
            if grounded_actions:
                grounded_actions, policy_notes = add_policy_reads(
                    ctx.domain, ctx.db_seed, grounded_actions, draw.records, rng
                )
                tried += policy_notes
            notes += [f"draw {redraw}: {note}" for note in tried]
            if grounded_actions:
                break
    provenance: dict[str, Any] = {
        "kind": "base",
        "proposal": mode,
        "generator": ctx.generator.name,
        "judges": [j.label for j in ctx.judges],
        "sampler": draw.provenance(),
        "session": ctx.session,
    }
    if mode == "grounded":
        provenance["grounding_notes"] = notes
        if not grounded_actions:
            return TaskOutcome(
                task_id, "base", [], usage, stage="proposal", reasons=notes, provenance=provenance
            )
        replay = ctx.domain.new_env(ctx.db_seed)
        observations = [o.content for o in replay.replay(grounded_actions)]
        with_outputs = config.proposal.outputs
        provenance["outputs"] = "model" if with_outputs else "none"
        messages = grounded_messages(draw, ctx.generator_system, grounded_actions, observations, with_outputs)
        schema = grounded_json_schema() if with_outputs else instruction_json_schema()
    else:
        messages = llm_messages(ctx.domain, draw, ctx.generator_system)
        schema = draft_json_schema()
        with_outputs = True
    attempts: list[Attempt] = []
    reviews: list[dict[str, Any]] = []
    last = Checked(False, "format", ["no draft was produced"])
    last_text = ""
    for round_ in range(config.refinement.max_rounds + 1):
        attempt = Attempt(round_)
        attempts.append(attempt)
        seed = rng.randrange(2**31)
        reply = await ask(
            ctx.generator,
            messages,
            config.generator,
            json_schema=schema if config.json_output else None,
            seed=seed if config.request_seeds else None,
        )
        usage.add(reply.usage)
        last_text = reply.text
        last = await check_draft(
            ctx,
            parse_reply(reply.text, grounded_actions, with_outputs),
            draw.user_id,
            draw.persona,
            usage,
            seed,
            attempt,
            evidence="\n".join(json.dumps(r.record, ensure_ascii=False) for r in draw.records),
        )
        if last.decision is not None:
            reviews.append({"round": round_, **last.decision.record()})
        if last.ok:
            key = duplicate_key(draw.user_id, last.draft.actions)
            if key in ctx.accepted_keys:  # another task was accepted with it while the committee sat
                last = Checked(
                    False, "duplicate", ["an identical task was accepted meanwhile"], last.draft, last.diff
                )
            else:
                ctx.accepted_keys.add(key)
                blueprint = build_blueprint(ctx, task_id, draw, last, round_, reviews, provenance, usage)
                return TaskOutcome(
                    task_id, "base", attempts, usage, blueprint=blueprint, provenance=provenance
                )
        attempt.failed_stage, attempt.reasons = last.stage, last.reasons
        if last.stage not in REVISABLE[mode] or round_ == config.refinement.max_rounds:
            break
        feedback = await summarise_feedback(ctx, reply.text, last.stage or "", last.reasons, usage)
        messages = revision_messages(
            messages[:2], reply.text, feedback, grounded=mode == "grounded", with_outputs=with_outputs
        )
    draft = last.draft.model_dump() if last.draft is not None else {"raw": last_text[:2000]}
    return TaskOutcome(
        task_id,
        "base",
        attempts,
        usage,
        stage=last.stage,
        reasons=last.reasons,
        draft=draft,
        provenance={**provenance, "reviews": reviews},
    )
