"""DPO: `accelerate launch training/dpo.py --config recipes/dpo/smollm2-135m/cpu_lora.yaml` on a
preference export of a run with planted verified and failed dialogues; the mixture reads preference
pairs as DPOTrainer wants them and refuses what DPO cannot train on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from preferencerun import write_planted_run

from datagen.export import export_run

ROOT = Path(__file__).resolve().parent.parent
RECIPE = "recipes/dpo/smollm2-135m/cpu_lora.yaml"


@pytest.fixture(scope="module")
def preference_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dpo")
    out = root / "preference"
    export_run(write_planted_run(root / "run"), out, fmt="preference", test=0.0)
    return out


def test_the_mixture_reads_an_export_as_dpo_pairs(preference_dir: Path, embedded_model: Path) -> None:
    from transformers import AutoTokenizer

    from training.dpo import parse_args
    from training.mixture import prepare_datasets

    script_args, training_args, _ = parse_args(["--config", RECIPE, "--dataset_path", str(preference_dir)])
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model))
    dataset, eval_dataset, report = prepare_datasets(script_args, training_args, tokenizer)
    assert eval_dataset is None and len(dataset) == 3
    assert set(dataset.column_names) == {"prompt", "chosen", "rejected", "tools", "source", "id"}
    row = dataset[0]
    assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
    assert json.loads(row["tools"])[0]["function"]["name"] == "withdraw"
    source = report.sources[0]
    assert (source.rows_read, source.rows_converted, source.examples) == (3, 3, 3)
    assert source.card["export"]["preference"]["pairs"] == {"turn": 3}


def test_dpo_refuses_conversations_and_per_turn_examples(tmp_path: Path) -> None:
    from training.dpo import parse_args
    from training.mixture import SourceConfig, build_mixture

    recipe = (ROOT / RECIPE).read_text().replace("layout: preference", "layout: messages")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(recipe)
    with pytest.raises(ValueError, match="DPO trains on preference pairs"):
        parse_args(["--config", str(wrong)])
    with pytest.raises(ValueError, match="per_turn_examples applies to SFT"):
        parse_args(["--config", RECIPE, "--per_turn_examples", "true"])
    mixed = [SourceConfig(path="a", layout="preference"), SourceConfig(path="b", layout="messages")]
    with pytest.raises(ValueError, match="mix preference pairs with conversations"):
        build_mixture(mixed, seed=0)


@pytest.mark.slow
def test_dpo_runs_two_steps_through_accelerate_launch(
    preference_dir: Path, tmp_path: Path, embedded_model: Path
):
    from safetensors.torch import load_file

    output = tmp_path / "dpo"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", "recipes/accelerate/cpu.yaml",
        "training/dpo.py", "--config", RECIPE,
        "--dataset_path", str(preference_dir), "--output_dir", str(output),
        "--max_steps", "2", "--gradient_accumulation_steps", "1", "--warmup_steps", "0",
        "--max_length", "2048", "--merge_lora", "false", "--save_strategy", "no",
    ]  # fmt: skip
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=2400, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    state = json.loads((output / "trainer_state.json").read_text())
    steps = [entry for entry in state["log_history"] if "loss" in entry]
    assert state["global_step"] == 2 and len(steps) == 2
    assert all("rewards/margins" in entry and "logps/rejected" in entry for entry in steps)
    # PEFT starts every lora_B at zero: a non-zero one was trained by the preference loss.
    adapter = load_file(str(output / "adapter_model.safetensors"))
    assert any(t.abs().sum() > 0 for name, t in adapter.items() if "lora_B" in name)
    card = (output / "README.md").read_text()
    assert "training/dpo.py" in card and "DPOTrainer" in card and "- dpo" in card
    assert '"beta": 0.1' in card and str(preference_dir) in card
    assert json.loads((output / "apigen_mt.json").read_text())["tool_format"] == "hermes"
