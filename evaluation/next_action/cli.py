"""`apigen-mt eval next-action`: teacher-forced turn-level accuracy on held-out verified dialogues.

For every assistant turn of every held-out dialogue the model gets the gold prefix (system prompt
with the policy, the tools, the messages so far) and writes one turn. Reported: whether it called
when it should (decision accuracy), the decode rate of turns that should call, tool-name match,
exact call match (parallel calls order-free, values by the toolkit's one value rule), argument
precision and recall, per domain and per tool, and the share of turns whose predicted call would
fail in the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from datagen.cli_errors import run_command
from datagen.cli_flags import command_parser
from evaluation import command
from evaluation.next_action.config import NextActionConfig


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "apigen-mt eval next-action",
        __doc__,
        epilog="Flags override the recipe given with --config; without one, --data and --model are needed.",
    )
    command.add_recipe_flag(p, "recipes/eval/next_action/demo.yaml")
    p.add_argument(
        "--data", action="append", default=None,
        help="an exported dataset (hf or jsonl export, save_to_disk folder, .jsonl file) or a run directory; repeatable",
    )  # fmt: skip
    p.add_argument("--split", default=None, help="split to evaluate (default: test)")
    p.add_argument("--limit", type=int, default=None, help="only the first N dialogues of each source")
    command.add_model_flags(
        p,
        "model under test: 'embedded', a path or a served model name",
        "the model's tool-call format (default: the recipe's, else auto: the model directory's marker, else hermes)",
    )
    p.add_argument("--max-tokens", type=int, default=None, help="max new tokens per turn (default 256)")
    p.add_argument("--concurrency", type=int, default=None, help="turns in flight at once (default 256)")
    p.add_argument("--seed", type=int, default=None, help="run seed of the sampling seeds (default 0)")
    p.add_argument(
        "--group-by", choices=("blueprint", "user"), default=None,
        help="run directories: the export's split grouping (default: blueprint)",
    )  # fmt: skip
    p.add_argument(
        "--include-ungrounded", action="store_true", default=None,
        help="run directories: also dialogues that failed only the provenance check",
    )  # fmt: skip
    command.add_output_flags(p, "run directory for the results")
    return p


def recipe_data(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The recipe as plain data with the flags applied over it, and where it came from."""
    return command.recipe_with_flags(
        args.config,
        needed={"--data": args.data, "--model": args.model},
        roles={"agent": command.model_flags(args)},
        overrides={
            "data": args.data, "split": args.split, "limit": args.limit, "agent.max_tokens": args.max_tokens,
            "concurrency": args.concurrency, "seed": args.seed, "run_split.group_by": args.group_by,
            "run_split.include_ungrounded": args.include_ungrounded,
        },
    )  # fmt: skip


SKIPPED_SHOWN = 20  # damaged rows named one per line; past that, a count


def _print_skipped(skipped: list[str]) -> None:
    for line in skipped[:SKIPPED_SHOWN]:
        print(f"apigen-mt eval next-action: {line}", file=sys.stderr)
    if len(skipped) > SKIPPED_SHOWN:
        print(
            f"apigen-mt eval next-action: {len(skipped) - SKIPPED_SHOWN} more rows skipped "
            f"({len(skipped)} in all; the summary counts them)",
            file=sys.stderr,
        )


async def _run(
    config: NextActionConfig, dialogues: list[Any], run: Any, quiet: bool, skipped: int = 0
) -> dict[str, Any]:
    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from evaluation.next_action.data import turns_of
    from evaluation.next_action.harness import NextActionHarness

    total = sum(len(turns_of(d)) for d in dialogues)
    progress = command.RunProgress(
        "next-action", "turns", total, tallies={"exact_match": "exact calls"}, quiet=quiet
    )
    async with ModelPool(config.models) as pool:
        harness = NextActionHarness(config, dialogues, run, pool, get_domain, rows_skipped=skipped)
        summary = await harness.run(on_turn=progress.row_done)
    progress.finish()
    return summary


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return run_command("eval next-action", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    from datagen.recipe import validate_recipe
    from datagen.rundir import NextActionRun
    from evaluation.next_action.data import read_dialogues, require_dialogues

    data, source = recipe_data(args)
    config = validate_recipe(data, NextActionConfig, source)
    run = command.output_run(NextActionRun, args.out)
    dialogues, skipped = read_dialogues(config)  # every input problem is found before an engine starts
    _print_skipped(skipped)
    require_dialogues(config, dialogues, skipped)
    run.open_for_writing(command.settings_of(config), resume=args.resume)
    summary = asyncio.run(_run(config, dialogues, run, quiet=command.is_quiet(args), skipped=len(skipped)))
    command.print_result(
        summary,
        as_json=args.json,
        text=lambda: f"{format_summary(summary)}\nturns: {run.turns}, summary: {run.summary}",
    )
    return 0


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:5.1f}"


def _range(interval: dict[str, float] | None) -> str:
    return "" if not interval else f"[{100 * interval['low']:.0f},{100 * interval['high']:.0f}]"


FIGURES = (
    ("decision_accuracy", "decision"), ("decode_rate", "decode"), ("name_match", "name"),
    ("exact_match", "exact"), ("argument_precision", "arg P"), ("argument_recall", "arg R"),
    ("env_failure_rate", "env fail"),
)  # fmt: skip


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a table: overall, per domain, per tool (percentages; turns that should call)."""
    header = f"{'':<28} {'turns':>5} {'call':>5} " + " ".join(f"{title:>8}" for _, title in FIGURES)
    lines = [
        f"next-action: {summary['model']} on {', '.join(summary['data'])} ({summary['split']}), "
        f"{summary['dialogues']} dialogues, {summary['turns_done']}/{summary['turns_planned']} turns",
        header,
    ]

    def line(name: str, figures: dict[str, Any]) -> str:
        cells = " ".join(f"{_pct(figures.get(key)):>8}" for key, _ in FIGURES)
        return f"{name[:28]:<28} {figures['turns']:>5} {figures['should_call_turns']:>5} {cells}"

    def bounds(figures: dict[str, Any]) -> str:
        """The 95% interval of each figure under it, in whole percent."""
        intervals = figures.get("intervals") or {}
        cells = " ".join(f"{_range(intervals.get(key)):>8}" for key, _ in FIGURES)
        return f"{'  95% interval':<28} {'':>5} {'':>5} {cells}"

    lines += [line("overall", summary["overall"]), bounds(summary["overall"])]
    for env, f in summary["per_domain"].items():
        lines += [line(f"domain {env}", f), bounds(f)]
    lines += [line(f"tool {tool}", f) for tool, f in summary["per_tool"].items()]
    if summary.get("interval_method"):
        lines.append(f"intervals: {summary['interval_method']}")
    if summary.get("rows_skipped"):
        lines.append(
            f"{summary['rows_skipped']} damaged data row(s) skipped, each named when the data was read"
        )
    if summary["overall"]["errors"]:
        lines.append(f"{summary['overall']['errors']} turn(s) failed with an error and are not scored")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
