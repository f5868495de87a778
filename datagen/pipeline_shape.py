"""The concurrency shape of a datagen run: how many Phase 1 tasks and Phase 2 dialogues are in flight.

A recipe's ``concurrency`` (Phase 1) and ``simulate.concurrency`` (Phase 2) are ceilings. Below them
the pipeline keeps in flight only the jobs whose working sets the engine's KV cache holds at once, so
a dialogue's history and a draft's prompt are still cached when their next request comes; more jobs
would only wait at admission (:mod:`datagen.llm.admission`, which also orders their requests) while
evicting each other's prefixes. A job's working set is bounded by the recipe's own caps (shared
system prompts are stored once and not counted). Without engine limits (a server, Ray workers that
build their own engines) the ceilings stand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datagen.llm.admission import EngineLimits
    from datagen.recipe.datagen import DatagenRecipe
    from datagen.recipe.episode import SimulateConfig

CHARS_PER_TOKEN = 3  # a conservative reading of JSON records and prose (fewer chars per token = more tokens)
TOOL_RESULT_TOKENS = 200  # a tool observation in a dialogue's history
INSTRUCTION_TOKENS = 400  # the user's persona and instruction in its own system prompt


@dataclass(frozen=True)
class RunShape:
    phase1: int
    phase2: int
    phase1_tokens: int  # the working set of one Phase 1 task
    phase2_tokens: int  # ... of one dialogue
    kv_tokens: int | None

    def describe(self, phase1_ceiling: int, phase2_ceiling: int) -> str:
        if self.kv_tokens is None:
            return (
                f"phase 1 {self.phase1} tasks, phase 2 {self.phase2} dialogues in flight "
                "(the recipe's ceilings: no engine limits known here)"
            )
        return (
            f"phase 1 {self.phase1} tasks (ceiling {phase1_ceiling}, KV holds {self.kv_tokens // self.phase1_tokens} "
            f"of ~{self.phase1_tokens} tokens), phase 2 {self.phase2} dialogues (ceiling {phase2_ceiling}, KV holds "
            f"{self.kv_tokens // self.phase2_tokens} of ~{self.phase2_tokens} tokens) in flight; engine KV "
            f"{self.kv_tokens} tokens"
        )


def task_tokens(config: DatagenRecipe) -> int:
    """One Phase 1 task at most: its sampled context, the draft, and the committee's verdicts."""
    committee = config.committee.size * config.committee.max_tokens if config.committee.enabled else 0
    return config.samplers.max_context_chars // CHARS_PER_TOKEN + config.generator.max_tokens + committee


def dialogue_tokens(config: SimulateConfig) -> int:
    """One dialogue at most: every step adds a turn (or a tool result) to the history."""
    user = config.user
    # a scripted user (no model) writes short fixed phrasings: a turn of the agent's size bounds it
    user_turn = 0 if user.mode == "scripted" else user.max_tokens * user.best_of_n
    turn = max(config.agent.max_tokens, user_turn, TOOL_RESULT_TOKENS)
    return INSTRUCTION_TOKENS + config.max_steps * turn


def run_shape(config: DatagenRecipe, phase2: SimulateConfig, generator: Any, agent: Any) -> RunShape:
    """The shape of a run whose Phase 1 talks to ``generator`` and Phase 2 to ``agent`` (their
    engines' limits; None when the models are built elsewhere, as on Ray)."""
    limits = [getattr(getattr(m, "admission", None), "limits", None) for m in (generator, agent)]
    phase1 = plan_shape(
        config.concurrency, phase2.concurrency, limits[0], task_tokens(config), dialogue_tokens(phase2)
    )
    both = plan_shape(
        config.concurrency, phase2.concurrency, limits[1], task_tokens(config), dialogue_tokens(phase2)
    )
    return RunShape(phase1.phase1, both.phase2, phase1.phase1_tokens, both.phase2_tokens, both.kv_tokens)


def plan_shape(
    phase1_ceiling: int,
    phase2_ceiling: int,
    limits: EngineLimits | None,
    phase1_tokens: int,
    phase2_tokens: int,
) -> RunShape:
    kv = limits.kv_tokens if limits is not None else None
    if not kv:
        return RunShape(phase1_ceiling, phase2_ceiling, phase1_tokens, phase2_tokens, None)
    phase1 = min(phase1_ceiling, max(1, kv // phase1_tokens))
    phase2 = min(phase2_ceiling, max(1, kv // phase2_tokens))
    return RunShape(phase1, phase2, phase1_tokens, phase2_tokens, kv)
