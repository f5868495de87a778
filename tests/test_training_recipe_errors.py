"""The training entry points (sft, dpo, grpo) on a recipe that cannot train: one line naming the file,
the key and the fix (training/recipe_parse.py), before any model loads; never TRL's parser
traceback or argparse's page of usage."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from training.recipe_parse import TrainingRecipeError

ROOT = Path(__file__).resolve().parents[1]
SFT = (ROOT / "recipes" / "sft" / "smollm2-135m" / "cpu_lora.yaml").read_text()
DPO = (ROOT / "recipes" / "dpo" / "smollm2-135m" / "cpu_lora.yaml").read_text()
GRPO = (ROOT / "recipes" / "grpo" / "smollm2-135m" / "cpu_lora.yaml").read_text()


def _sub(text: str, pattern: str, replacement: str) -> str:
    changed, count = re.subn(pattern, replacement, text, count=1, flags=re.M)
    assert count == 1, pattern
    return changed


SFT_CASES = {
    "misspelt key": (
        _sub(SFT, r"^learning_rate:", "learnin_rate:"),
        "unknown key `learnin_rate` (did you mean `learning_rate`?)",
    ),
    "yaml syntax": (SFT + "\nlora_r: [16,\n", "not valid YAML at line"),
    "empty file": (
        "",
        "expected a YAML mapping of recipe keys (e.g. `model_name_or_path: embedded`), found an empty file",
    ),
    "a list": (
        "- model_name_or_path: embedded\n",
        "expected a YAML mapping of recipe keys (e.g. `model_name_or_path: embedded`), found a list",
    ),
    "negative epochs": (
        _sub(SFT, r"^num_train_epochs: 2", "num_train_epochs: -1"),
        "`num_train_epochs`: expected a number of epochs > 0",
    ),
    "batch of zero": (
        _sub(SFT, r"^per_device_train_batch_size: 2", "per_device_train_batch_size: 0"),
        "`per_device_train_batch_size`: expected an integer >= 1, found 0",
    ),
    "unknown template": (
        _sub(SFT, r"^template: smollm2", "template: smolm2"),
        "`template`: template must be one of",
    ),
    "not a number": (
        _sub(SFT, r"^learning_rate: 2.0e-4", "learning_rate: fast"),
        "`learning_rate`: invalid float value: 'fast'",
    ),
    "a list for a number": (
        _sub(SFT, r"^lora_r: 16", "lora_r: [16]"),
        "`lora_r`: expected a number, found list",
    ),
    "a python tag": (
        SFT + "\nseed: !!python/object/apply:os.getpid []\n",
        "the tag !!python/object/apply:os.getpid is refused",
    ),
}


@pytest.mark.parametrize("case", list(SFT_CASES))
def test_sft_recipe_problems_are_one_line_naming_the_file_and_key(case: str, tmp_path: Path):
    from training.sft import parse_args

    text, says = SFT_CASES[case]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    with pytest.raises(TrainingRecipeError) as refused:
        parse_args(["--config", str(recipe)])
    message = str(refused.value)
    assert message.startswith(f"{recipe}") and says in message and "\n" not in message, message


@pytest.mark.parametrize(
    "method, text, says",
    [
        ("dpo", _sub(DPO, r"^beta:", "betta:"), "unknown key `betta` (did you mean `beta`?)"),
        ("dpo", _sub(DPO, r"^num_train_epochs: .*", "num_train_epochs: 0"), "`num_train_epochs`"),
        ("grpo", _sub(GRPO, r"^num_generations:", "num_generation:"), "unknown key `num_generation`"),
        ("grpo", _sub(GRPO, r"^per_device_train_batch_size: 2", "per_device_train_batch_size: 0"), "batch"),
        ("grpo", _sub(GRPO, r"^  brevity: 0.05", "  brevety: 0.05"), "unknown terms ['brevety']"),
    ],
)
def test_dpo_and_grpo_recipe_problems_are_one_line(method: str, text: str, says: str, tmp_path: Path):
    import importlib

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    with pytest.raises(TrainingRecipeError) as refused:
        importlib.import_module(f"training.{method}").parse_args(["--config", str(recipe)])
    assert str(refused.value).startswith(str(recipe)) and says in str(refused.value), str(refused.value)


@pytest.mark.parametrize(
    "method, recipe, says",
    [
        (
            "sft",
            _sub(SFT, r"path: outputs/demo/dataset", "path: outputs/no/such/export"),
            "`sources[0].path`: outputs/no/such/export does not exist",
        ),
        ("sft", _sub(SFT, r"^sources:", "sources: []\nunused:").replace("unused:\n", "", 1), None),
        (
            "grpo",
            _sub(GRPO, r"run_dir: outputs/demo/run", "run_dir: outputs/no/such/run"),
            "`tasks.run_dir`: outputs/no/such/run is not a folder",
        ),
    ],
)
def test_a_missing_data_source_is_refused_before_any_model_loads(
    method: str, recipe: str, says: str | None, tmp_path: Path, capsys
):
    from training.entrypoint import run_main

    path = tmp_path / "recipe.yaml"
    if says is None:  # no sources at all
        recipe = re.sub(r"^  - path: .*\n    layout: .*\n    weight: .*\n", "", recipe, flags=re.M)
        says = "no training data: `sources:` is empty"
    path.write_text(recipe)
    module = __import__(f"training.{method}", fromlist=["parse_args"])

    def train(*args, **kwargs):
        raise AssertionError("train() ran: a model would have loaded")

    assert run_main(["--config", str(path)], kind=method, parse_args=module.parse_args, train=train) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"training.{method}: {path}") and says in line and "\n" not in line, line


def test_python_m_training_sft_from_a_plain_shell(tmp_path: Path, plain_env: dict[str, str]):
    """As users run it: the entry point in a subprocess prints one line and exits 2."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(_sub(SFT, r"^num_train_epochs: 2", "num_train_epochs: -1"))
    done = subprocess.run(
        [sys.executable, "-m", "training.sft", "--config", str(recipe)],
        capture_output=True, text=True, env=plain_env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"training.sft: {recipe}: `num_train_epochs`: expected a number of epochs > 0 (or max_steps > 0), "
        "found -1; fix it in the recipe"
    )


@pytest.mark.slow
def test_apigen_mt_train_through_accelerate_prints_one_line(tmp_path: Path, plain_env: dict[str, str]):
    """`apigen-mt train` runs `accelerate launch`: the entry point's line, and no launcher traceback."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(_sub(SFT, r"^learning_rate:", "learnin_rate:"))
    apigen_mt = str(Path(sys.executable).parent / "apigen-mt")
    done = subprocess.run(
        [apigen_mt, "train", "--config", str(recipe), "--accelerate-config", "cpu"],
        capture_output=True, text=True, env=plain_env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"training.sft: {recipe}: unknown key `learnin_rate`" in done.stderr
