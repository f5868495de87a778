"""`apigen-mt generate --config RECIPE`: Phase 1 and Phase 2 as one asyncio program.

Blueprints flow into simulation as soon as they are accepted, and every model named in the recipe
is built once (``ModelPool``), so the generator, the committee, the simulated human and the agent
share one engine whose batch stays full. Everything lands append-only in the run directory; a killed
run resumes with ``--resume``: accepted blueprints are not redone, finished dialogues are not rerun.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from datagen.cli_errors import run_command
from datagen.cli_flags import add_executor_flags, add_quiet_flag, command_parser, executor_overrides


def main(argv: list[str]) -> int:
    parser = command_parser("apigen-mt generate", __doc__)
    parser.add_argument(
        "--config", type=Path, required=True, help="datagen recipe (Phase 1 keys + a `simulate:` section)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="run directory (default: <out_dir>/<name> from the recipe)"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="number of base task drafts (overrides num_tasks)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in its directory")
    add_quiet_flag(parser)
    add_executor_flags(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command("generate", lambda: _generate_main(args))


def _generate_main(args: argparse.Namespace) -> int:
    from datagen.pipeline import generate

    overrides = executor_overrides(args.executor, args.workers)
    summary = asyncio.run(
        generate(
            args.config,
            args.out,
            resume=args.resume,
            limit=args.limit,
            live=not args.quiet,
            overrides=overrides,
        )
    )
    for line in summary_lines(summary):
        print(line, file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The final funnel of both phases, for people (the JSON on stdout is for programs)."""
    p1, p2 = summary["phase1"], summary["phase2"]
    session = p2.get("this_session", {})
    return [
        f"run directory: {summary['run_dir']}",
        f"phase 1: proposed {p1.get('proposed', 0)} | drafts {p1.get('drafts', 0)} | accepted "
        f"{p1.get('accepted', 0)} base + {p1.get('recombined', {}).get('accepted', 0)} recombined "
        f"= {p1.get('total_accepted', 0)} | rejected by stage {p1.get('rejected_by_stage', {})}",
        f"phase 2: blueprints {p2.get('blueprints_attempted', 0)} | attempts {p2.get('attempts', 0)} | "
        f"successful {p2.get('successful_trajectories', 0)} (+{p2.get('duplicate_successes', 0)} duplicates) | "
        f"failed {p2.get('failed_trajectories', 0)} {p2.get('failures', {})} | "
        f"blueprints with a success {p2.get('blueprints_with_success', 0)}",
        f"this session: {summary.get('wall_s', 0.0):.0f}s, {summary.get('generated_tokens', 0)} generated tokens "
        f"({summary.get('generated_tokens_per_s', 0.0):.1f} tok/s); phase 2 alone "
        f"{session.get('generated_tokens_per_s', 0.0):.1f} tok/s",
    ]
