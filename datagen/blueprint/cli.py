"""`apigen-mt blueprints`: run Phase 1 from a recipe, with a live funnel and a final summary."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

from datagen.blueprint.config import load_config
from datagen.blueprint.proposal import ModelCallError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apigen-mt blueprints", description="Phase 1: generate validated task blueprints."
    )
    parser.add_argument("--config", required=True, help="recipe, e.g. recipes/datagen/demo.yaml")
    parser.add_argument(
        "--limit", type=int, default=None, help="number of base tasks to draft (overrides num_tasks)"
    )
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: <out_dir>/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the run directory")
    parser.add_argument("--quiet", action="store_true", help="no live progress display")
    return parser


async def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    from datagen.blueprint.funnel import Funnel
    from datagen.blueprint.runner import produce_blueprints, read_run

    overrides = {"num_tasks": args.limit} if args.limit is not None else {}
    config = load_config(args.config, overrides)
    run_dir = config.run_dir(args.out)
    console = Console(stderr=True)
    live = Live(console=console, refresh_per_second=2, transient=False) if not args.quiet else None

    def show(funnel: Funnel) -> None:
        if live is not None:
            live.update(f"[bold]phase 1[/] {config.name}: {funnel.summary_line()}")

    if live is not None:
        live.start()
    try:
        async for _ in produce_blueprints(config, run_dir, resume=args.resume, on_progress=show):
            pass
    finally:
        if live is not None:
            live.stop()
    funnel = read_run(run_dir).funnel
    print(json.dumps(funnel.as_dict(), indent=2))
    print(f"run directory: {run_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_run(args))
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        logging.getLogger(__name__).error("%s", exc)
        return 2
    except ModelCallError as exc:
        logging.getLogger(__name__).error("%s", exc)
        return 1
