"""Command reference pages: every `apigen-mt` command's options, read from the parser its ``main``
builds (captured at its first parse, so a page shows what ``--help`` shows)."""

from __future__ import annotations

import argparse
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from docs_markdown import BANNER, anchor, code, escape, paragraphs

COMMANDS_DIR = "reference/commands"
COMMAND_GROUP = "apigen_mt.commands"


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def captured_parser(main: Any) -> argparse.ArgumentParser | None:
    """The parser ``main(["--help"])`` parses with, taken at its first parse (nothing runs)."""
    original = argparse.ArgumentParser.parse_known_args

    def capture(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        raise _Captured(self)

    argparse.ArgumentParser.parse_known_args = capture  # type: ignore[method-assign]
    try:
        main(["--help"])
    except _Captured as captured:
        return captured.parser
    except SystemExit:
        return None
    finally:
        argparse.ArgumentParser.parse_known_args = original  # type: ignore[method-assign]
    return None


def subcommand_table(module: Any) -> dict[str, tuple[str, str]]:
    """A dispatching command's sub-commands (``apigen-mt eval``): name -> ("module:function", about)."""
    return dict(getattr(module, "SUBCOMMANDS", {}) or {})


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every `apigen-mt` command and sub-command ("eval tau", "envs new") -> the parser it parses with."""
    found: dict[str, argparse.ArgumentParser] = {}
    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        main = ep.load()
        subs = subcommand_table(import_module(ep.module))
        if subs:
            for name, (target, _) in subs.items():
                module, function = target.split(":")
                parser = captured_parser(getattr(import_module(module), function))
                if parser is not None:
                    found[f"{ep.name} {name}"] = parser
            continue
        parser = captured_parser(main)
        if parser is None:
            continue
        found[ep.name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found.update({f"{ep.name} {name}": sub for name, sub in action.choices.items()})
    return found


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """A parser's options, ``--help`` left out."""
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def replaced_by(action: argparse.Action) -> str | None:
    """The new spelling of a deprecated alias (``datagen.cli_flags.deprecated_alias``), else None."""
    return getattr(action, "replaced_by", None)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The option's help as ``--help`` prints it (the command's formatter adds its default)."""
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    params.update(prog=parser.prog)
    for name in list(params):
        if hasattr(params[name], "__name__"):
            params[name] = params[name].__name__
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    formatter = parser.formatter_class(prog=parser.prog)
    return formatter._get_help_string(action) % params  # type: ignore[attr-defined]


def _spelling(action: argparse.Action) -> str:
    """``--flag VALUE`` as the usage line writes it."""
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    if action.choices is not None and action.metavar is None:
        value = "{" + ",".join(map(str, action.choices)) + "}"
    else:
        value = action.dest.upper() if action.metavar is None else action.metavar
    value = " ".join(value) if isinstance(value, tuple) else value
    if not value:  # a switch that also takes an old-style value (`--push-to-hub`)
        return ", ".join(action.option_strings)
    value = {"?": f"[{value}]", "+": f"{value} [{value} ...]", "*": f"[{value} ...]"}.get(
        action.nargs,
        value,  # type: ignore[arg-type]
    )
    return ", ".join(f"{flag} {value}" for flag in action.option_strings)


def parser_section(name: str, parser: argparse.ArgumentParser, about: str, level: str) -> list[str]:
    usage = parser.format_usage().removeprefix("usage: ").rstrip()
    lines = [f"{level} apigen-mt {name} {{#{anchor(name)}}}", ""]
    text = parser.description or about
    if text:
        lines += [paragraphs(text), ""]
    lines += ["```text", usage, "```"]
    positional = [a for a in parser._actions if not a.option_strings
                  and not isinstance(a, argparse._SubParsersAction)]  # fmt: skip
    current = [a for a in options(parser) if not replaced_by(a)]
    for title, actions in (("Arguments", positional), ("Options", current)):
        if not actions:
            continue
        column = "argument" if title == "Arguments" else "option"
        lines += ["", f"**{title}**", "", f"| {column} | description |", "| --- | --- |"]
        for action in actions:
            spelled = code(_spelling(action)).replace("|", "&#124;")
            lines.append(f"| {spelled} | {escape(_help(parser, action))} |")
    old = [a for a in options(parser) if replaced_by(a)]
    if old:
        lines += ["", "Deprecated spellings (accepted for one more release, with a warning): "
                  + "; ".join(f"`{a.option_strings[0]}` → `{replaced_by(a)}`" for a in old) + "."]  # fmt: skip
    if parser.epilog:
        lines += ["", "```text", parser.epilog.strip("\n"), "```"]
    return lines


def command_pages(parsers: dict[str, argparse.ArgumentParser]) -> dict[str, str]:
    """One page per command (``eval`` sub-commands each get one); sub-commands are sections."""
    from datagen.cli import DESCRIPTIONS

    abouts: dict[str, str] = {}
    for ep in entry_points(group=COMMAND_GROUP):
        abouts[ep.name] = DESCRIPTIONS.get(ep.name, "")
        for name, (_, about) in subcommand_table(import_module(ep.module)).items():
            abouts[f"{ep.name} {name}"] = about
    for parser in parsers.values():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    abouts[f"{parser.prog.removeprefix('apigen-mt ')} {choice.dest}"] = choice.help or ""
    pages: dict[str, str] = {}
    tops = [name for name in parsers if " " not in name or name.split(" ", 1)[0] not in parsers]
    for top in tops:
        lines = [BANNER.format(source=f"the parser of `apigen-mt {top}`"), ""]
        lines += parser_section(top, parsers[top], abouts.get(top, ""), "#")
        for sub in (n for n in parsers if n.startswith(f"{top} ") and n not in tops):
            lines += ["", *parser_section(sub, parsers[sub], abouts.get(sub, ""), "##")]
        pages[f"{COMMANDS_DIR}/{top.replace(' ', '-')}.md"] = "\n".join(lines) + "\n"
    index = [
        BANNER.format(source="the `apigen_mt.commands` entry points"),
        "",
        "# Commands",
        "",
        "`apigen-mt` is a thin root over sub-commands registered as entry points (group "
        "`apigen_mt.commands`); each page below is generated from the parser the command itself builds, "
        "so it is what `apigen-mt COMMAND --help` prints. Kebab-case options, `--out` for where output "
        "goes, `--quiet` on the long-running commands; the [changelog](../../changelog.md) lists renamed "
        "flags.",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    for top in tops:
        index.append(f"| [`apigen-mt {top}`]({top.replace(' ', '-')}.md) | {escape(abouts.get(top, ''))} |")
    pages[f"{COMMANDS_DIR}/index.md"] = "\n".join(index) + "\n"
    return pages
