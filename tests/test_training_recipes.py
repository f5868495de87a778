"""Every SFT, DPO and GRPO recipe parses through its own entry point's parser; every accelerate config
loads and its DeepSpeed part becomes a valid DeepSpeed config. So recipes cannot rot."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from training.sft import parse_args

ROOT = Path(__file__).resolve().parent.parent
SFT_RECIPES = sorted((ROOT / "recipes" / "sft").rglob("*.yaml"))
DPO_RECIPES = sorted((ROOT / "recipes" / "dpo").rglob("*.yaml"))
GRPO_RECIPES = sorted((ROOT / "recipes" / "grpo").rglob("*.yaml"))
ACCELERATE_CONFIGS = sorted((ROOT / "recipes" / "accelerate").rglob("*.yaml"))


def first_command(path: Path) -> list[str]:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# "), f"{path} must start with a comment giving the command that runs it"
    return shlex.split(first[2:])


def test_there_are_cpu_and_gpu_recipes() -> None:
    names = {str(p.relative_to(ROOT / "recipes" / "sft")) for p in SFT_RECIPES}
    assert {"smollm2-135m/cpu_lora.yaml", "smollm2-135m/cpu_full.yaml"} <= names
    for model in ("qwen2.5-1.5b", "qwen2.5-7b", "qwen3-8b", "llama3.1-8b"):
        assert {f"{model}/full.yaml", f"{model}/lora.yaml"} <= names
    assert {"ddp.yaml", "zero2.yaml", "zero3.yaml"} <= {p.name for p in ACCELERATE_CONFIGS}


@pytest.mark.parametrize("recipe", SFT_RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sft_recipe_parses_and_names_its_own_command(recipe: Path) -> None:
    command = first_command(recipe)
    assert command[:2] == ["accelerate", "launch"] and "training/sft.py" in command
    assert command[command.index("--config") + 1] == str(recipe.relative_to(ROOT))
    if "--config_file" in command:
        assert (ROOT / command[command.index("--config_file") + 1]).is_file()
    # GPU recipes ask for bf16, which TrainingArguments refuses on a machine without a GPU unless told
    # to run on the CPU; that hardware flag is the only override.
    gpu = "cpu" not in recipe.stem
    script_args, training_args, model_args = parse_args(
        ["--config", str(recipe)] + (["--use_cpu", "true"] if gpu else [])
    )
    assert script_args.sources, "a recipe names its training data"
    assert training_args.assistant_only_loss
    assert training_args.num_train_epochs <= 3
    assert model_args.model_name_or_path
    if gpu:
        assert training_args.bf16 and training_args.gradient_checkpointing
        assert script_args.per_turn_examples
        assert model_args.use_peft == (recipe.stem == "lora")


def _check_command(recipe: Path, entry_point: str) -> bool:
    """The recipe's first line runs it with its own entry point; returns whether it is a GPU recipe."""
    command = first_command(recipe)
    assert command[:2] == ["accelerate", "launch"] and entry_point in command
    assert command[command.index("--config") + 1] == str(recipe.relative_to(ROOT))
    assert (ROOT / command[command.index("--config_file") + 1]).is_file()
    return "cpu" not in recipe.stem


def test_dpo_and_grpo_recipes_sit_beside_the_sft_ones() -> None:
    sft = {p.parent.name for p in SFT_RECIPES}
    dpo = {str(p.relative_to(ROOT / "recipes" / "dpo")) for p in DPO_RECIPES}
    grpo = {str(p.relative_to(ROOT / "recipes" / "grpo")) for p in GRPO_RECIPES}
    assert "smollm2-135m/cpu_lora.yaml" in dpo and "smollm2-135m/cpu_lora.yaml" in grpo
    assert {p.parent.name for p in DPO_RECIPES} == sft  # every SFT model has its DPO recipes
    assert {"qwen2.5-7b/full.yaml", "qwen2.5-7b/lora.yaml", "llama3.1-8b/lora.yaml"} <= grpo


@pytest.mark.parametrize("recipe", DPO_RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dpo_recipe_parses_and_names_its_own_command(recipe: Path) -> None:
    from training.dpo import parse_args as dpo_parse_args

    gpu = _check_command(recipe, "training/dpo.py")
    script_args, training_args, model_args = dpo_parse_args(
        ["--config", str(recipe)] + (["--use_cpu", "true"] if gpu else [])
    )
    assert script_args.sources and all(s.layout == "preference" for s in script_args.sources)
    assert training_args.num_train_epochs <= 3 and training_args.beta > 0
    if gpu:
        assert training_args.bf16 and training_args.gradient_checkpointing
        assert model_args.use_peft == (recipe.stem == "lora")
        # DPO starts from the matching SFT run's output.
        sft_output = f"outputs/sft/{recipe.parent.name}-{recipe.stem}"
        assert model_args.model_name_or_path in {sft_output, f"{sft_output}/merged"}


@pytest.mark.parametrize("recipe", GRPO_RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_grpo_recipe_parses_and_names_its_own_command(recipe: Path) -> None:
    from training.grpo import parse_args as grpo_parse_args

    gpu = _check_command(recipe, "training/grpo.py")
    script_args, training_args, model_args = grpo_parse_args(
        ["--config", str(recipe)] + (["--use_cpu", "true"] if gpu else [])
    )
    assert script_args.task_source.split == "train"  # held-out blueprints stay held out
    assert script_args.episode_config.agent.model == "policy"
    assert not training_args.use_vllm and training_args.num_generations >= 2
    assert training_args.per_device_train_batch_size % training_args.num_generations == 0
    assert script_args.generation == "vllm"  # the policy's own colocated engine
    if gpu:
        # The engine's share of each GPU is the recipe's, and its context holds a whole dialogue.
        assert 0.2 <= training_args.vllm_gpu_memory_utilization <= 0.5
        assert training_args.vllm_max_model_length > training_args.max_completion_length
        assert "vllm_gpu_memory_utilization of it" in recipe.read_text()
        assert training_args.bf16 and training_args.gradient_checkpointing
        assert model_args.use_peft == (recipe.stem == "lora")
        sft_output = f"outputs/sft/{recipe.parent.name}-{recipe.stem}"
        assert model_args.model_name_or_path in {sft_output, f"{sft_output}/merged"}


def test_grpo_recipe_typos_are_errors(tmp_path: Path) -> None:
    from training.grpo import parse_args as grpo_parse_args

    recipe = (ROOT / "recipes" / "grpo" / "smollm2-135m" / "cpu_lora.yaml").read_text()
    cases = {
        "unknown terms ['brevety']": recipe.replace("  brevity: 0.05", "  brevety: 0.05"),
        "does not declare": recipe.replace("user: {model: user_sim", "user: {model: user_simm"),
        "only max_tokens": recipe.replace(
            "agent: {max_tokens: 128}", "agent: {max_tokens: 128, temperature: 0}"
        ),
        "exactly one of run_dir and export_dir": recipe.replace(
            "  split: train", "  export_dir: x\n  split: train"
        ),
        "reward_weights": recipe + "\nreward_weights: [1.0, 0.1, 0.05]\n",
        "generation: expected one of": recipe.replace("generation: vllm", "generation: vlm"),
        "use_vllm: true is TRL's own": recipe + "\nuse_vllm: true\n",
        "vllm_tensor_parallel_size with generation: vllm": recipe + "\nvllm_tensor_parallel_size: 2\n",
        "needs generation: vllm": recipe.replace("generation: vllm", "generation: transformers")
        + "\nlogprob_mask: {max_log_ratio: 0.5}\n",
        "max_log_ratio": recipe + "\nlogprob_mask: {max_log_ratio: -1}\n",
        "level": recipe + "\nlogprob_mask: {level: episode}\n",
    }
    for message, text in cases.items():
        path = tmp_path / "typo.yaml"
        path.write_text(text)
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            grpo_parse_args(["--config", str(path)])


def test_unknown_recipe_keys_and_flags_are_errors(tmp_path: Path) -> None:
    recipe = (ROOT / "recipes" / "sft" / "smollm2-135m" / "cpu_lora.yaml").read_text()
    typo = tmp_path / "typo.yaml"
    typo.write_text(recipe + "\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match="learning_rat"):
        parse_args(["--config", str(typo)])
    with pytest.raises(ValueError, match="not used"):
        parse_args(["--config", str(ROOT / "recipes/sft/smollm2-135m/cpu_lora.yaml"), "--no_such_flag", "1"])
    bad_source = tmp_path / "bad_source.yaml"
    bad_source.write_text(re.sub(r"layout: messages", "layout: messages\n    colour: red", recipe))
    with pytest.raises(ValueError, match="colour"):
        parse_args(["--config", str(bad_source)])


def test_flags_override_the_recipe() -> None:
    recipe = str(ROOT / "recipes" / "sft" / "smollm2-135m" / "cpu_lora.yaml")
    script_args, training_args, model_args = parse_args(
        ["--config", recipe, "--learning_rate", "0.5", "--lora_r", "4", "--dataset_path", "x/y"]
    )
    assert training_args.learning_rate == 0.5 and model_args.lora_r == 4
    assert [(s.path, s.layout) for s in script_args.sources] == [("x/y", "messages")]


@pytest.mark.parametrize("config", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_accelerate_config_loads_and_deepspeed_part_is_valid(config: Path) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    command = first_command(config)
    assert command[0] in {"accelerate", "sbatch"}
    assert str(config.relative_to(ROOT)) in command
    cluster = load_config_from_file(str(config))
    assert cluster.num_processes >= 1
    if cluster.distributed_type.value != "DEEPSPEED":
        return
    from accelerate.utils import DeepSpeedPlugin
    from deepspeed.runtime.config import DeepSpeedConfig

    options = cluster.deepspeed_config
    plugin = DeepSpeedPlugin(
        zero_stage=options["zero_stage"],
        gradient_accumulation_steps=1,
        gradient_clipping=1.0,
        offload_optimizer_device=options["offload_optimizer_device"],
        offload_param_device=options["offload_param_device"],
        zero3_init_flag=options["zero3_init_flag"],
        zero3_save_16bit_model=options.get("zero3_save_16bit_model", False),
    )
    resolved = dict(plugin.deepspeed_config)
    # "auto" values are filled from the training arguments at run time; here from a 1-process run.
    resolved.update(train_batch_size=1, train_micro_batch_size_per_gpu=1, bf16={"enabled": True})
    checked = DeepSpeedConfig(resolved)
    assert checked.zero_optimization_stage == options["zero_stage"]
    if options["zero_stage"] == 3:
        # The final save must consolidate the sharded weights, or save_model writes an unusable model.
        assert checked.zero_config.gather_16bit_weights_on_model_save


def _retail_dialogue() -> dict:
    """A retail gold task as the agent would carry it out: policy, tools, calls and their results."""
    from datagen.envs.registry import get_domain
    from datagen.simulate.agent import agent_system_prompt

    domain = get_domain("retail")
    task = domain.gold_tasks[0]
    env = domain.new_env(domain.eval_seed)
    messages = [{"role": "system", "content": agent_system_prompt(domain.policy)}]
    messages.append({"role": "user", "content": task.instruction})
    for index, action in enumerate(task.actions):
        call = {
            "id": f"c{index}",
            "type": "function",
            "function": {"name": action.name, "arguments": action.arguments},
        }
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        messages.append(
            {
                "role": "tool",
                "tool_call_id": f"c{index}",
                "name": action.name,
                "content": env.call(action.model_dump()).content,
            }
        )
    messages.append({"role": "assistant", "content": "All done."})
    return {"messages": messages, "tools": domain.tool_schemas()}


@pytest.mark.parametrize("name", ["cpu_lora.yaml", "cpu_full.yaml"])
def test_cpu_recipes_keep_a_native_dialogue_with_its_policy_and_tools(
    name: str, embedded_model: Path
) -> None:
    """Over-long examples are dropped, never cut: a max_length below one dialogue drops everything
    the toolkit exports (2048 once did, and the demo's SFT step died)."""
    from transformers import AutoTokenizer

    from training.chat_templates import resolve_template
    from training.convert import from_messages
    from training.mixture import count_tokens

    script_args, training_args, _ = parse_args(
        ["--config", str(ROOT / "recipes" / "sft" / "smollm2-135m" / name)]
    )
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model))
    tokenizer.chat_template = resolve_template(script_args.template).path.read_text(encoding="utf-8")
    tokens = count_tokens(from_messages(_retail_dialogue()), tokenizer)
    assert 2048 < tokens <= training_args.max_length
