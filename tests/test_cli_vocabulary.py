"""One flag vocabulary across every `apigen-mt` command and `apigen-mt eval` subcommand.

Each command's parser is captured as its own ``main`` builds it (so a command that builds a parser
some other way than :func:`datagen.cli_flags.command_parser` fails here), then checked: help on every
option with its default shown, kebab-case, ``--out`` for output locations, ``--quiet`` on the
long-running commands, ``--format`` only as a hidden deprecated alias, and every old spelling still
parsing to the new destination with its one deprecation line. The README's `apigen-mt` commands use
only current spellings.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
from importlib import import_module
from pathlib import Path

import pytest

from datagen.cli import DESCRIPTIONS, available_commands
from datagen.cli_flags import CommandParser, HelpFormatter
from evaluation.cli import SUBCOMMANDS

ROOT = Path(__file__).resolve().parent.parent
APIGEN = str(ROOT / ".venv" / "bin" / "apigen-mt")

COMMANDS = [name for name in DESCRIPTIONS if name != "eval"] + [f"eval {name}" for name in SUBCOMMANDS]
WRITES_OUTPUT = {
    "blueprints", "simulate", "generate", "export", "report", "view",
    "eval tau", "eval bfcl", "eval next-action", "eval bfcl-score", "eval tau-score", "envs new",
}  # fmt: skip
LONG_RUNNING = {"blueprints", "simulate", "generate", "eval tau", "eval bfcl", "eval next-action"}


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser `apigen-mt COMMAND` parses its arguments with, taken at its first parse."""
    if command == "train":  # training imports nothing of datagen (tests/test_project_layout.py)
        from training.cli import build_parser as train_parser

        return train_parser()
    if command.startswith("eval "):
        module, function = SUBCOMMANDS[command.split(" ", 1)[1]][0].split(":")
        main = getattr(import_module(module), function)
    else:
        main = available_commands()[command].load()

    def capture(self, args=None, namespace=None):
        raise _Captured(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CommandParser, "parse_known_args", capture)
        try:
            main(["--help"])
        except _Captured as captured:
            return captured.parser
        except SystemExit:
            pass
    raise AssertionError(
        f"`apigen-mt {command}` does not build its parser with datagen.cli_flags.command_parser"
    )


def parsers(command: str) -> dict[str, argparse.ArgumentParser]:
    """The command's parser and its sub-commands' ones (`envs new`, `models prepare` ...)."""
    found = {command: build_parser(command)}
    for action in found[command]._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update({f"{command} {name}": sub for name, sub in action.choices.items()})
    return found


ALL = {name: parser for command in COMMANDS for name, parser in parsers(command).items()}


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def deprecated(action: argparse.Action) -> str | None:
    return getattr(action, "replaced_by", None)


def test_every_command_is_covered():
    assert {"eval tau", "eval bfcl", "eval bfcl-score", "eval next-action", "export", "envs new"} <= set(ALL)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_option_has_help_with_its_default(name: str):
    parser = ALL[name]
    if not name.startswith("train"):
        assert issubclass(parser.formatter_class, HelpFormatter), name
    formatter = HelpFormatter(parser.prog)
    assert parser.format_help()  # `--help` renders (a bad metavar or %-escape would raise here)
    for action in options(parser):
        if action.help == argparse.SUPPRESS:
            assert deprecated(action), f"{name}: {action.option_strings} is hidden but is no deprecated alias"
            continue
        assert action.help and action.help.strip(), f"{name}: {action.option_strings} has no help"
        if action.default not in (None, False):
            assert "default" in formatter._get_help_string(action), f"{name}: {action.option_strings}"


@pytest.mark.parametrize("name", sorted(ALL))
def test_one_spelling_per_meaning(name: str):
    for action in options(ALL[name]):
        spelled = action.option_strings
        if deprecated(action):
            continue
        assert "--format" not in spelled, f"{name}: --format means four things; use the specific flag"
        assert not any("_" in s for s in spelled), f"{name}: {spelled} is not kebab-case"
        assert not {"--max-concurrency", "--blueprints", "--score-dir", "--dir", "--output-dir"} & set(
            spelled
        )


@pytest.mark.parametrize("name", sorted(WRITES_OUTPUT))
def test_output_location_is_out(name: str):
    assert any("--out" in a.option_strings and not deprecated(a) for a in options(ALL[name])), name


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_long_running_commands_take_quiet(name: str):
    quiet = [a for a in options(ALL[name]) if "--quiet" in a.option_strings]
    assert quiet and quiet[0].dest == "quiet" and quiet[0].const is True, name


@pytest.mark.parametrize(
    ("name", "argv", "dest", "value"),
    [
        ("eval tau", ["--out", "O", "--format", "hermes"], "tool_format", "hermes"),
        ("eval next-action", ["--out", "O", "--format", "xlam"], "tool_format", "xlam"),
        ("eval bfcl", ["--out", "O", "--format", "prompt"], "prompt_mode", "prompt"),
        ("eval bfcl", ["--out", "O", "--max-concurrency", "7"], "concurrency", 7),
        ("eval bfcl-score", ["DIR", "--format", "python"], "result_format", "python"),
        ("eval bfcl-score", ["DIR", "--score-dir", "S"], "out", Path("S")),
        ("export", ["RUN", "--out", "O", "--format", "jsonl"], "output_format", "jsonl"),
        ("export", ["RUN", "--out", "O", "--push-to-hub", "org/name"], "hub_dataset_id", "org/name"),
        ("simulate", ["--config", "C", "--blueprints", "R"], "run_dir", Path("R")),
        ("envs new", ["lib", "--dir", "D"], "out", "D"),
    ],
)
def test_old_spellings_still_parse_with_one_deprecation_line(name, argv, dest, value, capsys):
    parsed = ALL[name].parse_known_args(argv)[0]
    assert getattr(parsed, dest) == value
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "is deprecated, use --" in lines[0], lines


def test_new_export_hub_flags():
    parsed = ALL["export"].parse_args(["RUN", "--out", "O", "--push-to-hub", "--hub-dataset-id", "org/n"])
    assert parsed.push_to_hub is True and parsed.hub_dataset_id == "org/n"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["simulate", "--config", "recipes/datagen/demo.yaml", "--blueprints", "no-such-run"],
            "no-such-run",
        ),
        (["export", "no-such-run", "--out", "x", "--format", "jsonl"], "no-such-run"),
        (["eval", "bfcl-score", "no-such-dir", "--format", "python"], "no-such-dir"),
    ],
)
def test_old_spelling_from_a_plain_shell(tmp_path, plain_env, argv, expected):
    """As users run it: the deprecation line, then the command's own one-line refusal of the path
    the old flag named (so the value reached the new flag)."""
    done = subprocess.run(
        ["env", "-i", f"PATH={plain_env['PATH']}", f"HOME={tmp_path}", APIGEN, *argv],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "is deprecated, use --" in lines[0], done.stderr
    assert expected in lines[-1] and "Traceback" not in done.stderr, done.stderr


def readme_commands() -> list[list[str]]:
    """Every `apigen-mt ...` command line in the README's code blocks (continuations joined)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("apigen-mt "):
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


def test_readme_commands_use_current_spellings():
    checked = 0
    for argv in readme_commands():
        name = " ".join(argv[:2]) if argv[0] == "eval" else argv[0]
        if name not in ALL or name == "train":  # train passes TRL's own options on unchanged
            continue
        known = {s: a for a in options(ALL[name]) for s in a.option_strings}
        for token in argv:
            flag = token.split("=", 1)[0]
            if flag.startswith("--"):
                assert flag in known, (
                    f"README: `apigen-mt {' '.join(argv)}`: {flag} is not an option of {name}"
                )
                assert not deprecated(known[flag]), f"README: `apigen-mt {' '.join(argv)}` uses old {flag}"
        checked += 1
    assert checked >= 10
