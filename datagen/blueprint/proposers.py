"""Proposers: how a task's first draft is asked for, selected by the recipe's ``proposal.type``
through one explicit factory (``build_proposer``).

- ``llm`` (the paper's): the generator writes the whole task, actions included, from the sampled
  context;
- ``grounded``: the API-graph walk's write tools get arguments from the sampled data, tried on a
  scratch environment (``datagen.blueprint.grounding``), and the generator writes the instruction
  (and, if asked, the outputs) for those fixed actions.

A proposer returns a ``Proposal`` (the first request and how replies are read and revised) or, when
it cannot build a draft at all, a ``NoProposal`` with its reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from datagen.blueprint.context import RunContext
from datagen.blueprint.grounding import ground_actions
from datagen.blueprint.proposal import (
    grounded_json_schema,
    grounded_messages,
    instruction_json_schema,
    llm_messages,
    revision_messages,
)
from datagen.blueprint.samplers import SamplerDraw, TaskStreams, draw_context
from datagen.blueprint.validators import draft_json_schema, extract_json_object
from datagen.llm.types import Message
from datagen.recipe.datagen import GroundedProposalConfig, LLMProposalConfig, ProposalConfig


@dataclass
class Proposal:
    """The first request for a task's draft, and how the generator's replies are read and revised.
    ``actions``: fixed by the proposer (the reply then carries only text), or None when the model
    writes them."""

    draw: SamplerDraw
    messages: list[Message]
    schema: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, Any]] | None = None
    with_outputs: bool = True

    def read(self, text: str) -> str | dict[str, Any]:
        """The reply as the check chain takes it. With fixed actions the reply carries only the text
        fields and the actions are added; without outputs, any the model wrote anyway are dropped."""
        if self.actions is None:
            return text
        try:
            payload = extract_json_object(text)
        except ValueError:
            return text  # the format stage reports it
        fields = ("thought", "instruction", "outputs") if self.with_outputs else ("thought", "instruction")
        return {k: v for k, v in payload.items() if k in fields} | {"actions": self.actions}

    def revise(self, messages: list[Message], reply_text: str, feedback: str) -> list[Message]:
        """The next round's request: the first one, the rejected draft and the feedback on it."""
        return revision_messages(
            messages[:2],
            reply_text,
            feedback,
            grounded=self.actions is not None,
            with_outputs=self.with_outputs,
        )


@dataclass
class NoProposal:
    """The proposer could not build a draft (no walked tool could be grounded in any draw)."""

    draw: SamplerDraw
    reasons: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)


class Proposer(Protocol):
    fixed_actions: bool  # the actions cannot be revised: failures that judge them end the task

    def propose(self, ctx: RunContext, index: int, streams: TaskStreams) -> Proposal | NoProposal: ...


def _drawer(ctx: RunContext, index: int, streams: TaskStreams) -> Callable[[], SamplerDraw]:
    """A function that makes one context draw for task ``index`` (called again to redraw)."""
    config = ctx.config.samplers
    choose_user = ctx.planner.choose_user if config.user_choice == "state_aware" else None

    def draw() -> SamplerDraw:
        return draw_context(
            ctx.domain,
            ctx.users,
            streams.context,
            index,
            config,
            ctx.pool,
            ctx.traits,
            choose_user,
            fewshot_rng=streams.fewshot,
        )

    return draw


class LLMProposer:
    """The paper's proposal: the generator writes the whole task from the sampled context."""

    fixed_actions = False

    def __init__(self, config: LLMProposalConfig):
        self.config = config

    def propose(self, ctx: RunContext, index: int, streams: TaskStreams) -> Proposal:
        draw = _drawer(ctx, index, streams)()
        return Proposal(draw, llm_messages(ctx.domain, draw, ctx.generator_system), draft_json_schema())


class GroundedProposer:
    """Actions grounded in the sampled data first; the generator writes the text for them. A draw
    whose walk cannot be grounded for this user is replaced, up to ``redraws`` times."""

    fixed_actions = True

    def __init__(self, config: GroundedProposalConfig):
        self.config = config

    def propose(self, ctx: RunContext, index: int, streams: TaskStreams) -> Proposal | NoProposal:
        config = self.config
        new_draw = _drawer(ctx, index, streams)
        draw = new_draw()
        actions: list[dict[str, Any]] = []
        notes: list[str] = []
        for redraw in range(config.redraws + 1):
            if redraw:  # this user's data cannot serve the walk (no pending order to cancel): draw again
                draw = new_draw()
            actions, tried = ground_actions(
                ctx.domain,
                ctx.domain.new_env(ctx.db_seed),
                draw.write_tools,
                draw.records,
                streams.grounding,
                config.argument_tries,
                planner=ctx.planner,
                user_id=draw.user_id,
            )
            notes += [f"draw {redraw}: {note}" for note in tried]
            if actions:
                break
        provenance: dict[str, Any] = {"grounding_notes": notes}
        if not actions:
            return NoProposal(draw, notes, provenance)
        observations = [o.content for o in ctx.domain.new_env(ctx.db_seed).replay(actions)]
        provenance["outputs"] = "model" if config.outputs else "none"
        messages = grounded_messages(draw, ctx.generator_system, actions, observations, config.outputs)
        schema = grounded_json_schema() if config.outputs else instruction_json_schema()
        return Proposal(draw, messages, schema, provenance, actions, with_outputs=config.outputs)


# The one place a recipe's ``proposal.type`` becomes an implementation.
PROPOSERS: dict[str, Callable[[Any], Proposer]] = {"llm": LLMProposer, "grounded": GroundedProposer}


def build_proposer(config: ProposalConfig) -> Proposer:
    """The proposer for ``proposal.type``."""
    return PROPOSERS[config.type](config)
