"""One base task from first draw to final verdict: the proposer builds the first request
(``proposers``), each reply goes through the check chain (``chain``), and a failure a revision can
address is turned into feedback for another round (``refinement``), up to ``refinement.max_rounds``.
"""

from __future__ import annotations

import logging
from typing import Any

from datagen.blueprint.chain import Candidate, Checked, build_blueprint, check_draft, claim, records_evidence
from datagen.blueprint.context import Attempt, RunContext, TaskOutcome
from datagen.blueprint.proposal import ask
from datagen.blueprint.proposers import NoProposal, build_proposer
from datagen.blueprint.refinement import summarise_feedback
from datagen.blueprint.samplers import TaskStreams
from datagen.blueprint.stages import Stage, revisable, stage_name
from datagen.llm.admission import Priority, request_priority
from datagen.llm.types import Usage

log = logging.getLogger(__name__)


def base_task_id(run_name: str, index: int) -> str:
    """The id of a run's base task ``index`` (recombined tasks are named after their parents)."""
    return f"{run_name}-{index:05d}"


def base_provenance(ctx: RunContext, proposal: Any) -> dict[str, Any]:
    """What a base task records of how it was drafted: the proposer, the models, the sampler's draws."""
    return {
        "kind": "base",
        "proposal": ctx.config.proposal.type,
        "generator": ctx.generator.name,
        "judges": [j.label for j in ctx.judges],
        "sampler": proposal.draw.provenance(),
        "session": ctx.session,
        **proposal.provenance,
    }


async def develop_task(ctx: RunContext, index: int) -> TaskOutcome:
    """Runs task ``index`` to acceptance or final rejection."""
    config = ctx.config
    task_id = base_task_id(config.name, index)
    streams = TaskStreams.for_task(config.seed, str(index))
    usage = Usage()
    proposer = build_proposer(config.proposal)
    proposal = proposer.propose(ctx, index, streams)
    draw = proposal.draw
    provenance = base_provenance(ctx, proposal)
    if isinstance(proposal, NoProposal):
        return TaskOutcome(
            task_id,
            "base",
            [],
            usage,
            stage=Stage.PROPOSAL.value,
            reasons=proposal.reasons,
            provenance=provenance,
        )
    evidence = [records_evidence(draw.records)]
    messages = proposal.messages
    attempts: list[Attempt] = []
    reviews: list[dict[str, Any]] = []
    last = Checked(False, Stage.FORMAT, ["no draft was produced"])
    last_text = ""
    for round_ in range(config.refinement.max_rounds + 1):
        attempt = Attempt(round_)
        attempts.append(attempt)
        seed = streams.requests.randrange(2**31)
        # A new draft waits behind work under way; a revision finishes a draft already proposed.
        with request_priority(Priority.PROPOSAL if round_ == 0 else Priority.REVIEW):
            reply = await ask(
                ctx.generator,
                messages,
                config.generator,
                json_schema=proposal.schema if config.json_output else None,
                seed=seed if config.request_seeds else None,
            )
        usage.add(reply.usage)
        last_text = reply.text
        candidate = Candidate(proposal.read(reply.text), draw.user_id, draw.persona, evidence)
        last = await check_draft(ctx, candidate, usage, seed, attempt)
        if last.decision is not None:
            reviews.append({"round": round_, **last.decision.record()})
        if last.ok and last.draft is not None:
            if claim(ctx, draw.user_id, last.draft.actions):
                blueprint = build_blueprint(
                    ctx, task_id, draw.user_id, draw.persona, last, round_, reviews, provenance, usage
                )
                return TaskOutcome(
                    task_id, "base", attempts, usage, blueprint=blueprint, provenance=provenance
                )
            # another task of this customer with these actions was accepted while the committee sat
            last = Checked(
                False, Stage.DUPLICATE, ["an identical task was accepted meanwhile"], last.draft, last.diff
            )
        attempt.failed_stage, attempt.reasons = stage_name(last.stage), last.reasons
        if not revisable(last.stage, proposer.fixed_actions) or round_ == config.refinement.max_rounds:
            break
        feedback = await summarise_feedback(ctx, reply.text, last.stage or "", last.reasons, usage)
        messages = proposal.revise(messages, reply.text, feedback)
    draft = last.draft.model_dump() if last.draft is not None else {"raw": last_text[:2000]}
    return TaskOutcome(
        task_id,
        "base",
        attempts,
        usage,
        stage=stage_name(last.stage),
        reasons=last.reasons,
        draft=draft,
        provenance={**provenance, "reviews": reviews},
    )
