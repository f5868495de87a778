"""The `apigen-mt` command: a thin root over sub-commands found through entry points.

Each sub-command is an entry point in the group ``apigen_mt.commands`` whose value is a
``main(argv: list[str]) -> int`` callable. Only the named one is imported, so `apigen-mt --help`
stays cheap (no torch, no vLLM) and the root never imports `training` or `evaluation` itself.
Third-party packages add sub-commands the same way. stdout carries only the commands' own output:
the engine's and libraries' logs go to stderr (see :mod:`datagen.llm.engine_env`).
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points

GROUP = "apigen_mt.commands"

# One line per built-in command for `apigen-mt --help` (reading each module's docstring would import
# it); tests/test_cli_errors.py checks this table and pyproject's entry points name the same commands.
DESCRIPTIONS = {
    "models": "prepare the embedded model and inspect model directories",
    "envs": "list, check and scaffold tool environments",
    "blueprints": "Phase 1: validated task blueprints from a datagen recipe",
    "simulate": "Phase 2: simulated human-agent dialogues over a run's blueprints",
    "generate": "Phase 1 + Phase 2 from one datagen recipe (the usual way to make data)",
    "export": "a run's verified dialogues as a Hugging Face, ShareGPT, JSONL or preference dataset",
    "eval": "evaluate a model: BFCL (bfcl, bfcl-score) and tau-bench-style (tau)",
    "train": "fine-tune with TRL: accelerate launch on a packaged or local recipe",
    "report": "leaderboard tables and plots from result directories",
    "view": "a static site to browse runs, datasets and evaluations",
    "stats": "quality figures of a run or dataset: coverage, duplicates, contamination",
}


def available_commands() -> dict[str, EntryPoint]:
    """The registered sub-commands by name, without importing any of them."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("apigen-mt")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _usage(commands: dict[str, EntryPoint]) -> str:
    lines = ["usage: apigen-mt COMMAND [ARGS...]", "", "commands:"]
    for name, ep in sorted(commands.items()):
        lines.append(f"  {name:<12} {DESCRIPTIONS.get(name) or f'(from {ep.value})'}")
    lines += [
        "",
        "Run `apigen-mt COMMAND --help` for a command's options; `apigen-mt --version` for the version.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = available_commands()
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage(commands))
        return 0
    if args[0] in {"-V", "--version"}:
        print(f"apigen-mt {version()}")
        return 0
    name, rest = args[0], args[1:]
    if name not in commands:
        print(
            f"apigen-mt: unknown command {name!r}; expected one of {sorted(commands)}. "
            "If you just added one, reinstall the package so its entry point is registered.",
            file=sys.stderr,
        )
        return 2
    from datagen.llm.engine_env import apply_engine_env
    from datagen.llm.engine_memory import EngineMemoryError

    apply_engine_env()  # before the command imports vLLM, so its logs go to stderr, not stdout
    command = commands[name].load()
    try:
        return int(command(rest) or 0)
    except EngineMemoryError as exc:  # raised before any engine process starts: one line, no trace
        print(f"apigen-mt {name}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
