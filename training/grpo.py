"""Reinforcement learning (GRPO) of function-calling agents in our own environments, with the verifier
as the reward.

    accelerate launch [--config_file recipes/accelerate/<cfg>.yaml] training/grpo.py \
        --config recipes/grpo/<model>/<variant>.yaml [--any_option value ...]
    apigen-mt train --method grpo --config <model>/<variant> [--accelerate-config <cfg>] [...]

TRL's ``GRPOTrainer`` with multi-turn rollouts (``training.rl.rollout``): for each task blueprint the
policy plays ``num_generations`` whole dialogues against a simulated user from a fixed model (usually
a vLLM server: ``scripts/serve_vllm.sh``), inside a fresh environment on the blueprint's seed, through
the episode layer Phase 2 and the τ harness use. Each dialogue is scored by the Phase 2 verifier
(``training.rl.rewards.verifier``: ended properly, final state equal to the blueprint's, expected
outputs said, no policy check failed, write-call values said before: the provenance check), plus the shaping terms the recipe names with their weights,
each logged on its own. The loss falls on the policy's own tokens only.

The policy's turns are sampled by the recipe's ``generation``: ``vllm`` (the default), an engine in
each training process beside the trainer (TRL's colocate layout: ``vllm_gpu_memory_utilization`` of
the GPU for the engine, the rest for training; ``vllm_max_model_length`` its context), given the
trainer's weights after every optimizer step (a LoRA adapter as a new LoRA request, or every
parameter in place) and checked on every rollout: its sampling log-probabilities against the
trainer's on the same tokens, logged as ``rollout/logprob_gap`` (``training.rl.engine``,
``training.rl.logprobs``; ``logprob_mask`` drops tokens sampled too far off); or ``transformers``, the
trainer's own ``model.generate``. TRL's own ``use_vllm`` stays off: its vLLM path generates one
completion per prompt, not a dialogue.

The recipe sets defaults for our arguments (:class:`GRPOScriptArguments`: ``tasks`` (blueprints from a
run directory, or from the run behind an export on one side of its split), ``models`` (the simulated
user's model by alias), ``episode`` (the user's settings, the agent's tokens per turn, the step limit,
the seed), ``shaping``, the chat template), TRL's ``GRPOConfig`` (``num_generations``,
``max_completion_length``: the token budget of a whole dialogue after the opening, ``temperature``,
...) and ``ModelConfig``. The output directory gets what an SFT run leaves (model, template, marker,
card with the reward definition, optional merge and push). This module and ``training/rl/`` are the
only parts of ``training`` that import ``datagen``: they need its environments, episode layer and
verifier.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a file by `accelerate launch training/grpo.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.arguments import ModelScriptArguments  # noqa: E402  (needs the path fix above)
from training.entrypoint import (  # noqa: E402
    format_marker_callback,
    parse_recipe,
    peft_and_quantization,
    prepare_model,
    run_main,
    take_hub_push,
    train_and_finish,
)

if TYPE_CHECKING:
    from trl import GRPOConfig, ModelConfig

    from training.rl.sides import EpisodeConfig

logger = logging.getLogger("training.grpo")

GENERATIONS = ("vllm", "transformers")


@dataclass
class GRPOScriptArguments(ModelScriptArguments):
    """Our keys of a GRPO recipe: the tasks, the simulated user's models, the episode settings and the
    reward's shaping terms, beside the template and merge settings; all validated at parse time."""

    tasks: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "The prompts, set in the recipe YAML: {run_dir | export_dir, split (train), seed, validation, "
            "test, limit} (training.rl.tasks.TaskSource)."
        },
    )
    models: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "Models by alias for the simulated user and its judge, set in the recipe YAML: {alias: "
            "{model, backend, base_urls, ...}} (datagen.llm.ModelSpec). `policy` is the model under training."
        },
    )
    episode: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "The dialogues, set in the recipe YAML: {user: {model: <alias>, best_of_n, temperature, "
            "max_tokens, judge, judge_max_tokens}, agent: {max_tokens}, max_steps, seed}."
        },
    )
    shaping: dict[str, float] = field(
        default_factory=dict,
        metadata={
            "help": "Shaping terms added to the verifier's reward, with their weights (training.rl.rewards."
            "SHAPING_TERMS: outputs, gold_calls, tool_success, format, brevity); none: the verdict alone."
        },
    )
    generation: str = field(
        default="vllm",
        metadata={
            "help": "What samples the policy's turns: `vllm` (its own engine colocated with the trainer, "
            "weights synced after every step: training.rl.engine) or `transformers` (the trainer's generate)."
        },
    )
    logprob_mask: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "generation: vllm only. Drop from the loss the policy tokens the engine sampled far from "
            "the trainer's distribution: {level: token | sequence, max_log_ratio} (training.rl.logprobs)."
        },
    )

    def __post_init__(self) -> None:
        # Validated at parse time, so a typo in a recipe is an error before any model loads.
        from datagen.llm.config import ModelSpec
        from datagen.recipe import resolve_role_models
        from training.rl.logprobs import LogprobMask
        from training.rl.rewards import SHAPING_TERMS
        from training.rl.rollout import POLICY
        from training.rl.sides import EpisodeConfig
        from training.rl.tasks import TaskSource

        self.task_source = TaskSource.model_validate(self.tasks)
        self.model_specs = {alias: ModelSpec.model_validate(spec) for alias, spec in self.models.items()}
        if POLICY in self.model_specs:
            raise ValueError(
                f"models: {POLICY!r} is the model under training; name the user's model otherwise"
            )
        agent = dict(self.episode.get("agent") or {})
        unknown = sorted(set(agent) - {"max_tokens"})
        if unknown:
            raise ValueError(
                f"episode.agent: only max_tokens (per turn) is set here, found {unknown}; the agent is the "
                "policy, sampled with GRPOConfig's temperature/top_p"
            )
        self.episode_config = EpisodeConfig.model_validate(
            {**self.episode, "agent": {"model": POLICY, **agent}}
        )
        resolve_role_models(self.episode_config.user, self.model_specs, "episode.user")
        unknown_terms = sorted(set(self.shaping) - set(SHAPING_TERMS))
        if unknown_terms:
            raise ValueError(
                f"shaping: unknown terms {unknown_terms}; expected some of {sorted(SHAPING_TERMS)}"
            )
        if self.generation not in GENERATIONS:
            raise ValueError(f"generation: expected one of {list(GENERATIONS)}, found {self.generation!r}")
        self.logprob_rule = LogprobMask.model_validate(self.logprob_mask) if self.logprob_mask else None
        if self.logprob_rule is not None and self.generation != "vllm":
            raise ValueError(
                "logprob_mask: compares the engine's sampling log-probabilities with the trainer's, so it needs "
                f"generation: vllm; found generation: {self.generation}"
            )


def parse_args(argv: list[str] | None = None) -> tuple[GRPOScriptArguments, GRPOConfig, ModelConfig]:
    """Recipe YAML + flags -> the three option groups; unknown keys and flags raise ``ValueError``."""
    from trl import GRPOConfig

    script_args, training_args, model_args = parse_recipe(
        GRPOScriptArguments, GRPOConfig, "training/grpo.py", argv
    )
    if training_args.reward_weights is not None:
        raise ValueError(
            "set the reward's weights with `shaping:` (the verifier's weight is 1), not reward_weights"
        )
    check_generation(script_args.generation, training_args, model_args)
    return script_args, training_args, model_args


def check_generation(generation: str, training_args: GRPOConfig, model_args: ModelConfig) -> None:
    """Settings the policy's generator cannot honour are errors at parse time, before any model loads."""
    if training_args.use_vllm:
        raise ValueError(
            "use_vllm: true is TRL's own vLLM generation, one completion per prompt, which cannot play a "
            "dialogue; set use_vllm: false and generation: vllm (the policy's own engine, colocated)"
        )
    if generation != "vllm":
        return
    refused = {
        "vllm_tensor_parallel_size": (
            training_args.vllm_tensor_parallel_size != 1,
            "each training process has its own engine on its own device; keep it at 1",
        ),
        "vllm_enable_sleep_mode": (
            training_args.vllm_enable_sleep_mode,
            "the engine stays resident; lower vllm_gpu_memory_utilization to leave training more memory",
        ),
        "generation_kwargs": (
            bool(training_args.generation_kwargs),
            "set temperature, top_p, top_k, min_p and repetition_penalty, which both generators honour",
        ),
        "use_dora": (bool(model_args.use_peft and model_args.use_dora), "vLLM serves plain LoRA adapters"),
        "lora_modules_to_save": (
            bool(model_args.use_peft and model_args.lora_modules_to_save),
            "vLLM loads LoRA weights only; train those modules with full fine-tuning",
        ),
        "load_in_4bit / load_in_8bit": (
            model_args.load_in_4bit or model_args.load_in_8bit,
            "the engine would sample from the unquantized base the adapter was not trained on",
        ),
    }
    for name, (found, why) in refused.items():
        if found:
            raise ValueError(f"{name} with generation: vllm: {why}; or set generation: transformers")


def _episode(script_args: GRPOScriptArguments, training_args: GRPOConfig) -> EpisodeConfig:
    """The episode settings with the agent sampled as the trainer samples."""
    agent = script_args.episode_config.agent.model_copy(update={"temperature": training_args.temperature})
    return script_args.episode_config.model_copy(update={"agent": agent})


def grpo_report(script_args: GRPOScriptArguments, task_facts: dict[str, Any], used: int) -> Any:
    """The data section of the model card: the blueprints read and used."""
    from training.mixture import MixtureReport, SourceReport, read_dataset_card

    source = script_args.task_source.export_dir or task_facts["run_dir"]
    report = SourceReport(
        path=source,
        layout="blueprints",
        weight=1.0,
        rows_read=task_facts["blueprints_in_run"],
        rows_converted=task_facts["blueprints_in_run"],
        rows_used=used,
        examples=used,
        card=read_dataset_card(Path(source)) if script_args.task_source.export_dir else {},
    )
    return MixtureReport(sources=[report], per_turn_examples=False, max_length=None)


def grpo_settings(
    script_args: GRPOScriptArguments,
    training_args: GRPOConfig,
    episode: EpisodeConfig,
    task_facts: dict[str, Any],
) -> dict[str, Any]:
    """What the model card states about the run: tasks, the reward's parts and weights, the episodes."""
    from training.rl.rewards import SHAPING_TERMS

    return {
        "tasks": task_facts,
        "rewards": {
            "verifier": {
                "weight": 1.0,
                "is": "1 if the Phase 2 verifier (state, outputs, policy, provenance) accepts the dialogue, else 0",
            },
            **{name: {"weight": w, "is": SHAPING_TERMS[name][1]} for name, w in script_args.shaping.items()},
        },
        "episode": episode.model_dump(),
        "user_models": {alias: spec.label for alias, spec in script_args.model_specs.items()},
        "num_generations": training_args.num_generations,
        "max_completion_length": training_args.max_completion_length,
        "generation": script_args.generation,
        "logprob_mask": script_args.logprob_rule.model_dump() if script_args.logprob_rule else None,
    }


def policy_generation(generation: str, training_args: GRPOConfig, model_args: ModelConfig) -> Any:
    """What samples the policy (``generation:``); the vLLM engine itself starts on the first rollout."""
    from training.rl.rollout import TrainerGeneration

    if generation == "transformers":
        return TrainerGeneration()
    from training.rl.engine import EngineGeneration, EngineOptions

    return EngineGeneration(
        EngineOptions(
            max_model_len=training_args.vllm_max_model_length,
            gpu_memory_utilization=training_args.vllm_gpu_memory_utilization,
            lora_rank=model_args.lora_r if model_args.use_peft else None,
            dtype=model_args.dtype or "auto",
        )
    )


@dataclass
class GRPORun:
    """A GRPO job ready to train: the trainer, its rollout, and what the end of the run records."""

    trainer: Any
    rollout: Any  # training.rl.rollout.EpisodeRollout
    prepared: Any  # training.entrypoint.PreparedModel
    episode: Any
    tasks: list[Any]
    task_facts: dict[str, Any]
    push: bool


def build_run(
    script_args: GRPOScriptArguments, training_args: GRPOConfig, model_args: ModelConfig
) -> GRPORun:
    """The trainer with our rollout, for the configured tasks and model (the benchmark builds its runs here too)."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from datagen.envs.registry import get_domain
    from training.rl.rewards import reward_functions
    from training.rl.rollout import EpisodeRollout
    from training.rl.tasks import load_tasks, prompt_row

    tasks, task_facts = load_tasks(script_args.task_source)
    episode = _episode(script_args, training_args)
    prepared = prepare_model(script_args, training_args, model_args)
    prepared.tokenizer.padding_side = "left"  # GRPOTrainer pads prompts on the left
    rollout = EpisodeRollout(
        tasks,
        episode,
        script_args.model_specs,
        tokenizer=prepared.tokenizer,
        tool_format=prepared.spec.tool_format,
        max_completion_length=training_args.max_completion_length,
        generation=policy_generation(script_args.generation, training_args, model_args),
        logprob_mask=script_args.logprob_rule,
    )
    dataset = Dataset.from_list([prompt_row(b, get_domain(b.env).policy) for b in tasks])
    functions, training_args.reward_weights = reward_functions(script_args.shaping)
    push = take_hub_push(training_args)
    trainer = GRPOTrainer(
        model=prepared.path,
        reward_funcs=functions,
        args=training_args,
        train_dataset=dataset,
        processing_class=prepared.tokenizer,
        callbacks=[format_marker_callback(prepared.spec)],
        rollout_func=rollout,
        **peft_and_quantization(model_args),
    )
    return GRPORun(trainer, rollout, prepared, episode, tasks, task_facts, push)


def train(
    script_args: GRPOScriptArguments,
    training_args: GRPOConfig,
    model_args: ModelConfig,
    recipe: str | None = None,
    command: list[str] | None = None,
) -> Path:
    """Run one GRPO job as configured; returns the output directory."""
    run = build_run(script_args, training_args, model_args)
    try:
        return train_and_finish(
            run.trainer,
            method="grpo",
            script_args=script_args,
            training_args=training_args,
            model_args=model_args,
            prepared=run.prepared,
            report=grpo_report(script_args, run.task_facts, len(run.tasks)),
            recipe=recipe,
            command=command,
            push=run.push,
            card_extra=grpo_settings(script_args, training_args, run.episode, run.task_facts),
        )
    finally:
        run.rollout.close()


def main(argv: list[str] | None = None) -> int:
    """The GRPO entry point: recipe and flags parsed, then training; errors a user can fix are one line
    (see :func:`training.entrypoint.run_main`). Returns the exit code."""
    return run_main(argv, kind="grpo", parse_args=parse_args, train=train)


if __name__ == "__main__":
    raise SystemExit(main())
