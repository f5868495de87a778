"""Every file under recipes/ is parsed by the parser of the command that runs it (so none can rot), and
the recipe contract holds: models declared once by alias, one model per alias, unknown keys refused,
every problem one line that names the file and the key."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import pytest

from datagen.llm import ModelSpec
from datagen.llm.pool import ModelPool
from datagen.recipe import RecipeError, load_recipe
from datagen.recipe.datagen import DatagenRecipe, load_datagen_recipe
from evaluation.bfcl.config import BfclConfig
from evaluation.next_action.config import NextActionConfig
from evaluation.tau.config import TauConfig

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*") if p.is_file())

# Folder -> what parses its recipes; tests/test_training_recipes.py parses the training ones
# (sft/, dpo/, grpo/) through their entry points and accelerate/ as DeepSpeed configs.
PARSERS = {
    "datagen": "datagen",
    "eval/tau": "tau",
    "eval/bfcl": "bfcl",
    "eval/next_action": "next_action",
    "sft": "training",
    "dpo": "training",
    "grpo": "training",
    "accelerate": "accelerate",
}


def _kind(path: Path) -> str | None:
    relative = path.relative_to(ROOT / "recipes").parent.as_posix()
    return next(
        (kind for folder, kind in PARSERS.items() if relative == folder or relative.startswith(folder + "/")),
        None,
    )


def test_every_recipe_file_has_a_parser() -> None:
    orphans = [str(p.relative_to(ROOT)) for p in RECIPES if _kind(p) is None]
    assert orphans == [], f"recipes no command parses (add their parser to this test): {orphans}"
    assert all(p.suffix == ".yaml" for p in RECIPES)
    for path in RECIPES:
        assert path.read_text(encoding="utf-8").startswith("# "), (
            f"{path.relative_to(ROOT)} must start with a comment giving the command that runs it"
        )


@pytest.mark.parametrize(
    "recipe",
    [p for p in RECIPES if _kind(p) in ("datagen", "tau", "bfcl", "next_action")],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_recipe_parses_through_its_command_and_names_the_command(recipe: Path) -> None:
    command = shlex.split(recipe.read_text(encoding="utf-8").splitlines()[0].removeprefix("# "))
    assert command[:1] == ["apigen-mt"] and command[command.index("--config") + 1] == str(
        recipe.relative_to(ROOT)
    )
    if _kind(recipe) == "datagen":
        config = load_datagen_recipe(recipe)
        assert config.phase2().attempts >= 1
    else:
        parser = {"tau": TauConfig, "bfcl": BfclConfig, "next_action": NextActionConfig}[_kind(recipe)]
        config = load_recipe(recipe, parser)
    assert config.used_aliases() == [a for a in config.models if a in config.used_aliases()]
    unused = set(config.models) - set(config.used_aliases())
    assert not unused, f"{recipe.name} declares models no role uses: {unused}"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: r\nenv: retail\ngenerator: {model: teacher}\n", "generator names model 'teacher'"),
        ("name: r\nenv: retail\ngenerator: {model: embedded, backend: vllm}\n", "belong under `models:`"),
        ("name: r\nenv: retail\nnum_tasks: 0\n", "`num_tasks`"),
        ("name: r\nenv: retail\nconcurrency: -5\n", "`concurrency`"),
        ("name: ../../etc\nenv: retail\n", "expected a run name"),
        ("name: /abs\nenv: retail\n", "expected a run name"),
        ("name: r\nenv: retail\ncommittee: {judges: [nobody]}\n", "committee names model 'nobody'"),
        ("name: r\nenv: retail\nsimulate: {user: {judge: critic}}\n", "simulate.user names model 'critic'"),
        ("name: r\nenv: retail\nsimulate: {agnet: {}}\n", "unknown key `simulate.agnet`"),
        ("name: r\nenv: [retail\n", "not valid YAML at line 3"),
        ("- a list\n", "expected a YAML mapping"),
        ("env: retail\n", "missing key `name`"),
    ],
)
def test_recipe_problems_are_one_line_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(RecipeError) as caught:
        load_datagen_recipe(_write(tmp_path, text))
    message = str(caught.value)
    assert expected in message and "\n" not in message and str(tmp_path / "recipe.yaml") in message


def test_a_missing_recipe_says_so(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no recipe at .*nowhere.yaml"):
        load_datagen_recipe(tmp_path / "nowhere.yaml")


def test_credential_values_never_reach_the_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "name: r\nenv: retail\nmodels: {t: {model: m, api_key: sk-live-123}}\ngenerator: {model: t}\n",
    )
    with pytest.raises(RecipeError) as caught:
        load_datagen_recipe(path)
    assert "models.t.api_key" in str(caught.value) and "sk-live-123" not in str(caught.value)


def test_overrides_are_dotted_keys_over_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: r\nenv: retail\nsimulate: {attempts: 2}\n")
    config = load_datagen_recipe(path, {"num_tasks": 3, "simulate.attempts": 5, "simulate.concurrency": None})
    assert config.num_tasks == 3 and config.phase2().attempts == 5 and config.phase2().concurrency == 64


def test_blueprints_alone_need_no_simulate_section_but_generate_does() -> None:
    config = DatagenRecipe(name="r", env="retail")
    with pytest.raises(RecipeError, match="no `simulate:` section"):
        config.phase2()


class _Built:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec, self.name, self.closed = spec, spec.label, False

    async def aclose(self) -> None:
        self.closed = True


def test_one_model_per_alias_and_one_for_aliases_with_the_same_spec(monkeypatch, caplog) -> None:
    import datagen.llm.pool as pool_module

    built: list[_Built] = []

    def build(spec: ModelSpec) -> _Built:
        built.append(_Built(spec))
        return built[-1]

    monkeypatch.setattr(pool_module, "build_chat_model", build)
    smol = ModelSpec(model="embedded", max_model_len=8192)
    pool = ModelPool(
        {"generator": smol, "agent": smol, "longer": smol.model_copy(update={"max_model_len": 4096})}
    )
    with caplog.at_level(logging.WARNING):
        assert pool.get("generator") is pool.get("agent") is pool.get("generator")
        assert pool.get("longer") is not pool.get("agent")
    assert len(built) == 2
    assert "same weights" in caplog.text and "max_model_len" in caplog.text
    assert sorted(pool.sharing().values()) == [["generator", "agent"], ["longer"]]
    with pytest.raises(KeyError, match="no model alias 'judge'"):
        pool.get("judge")


def test_the_demo_recipe_starts_one_model_for_every_role(monkeypatch) -> None:
    """demo.yaml's roles all name one alias: a single engine serves Phase 1 and Phase 2."""
    config = load_datagen_recipe(ROOT / "recipes" / "datagen" / "demo.yaml")
    assert len(ModelPool({a: config.models[a] for a in config.used_aliases()}).sharing()) == 1


def test_a_role_without_a_model_takes_the_recipes_only_model(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "name: r\nenv: retail\nmodels: {m: {model: embedded}}\nsimulate: {agent: {max_tokens: 8}}\n"
    )
    config = load_datagen_recipe(path)
    assert config.generator.model == config.phase2().agent.model == config.phase2().user.model == "m"
    two = _write(tmp_path, "name: r\nenv: retail\nmodels: {a: {model: x}, b: {model: y}}\n")
    with pytest.raises(RecipeError, match="generator names no model"):
        load_datagen_recipe(two)


def test_a_found_mapping_is_shown_redacted(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "name: r\nenv: retail\nextra_models: {t: {api_key: sk-live-9, base_urls: ['http://u:pw9@h/v1']}}\n",
    )
    with pytest.raises(RecipeError) as caught:
        load_datagen_recipe(path)
    assert (
        "extra_models" in str(caught.value)
        and "sk-live-9" not in str(caught.value)
        and "pw9" not in str(caught.value)
    )
