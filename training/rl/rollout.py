"""Multi-turn rollouts for TRL's ``GRPOTrainer``: whole dialogues in our environments, through the same
episode layer as Phase 2 and the τ harness, scored by the same verifier.

What TRL 1.16 gives and what it lacks. ``GRPOTrainer`` has two ways to go beyond one completion:
``environment_factory``/``tools`` (TRL runs the loop: generate, parse calls with the template's
response schema, call Python methods, feed results back, until the model answers without a call)
and ``rollout_func(prompts, trainer)`` (the caller runs the loop and returns ``prompt_ids``,
``completion_ids``, ``logprobs``, optionally ``env_mask`` marking the tokens the model did not write,
and any other field, which reaches the reward functions). TRL's own loop ends at the model's first
reply without a tool call: it has no place for a **simulated user** who answers, reveals the task a
piece at a time and ends the dialogue, and its tools are plain methods rather than one environment
whose state the verifier compares. So the dialogue runs here, on the public ``rollout_func`` hook,
without touching the trainer: this module is that bridge and nothing more.

Per call, for every prompt (a blueprint, each repeated ``num_generations`` times by TRL's sampler):
a fresh environment on the blueprint's seed, the agent (the policy under training, as a
:class:`~training.rl.policy.PolicyChatModel`) and the simulated user (a fixed model, usually a vLLM
server) from the build layer, one episode (``run_episode``), the verdict (``judge_episode``). All the
episodes of a call are in flight at once; the policy's requests are generated in batches with the
trainer's own model (unwrapped as TRL does for its generation), the user's go to its server meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from datagen.envs.base import Domain
from datagen.envs.registry import get_domain
from datagen.llm.config import ModelSpec
from datagen.llm.formats import get_format
from datagen.llm.pool import ModelPool
from datagen.llm.types import ChatModel
from datagen.records import Blueprint
from datagen.simulate.episode import final_messages
from datagen.simulate.verdict import Verdict, gold_hash, judge_episode
from training.rl.policy import BatchedGenerator, GenerateBatch, PolicyChatModel, TemplateRenderer, Transcript
from training.rl.rewards import Episode, gold_calls_matched
from training.rl.sides import EpisodeConfig, build_sides, play_episode
from training.rl.tasks import task_of

logger = logging.getLogger(__name__)

POLICY = "policy"  # the model alias of the agent: the model under training


class RolloutModels:
    """Models by alias for the build layer: ``policy`` is this episode's policy, the rest come from a pool."""

    def __init__(self, policy: ChatModel, specs: dict[str, ModelSpec], pool: ModelPool) -> None:
        self.policy, self.specs, self.pool = policy, specs, pool

    def get(self, alias: str) -> ChatModel:
        if alias == POLICY:
            return self.policy
        if alias not in self.specs:
            raise ValueError(
                f"model alias {alias!r} is not declared under `models:`; declared: {sorted(self.specs)}"
            )
        return self.pool.get(alias)


@dataclass
class Outcome:
    transcript: Transcript
    episode: Episode
    messages: list[dict[str, Any]]  # the dialogue as the episode layer keeps it, system prompt first


class EpisodeRollout:
    """``rollout_func`` for ``GRPOTrainer`` (module docstring)."""

    def __init__(
        self,
        tasks: list[Blueprint],
        episode: EpisodeConfig,
        models: dict[str, ModelSpec],
        *,
        tokenizer: Any,
        tool_format: str,
        max_completion_length: int,
        domains: Callable[[str], Domain] = get_domain,
    ) -> None:
        if episode.agent.model != POLICY:
            raise ValueError(f"the agent of a GRPO episode is the policy: agent.model must be {POLICY!r}")
        self.tasks = {b.id: b for b in tasks}
        self.episode = episode
        self.specs = models
        self.domains = domains
        self.renderer = TemplateRenderer(tokenizer, get_format(tool_format), template_format=tool_format)
        self.renderer.end_of_turn_id  # noqa: B018 - a template/tokenizer mismatch fails now, not mid-run
        self.max_completion_length = max_completion_length
        self._gold: dict[str, str] = {}
        self._loop = asyncio.new_event_loop()
        self._pool: ModelPool | None = None
        self._calls = 0
        for blueprint in tasks:  # a domain that cannot load fails now, before any model starts
            self.domains(blueprint.env)

    # -- the TRL hook ------------------------------------------------------------------------------
    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        rank, world = trainer.accelerator.process_index, trainer.accelerator.num_processes
        first_attempt = (self._calls * world + rank) * len(prompts)
        self._calls += 1
        with trainer_generation(trainer) as generate_batch:
            outcomes = self.run(
                prompts, generate_batch, first_attempt=first_attempt, stop_ids=trainer.eos_token_ids
            )
        return to_trl(outcomes, self.renderer.end_of_turn_id)

    # -- the episodes ------------------------------------------------------------------------------
    def run(
        self,
        prompts: list[Any],
        generate_batch: GenerateBatch,
        *,
        first_attempt: int = 0,
        stop_ids: list[int] | None = None,
    ) -> list[Outcome]:
        """Plays one episode per prompt (the ``i``-th as attempt ``first_attempt + i`` of its blueprint)."""
        generator = BatchedGenerator(generate_batch)
        stops = stop_ids or [self.renderer.end_of_turn_id]

        async def play_all() -> list[Outcome]:
            return await asyncio.gather(
                *(self._play(task_of(p), first_attempt + i, generator, stops) for i, p in enumerate(prompts))
            )

        outcomes = self._loop.run_until_complete(play_all())
        self._log(outcomes, generator.batches)
        return outcomes

    async def _play(
        self, task_id: str, attempt: int, generator: BatchedGenerator, stop_ids: list[int]
    ) -> Outcome:
        blueprint = self.tasks.get(task_id)
        if blueprint is None:
            raise ValueError(
                f"prompt names blueprint {task_id!r}, which is not among this run's {len(self.tasks)} tasks"
            )
        domain = self.domains(blueprint.env)
        expected = self._expected_hash(domain, blueprint)
        env = domain.new_env(blueprint.seed)
        policy = PolicyChatModel(
            generator, self.renderer, stop_ids=stop_ids, max_completion_tokens=self.max_completion_length
        )
        if self._pool is None:
            self._pool = ModelPool(self.specs)
        models = RolloutModels(policy, self.specs, self._pool)
        sides = build_sides(
            self.episode,
            models,
            domain,
            env,
            item_id=blueprint.id,
            attempt=attempt,
            instruction=blueprint.instruction,
            persona=blueprint.persona,
        )
        result = await play_episode(self.episode, sides, env)
        # The verdict Phase 2 keeps dialogues by, provenance check included.
        verdict = judge_episode(
            env, result, expected_hash=expected, expected_outputs=blueprint.outputs, provenance=True
        )
        gold = [a.model_dump() for a in blueprint.actions]
        summary = summarize(blueprint, verdict, policy.transcript, self.episode, gold, env.trace)
        return Outcome(policy.transcript, summary, final_messages(sides.agent.system, result))

    def _expected_hash(self, domain: Domain, blueprint: Blueprint) -> str:
        if blueprint.id not in self._gold:
            self._gold[blueprint.id] = gold_hash(domain, blueprint.seed, blueprint.actions)[0]
        return self._gold[blueprint.id]

    def _log(self, outcomes: list[Outcome], batches: list[int]) -> None:
        ends = Counter(o.episode["termination"] for o in outcomes)
        rewards = [float(o.episode["success"]) for o in outcomes]
        logger.info(
            "rollouts: %d episodes, verifier reward %.2f, ends %s, policy batches %s",
            len(outcomes),
            sum(rewards) / max(1, len(rewards)),
            dict(ends),
            batches,
        )

    def close(self) -> None:
        """Closes the user models (their HTTP clients or engines) and the event loop."""
        if self._pool is not None:
            self._loop.run_until_complete(self._pool.aclose())
            self._pool = None
        self._loop.close()


def summarize(
    blueprint: Blueprint,
    verdict: Verdict,
    transcript: Transcript,
    config: EpisodeConfig,
    gold: list[dict[str, Any]],
    trace: list[Any],
) -> Episode:
    """What the reward functions read about one episode (and what TRL logs beside it)."""
    checks = verdict.checks
    return {
        "task_id": blueprint.id,
        "success": verdict.success,
        "failure": verdict.failure,
        "termination": checks["termination"],
        "state_match": checks["state_match"],
        "outputs_found": checks["outputs_found"],
        "outputs_expected": checks["outputs_expected"],
        "policy_violations": len(checks["policy_violations"]),
        "ungrounded_arguments": len(checks.get("ungrounded_arguments", [])),
        "format_errors": len(checks["format_errors"]),
        "tool_calls": checks["tool_calls"],
        "failed_tool_calls": checks["failed_tool_calls"],
        "gold_calls": len(gold),
        "gold_calls_matched": gold_calls_matched(gold, trace),
        "agent_turns": transcript.turns,
        "agent_tokens": sum(transcript.turn_tokens),
        "truncated_turns": transcript.truncated_turns,
        "turn_max_tokens": config.agent.max_tokens,
        "error": checks.get("error"),
    }


def to_trl(outcomes: list[Outcome], end_of_turn_id: int) -> dict[str, Any]:
    """The dict ``rollout_func`` returns. A completion is never empty (TRL reads its last token): an
    episode in which the policy never spoke gets one end-of-turn token as context."""
    completions, masks = [], []
    for outcome in outcomes:
        ids, mask = outcome.transcript.completion_ids, outcome.transcript.policy_mask
        completions.append(ids or [end_of_turn_id])
        masks.append(mask or [0])
    return {
        "prompt_ids": [o.transcript.prompt_ids for o in outcomes],
        "completion_ids": completions,
        "env_mask": masks,
        "logprobs": None,  # generated by the trainer's own model: no sampler mismatch to correct
        "episode": [o.episode for o in outcomes],
    }


@contextmanager
def trainer_generation(trainer: Any) -> Iterator[GenerateBatch]:
    """Batched sampling with the trainer's model, unwrapped for generation as TRL's own path does
    (ZeRO-3 parameters gathered once for the whole call), with TRL's sampling settings."""
    if getattr(trainer, "use_vllm", False):
        raise ValueError(
            "use_vllm: multi-turn rollouts generate with the trainer's own model; TRL's vLLM generation is "
            "collective across processes (server mode) and sized for one completion per prompt, so it does not "
            "fit episodes whose turns differ per process. Set use_vllm: false."
        )
    from trl.models import unwrap_model_for_generation

    from training.rl.policy import transformers_generate_batch

    with unwrap_model_for_generation(
        trainer.model_wrapped,
        trainer.accelerator,
        gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
        generation_kwargs=trainer.generation_kwargs,
        gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
    ) as model:
        yield transformers_generate_batch(model, trainer.processing_class, trainer.generation_config)
