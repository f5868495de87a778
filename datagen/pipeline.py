"""`apigen-mt generate --config RECIPE`: Phase 1 and Phase 2 as one asyncio program.

Blueprints flow into simulation as soon as they are accepted, and every model named in the recipe
is built once (``ModelPool``), so the generator, the committee, the simulated human and the agent
share one engine whose batch stays full. Everything lands append-only in the run directory; a killed
run resumes with ``--resume``: accepted blueprints are not redone, finished dialogues are not rerun.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class LiveFunnel:
    """One status line for both phases on stderr (stdout stays clean for the JSON summary): redrawn in
    place on a terminal, logged every ``log_every_s`` otherwise (CI logs, nohup)."""

    def __init__(self, enabled: bool = True, log_every_s: float = 30.0):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.enabled = enabled
        self.terminal = self.console.is_terminal
        self.log_every_s = log_every_s
        self.phase1: dict[str, Any] = {}
        self.phase2: dict[str, Any] = {}
        self._started = time.monotonic()
        self._phase1_tokens_before: int | None = None  # an earlier session's tokens are not this one's rate
        self._last = 0.0

    def on_phase1(self, funnel: Any) -> None:
        self.phase1 = funnel.as_dict()
        self._show()

    def on_phase2(self, stats: Any) -> None:
        self.phase2 = stats.as_dict()
        self._show()

    def set_phase1_baseline(self, completion_tokens: int) -> None:
        self._phase1_tokens_before = completion_tokens

    def tokens_per_s(self) -> float:
        phase1_tokens = self.phase1.get("tokens", {}).get("completion", 0) - (self._phase1_tokens_before or 0)
        phase2_tokens = self.phase2.get("completion_tokens", 0)
        return (max(phase1_tokens, 0) + phase2_tokens) / max(time.monotonic() - self._started, 1e-9)

    def line(self) -> str:
        p1, p2 = self.phase1, self.phase2
        return (
            f"[phase 1] proposed {p1.get('proposed', 0)} accepted {p1.get('total_accepted', 0)} "
            f"| [phase 2] attempts {p2.get('attempts', 0)} ok {p2.get('successful_trajectories', 0)} "
            f"failed {sum(p2.get('failures', {}).values())} "
            f"| {self.tokens_per_s():.0f} generated tok/s"
        )

    def _show(self) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < (0.5 if self.terminal else self.log_every_s):
            return
        self._last = now
        if self.terminal:
            self.console.print(self.line(), end="\r", highlight=False, soft_wrap=True)
        else:
            log.info("%s", self.line())

    def finish(self) -> None:
        if self.enabled and self.terminal:
            self.console.print(highlight=False)


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


async def _accepted_then_new(earlier: list[Any], new: AsyncIterator[Any]) -> AsyncIterator[Any]:
    for blueprint in earlier:
        yield blueprint
    async for blueprint in new:
        yield blueprint


async def generate(
    recipe: Path,
    out: Path | None,
    *,
    resume: bool,
    limit: int | None,
    live: bool = True,
    pool: Any = None,
    recipe_overrides: dict[str, Any] | None = None,
    simulate_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs both phases; ``pool`` (a ``ModelPool``) lets a caller keep one engine across several runs."""
    from datagen.blueprint.config import load_config
    from datagen.blueprint.runner import build_models, produce_blueprints, read_run
    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from datagen.redact import redact_config
    from datagen.runio import write_json_atomic
    from datagen.simulate.cli import load_simulate_config
    from datagen.simulate.runner import SimulationRunner

    overrides = {**({"num_tasks": limit} if limit is not None else {}), **(recipe_overrides or {})}
    phase1 = load_config(recipe, overrides)
    phase2 = load_simulate_config(recipe, simulate_overrides)
    run_dir = phase1.run_dir(out)
    _check_run_dir(run_dir, resume)  # before any engine starts: that takes minutes on a CPU
    state = read_run(run_dir) if resume and run_dir.exists() else None
    earlier = state.accepted if state else []
    phase1_tokens_before = state.funnel.completion_tokens if state else 0
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "simulate_config.json", redact_config(phase2.model_dump(mode="json")))
    async with contextlib.AsyncExitStack() as stack:
        if pool is None:
            pool = await stack.enter_async_context(ModelPool())
        models = build_models(phase1, pool=pool)  # starts the engines: rates are timed from here
        display = LiveFunnel(enabled=live)
        display.set_phase1_baseline(phase1_tokens_before)
        if state is not None:
            display.phase1 = state.funnel.as_dict()  # a resumed run may have no Phase 1 work left to report
        started = time.monotonic()
        runner = SimulationRunner(phase2, run_dir, get_domain, pool, on_progress=display.on_phase2)
        stream = produce_blueprints(
            phase1, run_dir, resume=resume, models=models, on_progress=display.on_phase1
        )
        phase2_summary = await runner.run(_accepted_then_new(earlier, stream))
        wall_s = time.monotonic() - started
    display.finish()
    phase1_summary = (
        json.loads((run_dir / "stats.json").read_text()) if (run_dir / "stats.json").exists() else {}
    )
    generated = max(phase1_summary.get("tokens", {}).get("completion", 0) - phase1_tokens_before, 0)
    generated += phase2_summary.get("this_session", {}).get("completion_tokens", 0)
    return {
        "run_dir": str(run_dir),
        "phase1": phase1_summary,
        "phase2": phase2_summary,
        "wall_s": wall_s,
        "generated_tokens": generated,
        "generated_tokens_per_s": generated / wall_s if wall_s > 0 else 0.0,
    }


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    from datagen.blueprint.runner import BLUEPRINTS, REJECTIONS
    from datagen.simulate.runner import FAILURES, TRAJECTORIES

    held = [name for name in (BLUEPRINTS, REJECTIONS, TRAJECTORIES, FAILURES) if (run_dir / name).exists()]
    if held and not resume:
        raise FileExistsError(
            f"{run_dir} already holds a run ({', '.join(held)}); pass --resume to continue it or --out for a new directory"
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="apigen-mt generate", description=__doc__)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = asyncio.run(generate(args.config, args.out, resume=args.resume, limit=args.limit))
    except FileExistsError as exc:
        print(f"apigen-mt generate: {exc}", file=sys.stderr)
        return 2
    for line in summary_lines(summary):
        print(line, file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0
