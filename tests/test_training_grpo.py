"""GRPO end to end: `accelerate launch training/grpo.py --config recipes/grpo/smollm2-135m/cpu_lora.yaml`
from a plain shell, for two optimizer steps on the embedded model, the tasks a run directory's
blueprints in a real environment, the simulated user the embedded model on a real vLLM server, the
policy sampled by its own vLLM engine in the training process (the recipe's generation: vllm). The
reward itself is checked against scripted policies in tests/test_grpo_rollout.py, the weight sync
against the trainer's log-probabilities in tests/test_grpo_engine.py; here: the run goes through,
every reward part is logged on its own, the weights of step 1 reach the engine for step 2's rollout
and its log-probabilities are the trainer's there, the adapter was trained, the card states the
reward."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from libraryrun import write_library_run

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "grpo" / "smollm2-135m" / "cpu_lora.yaml"


@pytest.mark.slow
def test_grpo_runs_two_steps_on_our_environment(
    vllm_server: str, tmp_path: Path, embedded_model: Path, plain_env: dict[str, str]
):
    from safetensors.torch import load_file

    recipe = yaml.safe_load(RECIPE.read_text())
    recipe["tasks"] = {"run_dir": str(write_library_run(tmp_path)), "split": "train", "test": 0.0}
    recipe["models"]["user_sim"]["base_urls"] = [vllm_server]
    recipe["episode"].update(max_steps=6, agent={"max_tokens": 96})
    recipe.update(max_steps=2, max_completion_length=1024, output_dir=str(tmp_path / "grpo"))
    recipe.update(save_strategy="no", merge_lora=False)
    # A step large enough that an engine left on the old weights would be far off the trainer.
    recipe.update(learning_rate=2.0e-3)
    assert recipe["generation"] == "vllm"
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    command = [
        "accelerate", "launch", "--config_file", "recipes/accelerate/cpu.yaml",
        "training/grpo.py", "--config", str(path),
    ]  # fmt: skip
    env = {**plain_env, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3000, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert "rollouts: 2 episodes" in done.stderr  # each step plays one task twice, through the episode layer

    assert "policy engine: weights of step 1 loaded" in done.stderr

    output = tmp_path / "grpo"
    state = json.loads((output / "trainer_state.json").read_text())
    steps = [entry for entry in state["log_history"] if "loss" in entry]
    assert state["global_step"] == 2 and len(steps) == 2
    # Each rollout was generated with the weights of the step before it, and the engine's sampling
    # log-probabilities equal the trainer's on the same tokens: after step 1 changed the weights too.
    assert [entry["rollout/engine_weights_step"] for entry in steps] == [0, 1]
    assert steps[0]["grad_norm"] > 0, "step 1 left the weights as they were: nothing to carry to the engine"
    for entry in steps:
        assert 0 <= entry["rollout/logprob_gap"] < 1e-3 and entry["rollout/logprob_gap_max"] < 1e-2
    for entry in steps:  # the verdict and each shaping term, logged apart
        for name in ("verifier", "format", "brevity"):
            assert 0.0 <= entry[f"rewards/{name}/mean"] <= 1.0
        expected = (
            entry["rewards/verifier/mean"]
            + 0.1 * entry["rewards/format/mean"]
            + 0.05 * entry["rewards/brevity/mean"]
        )
        assert entry["reward"] == pytest.approx(expected, abs=1e-4)
    # PEFT starts every lora_B at zero: a non-zero one was moved by the policy gradient.
    adapter = load_file(str(output / "adapter_model.safetensors"))
    assert any(t.abs().sum() > 0 for name, t in adapter.items() if "lora_B" in name)
    card = (output / "README.md").read_text()
    assert "training/grpo.py" in card and "GRPOTrainer" in card and "- grpo" in card
    assert '"verifier"' in card and '"weight": 0.1' in card
