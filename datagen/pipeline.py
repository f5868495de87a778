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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datagen.blueprint.config import BlueprintRunConfig, load_config
from datagen.cli_errors import run_command
from datagen.cli_flags import add_quiet_flag, command_parser
from datagen.rundir import DatagenRun
from datagen.runner.executor import add_executor_flags, executor_overrides

if TYPE_CHECKING:
    from datagen.llm.pool import ModelPool

log = logging.getLogger(__name__)


class LiveFunnel:
    """Both phases in the run's one progress line (:class:`datagen.runner.progress.ProgressLine`),
    with what the engines themselves report (:mod:`datagen.llm.engine_stats`): prompt and generated
    tokens per second, the prefix cache's share of the prompt, requests running and waiting."""

    def __init__(
        self,
        enabled: bool = True,
        log_every_s: float = 30.0,
        engines: Callable[[], Sequence[Any]] = list,
    ):
        from datagen.runner.progress import ProgressLine

        self.phase1: dict[str, Any] = {}
        self.phase2: dict[str, Any] = {}
        self.engines = engines  # -> engine_stats.StatsSource of every engine started so far
        self._started = time.monotonic()
        self._phase1_tokens_before: int | None = None  # an earlier session's tokens are not this one's rate
        self.display = ProgressLine(self.line, enabled=enabled, log_every_s=log_every_s)

    def on_phase1(self, funnel: Any) -> None:
        self.phase1 = funnel.as_dict()
        self.display.update()

    def on_phase2(self, stats: Any) -> None:
        self.phase2 = stats.as_dict()
        self.display.update()

    def set_phase1_baseline(self, completion_tokens: int) -> None:
        self._phase1_tokens_before = completion_tokens

    def tokens_per_s(self) -> float:
        phase1_tokens = self.phase1.get("tokens", {}).get("completion", 0) - (self._phase1_tokens_before or 0)
        phase2_tokens = self.phase2.get("completion_tokens", 0)
        return (max(phase1_tokens, 0) + phase2_tokens) / max(time.monotonic() - self._started, 1e-9)

    def engine_line(self) -> str:
        """The engines' own figures over the last seconds ('' where no engine reports any)."""
        rates = [r for r in (engine.rates() for engine in self.engines()) if r is not None]
        if not rates:
            return ""
        seconds = max(r.seconds for r in rates)
        prompt = sum(r.prompt_tokens for r in rates)
        cached = sum(r.prompt_cached_tokens for r in rates)
        return (
            f" | engine: prompt {prompt / seconds:.0f} tok/s ({cached / prompt if prompt else 0:.0%} cached) "
            f"generation {sum(r.generation_tokens for r in rates) / seconds:.0f} tok/s "
            f"running {sum(r.running for r in rates)} waiting {sum(r.waiting for r in rates)}"
        )

    def line(self) -> str:
        p1, p2 = self.phase1, self.phase2
        return (
            f"[phase 1] proposed {p1.get('proposed', 0)} accepted {p1.get('total_accepted', 0)} "
            f"| [phase 2] attempts {p2.get('attempts', 0)} ok {p2.get('successful_trajectories', 0)} "
            f"failed {sum(p2.get('failures', {}).values())} "
            f"| {self.tokens_per_s():.0f} tok/s finished" + self.engine_line()
        )

    def finish(self) -> None:
        self.display.finish()


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


async def generate(
    recipe: Path | BlueprintRunConfig,
    out: Path | None,
    *,
    resume: bool,
    limit: int | None = None,
    live: bool = True,
    pool: ModelPool | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs both phases. ``recipe`` is a path or an already loaded recipe; ``overrides`` are dotted
    recipe keys (flags); ``pool`` lets a caller keep one engine across several runs."""
    from datagen.blueprint.runner import build_models, check_domain, read_run, run_blueprints
    from datagen.envs.registry import get_domain
    from datagen.llm.pool import ModelPool
    from datagen.runner.executor import open_executor
    from datagen.runner.shape import run_shape
    from datagen.simulate.runner import SimulationRunner

    overrides = {**({"num_tasks": limit} if limit is not None else {}), **(overrides or {})}
    config = recipe if isinstance(recipe, BlueprintRunConfig) else load_config(recipe, overrides)
    phase2 = config.phase2()
    run = DatagenRun(config.run_dir(out))
    check_run_dir(run, resume)  # everything is checked before any engine starts: that takes minutes on a CPU
    domain = get_domain(config.env)
    check_domain(config, domain)
    state = read_run(run.root) if resume and run.root.exists() else None
    earlier = state.accepted if state else []
    phase1_tokens_before = state.funnel.completion_tokens if state else 0
    async with contextlib.AsyncExitStack() as stack:
        if pool is None:
            pool = await stack.enter_async_context(ModelPool())
        for alias in config.used_aliases():
            pool.declare(alias, config.models[alias])
        for line in pool.sharing_lines():
            log.info("models: %s", line)
        executor = await stack.enter_async_context(open_executor(config.executor, config.used_specs()))
        # Locally this starts the engines; on Ray every worker builds its own (rates are timed from here).
        models = None if executor.remote else build_models(config, pool)
        shape = run_shape(
            config,
            phase2,
            models.generator if models else None,
            pool.get(phase2.agent.model) if models else None,
        )
        log.info("concurrency: %s", shape.describe(config.concurrency, phase2.concurrency))
        display = LiveFunnel(enabled=live, engines=lambda: engine_sources(pool, config.used_aliases()))
        display.set_phase1_baseline(phase1_tokens_before)
        if state is not None:
            display.phase1 = state.funnel.as_dict()  # a resumed run may have no Phase 1 work left to report
        started = time.monotonic()
        runner = SimulationRunner(
            phase2,
            run,
            get_domain,
            pool,
            on_progress=display.on_phase2,
            executor=executor,
            concurrency=shape.phase2,
        )
        async with runner.session() as simulate:
            lift_hold = hold_proposals_for_phase2(config, pool, models, runner.backlog)
            try:
                for blueprint in earlier:
                    simulate(blueprint)
                phase1_funnel = await run_blueprints(
                    config,
                    run.root,
                    resume=resume,
                    domain=domain,
                    models=models,
                    executor=executor,
                    on_progress=display.on_phase1,
                    on_accepted=simulate,
                    concurrency=shape.phase1,
                )
            finally:
                lift_hold()
        wall_s = time.monotonic() - started
    display.finish()
    phase1_summary = phase1_funnel.as_dict()
    generated = max(phase1_summary.get("tokens", {}).get("completion", 0) - phase1_tokens_before, 0)
    generated += runner.summary.get("this_session", {}).get("completion_tokens", 0)
    return {
        "run_dir": str(run.root),
        "phase1": phase1_summary,
        "phase2": runner.summary,
        "wall_s": wall_s,
        "generated_tokens": generated,
        "generated_tokens_per_s": generated / wall_s if wall_s > 0 else 0.0,
    }


def hold_proposals_for_phase2(
    config: BlueprintRunConfig, pool: ModelPool, models: Any, backlog: Callable[[], int]
) -> Callable[[], None]:
    """Phase 2 first: while accepted blueprints wait for a dialogue slot (``backlog``), new Phase 1
    proposals wait at the admission of the engine that Phase 1's generator shares with the dialogues
    (:meth:`datagen.llm.admission.Admission.hold_proposals_while`). A generator on an engine of its
    own, or models built by Ray workers, get no hold. Returns the function that lifts it."""
    from datagen.llm.pool import engine_key

    phase2 = config.phase2()
    generator = engine_key(pool.spec(config.generator.model))
    shared = any(engine_key(pool.spec(role.model)) == generator for role in (phase2.agent, phase2.user))
    if models is None or not shared:
        return lambda: None
    return models.generator.admission.hold_proposals_while(lambda: backlog() > 0)


def engine_sources(pool: ModelPool, aliases: Sequence[str]) -> list[Any]:
    """The engine figures of every model the run has built, once per engine."""
    from datagen.llm.engine_stats import stats_source

    models = {id(model): model for model in (pool.built(alias) for alias in aliases) if model is not None}
    return [source for source in map(stats_source, models.values()) if source is not None]


def check_run_dir(run: DatagenRun, resume: bool) -> None:
    held = run.held_records()
    if held and not resume:
        raise FileExistsError(
            f"{run.root} already holds a run ({', '.join(held)}); pass --resume to continue it or --out for a new directory"
        )


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
