"""`apigen-mt eval SUBCOMMAND ...`: the evaluation harnesses, each imported only when named."""

from __future__ import annotations

import importlib
import sys

# Sub-command name -> "module:function"; each function is main(argv: list[str]) -> int.
# Add a harness by adding a line here (imports stay lazy, so `--help` stays cheap).
SUBCOMMANDS: dict[str, str] = {
    "bfcl": "evaluation.bfcl.cli:generate_main",
    "bfcl-score": "evaluation.bfcl.cli:score_main",
    "tau": "evaluation.tau.cli:main",
}


def _usage() -> str:
    lines = ["usage: apigen-mt eval SUBCOMMAND [ARGS...]", "", "subcommands:"]
    lines += [f"  {name:<12} ({target})" for name, target in sorted(SUBCOMMANDS.items())]
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
    module_name, function_name = SUBCOMMANDS[name].split(":")
    command = getattr(importlib.import_module(module_name), function_name)
    return int(command(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
