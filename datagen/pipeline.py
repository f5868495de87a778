"""Phase 1 and Phase 2 as one asyncio program (`apigen-mt generate`, :mod:`datagen.commands.generate`).

Blueprints flow into simulation as soon as they are accepted, and every model named in the recipe
is built once (``ModelPool``), so the generator, the committee, the simulated human and the agent
share one engine whose batch stays full. Everything lands append-only in the run directory; a killed
run resumes with ``--resume``: accepted blueprints are not redone, finished dialogues are not rerun.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datagen.recipe.datagen import DatagenRecipe, load_datagen_recipe
from datagen.rundir import DatagenRun, check_output_folder

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


async def generate(
    recipe: Path | DatagenRecipe,
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
    from datagen.pipeline_shape import run_shape
    from datagen.runner.executor import open_executor
    from datagen.simulate.runner import SimulationRunner

    overrides = {**({"num_tasks": limit} if limit is not None else {}), **(overrides or {})}
    config = recipe if isinstance(recipe, DatagenRecipe) else load_datagen_recipe(recipe, overrides)
    phase2 = config.phase2()
    run_dir, named = config.run_dir_and_flag(out)
    run = DatagenRun(check_output_folder(run_dir, flag=named))
    # Checked and saved before any engine starts (minutes on a CPU); a resume may not change what it makes.
    run.open_for_writing(config.model_dump(mode="json"), resume=resume)
    domain = get_domain(config.env)
    check_domain(config, domain)
    state = read_run(run.root) if resume and run.root.exists() else None
    earlier = state.accepted if state else []
    phase1_tokens_before = state.funnel.completion_tokens if state else 0
    async with contextlib.AsyncExitStack() as stack:
        if pool is None:
            pool = await stack.enter_async_context(ModelPool())
        declare_models(pool, config)
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
            with hold_proposals_for_phase2(config, pool, models, runner.backlog):
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
                    opened=True,  # above: Phase 2's session has created its files since
                )
        wall_s = time.monotonic() - started
    display.finish()
    return run_summary(run, phase1_funnel.as_dict(), runner.summary, wall_s, phase1_tokens_before)


def declare_models(pool: ModelPool, config: DatagenRecipe) -> None:
    """Every model the recipe uses, declared once in ``pool`` (built when first asked for)."""
    for alias in config.used_aliases():
        pool.declare(alias, config.models[alias])
    for line in pool.sharing_lines():
        log.info("models: %s", line)


def run_summary(
    run: DatagenRun,
    phase1: dict[str, Any],
    phase2: dict[str, Any],
    wall_s: float,
    phase1_tokens_before: int,
) -> dict[str, Any]:
    """What `apigen-mt generate` prints as JSON: both funnels and this session's generated tokens
    (Phase 1's from earlier sessions, ``phase1_tokens_before``, are not this session's)."""
    generated = max(phase1.get("tokens", {}).get("completion", 0) - phase1_tokens_before, 0)
    generated += phase2.get("this_session", {}).get("completion_tokens", 0)
    return {
        "run_dir": str(run.root),
        "phase1": phase1,
        "phase2": phase2,
        "wall_s": wall_s,
        "generated_tokens": generated,
        "generated_tokens_per_s": generated / wall_s if wall_s > 0 else 0.0,
    }


@contextlib.contextmanager
def hold_proposals_for_phase2(
    config: DatagenRecipe, pool: ModelPool, models: Any, backlog: Callable[[], int]
) -> Iterator[None]:
    """Phase 2 first: while accepted blueprints wait for a dialogue slot (``backlog``), new Phase 1
    proposals wait at the admission of the engine that Phase 1's generator shares with the dialogues
    (:meth:`datagen.llm.admission.Admission.hold_proposals_while`), until the block ends. A generator
    on an engine of its own, or models built by Ray workers, get no hold."""
    from datagen.llm.pool import engine_key

    phase2 = config.phase2()
    generator = engine_key(pool.spec(config.generator.model))
    shared = any(engine_key(pool.spec(role.model)) == generator for role in (phase2.agent, phase2.user))
    if models is None or not shared:
        yield
        return
    lift = models.generator.admission.hold_proposals_while(lambda: backlog() > 0)
    try:
        yield
    finally:
        lift()


def engine_sources(pool: ModelPool, aliases: Sequence[str]) -> list[Any]:
    """The engine figures of every model the run has built, once per engine."""
    from datagen.llm.engine_stats import stats_source

    models = {id(model): model for model in (pool.built(alias) for alias in aliases) if model is not None}
    return [source for source in map(stats_source, models.values()) if source is not None]
