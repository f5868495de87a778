"""`apigen-mt eval tau-score RESULTS_JSON... [--out DIR]`: results files written by τ²-bench's runner
(their own models, published runs, or ours: `eval tau` writes tau2_results.json), re-scored with our
verdict and τ²'s evaluators side by side, per task and overall, with every disagreement flagged."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from apigen_rules.errors import UsageError
from datagen.cli_errors import run_command
from datagen.cli_flags import add_quiet_flag, command_parser
from datagen.rundir import TauScoreRun
from evaluation.command import output_run

DISAGREEMENTS_SHOWN = 10


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "apigen-mt eval tau-score",
        __doc__,
        epilog="A file that cannot be read is named with what was expected and what was found, and skipped.",
    )
    p.add_argument(
        "results", type=Path, nargs="+", help="τ²-bench results JSON files (or dir-format folders)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="write every simulation's scores and the summaries here"
    )
    p.add_argument("--json", action="store_true", help="print the summaries as one JSON object on stdout")
    add_quiet_flag(p)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return run_command("eval tau-score", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    try:
        from datagen.envs.tau2 import quiet_tau2_logging

        quiet_tau2_logging()
        from evaluation.tau.tau2_read import UnreadableResults, read_results
        from evaluation.tau.tau2_rescore import score_results
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"eval tau-score needs τ²-bench's package and its light dependencies (missing {exc.name!r}); "
            "install them with `make setup` (requirements/data-packages.txt)"
        ) from None
    run = None if args.out is None else output_run(TauScoreRun, args.out, reads=args.results)
    summaries: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for path in args.results:
        try:
            file_rows, summary = score_results(read_results(path))
        except UnreadableResults as exc:
            print(f"apigen-mt eval tau-score: {exc}; skipped", file=sys.stderr)
            continue
        for problem in summary["problems"]:
            print(f"apigen-mt eval tau-score: {problem}", file=sys.stderr)
        rows += file_rows
        summaries.append(summary)
        if not (args.json or args.quiet):
            print(format_file(summary, file_rows))
    if not summaries:
        print(
            "apigen-mt eval tau-score: no file could be scored (see above); expected τ²-bench results files",
            file=sys.stderr,
        )
        return 2
    output = {"files": summaries, "skipped_files": len(args.results) - len(summaries)}
    if run is not None:
        _write(run, rows, output)
    if args.json:
        print(json.dumps(output))
    return 0


def _write(run: TauScoreRun, rows: list[dict[str, Any]], output: dict[str, Any]) -> None:
    from apigen_rules.jsonl import JsonlAppender, write_json_atomic

    run.root.mkdir(parents=True, exist_ok=True)
    run.scores.unlink(missing_ok=True)  # each call re-scores its files from scratch
    with JsonlAppender(run.scores) as out:
        for row in rows:
            out.write(row)
    write_json_atomic(run.summary, output)
    print(f"scores: {run.scores}, summary: {run.summary}", file=sys.stderr)


def format_file(summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    from evaluation.intervals import Interval

    lines = [
        f"{summary['file']}: τ² {summary['domain']}, agent {summary['agent']} vs user {summary['user']} — "
        f"{summary['tasks']} tasks, {summary['simulations']} simulations",
        f"{'k':<3}{'recorded in the file':<28}{'τ² evaluators now':<28}ours (replayed on our environment)",
    ]
    tables = summary["pass_k"]
    for k in tables["recorded"]:
        cells = [
            Interval(**tables[s][k]).text() if k in tables[s] else "-" for s in ("recorded", "tau2", "ours")
        ]
        lines.append(f"{k:<3}{cells[0]:<28}{cells[1]:<28}{cells[2]}")
    lines.append(f"dialogues ended by: {summary['terminations']}")
    if summary["tasks_differing_from_installed"]:
        lines.append(
            f"tasks that differ from the installed τ² data: {summary['tasks_differing_from_installed']}"
        )
    flagged = [r for r in rows if r["disagreements"]]
    lines.append(f"disagreements: {len(flagged)} of {len(rows)} simulations")
    for row in flagged[:DISAGREEMENTS_SHOWN]:
        why = "; ".join(row["disagreements"] + row["notes"])
        lines.append(f"  task {row['task_id']} trial {row['trial']} ({row['termination']}): {why}")
    if len(flagged) > DISAGREEMENTS_SHOWN:
        lines.append(f"  ... {len(flagged) - DISAGREEMENTS_SHOWN} more (every one is in --out's scores)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
