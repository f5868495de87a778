"""`apigen-mt blueprints`: run Phase 1 from a recipe, with a live funnel and a final summary."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

from datagen.cli_errors import run_command
from datagen.cli_flags import add_executor_flags, add_quiet_flag, command_parser, executor_overrides


def _build_parser() -> argparse.ArgumentParser:
    parser = command_parser("apigen-mt blueprints", "Phase 1: generate validated task blueprints.")
    parser.add_argument("--config", required=True, help="recipe, e.g. recipes/datagen/demo.yaml")
    parser.add_argument(
        "--limit", type=int, default=None, help="number of base tasks to draft (overrides num_tasks)"
    )
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: <out_dir>/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the run directory")
    add_quiet_flag(parser)
    add_executor_flags(parser)
    return parser


async def _run(args: argparse.Namespace) -> int:
    from datagen.blueprint.runner import build_models, check_domain, prepare_run_dir, run_blueprints
    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from datagen.recipe.datagen import load_datagen_recipe
    from datagen.rundir import check_output_folder
    from datagen.runner.executor import open_executor
    from datagen.runner.progress import ProgressLine

    config = load_datagen_recipe(
        args.config, {"num_tasks": args.limit, **executor_overrides(args.executor, args.workers)}
    )
    run_dir, named = config.run_dir_and_flag(args.out)
    run_dir = check_output_folder(run_dir, flag=named)
    domain = get_domain(config.env)
    check_domain(config, domain)
    prepare_run_dir(config, run_dir, args.resume)  # refuses a finished run before any engine starts
    funnel_line = {"text": "starting"}
    display = ProgressLine(lambda: f"[phase 1] {config.name}: {funnel_line['text']}", enabled=not args.quiet)

    def show(funnel) -> None:
        funnel_line["text"] = funnel.summary_line()
        display.update()

    async with (
        ModelPool(config.used_specs()) as pool,
        open_executor(config.executor, config.used_specs()) as executor,
    ):
        funnel = await run_blueprints(
            config,
            run_dir,
            resume=args.resume,
            domain=domain,
            models=None if executor.remote else build_models(config, pool),
            executor=executor,
            on_progress=show,
        )
    display.finish()
    print(json.dumps(funnel.as_dict(), indent=2))
    logging.getLogger(__name__).info("run directory: %s", run_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_command("blueprints", lambda: asyncio.run(_run(args)))
