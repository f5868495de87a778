"""`apigen-mt simulate --config RECIPE --blueprints RUN_DIR`: Phase 2 alone, over accepted blueprints."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from datagen.records import Blueprint
from datagen.redact import redact_config, validation_problems
from datagen.runio import read_models, write_json_atomic
from datagen.simulate.config import SimulateConfig

log = logging.getLogger(__name__)


def load_simulate_config(path: Path, overrides: dict[str, Any] | None = None) -> SimulateConfig:
    """The `simulate:` section of a datagen recipe."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise SystemExit(f"no recipe at {path}; pass one such as recipes/datagen/demo.yaml") from exc
    section = data.get("simulate") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise SystemExit(f"{path} has no `simulate:` section; Phase 2 needs its agent and user models there")
    section = {**section, **(overrides or {})}
    try:
        return SimulateConfig.model_validate(section)
    except ValidationError as exc:
        raise SystemExit(f"{path}: invalid `simulate:` section:\n{validation_problems(exc)}") from exc


def load_blueprints(run_dir: Path, limit: int | None = None) -> list[Blueprint]:
    if not (run_dir / "blueprints.jsonl").exists():
        raise SystemExit(f"{run_dir} has no blueprints.jsonl; run `apigen-mt blueprints` first")
    blueprints, problems = read_models(run_dir / "blueprints.jsonl", Blueprint)
    for problem in problems:
        log.warning("%s", problem)
    return blueprints[:limit] if limit is not None else blueprints


def progress_printer():
    """A live one-line progress display (accepted/attempted, tokens/s) on stderr."""
    from rich.console import Console

    console = Console(stderr=True)

    def show(stats) -> None:
        d = stats.as_dict()
        console.print(
            f"[phase 2] ok {d['successful_trajectories']}/{d['attempts']} attempts "
            f"| failures {d['failures']} | {d['generated_tokens_per_s']:.0f} tok/s",
            end="\r",
            highlight=False,
        )

    return show


async def run_simulation(
    config: SimulateConfig, blueprints: list[Blueprint], out_dir: Path
) -> dict[str, Any]:
    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from datagen.simulate.runner import SimulationRunner

    async with ModelPool() as pool:
        runner = SimulationRunner(config, out_dir, get_domain, pool, on_progress=progress_printer())
        return await runner.run(blueprints)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="apigen-mt simulate", description=__doc__)
    parser.add_argument(
        "--config", type=Path, required=True, help="datagen recipe with a `simulate:` section"
    )
    parser.add_argument(
        "--blueprints", type=Path, required=True, help="run directory holding blueprints.jsonl"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="where trajectories go (default: the blueprints' run dir)"
    )
    parser.add_argument("--limit", type=int, default=None, help="simulate only the first N blueprints")
    parser.add_argument("--attempts", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = {
        k: v for k, v in {"attempts": args.attempts, "concurrency": args.concurrency}.items() if v is not None
    }
    config = load_simulate_config(args.config, overrides)
    blueprints = load_blueprints(args.blueprints, args.limit)
    out_dir = args.out or args.blueprints
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "simulate_config.json", redact_config(config.model_dump(mode="json")))
    summary = asyncio.run(run_simulation(config, blueprints, out_dir))
    print(file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0
