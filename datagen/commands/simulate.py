"""`apigen-mt simulate --config RECIPE --run-dir RUN_DIR`: Phase 2 alone, over accepted blueprints."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from apigen_rules.errors import UsageError
from datagen.cli_errors import run_command
from datagen.cli_flags import (
    add_executor_flags,
    add_quiet_flag,
    command_parser,
    deprecated_alias,
    executor_overrides,
)

log = logging.getLogger(__name__)


def load_blueprints(run_dir: Path, limit: int | None = None) -> list[Any]:
    """The accepted blueprints of a Phase 1 run directory (damaged lines are reported and skipped)."""
    from datagen.records import Blueprint
    from datagen.rundir import DatagenRun, read_records

    run = DatagenRun(run_dir)
    if not run.blueprints.exists():
        raise UsageError(
            f"{run_dir} has no {run.blueprints.name}; expected a Phase 1 run directory, run `apigen-mt blueprints` first"
        )
    blueprints = read_records(run.blueprints, Blueprint)
    return blueprints[:limit] if limit is not None else blueprints


def progress_line(enabled: bool = True):
    """The run's progress line with Phase 2's counts; its ``update`` takes the runner's stats."""
    from datagen.runner.progress import ProgressLine

    latest: dict[str, Any] = {}

    def render() -> str:
        d = latest.get("stats", {})
        return (
            f"[phase 2] ok {d.get('successful_trajectories', 0)}/{d.get('attempts', 0)} attempts "
            f"| failures {d.get('failures', {})} | {d.get('generated_tokens_per_s', 0.0):.0f} tok/s"
        )

    display = ProgressLine(render, enabled=enabled)

    def on_progress(stats) -> None:
        latest["stats"] = stats.as_dict()
        display.update()

    return display, on_progress


async def run_simulation(
    config,
    blueprints: list[Any],
    out_dir: Path,
    models: dict[str, Any],
    executor_config: Any = None,
    quiet: bool = False,
) -> dict[str, Any]:
    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from datagen.rundir import DatagenRun
    from datagen.runner.executor import open_executor
    from datagen.simulate.runner import SimulationRunner

    display, on_progress = progress_line(enabled=not quiet)
    async with ModelPool(models) as pool, open_executor(executor_config, models) as executor:
        runner = SimulationRunner(
            config, DatagenRun(out_dir), get_domain, pool, on_progress=on_progress, executor=executor
        )
        summary = await runner.run(blueprints)
    display.finish()
    return summary


def main(argv: list[str]) -> int:
    parser = command_parser("apigen-mt simulate", __doc__)
    parser.add_argument(
        "--config", type=Path, required=True, help="datagen recipe with a `simulate:` section"
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        required=True,
        help="Phase 1 run directory whose accepted blueprints (blueprints.jsonl) are simulated",
    )
    deprecated_alias(parser, "--blueprints", "--run-dir")
    parser.add_argument("--out", type=Path, default=None, help="where trajectories go (default: --run-dir)")
    parser.add_argument("--limit", type=int, default=None, help="simulate only the first N blueprints")
    parser.add_argument(
        "--attempts", type=int, default=None, help="dialogues tried per blueprint (default: the recipe's)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="dialogues in flight at once (default: the recipe's)"
    )
    add_quiet_flag(parser)
    add_executor_flags(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command("simulate", lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    from datagen.envs.registry import get_domain
    from datagen.recipe.datagen import load_datagen_recipe
    from datagen.rundir import DatagenRun, check_output_folder, save_recipe

    recipe = load_datagen_recipe(
        args.config,
        {
            "simulate.attempts": args.attempts,
            "simulate.concurrency": args.concurrency,
            **executor_overrides(args.executor, args.workers),
        },
    )
    config = recipe.phase2("apigen-mt simulate")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit: expected a number of blueprints >= 1, found {args.limit}")
    blueprints = load_blueprints(args.run_dir, args.limit)
    if not isinstance(recipe.env, str):
        get_domain(recipe.env)  # a remote env: reached (and known by its name) before the blueprints name it
    for env in sorted({b.env for b in blueprints}):
        get_domain(env)  # an unknown environment fails here, before any engine starts
    out_dir = check_output_folder(args.out or args.run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = DatagenRun(out_dir)
    save_recipe(run.recipe, recipe.model_dump(mode="json"))  # a Phase 1 run already holds it: kept
    summary = asyncio.run(
        run_simulation(
            config, blueprints, out_dir, recipe.used_specs(config), recipe.executor, quiet=args.quiet
        )
    )
    print(json.dumps(summary, indent=2))
    return 0
