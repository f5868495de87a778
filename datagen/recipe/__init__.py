"""Recipes: YAML mapped onto typed models, the one loader, and the one error type the CLIs print.

Every recipe declares its models once, by alias, and every role names an alias plus its own sampling
settings::

    models:
      teacher: {model: Qwen/Qwen2.5-72B-Instruct, backend: openai, base_urls: [http://localhost:8000/v1]}
      human: {model: meta-llama/Llama-3.3-70B-Instruct, backend: openai, base_urls: [http://localhost:8001/v1]}
    generator: {model: teacher, temperature: 0.9, max_tokens: 2048}
    simulate:
      user: {model: human, best_of_n: 4}

One alias is one model client (one engine for the vllm backend), so two roles that name the same
alias share it, and a one-field difference between two roles' settings can no longer start a second
engine. Unknown keys are errors everywhere. :func:`load_recipe` turns every problem (a missing file,
YAML syntax, a file whose YAML aliases expand past bounds (:mod:`apigen_rules.yamlsafe`), a wrong key or
value, an alias nobody declared) into a :class:`RecipeError` whose text
is one line naming the file, the key, what was expected and what was found; the CLIs print it and
exit with code 2 before any engine starts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from apigen_rules.errors import InputError
from apigen_rules.redact import REDACTED, is_secret_key, redact_config
from apigen_rules.yamlsafe import YamlError, read_yaml_mapping
from datagen.llm.config import EMBEDDED, ModelSpec
from datagen.recipe.executor import ExecutorConfig, LocalExecutorConfig

R = TypeVar("R", bound="Recipe")


class RecipeError(InputError, ValueError):
    """A recipe, or a flag that overrides it, that cannot run. Its text is one line for people."""


class Strict(BaseModel):
    """The base of every recipe section: unknown keys are errors."""

    # A ValidationError's own text never shows values (they may be credentials); the loader shows
    # them itself, redacted (:func:`explain`).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class Role(Strict):
    """What one role samples: a model alias from the recipe's ``models:``, plus its own settings."""

    model: str = Field(
        "", description="an alias declared under the recipe's `models:` (default: the recipe's only model)"
    )
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(512, gt=0)

    def aliases(self) -> list[str]:
        """Every model alias this role uses (a role with a judge names two)."""
        return [self.model]


def _default_models() -> dict[str, ModelSpec]:
    return {EMBEDDED: ModelSpec()}


class Recipe(Strict):
    """The part every recipe shares: the models, declared once by alias, and where jobs run."""

    models: dict[str, ModelSpec] = Field(
        default_factory=_default_models,
        description="alias -> model; roles name an alias (default: the embedded model, as `embedded`)",
    )
    executor: ExecutorConfig = Field(
        default_factory=LocalExecutorConfig,
        description="where the jobs run: {type: local} (this process) or {type: ray, workers: N, ...} "
        "(datagen.recipe.executor); results are the same, so a run may resume under either",
    )

    @model_validator(mode="after")
    def _roles_name_declared_models(self) -> Recipe:
        resolve_role_models(self, self.models)
        return self

    def used_specs(self, section: Any = None) -> dict[str, ModelSpec]:
        """Alias -> spec of the models some role names (what an executor's workers build); of the
        roles inside ``section`` only (e.g. a datagen recipe's ``simulate:``) when one is given."""
        used = {
            alias for _, role in iter_roles(self if section is None else section) for alias in role.aliases()
        }
        return {alias: spec for alias, spec in self.models.items() if alias in used}

    def used_aliases(self) -> list[str]:
        """The aliases some role names, in declaration order (only these get an engine)."""
        used = {alias for _, role in iter_roles(self) for alias in role.aliases()}
        return [alias for alias in self.models if alias in used]


def iter_roles(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every part of a recipe that names model aliases (a :class:`Role`, or any section with an
    ``aliases()`` method such as a committee of judges), with its dotted key, however deeply nested."""
    if isinstance(value, BaseModel) and callable(getattr(value, "aliases", None)):
        yield where, value
    if isinstance(value, BaseModel) and not isinstance(value, Role):
        for name in type(value).model_fields:
            yield from iter_roles(getattr(value, name), f"{where}.{name}" if where else name)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from iter_roles(item, f"{where}[{index}]")


def resolve_role_models(section: Any, models: Mapping[str, Any], where: str = "") -> None:
    """Checks that every role inside ``section`` (at dotted key ``where``) names a model alias that
    ``models`` declares; a :class:`Role` that names none gets the only alias declared. Raises
    ``ValueError`` naming the role's key, what it named and what is declared. Every recipe runs this
    on itself; a recipe read by another parser (GRPO's, through TRL) runs it on its roles."""
    for key, role in iter_roles(section, where):
        if isinstance(role, Role) and not role.model and role.aliases():  # a scripted user names none
            if len(models) != 1:
                raise ValueError(
                    f"{key} names no model and `models:` declares {sorted(models)}; "
                    "name one of them with `model:`"
                )
            role.model = next(iter(models))
        for alias in role.aliases():
            if alias not in models:
                raise ValueError(
                    f"{key} names model {alias!r}, which `models:` does not declare; declared: "
                    f"{sorted(models)}. Add it under `models:` or name one of those"
                )


def set_override(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Sets ``a.b.c`` in nested mappings, creating the mappings on the way (flags over a recipe)."""
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise RecipeError(f"cannot set {dotted}: expected `{part}` to be a mapping, found {child!r}")
        node = child
    node[last] = value


def _shown(value: Any, key: str) -> str:
    """A found value for an error line: credentials (by key, inside mappings, in URLs) redacted, cut short."""
    if is_secret_key(key):
        return REDACTED
    text = repr(redact_config(value))
    return text if len(text) <= 80 else text[:77] + "..."


def explain(exc: ValidationError, source: str) -> str:
    """The first problem of a validation error as one line (the rest are counted, not listed)."""
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "the recipe"
    key = str(first["loc"][-1]) if first["loc"] else ""
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden" and key in ModelSpec.model_fields:
        line = (
            f"{source}: unknown key `{location}`: model settings such as `{key}` belong under `models:` "
            "(declared once per alias); a role names the alias, e.g. `model: teacher`"
        )
    elif first["type"] == "extra_forbidden":
        line = f"{source}: unknown key `{location}` (found {_shown(first.get('input'), key)}); remove it or check its spelling"
    elif first["type"] == "missing":
        line = f"{source}: missing key `{location}`; add it"
    elif not first["loc"] or first["type"] == "value_error":  # a rule over several keys: its message says all
        line = f"{source}: {'' if not first['loc'] else f'`{location}`: '}{message}"
    else:
        line = f"{source}: `{location}`: {message} (found {_shown(first.get('input'), key)})"
    more = exc.error_count() - 1
    return line + (f" [and {more} more problem{'s' if more > 1 else ''}]" if more else "")


def validate_recipe(data: Any, cls: type[R], source: str) -> R:
    """``data`` (a parsed recipe) as ``cls``; any problem is a :class:`RecipeError`."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: expected a YAML mapping of recipe keys, found {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(explain(exc, source)) from None


def read_recipe_data(path: str | Path) -> dict[str, Any]:
    """The recipe file as plain data (its own errors become :class:`RecipeError`)."""
    try:
        return read_yaml_mapping(
            path, missing_hint="pass the path of one, e.g. recipes/datagen/demo.yaml", empty_ok=True
        )
    except YamlError as exc:
        raise RecipeError(str(exc)) from None


def load_recipe(path: str | Path, cls: type[R], overrides: dict[str, Any] | None = None) -> R:
    """Reads ``path`` as ``cls``; ``overrides`` (dotted keys, from flags) are applied first."""
    data = read_recipe_data(path)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            set_override(data, dotted, value)
    return validate_recipe(data, cls, str(path))
