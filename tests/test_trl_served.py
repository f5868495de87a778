"""TRL's own environment path (``GRPOTrainer(environment_factory=...)``) on a domain served over OpenEnv
(`apigen-mt envs serve FOLDER --protocol openenv`, the scaffolded `library` user domain): the class TRL
builds its tool schemas from and calls, and Phase 2's verdict as the reward.

On the same scripted episode (the customer's instruction, the gold calls, an answer; or no calls) the
reward through TRL's path equals the reward of ``training/grpo.py``'s rollouts, which run the episode
in-process through the episode layer. The slow test trains one GRPO step with TRL's own loop on the
embedded model, the reward coming from the server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PLAIN_ENV_KEYS
from libraryrun import library_blueprints, scripted_rollout
from servedrun import served
from test_grpo_rollout import _play, scripted_policy, tokenizer  # noqa: F401 - the fixture

from training.rl.served import served_environment, served_rows, verdict_reward


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Any]]:
    return library_blueprints(tmp_path_factory.mktemp("domains"))


@pytest.fixture(scope="module")
def server(library, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import sys

    domain, blueprints = library
    env = {key: os.environ[key] for key in PLAIN_ENV_KEYS if key in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    folder = blueprints[0].env
    with served(
        [folder, "--protocol", "openenv"], env, tmp_path_factory.mktemp("served") / "openenv.log"
    ) as base:
        yield base


def test_the_environment_class_carries_the_served_tools(library, server):
    """TRL builds the prompt's tool schemas from the methods with transformers' get_json_schema: the
    names, descriptions, parameters and required ones are the domain's."""
    from transformers.utils import get_json_schema

    domain, _ = library
    environment = served_environment(server)
    for spec in domain.tools:
        schema = get_json_schema(getattr(environment, spec.name))["function"]
        expected = spec.schema["function"]
        assert schema["name"] == spec.name and schema["description"] == expected["description"]
        params = expected["parameters"]
        assert list(schema["parameters"]["properties"]) == list(params["properties"])
        assert sorted(schema["parameters"].get("required", [])) == sorted(params.get("required", []))
        for name, prop in params["properties"].items():
            assert schema["parameters"]["properties"][name]["type"] == prop.get("type", "string"), (
                spec.name,
                name,
            )
    rows = served_rows(server, tasks="gold")
    assert [r["task_id"] for r in rows] == [t.id for t in domain.gold_tasks]
    assert rows[0]["prompt"][0]["role"] == "system" and domain.policy in rows[0]["prompt"][0]["content"]


def trl_reward(environment_class: Any, task_id: str, calls: list[dict[str, Any]], answer: str) -> float:
    """One rollout as TRL's loop drives the environment: reset with the row, each parsed tool call on the
    method of that name, then the reward functions with the completion and the environments."""
    env = environment_class()
    try:
        opening = env.reset(prompt=[], task_id=task_id)
        assert opening
        for call in calls:
            getattr(env, call["name"])(**call["arguments"])
        return verdict_reward([[{"role": "assistant", "content": answer}]], [env])[0]
    finally:
        env._close()


def test_trl_path_and_grpo_rollouts_give_the_same_reward(library, server, tokenizer):  # noqa: F811
    domain, blueprints = library
    environment_class = served_environment(server)
    rewards: dict[str, list[tuple[float, float]]] = {}
    for blueprint in blueprints:
        gold = [a.model_dump() for a in blueprint.actions]
        answer = "All done. " + " ".join(blueprint.outputs)
        rollout = scripted_rollout(blueprints, tokenizer, opening=blueprint.instruction)
        try:
            acting, _ = scripted_policy(tokenizer, gold, answer)
            idle, _ = scripted_policy(tokenizer, [], "Sorry, I cannot help with that.")
            ours = [float(_play(rollout, blueprint, domain, p).episode["success"]) for p in (acting, idle)]
        finally:
            rollout.close()
        theirs = [
            trl_reward(environment_class, blueprint.id, gold, answer),
            trl_reward(environment_class, blueprint.id, [], "Sorry, I cannot help with that."),
        ]
        rewards[blueprint.id] = list(zip(ours, theirs, strict=True))
    assert all(ours == theirs for pairs in rewards.values() for ours, theirs in pairs), rewards
    assert all(pairs[0] == (1.0, 1.0) for pairs in rewards.values()), rewards
    assert any(pairs[1] == (0.0, 0.0) for pairs in rewards.values()), rewards


@pytest.mark.slow
def test_trl_grpo_trains_a_step_on_the_served_domain(library, server, embedded_model: Path, tmp_path: Path):
    """GRPOTrainer with environment_factory: TRL's own loop generates with the embedded model, runs the
    tool calls it parses on the served domain, and learns from the server's verdict."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_template

    from training.chat_templates import SHIPPED_TEMPLATES

    os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
    chat = AutoTokenizer.from_pretrained(str(embedded_model))
    chat.chat_template = SHIPPED_TEMPLATES["smollm2"].read()
    chat.response_template = qwen3_template  # ChatML with hermes <tool_call> blocks, as ours writes them
    model = AutoModelForCausalLM.from_pretrained(str(embedded_model), dtype=torch.float32)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    rows = served_rows(server, tasks="gold")[:2]
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        max_steps=1,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=96,
        learning_rate=1e-4,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        max_tool_calling_iterations=2,
        temperature=1.0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[verdict_reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=chat,
        environment_factory=served_environment(server),
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert trainer.state.global_step == 1 and logged
    assert 0.0 <= logged[0]["rewards/verdict_reward/mean"] <= 1.0
    assert all(env.done for env in trainer.environments)  # every rollout's episode reached its verdict
    assert all(env.verdict is not None and "parts" in env.verdict for env in trainer.environments)
    changed = any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters())
    assert changed or logged[0]["loss"] == 0.0
