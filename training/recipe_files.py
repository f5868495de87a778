"""Recipes by name: `--config qwen2.5-7b/full` as well as `--config recipes/sft/qwen2.5-7b/full.yaml`.

The recipes ship inside the package (``training/recipes`` links to the repository's ``recipes/``
folder, and the wheel carries its YAML files), so an installed copy finds them without a checkout.
A path that exists always wins over a name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

Kind = Literal["sft", "dpo", "grpo", "accelerate"]


def recipes_root() -> Path:
    """The packaged ``recipes`` folder (the repository's ``recipes/`` in a checkout)."""
    return Path(str(resources.files("training").joinpath("recipes")))


def recipe_names(kind: Kind) -> list[str]:
    folder = recipes_root() / kind
    return sorted(p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.yaml"))


def find_recipe(name_or_path: str, kind: Kind) -> Path:
    """A recipe file: ``name_or_path`` if it is a file, else the packaged ``<kind>/<name>.yaml``
    (``recipes/``, ``<kind>/`` and ``.yaml`` may be spelled out or left off)."""
    if Path(name_or_path).is_file():
        return Path(name_or_path)
    name = name_or_path.removeprefix("recipes/").removeprefix(f"{kind}/").removesuffix(".yaml")
    candidate = recipes_root() / kind / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(
        f"no {kind} recipe {name_or_path!r}: it is not a file, and the packaged {kind} recipes are "
        f"{', '.join(recipe_names(kind)) or '(none)'}; pass one of those names or a path to a YAML file."
    )


def resolve_config_flag(argv: list[str], kind: Kind = "sft") -> list[str]:
    """``argv`` with the value of ``--config`` (``--config X`` or ``--config=X``) made a file path."""
    out = list(argv)
    for index, arg in enumerate(out):
        if arg == "--config" and index + 1 < len(out):
            out[index + 1] = str(find_recipe(out[index + 1], kind))
        elif arg.startswith("--config="):
            out[index] = "--config=" + str(find_recipe(arg.split("=", 1)[1], kind))
    return out
