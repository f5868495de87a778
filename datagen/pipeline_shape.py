"""The concurrency shape of a datagen run: how many Phase 1 tasks and Phase 2 dialogues are in flight.

A recipe's ``concurrency`` (Phase 1) and ``simulate.concurrency`` (Phase 2) are ceilings. Below them
the pipeline keeps in flight only the jobs whose working sets the engine's KV cache holds at once, so
a dialogue's history and a draft's prompt are still cached when their next request comes; more jobs
would only wait at admission (:mod:`datagen.llm.admission`, which also orders their requests) while
evicting each other's prefixes. A job's working set is bounded by the recipe's own caps (shared
system prompts are stored once and not counted). Without engine limits (a server, Ray workers that
build their own engines) the ceilings stand.

On an engine that prefills whole prompts (vLLM-CPU), admission holds a request's prompt in its prefill
budget until the request ends, so the budget is what can be in the engine at once; Phase 1 keeps only
as many tasks in flight as the budget holds at a task's widest stage (the committee's seats, each a
prompt with the sampled context and the draft). More tasks could not all be in the engine: they would
only take turns, each one's chain of proposal, reviews and revision waiting behind the others'
requests, so the first accepted blueprint (and with it the first dialogue) would come later the
higher the ceiling (measured at concurrency 64 with 64 tasks: no blueprint within 120 s, against two
at concurrency 1: benchmarks/pipeline_throughput.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datagen.llm.admission import PREFILL_STEPS_AHEAD

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
    prefill_tasks: int | None = None  # Phase 1 tasks the prefill budget holds (whole-prompt prefill)

    def describe(self, phase1_ceiling: int, phase2_ceiling: int) -> str:
        if self.kv_tokens is None:
            return (
                f"phase 1 {self.phase1} tasks, phase 2 {self.phase2} dialogues in flight "
                "(the recipe's ceilings: no engine limits known here)"
            )
        prefill = f", prefill budget holds {self.prefill_tasks}" if self.prefill_tasks is not None else ""
        return (
            f"phase 1 {self.phase1} tasks (ceiling {phase1_ceiling}, KV holds {self.kv_tokens // self.phase1_tokens} "
            f"of ~{self.phase1_tokens} tokens{prefill}), phase 2 {self.phase2} dialogues (ceiling {phase2_ceiling}, KV holds "
            f"{self.kv_tokens // self.phase2_tokens} of ~{self.phase2_tokens} tokens) in flight; engine KV "
            f"{self.kv_tokens} tokens"
        )


def task_tokens(config: DatagenRecipe) -> int:
    """One Phase 1 task at most: its sampled context, the draft, and the committee's verdicts."""
    committee = config.committee.size * config.committee.max_tokens if config.committee.enabled else 0
    return config.samplers.max_context_chars // CHARS_PER_TOKEN + config.generator.max_tokens + committee


def task_prefill_tokens(config: DatagenRecipe) -> int:
    """The uncached prompt tokens of one Phase 1 task at its widest stage: every committee seat reads
    the sampled context and the draft at once (the proposal alone reads the context)."""
    seats = config.committee.size if config.committee.enabled else 1
    return seats * (config.samplers.max_context_chars // CHARS_PER_TOKEN + config.generator.max_tokens)


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
    sizes = (task_tokens(config), dialogue_tokens(phase2), task_prefill_tokens(config))
    phase1 = plan_shape(config.concurrency, phase2.concurrency, limits[0], *sizes)
    both = plan_shape(config.concurrency, phase2.concurrency, limits[1], *sizes)
    return RunShape(
        phase1.phase1,
        both.phase2,
        phase1.phase1_tokens,
        both.phase2_tokens,
        both.kv_tokens,
        phase1.prefill_tasks,
    )


def plan_shape(
    phase1_ceiling: int,
    phase2_ceiling: int,
    limits: EngineLimits | None,
    phase1_tokens: int,
    phase2_tokens: int,
    phase1_prefill_tokens: int | None = None,
) -> RunShape:
    kv = limits.kv_tokens if limits is not None else None
    if not kv:
        return RunShape(phase1_ceiling, phase2_ceiling, phase1_tokens, phase2_tokens, None)
    phase1 = min(phase1_ceiling, max(1, kv // phase1_tokens))
    phase2 = min(phase2_ceiling, max(1, kv // phase2_tokens))
    prefill_tasks = None
    if limits is not None and limits.whole_prefill and limits.step_tokens and phase1_prefill_tokens:
        prefill_tasks = max(1, limits.step_tokens * PREFILL_STEPS_AHEAD // phase1_prefill_tokens)
        phase1 = min(phase1, prefill_tasks)
    return RunShape(phase1, phase2, phase1_tokens, phase2_tokens, kv, prefill_tasks)
