"""YAML a user wrote is read within bounds (apigen_rules/yamlsafe.py, one loader for every package):
a "billion laughs" file, a self-referencing alias, deep nesting or a Python tag is refused in one
line naming the file, quickly, by every command that takes `--config` (datagen recipes, evaluation
recipes, the training entry points), before anything expands it."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runs import APIGEN_MT, ROOT

from apigen_rules.yamlsafe import MAX_ALIASES, YamlError, load_yaml


def laughs(under: str = "bogus") -> str:
    """Nine levels of nine aliases: 9**9 (387 million) strings once expanded, in 700 bytes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + f"\n{under}: *i\n"


def test_a_billion_laughs_is_refused_before_it_expands():
    started = time.perf_counter()
    with pytest.raises(YamlError) as refused:
        load_yaml(laughs(), "r.yaml")
    assert time.perf_counter() - started < 5
    assert str(refused.value).startswith("r.yaml: its aliases") and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "text, says",
    [
        ("a: &a [*a]\n", "contains it"),
        ("a: " + "[" * 150 + "]" * 150 + "\n", "nested more than"),
        ("".join("  " * i + f"k{i}:\n" for i in range(150)), "nested more than"),
        ("a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n", "aliases"),
        ('a: !!python/object/apply:os.system ["echo pwned"]\n', "!!python/object/apply:os.system is refused"),
        ("a: !!python/name:os.system\n", "is refused"),
        ("a: [1,\n", "not valid YAML at line 2"),
    ],
)
def test_unbounded_or_unsafe_yaml_is_one_line(text: str, says: str):
    with pytest.raises(YamlError) as refused:
        load_yaml(text, "r.yaml")
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_ordinary_anchors_and_merges_still_load():
    text = "base: &b {temperature: 0.7, max_tokens: 64}\nagent: {<<: *b, model: m}\nuser: *b\n"
    assert load_yaml(text, "r.yaml") == {
        "base": {"temperature": 0.7, "max_tokens": 64},
        "agent": {"temperature": 0.7, "max_tokens": 64, "model": "m"},
        "user": {"temperature": 0.7, "max_tokens": 64},
    }
    assert load_yaml("a: '" + "x" * 1_000_000 + "'\n", "r.yaml")["a"] == "x" * 1_000_000  # big, no alias


def _capped() -> None:
    """The child may not take the machine down if the bound is ever lost: 4 GiB of address space."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, preexec_fn=_capped
    )


@pytest.mark.parametrize(
    "command, under",
    [
        (["generate", "--out", "{tmp}/run"], "bogus"),  # an unknown key: its value was redacted whole
        (["blueprints", "--out", "{tmp}/run"], "engine_args"),  # the model pool's key expanded it
        (["eval", "tau", "--out", "{tmp}/tau"], "bogus"),
        (["eval", "next-action", "--out", "{tmp}/na"], "bogus"),
    ],
    ids=["generate", "blueprints-engine-args", "eval-tau", "eval-next-action"],
)
def test_every_command_refuses_a_billion_laughs_recipe(
    command: list[str], under: str, tmp_path: Path, plain_env: dict[str, str]
):
    recipe = tmp_path / "laughs.yaml"
    demo = (ROOT / "recipes" / "datagen" / "demo.yaml").read_text()
    if under == "engine_args":
        text = laughs("x").replace("x: *i\n", "") + demo.replace(
            "max_model_len: 8192}", "max_model_len: 8192, engine_args: {k: *i}}"
        )
    else:
        text = laughs() if command[0] == "eval" else laughs() + demo
    recipe.write_text(text)
    argv = [part.replace("{tmp}", str(tmp_path)) for part in command]
    started = time.perf_counter()
    done = _run([APIGEN_MT, *argv, "--config", str(recipe)], plain_env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"apigen-mt {' '.join(command[:2]) if command[0] == 'eval' else command[0]}: {recipe}: its aliases "
        "(*name) expand past 1,000,000 values and characters beyond what the file spells out (a 'billion "
        "laughs' file?); write the values out"
    ]
    assert time.perf_counter() - started < 100


def test_a_training_entry_point_refuses_a_billion_laughs_recipe(tmp_path: Path, plain_env: dict[str, str]):
    recipe = tmp_path / "laughs.yaml"
    recipe.write_text(laughs("lora_target_modules"))
    done = _run([sys.executable, "-m", "training.sft", "--config", str(recipe)], plain_env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"training.sft: {recipe}: its aliases")
    assert "Traceback" not in done.stderr
