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

    def __post_init__(self) -> None:
        # Validated at parse time, so a typo in a recipe is an error before any model loads.
        from datagen.llm.config import ModelSpec
        from datagen.recipe import resolve_role_models
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
    return script_args, training_args, model_args


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
    }


def train(
    script_args: GRPOScriptArguments,
    training_args: GRPOConfig,
    model_args: ModelConfig,
    recipe: str | None = None,
    command: list[str] | None = None,
) -> Path:
    """Run one GRPO job as configured; returns the output directory."""
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
    try:
        return train_and_finish(
            trainer,
            method="grpo",
            script_args=script_args,
            training_args=training_args,
            model_args=model_args,
            prepared=prepared,
            report=grpo_report(script_args, task_facts, len(tasks)),
            recipe=recipe,
            command=command,
            push=push,
            card_extra=grpo_settings(script_args, training_args, episode, task_facts),
        )
    finally:
        rollout.close()


def main(argv: list[str] | None = None) -> int:
    """The GRPO entry point: recipe and flags parsed, then training; errors a user can fix are one line
    (see :func:`training.entrypoint.run_main`). Returns the exit code."""
    return run_main(argv, kind="grpo", parse_args=parse_args, train=train)


if __name__ == "__main__":
    raise SystemExit(main())
