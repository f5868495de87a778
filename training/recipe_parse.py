"""A training recipe (YAML + flags) onto our script arguments, TRL's ``<Method>Config`` and
``ModelConfig``, with every problem one line that names the file, the key and the fix.

TRL's own ``TrlParser.parse_args_and_config`` reads the file with ``yaml.safe_load`` (no bound on
aliases), raises a parser traceback on bad syntax, reports a misspelt key as ``--key value`` strings
and lets values through that only fail once the model is loaded. Here the file is read with
:func:`apigen_rules.yamlsafe.load_yaml`, unknown keys are named with the closest known one, argparse's
own errors (a value of the wrong type) name the recipe key instead of printing the usage, and
values that cannot train (no epochs, a batch of 0, an unknown template; and, before any model loads,
no data: :func:`check_data`) are refused.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from apigen_rules.redact import redact_text


class TrainingRecipeError(ValueError):
    """A training recipe or flag that cannot run; its text is the one line to print."""


def take_config_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the value of ``--config`` / ``--config=``, the other arguments)."""
    rest: list[str] = []
    path = None
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--config" and index + 1 < len(argv):
            path, index = argv[index + 1], index + 2
            continue
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        index += 1
    return path, rest


def read_training_recipe(path: str) -> dict[str, Any]:
    """The recipe file as a mapping of keys (bounded YAML); its ``env:`` section is applied."""
    from apigen_rules.yamlsafe import YamlError, read_yaml_mapping

    try:
        data = read_yaml_mapping(
            path,
            missing_hint="pass the path of a YAML recipe or a packaged name",
            example="model_name_or_path: embedded",
        )
    except YamlError as exc:
        raise TrainingRecipeError(str(exc)) from None
    env = data.pop("env", None) or {}
    if not isinstance(env, dict):
        raise TrainingRecipeError(
            f"{path}: `env`: expected a mapping of environment variables, found {type(env).__name__}"
        )
    for name, value in env.items():
        os.environ[str(name)] = str(value)
    return data


def apply_recipe(parser: argparse.ArgumentParser, data: dict[str, Any], path: str) -> None:
    """Sets the recipe's values as the parser's defaults; an unknown key or a value of the wrong
    kind is a :class:`TrainingRecipeError` naming the key."""
    actions = {action.dest: action for action in parser._actions if action.dest != "help"}
    for key, value in data.items():
        if key not in actions:
            close = difflib.get_close_matches(str(key), list(actions), n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise TrainingRecipeError(
                f"{path}: unknown key `{key}`{hint}; remove it or check its spelling (--help lists every key)"
            )
        kind = actions[key].type
        if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float | str)):
            raise TrainingRecipeError(
                f"{path}: `{key}`: expected a number, found {type(value).__name__} {value!r}"
            )
    parser.set_defaults(**data)
    for action in parser._actions:
        if action.dest in data:
            action.required = False


def raise_parser_error(
    parser: argparse.ArgumentParser, from_file: dict[str, Any], path: str | None, argv: list[str]
):
    """argparse's ``error`` for this parser: a line naming the recipe key (or the flag), not the usage."""

    def error(message: str) -> NoReturn:
        flag = message.removeprefix("argument ").split("/", 1)[0].split(":", 1)[0].strip()
        key = flag.lstrip("-").replace("-", "_")
        on_command_line = any(arg.split("=", 1)[0] in (f"--{key}", flag) for arg in argv)
        if path is not None and key in from_file and not on_command_line:
            detail = message.split(":", 1)[1].strip() if ":" in message else message
            raise TrainingRecipeError(f"{path}: `{key}`: {detail}; fix the value in the recipe")
        raise TrainingRecipeError(f"{parser.prog}: {message}; see --help")

    return error


def parse_training_recipe(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[Any, ...]:
    """``argv`` (``--config FILE`` and flags) through ``parser`` (a TRL parser of three dataclasses)."""
    path, rest = take_config_flag(list(sys.argv[1:] if argv is None else argv))
    data = read_training_recipe(path) if path is not None else {}
    apply_recipe(parser, data, path or parser.prog)
    parser.error = raise_parser_error(parser, data, path, rest)  # type: ignore[method-assign]
    source = path or parser.prog
    try:
        groups = parser.parse_args_into_dataclasses(args=rest, look_for_args_file=False)
    except TrainingRecipeError:
        raise
    except (ValueError, TypeError) as exc:  # a dataclass's __post_init__ (ours, TRL's), pydantic's too
        raise TrainingRecipeError(f"{source}: {one_line(exc)}") from None
    check_values(*groups, source=source)
    return tuple(groups)


def one_line(exc: BaseException) -> str:
    """An exception's message as one line, credentials redacted (a pydantic error: its first problem)."""
    errors = getattr(exc, "errors", None)
    if callable(errors) and getattr(exc, "error_count", None):
        first = exc.errors()[0]  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in first["loc"])
        text = f"{where}: {first['msg']}" if where else first["msg"]
    else:
        text = " ".join(str(exc).split())
    return redact_text(text)


def _local_looking(path: str) -> bool:
    """Whether a source path that does not exist was meant as a local file or folder (a Hub dataset
    id is ``name`` or ``org/name``, and its ``org`` is no folder here)."""
    if path.startswith(("/", "./", "../", "~")) or path.endswith((".json", ".jsonl", ".parquet")):
        return True
    parts = path.split("/")
    return len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir())


def check_values(script_args: Any, training_args: Any, model_args: Any, *, source: str) -> None:
    """Values that parse but cannot train, refused before any model or dataset loads."""

    def refuse(key: str, expected: str, found: Any) -> NoReturn:
        raise TrainingRecipeError(
            f"{source}: `{key}`: expected {expected}, found {found!r}; fix it in the recipe"
        )

    if (training_args.max_steps or 0) <= 0 and not training_args.num_train_epochs > 0:
        refuse(
            "num_train_epochs", "a number of epochs > 0 (or max_steps > 0)", training_args.num_train_epochs
        )
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps", "per_device_eval_batch_size"):
        if getattr(training_args, key) < 1:
            refuse(key, "an integer >= 1", getattr(training_args, key))
    if training_args.learning_rate < 0:
        refuse("learning_rate", "a rate >= 0", training_args.learning_rate)
    max_length = getattr(training_args, "max_length", None)
    if max_length is not None and max_length < 1:
        refuse("max_length", "a number of tokens >= 1 (or null: no limit)", max_length)
    if not model_args.model_name_or_path:
        refuse(
            "model_name_or_path",
            "a Hub id, a local model folder or `embedded`",
            model_args.model_name_or_path,
        )
    _check_template(script_args, source)


def _check_template(script_args: Any, source: str) -> None:
    from training.chat_templates import resolve_template

    try:
        resolve_template(script_args.template, script_args.tool_format)
    except ValueError as exc:
        raise TrainingRecipeError(f"{source}: `template`: {one_line(exc)}") from None


def check_data(script_args: Any, source: str) -> None:
    """The data a recipe names is there: a source that is neither a local file or folder nor a Hub
    dataset id, or a GRPO task folder that does not exist, is refused before any model loads (run
    by the entry points after parsing; parsing alone, as the tests and model cards do, needs no data)."""
    sources = getattr(script_args, "sources", None)
    if sources is not None:
        if not sources:
            raise TrainingRecipeError(
                f"{source}: no training data: `sources:` is empty; add one (path + layout) or pass --dataset_path DIR"
            )
        for index, data in enumerate(sources):
            if not Path(data.path).exists() and _local_looking(data.path):
                raise TrainingRecipeError(
                    f"{source}: `sources[{index}].path`: {redact_text(data.path)} does not exist here (and is no "
                    "Hub dataset id); run `apigen-mt export` first or fix the path"
                )
    tasks = getattr(script_args, "task_source", None)
    for key in ("run_dir", "export_dir"):
        folder = getattr(tasks, key, None)
        if folder is not None and not Path(folder).is_dir():
            raise TrainingRecipeError(
                f"{source}: `tasks.{key}`: {redact_text(folder)} is not a folder here; run `apigen-mt generate` "
                "(or export) first or fix the path"
            )
