"""The feedback step of a revision round (the paper's Stage 3): the generator condenses the points
that rejected its draft into changes to make. Which failures a round can address is
``datagen.blueprint.stages.revisable``; the revised request is the proposal's (``Proposal.revise``)."""

from __future__ import annotations

from datagen.blueprint.context import RunContext
from datagen.blueprint.proposal import ask, render_prompt
from datagen.llm.admission import Priority, request_priority
from datagen.llm.types import Usage


async def summarise_feedback(
    ctx: RunContext, draft_text: str, stage: str, reasons: list[str], usage: Usage
) -> str:
    """The points raised at ``stage``, led by the generator's own summary of what to change."""
    points = "\n".join(f"- {r}" for r in reasons)[:1500]
    prompt = render_prompt("feedback", task=draft_text[:2000], stage=stage, reasons=reasons[:12])
    with request_priority(Priority.REVIEW):
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
