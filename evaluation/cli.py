"""`apigen-mt eval SUBCOMMAND ...`: the evaluation harnesses, each imported only when named."""

from __future__ import annotations

import importlib
import sys

# Sub-command name -> "module:function"; each function is main(argv: list[str]) -> int.
# Add a harness by adding a line here (imports stay lazy, so `--help` stays cheap).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "bfcl": ("evaluation.bfcl.cli:generate_main", "run a model on BFCL (v4 data) and score it"),
    "bfcl-score": (
        "evaluation.bfcl.score_cli:score_main",
        "score BFCL result files, ours or the leaderboard's",
    ),
    "next-action": (
        "evaluation.next_action.cli:main",
        "teacher-forced next-turn accuracy on held-out verified dialogues",
    ),
    "tau": ("evaluation.tau.cli:main", "the agent under test against a simulated user on held-out tasks"),
    "tau-score": (
        "evaluation.tau.score_cli:main",
        "re-score τ²-bench results files with our verdict and τ²'s side by side",
    ),
}


def _usage() -> str:
    lines = ["usage: apigen-mt eval SUBCOMMAND [ARGS...]", "", "subcommands:"]
    lines += [f"  {name:<12} {about}" for name, (_, about) in sorted(SUBCOMMANDS.items())]
    lines += ["", "Run `apigen-mt eval SUBCOMMAND --help` for its options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(
            f"apigen-mt eval: unknown subcommand {name!r}; expected one of {sorted(SUBCOMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module_name, function_name = SUBCOMMANDS[name][0].split(":")
    command = getattr(importlib.import_module(module_name), function_name)
    return int(command(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
