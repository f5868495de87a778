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
episodes of a call are in flight at once; the policy's requests are generated in batches, the user's
go to its server meanwhile. The policy is sampled by the recipe's ``generation``: the colocated vLLM
engine (:class:`training.rl.engine.EngineGeneration`, weights synced after every optimizer step, its
sampling log-probabilities checked against the trainer's: :mod:`training.rl.logprobs`) or the
trainer's own model (:class:`TrainerGeneration`, unwrapped as TRL does for its generation).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from datagen.envs.base import Domain
from datagen.envs.registry import get_domain
from datagen.llm.config import ModelSpec
from datagen.llm.formats import get_format
from datagen.llm.pool import ModelPool
from datagen.llm.types import ChatModel
from datagen.records import Blueprint
from datagen.simulate.episode import final_messages
from datagen.simulate.verdict import Verdict, gold_hash, judge_episode
from training.rl.logprobs import LogprobMask, compare, trainer_side
from training.rl.policy import (
    BatchedGenerator,
    GenerateBatch,
    PolicyChatModel,
    Sampler,
    TemplateRenderer,
    Transcript,
)
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


class PolicyGeneration(Protocol):
    """What samples the policy during a rollout (``generation:`` of the recipe)."""

    def sampler(self, trainer: Any) -> AbstractContextManager[Sampler]: ...

    def metrics(self) -> dict[str, float]: ...

    def close(self) -> None: ...


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
        generation: PolicyGeneration | None = None,
        logprob_mask: LogprobMask | None = None,
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
        self.generation = generation or TrainerGeneration()
        self.logprob_mask = logprob_mask
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
        with self.generation.sampler(trainer) as sampler:
            outcomes = self.run(
                prompts,
                sampler.generate_batch,
                first_attempt=first_attempt,
                stop_ids=trainer.eos_token_ids,
                context_limit=sampler.context_limit,
            )
        metrics = self.generation.metrics()
        masks = None
        if sampler.reports_logprobs:
            masks = self.check_logprobs(trainer, outcomes, metrics)
        for name, value in sorted(metrics.items()):
            trainer._log_metric(name, value)  # TRL's own metric path (reward functions get it as log_metric)
        return to_trl(
            outcomes, self.renderer.end_of_turn_id, with_logprobs=sampler.reports_logprobs, masks=masks
        )

    def check_logprobs(
        self, trainer: Any, outcomes: list[Outcome], metrics: dict[str, float]
    ) -> list[list[int]]:
        """The engine's sampling log-probabilities against the trainer's on the same tokens
        (:mod:`training.rl.logprobs`): the gap goes into ``metrics``; returns the policy masks that
        ``logprob_mask`` leaves."""
        transcripts = [o.transcript for o in outcomes]
        recomputed = trainer_side(
            trainer, [t.prompt_ids for t in transcripts], [t.completion_ids for t in transcripts]
        )
        report = compare(
            [t.sampled_logprobs for t in transcripts],
            recomputed,
            [t.policy_mask for t in transcripts],
            self.logprob_mask,
        )
        metrics.update(report.metrics())
        logger.info(
            "rollout log-probabilities: engine vs trainer gap %.4g mean, %.4g max over %d policy tokens; "
            "masked %d tokens (%d whole episodes)",
            metrics.get("rollout/logprob_gap", 0.0),
            metrics.get("rollout/logprob_gap_max", 0.0),
            report.policy_tokens,
            report.masked_tokens,
            report.masked_episodes,
        )
        return report.masks

    # -- the episodes ------------------------------------------------------------------------------
    def run(
        self,
        prompts: list[Any],
        generate_batch: GenerateBatch,
        *,
        first_attempt: int = 0,
        stop_ids: list[int] | None = None,
        context_limit: int | None = None,
    ) -> list[Outcome]:
        """Plays one episode per prompt (the ``i``-th as attempt ``first_attempt + i`` of its blueprint)."""
        generator = BatchedGenerator(generate_batch)
        stops = stop_ids or [self.renderer.end_of_turn_id]

        def policy() -> PolicyChatModel:
            return PolicyChatModel(
                generator,
                self.renderer,
                stop_ids=stops,
                max_completion_tokens=self.max_completion_length,
                context_limit=context_limit,
            )

        async def play_all() -> list[Outcome]:
            return await asyncio.gather(
                *(self._play(task_of(p), first_attempt + i, policy()) for i, p in enumerate(prompts))
            )

        outcomes = self._loop.run_until_complete(play_all())
        self._log(outcomes, generator.batches)
        return outcomes

    async def _play(self, task_id: str, attempt: int, policy: PolicyChatModel) -> Outcome:
        blueprint = self.tasks.get(task_id)
        if blueprint is None:
            raise ValueError(
                f"prompt names blueprint {task_id!r}, which is not among this run's {len(self.tasks)} tasks"
            )
        domain = self.domains(blueprint.env)
        expected = self._expected_hash(domain, blueprint)
        env = domain.new_env(blueprint.seed)
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
        """Closes the policy's generator, the user models (their HTTP clients or engines) and the event loop."""
        self.generation.close()
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


def to_trl(
    outcomes: list[Outcome],
    end_of_turn_id: int,
    *,
    with_logprobs: bool = False,
    masks: list[list[int]] | None = None,
) -> dict[str, Any]:
    """The dict ``rollout_func`` returns. A completion is never empty (TRL reads its last token): an
    episode in which the policy never spoke gets one end-of-turn token as context. ``masks`` replace
    the transcripts' policy masks (``logprob_mask``); ``with_logprobs``: the sampler's log-probabilities
    go to TRL too (its off-policy sequence mask reads them)."""
    completions, policy_masks, logprobs = [], [], []
    for index, outcome in enumerate(outcomes):
        transcript = outcome.transcript
        mask = transcript.policy_mask if masks is None else masks[index]
        completions.append(transcript.completion_ids or [end_of_turn_id])
        policy_masks.append(mask or [0])
        logprobs.append(transcript.sampled_logprobs or [0.0])
    return {
        "prompt_ids": [o.transcript.prompt_ids for o in outcomes],
        "completion_ids": completions,
        "env_mask": policy_masks,
        "logprobs": logprobs if with_logprobs else None,
        "episode": [o.episode for o in outcomes],
    }


class TrainerGeneration:
    """``generation: transformers``: the trainer's own model samples the policy (no log-probabilities)."""

    @contextmanager
    def sampler(self, trainer: Any) -> Iterator[Sampler]:
        with trainer_generation(trainer) as generate_batch:
            yield Sampler(generate_batch)

    def metrics(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        pass


@contextmanager
def trainer_generation(trainer: Any) -> Iterator[GenerateBatch]:
    """Batched sampling with the trainer's model, unwrapped for generation as TRL's own path does
    (ZeRO-3 parameters gathered once for the whole call), with TRL's sampling settings."""
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
