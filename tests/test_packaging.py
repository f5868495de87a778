"""What a pip install gets: a wheel with the recipes, templates and cards inside, and a training
entry (`apigen-mt train`, `python -m training.sft`) that finds recipes by name without a checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel . --no-deps` on a copy of the working tree (what git would commit), so no build
    output of the checkout (build/, *.egg-info) can leak into it."""
    source = tmp_path_factory.mktemp("source")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src, dst = ROOT / name, source / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("apigen_mt-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return target


def test_the_wheel_carries_recipes_templates_and_card_templates(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    recipes = {
        f"training/recipes/{p.relative_to(ROOT / 'recipes').as_posix()}"
        for p in (ROOT / "recipes").rglob("*.yaml")
    }
    assert recipes and recipes <= names, sorted(recipes - names)
    templates = {f"training/templates/{p.name}" for p in (ROOT / "training" / "templates").glob("*.jinja")}
    assert templates and templates <= names
    for name in (
        "training/model_card.md.jinja",
        "datagen/export/card_template.md",
        "datagen/export/license_template.md",
        "datagen/llm/templates/smollm2.jinja",
    ):
        assert name in names, name
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "train = training.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def _plain(installed: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A subprocess that sees the installed wheel first and no checkout: run from elsewhere, with
    only the wheel's folder on PYTHONPATH (the dependencies come from the interpreter's site)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "APIGEN"))}
    env["PYTHONPATH"] = str(installed)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


def test_train_finds_packaged_recipes_by_name_and_launches_the_packaged_entry(
    installed: Path, tmp_path: Path
):
    done = _plain(
        installed,
        "-m", "datagen.cli", "train", "--config", "qwen2.5-7b/full", "--accelerate-config", "zero3",
        "--dry-run", "--max_steps", "5", "--output_dir", "out",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    command = done.stdout.strip()
    assert f"--config_file {installed}/training/recipes/accelerate/zero3.yaml" in command
    assert f"-m training.sft --config {installed}/training/recipes/sft/qwen2.5-7b/full.yaml" in command
    assert command.endswith("--max_steps 5 --output_dir out") and "accelerate.commands.launch" in command


def test_train_help_and_list_from_a_plain_environment(installed: Path, tmp_path: Path):
    code = (
        "import sys\nfrom datagen.cli import main\ntry:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'trl', 'transformers', 'datasets') if m in sys.modules))\n"
    )
    done = _plain(installed, "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--accelerate-config" in done.stdout and "HEAVY []" in done.stdout
    listed = _plain(installed, "-m", "datagen.cli", "train", "--list", cwd=tmp_path)
    assert (
        "qwen2.5-7b/full" in listed.stdout
        and "smollm2-135m/cpu_lora" in listed.stdout
        and "zero3" in listed.stdout
    )


def test_an_unknown_recipe_name_is_one_line_naming_the_packaged_ones(installed: Path, tmp_path: Path):
    for args in (
        ["-m", "datagen.cli", "train", "--config", "qwen9/full"],
        ["-m", "training.sft", "--config", "qwen9/full"],
    ):
        done = _plain(installed, *args, cwd=tmp_path)
        assert done.returncode == 2
        assert "no sft recipe 'qwen9/full'" in done.stderr and "qwen2.5-7b/full" in done.stderr
        assert "Traceback" not in done.stderr


def test_training_sft_parses_a_recipe_given_by_name():
    """The SFT entry's own parser (TrlParser) on a name: what `python -m training.sft --config NAME` does."""
    from training.recipe_files import resolve_config_flag
    from training.sft import parse_args

    argv = resolve_config_flag(["--config=smollm2-135m/cpu_lora", "--max_steps", "2"])
    recipe = Path(argv[0].removeprefix("--config="))
    assert recipe.resolve() == (ROOT / "recipes" / "sft" / "smollm2-135m" / "cpu_lora.yaml").resolve()
    script_args, training_args, model_args = parse_args(["--config", str(recipe), *argv[1:]])
    assert (model_args.model_name_or_path, training_args.max_steps, script_args.template) == (
        "embedded",
        2,
        "smollm2",
    )


def test_recipe_names_resolve_in_the_checkout_too():
    from training.recipe_files import find_recipe

    expected = ROOT / "recipes" / "sft" / "qwen2.5-7b" / "full.yaml"
    for spelling in (
        "qwen2.5-7b/full",
        "sft/qwen2.5-7b/full",
        "qwen2.5-7b/full.yaml",
        "recipes/sft/qwen2.5-7b/full.yaml",
    ):
        assert find_recipe(spelling, "sft").resolve() == expected.resolve()
    assert (
        find_recipe("cpu", "accelerate").resolve() == (ROOT / "recipes" / "accelerate" / "cpu.yaml").resolve()
    )


@pytest.mark.slow
def test_apigen_mt_train_runs_accelerate_on_an_export(tmp_path: Path, embedded_model: Path):
    """The whole path a pip user takes: export a run, `apigen-mt train` it by recipe name (accelerate
    launch -m training.sft), and the cards name the base model by Hub id with the right library."""
    import yaml
    from exportrun import write_run

    from datagen.export import export_run

    export_run(write_run(tmp_path / "run", count=2), tmp_path / "data", fmt="hf", test=0.0)
    apigen_mt = Path(sys.executable).with_name("apigen-mt")
    command = [
        str(apigen_mt), "train", "--config", "smollm2-135m/cpu_lora", "--accelerate-config", "cpu",
        "--dataset_path", str(tmp_path / "data"), "--output_dir", str(tmp_path / "out"),
        "--max_steps", "1", "--per_device_train_batch_size", "1", "--save_strategy", "no",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    adapter = yaml.safe_load((tmp_path / "out" / "README.md").read_text().split("---")[1])
    merged = yaml.safe_load((tmp_path / "out" / "merged" / "README.md").read_text().split("---")[1])
    assert adapter["base_model"] == merged["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert (adapter["library_name"], merged["library_name"]) == ("peft", "transformers")
    report = json.loads((tmp_path / "out" / "data_report.json").read_text())
    assert report["sources"][0]["rows_converted"] == 2
