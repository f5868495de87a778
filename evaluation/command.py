"""The command layer every evaluation shares (``eval tau``, ``eval bfcl``, ``eval next-action``, the
re-scoring commands, and any later one), so that a command holds only what is its own.

- **Flags**: the recipe (:func:`add_recipe_flag`), the model under test (:func:`add_model_flags`), the
  output folder with ``--resume``, ``--json`` and ``--quiet`` (:func:`add_output_flags`).
- **Recipe + flags**: merged into plain data by one function (:func:`recipe_with_flags`), then
  validated onto the command's typed config by ``datagen.recipe.validate_recipe``.
- **Output folder and resume**: ``--out`` is checked before any work starts
  (:func:`output_run`: ``datagen.rundir.check_output_folder``); the run is then opened through the
  run directory's one guard, which refuses what ``--resume`` does not allow and saves the run's
  settings (``datagen.rundir.RunDir.open_for_writing``; :func:`settings_of` gives the settings).
- **Progress**: one status line (:class:`RunProgress`).
- **Result**: printed as text or as one JSON line (:func:`print_result`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from apigen_rules.errors import UsageError
from datagen.cli_flags import add_quiet_flag, add_tool_format_flag

Run = TypeVar("Run")

BACKENDS = ("vllm", "openai", "transformers")


def add_recipe_flag(parser: argparse.ArgumentParser, example: str) -> None:
    """``--config RECIPE``: the evaluation recipe the other flags override."""
    parser.add_argument("--config", type=Path, default=None, help=f"evaluation recipe, e.g. {example}")


def add_model_flags(
    parser: argparse.ArgumentParser, model_help: str, tool_format_help: str | None = None
) -> None:
    """The model under test: ``--model``, ``--backend``, ``--tool-format`` (when ``tool_format_help``
    is given) and ``--base-url``; read back by :func:`model_flags`."""
    parser.add_argument("--model", default=None, help=model_help)
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="default: vllm")
    if tool_format_help is not None:
        add_tool_format_flag(parser, tool_format_help)
    parser.add_argument(
        "--base-url",
        action="append",
        default=None,
        help="openai backend: server URL; repeat for several servers (the recipe's base_urls)",
    )


def model_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags of :func:`add_model_flags` as model spec keys (None: not given)."""
    return {
        "model": args.model,
        "backend": args.backend,
        "tool_format": getattr(args, "tool_format", None),
        "base_urls": args.base_url,
    }


def add_output_flags(
    parser: argparse.ArgumentParser,
    out_help: str,
    resume_help: str = "continue a run in --out",
    *,
    json_flag: bool = True,
) -> None:
    """``--out`` (required), ``--resume``, ``--json`` (unless ``json_flag`` is off) and ``--quiet``."""
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    parser.add_argument("--resume", action="store_true", help=resume_help)
    if json_flag:
        parser.add_argument(
            "--json",
            action="store_true",
            help="print the summary as one JSON object on stdout (implies --quiet)",
        )
    add_quiet_flag(parser)


def is_quiet(args: argparse.Namespace) -> bool:
    """No progress line: ``--quiet``, or ``--json`` (stdout carries only the JSON)."""
    return bool(args.quiet or getattr(args, "json", False))


def recipe_with_flags(
    config: Path | None,
    *,
    needed: Mapping[str, Any],
    roles: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Any],
) -> tuple[dict[str, Any], str]:
    """The recipe at ``config`` (without one, a recipe made of the flags alone) with the flags applied
    over it, as plain data, and where it came from.

    ``needed``: flag -> value, the flags a command line without a recipe must give. ``roles``: role ->
    its model flags (:func:`model_flags`), applied to the model alias the role names (without a
    recipe, an alias named as the role). ``overrides``: dotted recipe key -> flag value. A value of
    None is a flag not given."""
    from datagen.recipe import read_recipe_data, set_override

    if config is None:
        missing = [flag for flag, value in needed.items() if value is None]
        if missing:
            raise UsageError(f"expected --config RECIPE or {', '.join(missing)}; found neither")
        data: dict[str, Any] = {"models": {}, **{role: {"model": role} for role in roles}}
        source = "the command line"
    else:
        data = read_recipe_data(config)
        source = str(config)
    for role, flags in roles.items():
        alias = str(data.setdefault(role, {}).setdefault("model", role))
        given = {key: value for key, value in flags.items() if value is not None}
        if given:
            data.setdefault("models", {}).setdefault(alias, {}).update(given)
    for dotted, value in overrides.items():
        if value is not None:
            set_override(data, dotted, value)
    return data, source


def output_run(kind: Callable[[Path], Run], out: Path, *, reads: Iterable[Path] = ()) -> Run:
    """The run directory of ``kind`` at ``out``, once ``out`` is known to be a folder the command may
    write into (``datagen.rundir.check_output_folder``); checked before any work starts."""
    from datagen.rundir import check_output_folder

    return kind(check_output_folder(out, reads=reads))


def settings_of(config: BaseModel, **extra: Any) -> dict[str, Any]:
    """The run's settings to save: the validated config as plain JSON data, and ``extra`` beside it."""
    return {**json.loads(config.model_dump_json()), **extra}


class RunProgress:
    """The one progress line of an evaluation, ``[name] done/total unit, N label, ...``, drawn on
    stderr by :class:`datagen.runner.progress.ProgressLine`. ``tallies`` maps a key to its label: a
    row key counted when true (:meth:`row_done`, a harness's per-row callback), or a key of the
    batch's counts (:meth:`batch_counts`, a batch's ``on_progress``)."""

    def __init__(
        self, name: str, unit: str, total: int = 0, *, tallies: Mapping[str, str], quiet: bool
    ) -> None:
        from datagen.runner.progress import ProgressLine

        self.name, self.unit, self.total = name, unit, total
        self.tallies = dict(tallies)
        self.done = 0
        self.counts = dict.fromkeys(self.tallies, 0)
        self.display = ProgressLine(self.line, enabled=not quiet)

    def line(self) -> str:
        counted = "".join(f", {self.counts[key]} {label}" for key, label in self.tallies.items())
        return f"[{self.name}] {self.done}/{self.total} {self.unit}{counted}"

    def row_done(self, row: Mapping[str, Any]) -> None:
        self.done += 1
        for key in self.tallies:
            self.counts[key] += bool(row.get(key))
        self.display.update()

    def batch_counts(self, counts: Any) -> None:
        """From ``datagen.runner.batch.BatchCounts``: finished of submitted jobs, and the tallies."""
        figures = counts.as_dict()
        self.done, self.total = figures.get("finished", 0), figures.get("submitted", 0)
        for key in self.tallies:
            self.counts[key] = figures.get(key, 0)
        self.display.update()

    def finish(self) -> None:
        self.display.finish()


def print_result(result: Any, *, as_json: bool, text: Callable[[], str]) -> None:
    """The command's result on stdout: one JSON line with ``--json``, else ``text()`` for people."""
    print(json.dumps(result) if as_json else text())
