"""Recipe reference pages: every key of every recipe kind, read from the pydantic models (and, for
training, our dataclasses' ``help``), with its type, default and description.

A key without a description is reported, so ``scripts/docs_reference.py --check`` (and the test that
runs it) fails until the key says what it does.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from types import NoneType, UnionType
from typing import Any

from docs_markdown import BANNER, anchor, code, escape, paragraphs
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

RECIPES_DIR = "reference/recipes"


@dataclass
class Section:
    """One mapping of a recipe: the keys of one model or dataclass at a dotted place."""

    path: str  # dotted keys from the recipe's top ("" for the top)
    source: type
    title: str = ""
    note: str = ""


@dataclass
class RecipeKind:
    slug: str
    title: str
    root: str  # "module:Class"
    intro: str
    # dotted key -> "module:Class" of what a key holds when its annotation does not say (dataclasses
    # holding plain dicts that a model validates later)
    sections: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


KINDS = [
    RecipeKind(
        "datagen",
        "Datagen recipe",
        "datagen.recipe.datagen:DatagenRecipe",
        "Read by `apigen-mt generate`, `apigen-mt blueprints` and `apigen-mt simulate` (`--config FILE`); "
        "examples in `recipes/datagen/`. Phase 1's keys sit at the top, Phase 2's under `simulate:`.",
    ),
    RecipeKind(
        "eval-tau",
        "τ evaluation recipe",
        "evaluation.tau.config:TauConfig",
        "Read by `apigen-mt eval tau --config FILE`; examples in `recipes/eval/tau/`. Every key can also "
        "be given as a flag, and flags override the recipe.",
    ),
    RecipeKind(
        "eval-bfcl",
        "BFCL evaluation recipe",
        "evaluation.bfcl.config:BfclConfig",
        "Read by `apigen-mt eval bfcl --config FILE`; examples in `recipes/eval/bfcl/`. Every key can also "
        "be given as a flag, and flags override the recipe.",
    ),
    RecipeKind(
        "eval-next-action",
        "Next-action evaluation recipe",
        "evaluation.next_action.config:NextActionConfig",
        "Read by `apigen-mt eval next-action --config FILE`; examples in `recipes/eval/next_action/`. "
        "Every key can also be given as a flag, and flags override the recipe.",
    ),
    RecipeKind(
        "sft",
        "SFT recipe",
        "training.arguments:ScriptArguments",
        "Read by `training/sft.py --config FILE` (or `apigen-mt train --config NAME`); examples in "
        "`recipes/sft/`. A training recipe is parsed by TRL's `TrlParser` into three groups: TRL's "
        "`SFTConfig` (learning rate, batch size, `output_dir`, ...) and `ModelConfig` (`model_name_or_path`, "
        "LoRA, ...), documented by TRL, and ours below. A key none of the three knows is an error.",
        sections={"sources[]": "training.mixture:SourceConfig"},
    ),
    RecipeKind(
        "dpo",
        "DPO recipe",
        "training.dpo:DPOScriptArguments",
        "Read by `training/dpo.py --config FILE` (or `apigen-mt train --method dpo`); examples in "
        "`recipes/dpo/`. Parsed like an SFT recipe, with TRL's `DPOConfig` in place of `SFTConfig`; "
        "every source has `layout: preference` (an `apigen-mt export --output-format preference` folder).",
        sections={"sources[]": "training.mixture:SourceConfig"},
    ),
    RecipeKind(
        "grpo",
        "GRPO recipe",
        "training.grpo:GRPOScriptArguments",
        "Read by `training/grpo.py --config FILE` (or `apigen-mt train --method grpo`); examples in "
        "`recipes/grpo/`. Parsed like an SFT recipe, with TRL's `GRPOConfig` (`num_generations`, "
        "`max_completion_length`, `temperature`, ...) in place of `SFTConfig`.",
        sections={
            "tasks": "training.rl.tasks:TaskSource",
            "models.<alias>": "datagen.llm.config:ModelSpec",
            "episode": "datagen.recipe.episode:EpisodeConfig",
        },
        notes={
            "episode": "The policy under training is the agent: of `episode.agent` only `max_tokens` (per "
            "turn) is read; it samples with `GRPOConfig`'s `temperature` and `top_p`.",
        },
    ),
]
# Sections every recipe of the datagen/evaluation kinds shares: documented once, linked from each.
SHARED = {
    "datagen.llm.config:ModelSpec": "models",
    "datagen.recipe.executor:LocalExecutorConfig": "executor-local",
    "datagen.recipe.executor:RayExecutorConfig": "executor-ray",
}


def load(target: str) -> type:
    module, name = target.split(":")
    return getattr(import_module(module), name)


def qualname(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


@dataclass
class Key:
    name: str
    type: str
    default: str
    description: str | None
    nested: list[tuple[str, type]]  # (dotted path, model) of sections this key opens


def _strip_optional(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, UnionType) and NoneType in args:
        rest = [a for a in args if a is not NoneType]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


class TypeWriter:
    """Annotations as readers of YAML see them, with nested models as links to their section."""

    def __init__(self, page: str, path: str) -> None:
        self.page, self.path, self.nested = page, path, []

    def section_link(self, model: type, path: str) -> str:
        shared = SHARED.get(qualname(model))
        if shared is not None:
            where = "" if self.page == "shared" else "shared.md"
            return f"[{model.__name__}]({where}#{shared})"
        variant = type_tag(model)
        path = f"{path}:{variant}" if variant else path  # each variant of a `type:` union has its section
        self.nested.append((path, model))
        return f"[{model.__name__}](#{anchor(path)})"

    def write(self, annotation: Any, path: str) -> str:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if annotation is NoneType:
            return "null"
        if origin is typing.Annotated:
            return self.write(args[0], path)
        if origin in (typing.Union, UnionType):
            return " or ".join(self.write(a, path) for a in args)
        if origin is typing.Literal:
            return " or ".join(json.dumps(a) for a in args)
        if is_model(annotation):
            return self.section_link(annotation, path)
        if origin in (list, tuple, set):
            items = [self.write(a, f"{path}[]") for a in args if a is not Ellipsis]
            return f"{origin.__name__}[{', '.join(items)}]"
        if origin is dict:
            return f"dict[{self.write(args[0], path)}, {self.write(args[1], f'{path}.<key>')}]"
        if annotation is Path:
            return "path"
        if annotation is Any:
            return "any"
        return getattr(annotation, "__name__", str(annotation))


def _default(value: Any) -> str:
    if value is PydanticUndefined or value is dataclasses.MISSING:
        return "required"
    if isinstance(value, BaseModel):
        return "see its keys" if not hasattr(value, "type") else f"`type: {value.type}`"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    return code(json.dumps(value, ensure_ascii=False, default=_plain))


def _plain(value: Any) -> Any:
    """A default's parts JSON cannot write: a model as the keys it sets, anything else as text."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    return str(value)


def _constraints(info: FieldInfo) -> str:
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    found = []
    for item in info.metadata:
        for name, sign in signs.items():
            if getattr(item, name, None) is not None:
                found.append(f"{sign} {getattr(item, name)}")
    return f" ({', '.join(found)})" if found else ""


def model_keys(model: type, path: str, page: str, extra: dict[str, str] | None = None) -> list[Key]:
    """Every key of ``model`` (a pydantic model or a dataclass) at ``path``; ``extra`` names the model
    of a key whose annotation does not (a dataclass field holding a dict that a model validates)."""
    keys = []
    if is_model(model):
        for name, info in model.model_fields.items():
            writer = TypeWriter(page, path)
            child = f"{path}.{name}" if path else name
            kind = writer.write(_strip_optional(info.annotation), child) + _constraints(info)
            default = info.default_factory() if info.default_factory is not None else info.default
            keys.append(Key(name, kind, _default(default), info.description, writer.nested))
        return keys
    hints = typing.get_type_hints(model)
    for item in dataclasses.fields(model):
        writer = TypeWriter(page, path)
        child = f"{path}.{item.name}" if path else item.name
        declared = [(where, target) for where, target in (extra or {}).items()
                    if re.split(r"[.\[]", where)[0] == child]  # fmt: skip
        if declared:
            where, target = declared[0]
            link = writer.section_link(load(target), where)
            kind = f"list[{link}]" if where.endswith("[]") else f"dict[str, {link}]" if "<" in where else link
        else:
            kind = writer.write(_strip_optional(hints[item.name]), child)
        default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
        keys.append(Key(item.name, kind, _default(default), item.metadata.get("help"), writer.nested))
    return keys


def _sections(root: type, extra: dict[str, str], page: str) -> list[Section]:
    """The sections of a recipe in reading order: the top, then each nested mapping under its key."""
    found: list[Section] = []
    queue = [Section("", root)]
    seen: set[str] = set()
    while queue:
        section = queue.pop(0)
        if section.path in seen:
            continue
        seen.add(section.path)
        found.append(section)
        keys = model_keys(section.source, section.path, page, extra)
        queue.extend(Section(path, model) for key in keys for path, model in key.nested)
    return found


def type_tag(model: type) -> str | None:
    """The ``type:`` value that selects ``model`` in a discriminated union (``proposal``, ``executor``)."""
    type_field = getattr(model, "model_fields", {}).get("type")
    if type_field is not None and typing.get_origin(type_field.annotation) is typing.Literal:
        return str(type_field.default)
    return None


def section_title(path: str) -> str:
    """``proposal:grounded`` -> ``proposal (type: grounded)``."""
    return re.sub(r":([\w-]+)", r" (type: \1)", path).replace("<", "&lt;").replace(">", "&gt;")


def defined_by(model: type, name: str) -> str:
    """The class whose own body declares field ``name`` (where its description belongs)."""
    owner = next((c for c in model.__mro__ if name in getattr(c, "__annotations__", {})), model)
    return f"{qualname(owner)}.{name}"


def keys_table(keys: list[Key]) -> list[str]:
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key in keys:
        lines.append(
            f"| `{key.name}` | {key.type.replace('|', '&#124;')} | {key.default.replace('|', '&#124;')} | "
            f"{escape(key.description or '')} |"
        )
    return lines


def recipe_page(kind: RecipeKind) -> tuple[str, list[str]]:
    """The page of one recipe kind and the keys that have no description."""
    root = load(kind.root)
    lines = [BANNER.format(source=f"`{kind.root}`"), "", f"# {kind.title}", "", escape(kind.intro)]
    undocumented: list[str] = []
    sections = _sections(root, kind.sections, kind.slug)
    for section in sections:
        keys = model_keys(section.source, section.path, kind.slug, kind.sections)
        if section.path:
            lines += ["", f"## {section_title(section.path)} {{#{anchor(section.path)}}}"]
        else:
            lines += ["", "## Top-level keys {#top}"]
        doc = (section.source.__doc__ or "").strip()
        if doc and not doc.startswith(section.source.__name__ + "("):
            lines += ["", paragraphs(doc)]
        if section.path in kind.notes:
            lines += ["", escape(kind.notes[section.path])]
        lines += ["", *keys_table(keys)]
        undocumented += [defined_by(section.source, k.name) for k in keys if not k.description]
    return "\n".join(lines) + "\n", undocumented


def shared_page() -> tuple[str, list[str]]:
    lines = [
        BANNER.format(source="`datagen.llm.config.ModelSpec` and `datagen.recipe.executor`"),
        "",
        "# Shared recipe sections",
        "",
        "Every datagen and evaluation recipe declares its models once, by alias, under `models:`, and says "
        "where its jobs run under `executor:`. Roles (the generator, the agent, the simulated user, the "
        "model under test) name an alias and add their own sampling settings.",
    ]
    undocumented: list[str] = []
    for target, slug in SHARED.items():
        model = load(target)
        title = "models.&lt;alias&gt;" if slug == "models" else f"executor (type: {slug.split('-')[1]})"
        lines += ["", f"## {title} {{#{slug}}}", "", paragraphs(model.__doc__ or "")]
        keys = model_keys(model, "", "shared")
        lines += ["", *keys_table(keys)]
        undocumented += [defined_by(model, k.name) for k in keys if not k.description]
    return "\n".join(lines) + "\n", undocumented
