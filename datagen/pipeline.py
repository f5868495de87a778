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
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class LiveFunnel:
    """One status line for both phases, refreshed as records land (stderr, so stdout stays clean)."""

    def __init__(self, enabled: bool = True):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.phase1: dict[str, Any] = {}
        self.phase2: dict[str, Any] = {}
        self._last = 0.0

    def on_phase1(self, funnel: Any) -> None:
        self.phase1 = funnel.as_dict()
        self._show()

    def on_phase2(self, stats: Any) -> None:
        self.phase2 = stats.as_dict()
        self._show()

    def _show(self) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.5:
            return
        self._last = now
        p1, p2 = self.phase1, self.phase2
        self.console.print(
            f"[phase 1] proposed {p1.get('proposed', 0)} accepted {p1.get('accepted', 0)} "
            f"| [phase 2] ok {p2.get('successful_trajectories', 0)}/{p2.get('attempts', 0)} "
            f"| {p2.get('generated_tokens_per_s', 0.0):.0f} tok/s",
            end="\r",
            highlight=False,
        )


async def _accepted_then_new(earlier: list[Any], new: AsyncIterator[Any]) -> AsyncIterator[Any]:
    for blueprint in earlier:
        yield blueprint
    async for blueprint in new:
        yield blueprint


async def generate(recipe: Path, out: Path | None, *, resume: bool, limit: int | None, live: bool = True) -> dict[str, Any]:
    from datagen.blueprint.config import load_config
    from datagen.blueprint.runner import build_models, produce_blueprints, read_run
    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from datagen.simulate.cli import load_simulate_config
    from datagen.simulate.runner import SimulationRunner

    overrides = {"num_tasks": limit} if limit is not None else None
    phase1 = load_config(recipe, overrides)
    phase2 = load_simulate_config(recipe)
    run_dir = phase1.run_dir(out)
    earlier = read_run(run_dir).accepted if resume and run_dir.exists() else []
    display = LiveFunnel(enabled=live)
    async with ModelPool() as pool:
        models = build_models(phase1, pool=pool)
        runner = SimulationRunner(phase2, run_dir, get_domain, pool, on_progress=display.on_phase2)
        stream = produce_blueprints(phase1, run_dir, resume=resume, models=models, on_progress=display.on_phase1)
        phase2_summary = await runner.run(_accepted_then_new(earlier, stream))
        (run_dir / "simulate_config.json").write_text(phase2.model_dump_json(indent=2), encoding="utf-8")
    phase1_summary = json.loads((run_dir / "stats.json").read_text()) if (run_dir / "stats.json").exists() else {}
    return {"run_dir": str(run_dir), "phase1": phase1_summary, "phase2": phase2_summary}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="apigen-mt generate", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="datagen recipe (Phase 1 keys + a `simulate:` section)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: <out_dir>/<name> from the recipe)")
    parser.add_argument("--limit", type=int, default=None, help="number of base task drafts (overrides num_tasks)")
    parser.add_argument("--resume", action="store_true", help="continue the run in its directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = asyncio.run(generate(args.config, args.out, resume=args.resume, limit=args.limit))
    except FileExistsError as exc:
        print(f"apigen-mt generate: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0
