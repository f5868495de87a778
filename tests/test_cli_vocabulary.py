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
import sys
from importlib import import_module
from pathlib import Path

import pytest

from datagen.cli import DESCRIPTIONS, available_commands
from datagen.cli_flags import CommandParser, HelpFormatter
from evaluation.cli import SUBCOMMANDS

ROOT = Path(__file__).resolve().parent.parent
APIGEN = str(ROOT / ".venv" / "bin" / "apigen-mt")
sys.path.insert(0, str(ROOT / "scripts"))
docs_reference = import_module("docs_reference")  # captures each parser as the command's main builds it
CAPTURED = docs_reference.command_parsers()

COMMANDS = [name for name in DESCRIPTIONS if name != "eval"] + [f"eval {name}" for name in SUBCOMMANDS]
WRITES_OUTPUT = {
    "blueprints", "simulate", "generate", "export", "report", "view",
    "eval tau", "eval bfcl", "eval next-action", "eval bfcl-score", "eval tau-score", "envs new",
}  # fmt: skip
LONG_RUNNING = {"blueprints", "simulate", "generate", "eval tau", "eval bfcl", "eval next-action"}


def parsers(command: str) -> dict[str, argparse.ArgumentParser]:
    """The command's parser and its sub-commands' ones (`envs new`, `models prepare` ...)."""
    return {
        name: parser for name, parser in CAPTURED.items() if name == command or name.startswith(f"{command} ")
    }


ALL = {name: parser for command in COMMANDS for name, parser in parsers(command).items()}


options = docs_reference.options
deprecated = docs_reference.replaced_by  # a hidden option that names its new spelling is a renamed one


def test_every_command_is_covered():
    assert set(COMMANDS) <= set(ALL), sorted(set(COMMANDS) - set(ALL))
    assert {"eval tau", "eval bfcl", "eval bfcl-score", "eval next-action", "export", "envs new"} <= set(ALL)


@pytest.mark.parametrize("name", sorted(n for n in ALL if not n.startswith("train")))
def test_every_command_builds_its_parser_with_command_parser(name: str):
    """The shared help layout and deprecated aliases of required options need datagen.cli_flags'
    parser (training follows TRL's conventions instead)."""
    assert isinstance(ALL[name], CommandParser), (
        f"`apigen-mt {name}` does not use datagen.cli_flags.command_parser"
    )


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


# Where users copy commands from: the README, every page under docs/ and the files those pages include
# (`--8<-- "path"`). Generated reference pages are built from the parsers themselves.
SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::[^"]*)?"', flags=re.M)
SHELL_BLOCK = re.compile(r"^([ \t]*)```(?:bash|sh|shell|console)[ \t]*\n(.*?)^[ \t]*```", flags=re.M | re.S)
INLINE = re.compile(r"(?<!`)`(apigen-mt [^`]+)`(?!`)")
PLACEHOLDER = re.compile(r"[<>\[\]|$*]|\.\.\.|…")
SHELL_WORDS = {"for", "do", "done", "then", "fi", "if", "cd", "git", "export"}


def documents() -> list[Path]:
    pages = sorted((ROOT / "docs").rglob("*.md"))
    included = {ROOT / m for page in pages for m in SNIPPET.findall(page.read_text(encoding="utf-8"))}
    return [ROOT / "README.md", *pages, *sorted(included)]


def shell_lines(text: str) -> list[str]:
    """Every line of the fenced shell blocks of a markdown text, continuations joined, comments cut."""
    lines = []
    for indent, block in SHELL_BLOCK.findall(text):
        block = "\n".join(line.removeprefix(indent) for line in block.splitlines())
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip().removesuffix(";").strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def command_argv(line: str) -> list[str] | None:
    """The `apigen-mt` arguments a shell line runs: directly (`.venv/bin/apigen-mt` too), or through the
    SLURM launcher, which runs `apigen-mt ARGS --executor ray` on the head node."""
    words = line.split()
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefixes
        words = words[1:]
    if not words or words[0] in SHELL_WORDS:
        return None
    if words[0].endswith("apigen-mt"):
        return words[1:]
    if words[0] == "sbatch":
        launcher = [i for i, w in enumerate(words) if w.endswith("launch_ray.slurm")]
        return words[launcher[0] + 1 :] if launcher else None
    return None


def documented_commands() -> list[tuple[Path, str, list[str], bool]]:
    """(file, line, arguments, whole command) for every `apigen-mt` command in the documents: shell
    lines are whole commands; inline `apigen-mt ...` code spans may be fragments of one."""
    found = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for line in shell_lines(text):
            argv = command_argv(line)
            if argv:
                found.append((path, line, argv, True))
        for span in INLINE.findall(text):
            found.append((path, span, span.split()[1:], False))
    return found


def resolve(argv: list[str]) -> tuple[str, list[str]] | None:
    """The command (`eval tau`, `envs new`, `generate`) and its own arguments."""
    for size in (2, 1):
        name = " ".join(argv[:size])
        if name in ALL and (size == 2 or not any(n.startswith(f"{name} ") for n in ALL)):
            return name, argv[size:]
    return None


class _Refused(Exception):
    pass


def _refuse(message: str) -> None:
    raise _Refused(message)


def full_parse(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Parses as the command would (choices, required options, arguments), raising instead of exiting."""
    subs = [
        s for a in parser._actions if isinstance(a, argparse._SubParsersAction) for s in a.choices.values()
    ]
    with pytest.MonkeyPatch.context() as patch:
        for each in [parser, *subs]:
            patch.setattr(each, "error", _refuse)
        parser.parse_args(argv)


def check_train(argv: list[str]) -> None:
    """`apigen-mt train`: our options parse (the rest goes to TRL's parser unchanged), and recipes
    named by name resolve as the command resolves them."""
    from training.recipe_files import find_recipe

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ALL["train"], "error", _refuse)
        parsed, _ = ALL["train"].parse_known_args(argv)
    if parsed.config:
        find_recipe(parsed.config, parsed.method)
    if parsed.accelerate_config:
        find_recipe(parsed.accelerate_config, "accelerate")


def problems(argv: list[str], whole: bool) -> list[str]:
    """What is wrong with `apigen-mt ARGV` as documentation: an unknown command, a flag the command
    does not have, an old spelling; for a whole command without placeholders, anything its parser
    refuses (a bad choice, a missing required option, a recipe name that does not resolve)."""
    if not argv or argv[0] in {"--help", "-h", "--version", "-V"}:  # the root's own options
        return []
    if re.fullmatch(r"[A-Z_]+:?", argv[0]):  # `apigen-mt COMMAND --help`: a placeholder for any command
        return []
    found = resolve(argv)
    if not found and argv[0] in available_commands() and argv[1:] in ([], ["--help"]):
        return []  # `apigen-mt eval --help`: a dispatching command's own help
    if not found:
        return [f"no `apigen-mt` command {' '.join(argv[:2])!r}"]
    name, rest = found
    known = {s: a for a in options(ALL[name]) for s in a.option_strings}
    wrong = []
    for token in rest:
        flag = token.split("=", 1)[0]
        if not flag.startswith("--") or (name == "train" and "_" in flag):  # train passes TRL's options on
            continue
        if flag not in known:
            wrong.append(f"{flag} is not an option of `apigen-mt {name}`")
        elif deprecated(known[flag]):
            wrong.append(f"{flag} is an old spelling; use {deprecated(known[flag])}")
    if wrong or not whole or PLACEHOLDER.search(" ".join(rest)):
        return wrong
    try:
        check_train(rest) if name == "train" else full_parse(ALL[name], rest)
    except (_Refused, FileNotFoundError) as exc:
        return [f"`apigen-mt {name}` refuses it: {exc}"]
    return []


DOCUMENTED = documented_commands()


def test_the_documents_hold_commands():
    assert len([c for c in DOCUMENTED if c[3]]) >= 40 and len(documents()) >= 20


@pytest.mark.parametrize(
    ("path", "line", "argv", "whole"),
    DOCUMENTED,
    ids=[f"{p.relative_to(ROOT)}:{line[:60]}" for p, line, _, _ in DOCUMENTED],
)
def test_documented_commands_use_current_spellings(path: Path, line: str, argv: list[str], whole: bool):
    assert problems(shlex.split(" ".join(argv)), whole) == [], f"{path.relative_to(ROOT)}: `{line}`"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "apigen-mt export runs/x --out o --format jsonl",
            "--format is an old spelling; use --output-format",
        ),
        ("apigen-mt export runs/x --out o --no-such-flag", "--no-such-flag is not an option"),
        ("apigen-mt export runs/x --out o --output-format parquet", "invalid choice: 'parquet'"),
        ("apigen-mt export runs/x", "required: --out"),
        ("apigen-mt frobnicate --out o", "no `apigen-mt` command"),
        ("apigen-mt train --config qwen9/none", "no sft recipe 'qwen9/none'"),
        ("sbatch --nodes=2 scripts/launch_ray.slurm eval tau --format hermes", "--format is an old spelling"),
    ],
)
def test_a_wrong_command_in_the_docs_is_caught(line: str, expected: str):
    """What the check above reports for the mistakes a page can hold."""
    [found] = [command_argv(one) for one in shell_lines(f"```bash\n{line}\n```\n")]
    assert any(expected in problem for problem in problems(found, True)), problems(found, True)
