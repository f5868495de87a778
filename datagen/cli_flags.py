"""The flag vocabulary every `apigen-mt` command shares: one help layout and renamed flags.

Every command's parser is built with :func:`command_parser` (or passes :class:`HelpFormatter` to
``add_parser`` for sub-commands), so descriptions keep their line breaks and every option's help
shows its default. A renamed flag stays accepted for one release through :func:`deprecated_alias`:
the old spelling is hidden from ``--help``, parses to the new flag's destination, and prints one
line on stderr naming the new spelling. Training entry points (``training/sft.py`` ...) are not
built here: they follow TRL's ``HfArgumentParser`` and its snake_case names. ``--executor`` and
``--workers`` (:func:`add_executor_flags`) are the same on every command that runs a batch.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

QUIET_HELP = "no live progress line on stderr (the summary is still printed)"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; ``(default: X)`` after every option whose help does not
    already say its default. Unset (None) and off (False) defaults are left out: their help says
    what happens then (usually "the recipe's value")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


class CommandParser(argparse.ArgumentParser):
    """An `apigen-mt` command's parser: the shared help layout (its sub-parsers too), and required
    options that are also given by a deprecated spelling (argparse alone would call them missing)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.required_with_alias: list[argparse.Action] = []

    def parse_known_args(
        self, args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        missing = [a for a in self.required_with_alias if getattr(parsed, a.dest, None) is None]
        if missing:
            self.error(
                f"the following arguments are required: {', '.join(a.option_strings[0] for a in missing)}"
            )
        return parsed, extra


def command_parser(prog: str, description: str | None = None, **kwargs: Any) -> CommandParser:
    """An `apigen-mt` command's parser with the shared help layout."""
    return CommandParser(prog=prog, description=description, **kwargs)


def deprecation_line(prog: str, old: str, new: str) -> str:
    return f"{prog}: {old} is deprecated, use {new} (the old spelling will be removed in the next release)"


def deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accepts ``old`` as a hidden spelling of the already added option ``new``: same type, choices
    and destination; using it prints :func:`deprecation_line` on stderr."""
    target = next((a for a in parser._actions if new in a.option_strings), None)
    if target is None:
        raise ValueError(
            f"deprecated_alias: {parser.prog} has no option {new}; add it before its alias {old}"
        )
    if target.required:  # either spelling satisfies it: checked after parsing (CommandParser)
        if not isinstance(parser, CommandParser):
            raise TypeError(f"deprecated_alias: {parser.prog} must be a CommandParser for required {new}")
        target.required = False
        target.help = f"{target.help} (required)"  # the usage line now shows it in brackets
        parser.required_with_alias.append(target)

    class _Deprecated(argparse.Action):
        replaced_by = new  # what tests/test_cli_vocabulary.py reads: a hidden option is a renamed one

        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                     option_string: str | None = None) -> None:  # fmt: skip
            print(deprecation_line(parser.prog, old, new), file=sys.stderr)
            target(parser, namespace, values, new)

    parser.add_argument(
        old,
        action=_Deprecated,
        dest=target.dest,
        nargs=target.nargs,
        type=target.type,
        choices=target.choices,
        metavar=target.metavar,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )


def add_quiet_flag(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` on every long-running command (see :class:`datagen.runner.progress.ProgressLine`)."""
    parser.add_argument("--quiet", action="store_true", help=QUIET_HELP)


def add_tool_format_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """``--tool-format`` (the agent's tool-call syntax, a model spec's ``tool_format``), old ``--format``."""
    from typing import get_args

    from datagen.llm.config import ModelSpec

    choices = get_args(ModelSpec.model_fields["tool_format"].annotation)
    parser.add_argument("--tool-format", choices=choices, default=None, help=help)
    deprecated_alias(parser, "--format", "--tool-format")


def add_executor_flags(parser: Any) -> None:
    """``--executor`` and ``--workers``, the same on every command that runs a batch."""
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default=None,
        help="where jobs run: local (this process) or ray (Ray actors); default: the recipe's executor, else local",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="Ray actors (implies --executor ray); default 2"
    )


def executor_overrides(executor: str | None, workers: int | None) -> dict[str, Any]:
    """The flags as dotted recipe keys (``datagen.recipe.set_override``)."""
    from apigen_rules.errors import UsageError

    if workers is not None and workers < 1:
        raise UsageError(f"--workers: expected a number of Ray workers >= 1, found {workers}")
    if executor == "local":
        if workers is not None:
            raise UsageError("--workers applies to --executor ray; found it with --executor local")
        return {"executor": {"type": "local"}}
    if executor == "ray" or workers is not None:
        return {"executor.type": "ray", "executor.workers": workers}
    return {}
