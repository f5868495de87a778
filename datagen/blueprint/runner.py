"""Phase 1 over a run directory: every task draft (then every recombination group) is one job of the
batch layer (:mod:`datagen.runner.batch`), recorded the moment it finishes.

The run directory (:class:`datagen.rundir.DatagenRun`) gets one line per finished task, in
``blueprints`` (accepted, with its funnel record in provenance) or ``rejections`` (the stage, the
reasons, the last draft), a line per session and task in ``events``, and the funnel, rewritten after
every task. A task is either done (its id is in one of the two) or not started, so a killed run
resumes by running the tasks that are not done. Task ids and every random draw derive from the run
seed and the task index, so a resumed task is the same task. Recombination runs once the base tasks
are done and plans its groups deterministically from the accepted set. A task that raises is a
rejection at stage ``error``; a model that stays unreachable stops the run (``--resume`` goes on).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from datagen.blueprint.committee import Judge
from datagen.blueprint.context import RunContext, TaskOutcome
from datagen.blueprint.funnel import Funnel
from datagen.blueprint.grounding import StatePlanner
from datagen.blueprint.lifecycle import base_task_id, develop_task
from datagen.blueprint.proposal import generator_system_prompt, judge_system_prompt
from datagen.blueprint.recombine import group_id, plan_groups, recombine
from datagen.blueprint.samplers import FewshotPool, UserIndex, load_traits
from datagen.blueprint.stages import Stage
from datagen.blueprint.validators import duplicate_key
from datagen.envs.base import Domain
from datagen.envs.references import ReferencesError, check_references
from datagen.joberrors import error_message
from datagen.llm.base import ModelUnavailableError
from datagen.llm.types import ChatModel, Usage
from datagen.recipe.datagen import DatagenRecipe, ModelConfig
from datagen.records import Blueprint
from datagen.rundir import DatagenRun, JsonlAppender, read_records, read_rows
from datagen.runner.batch import Batch, Job
from datagen.runner.executor import LOCAL, Executor

if TYPE_CHECKING:
    from datagen.llm.pool import ModelPool

log = logging.getLogger(__name__)

# Failures that are not the task's: the run stops and resumes them later.
OUTAGES: tuple[type[BaseException], ...] = (ModelUnavailableError,)  # ModelCallError is one
ERROR_STAGE = "error"  # a task whose code raised: kept as a rejection naming the exception


@dataclass
class Models:
    """Phase 1's models: the generator and one judge per committee seat (their pool closes them)."""

    generator: ChatModel
    judges: list[Judge]


def build_models(config: DatagenRecipe, pool: ModelPool) -> Models:
    """The generator and the committee's seats from the pool (the pool builds and closes them)."""
    committee = config.committee
    seat = ModelConfig(
        model=config.generator.model, temperature=committee.temperature, max_tokens=committee.max_tokens
    )
    judges = [
        Judge(f"judge{i}:{pool.get(alias).name}", pool.get(alias), seat.model_copy(update={"model": alias}))
        for i, alias in enumerate(config.judge_aliases())
    ]
    return Models(pool.get(config.generator.model), judges)


def load_domain(name: str) -> Domain:
    from datagen.envs.registry import get_domain

    return get_domain(name)


def check_domain(config: DatagenRecipe, domain: Domain) -> None:
    """What Phase 1 needs of a domain (its user table, its declared references), checked before any
    engine starts; raises ``ReferencesError`` naming what to declare."""
    db_seed = config.db_seed if config.db_seed is not None else domain.train_seed
    users = UserIndex(domain.new_env(db_seed), config.samplers.user_table)
    if not users.user_ids and config.proposal.type != "llm":
        raise ReferencesError(
            f"domain {domain.name!r} exposes no state, and {config.proposal.type} proposals fill tool "
            "arguments from the data: use `proposal: {type: llm}`, or declare where the server's state "
            "is (env.state: a resource or read calls) with its references"
        )
    if users.user_ids:
        check_references(domain, users.refs, users.tables)


@dataclass
class RunState:
    """What a run directory already holds."""

    accepted: list[Blueprint]
    done: set[str]
    funnel: Funnel
    sessions: int


class RejectionRecord(BaseModel):
    """The fields of a rejections.jsonl line that resume reads; the rest is kept as written."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    funnel: dict[str, Any]


def read_run(run_dir: Path) -> RunState:
    """What ``run_dir`` holds. A damaged line (not JSON, not a record of its file) is reported with
    its file and line and skipped, so its task runs again; a second record of a finished task is
    reported and ignored; a record whose funnel entry is damaged counts as done but not in the funnel."""
    run = DatagenRun(run_dir)
    funnel = Funnel()
    accepted: list[Blueprint] = []
    done: set[str] = set()

    def count(task_id: str, record: Any, accepted: bool) -> None:
        try:
            funnel.add(record, accepted=accepted)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning(
                "%s: the funnel record of %s is damaged (%r); the funnel leaves it out", run_dir, task_id, exc
            )

    for blueprint in read_records(run.blueprints, Blueprint):
        if blueprint.id in done:
            log.warning("%s holds %s twice; the first record is kept", run.blueprints, blueprint.id)
            continue
        done.add(blueprint.id)
        accepted.append(blueprint)
        count(blueprint.id, blueprint.provenance.get("funnel"), True)
    for row in read_records(run.rejections, RejectionRecord):
        if row.task_id not in done:
            done.add(row.task_id)
            count(row.task_id, row.funnel, False)
    sessions = sum(1 for e in read_rows(run.events) if e.get("event") == "session_start")
    return RunState(accepted, done, funnel, sessions)


def prepare_run_dir(config: DatagenRecipe, run_dir: Path, resume: bool) -> None:
    """Opens the run for writing (the run directory's one guard) and saves the recipe."""
    DatagenRun(run_dir).open_for_writing(config.model_dump(mode="json"), resume=resume)


def funnel_record(outcome: TaskOutcome) -> dict[str, Any]:
    accepted_round = outcome.blueprint.provenance.get("round") if outcome.blueprint is not None else None
    return {
        "kind": outcome.kind,
        "attempts": [a.record() for a in outcome.attempts],
        "round": accepted_round,
        "stage": outcome.stage,
        "usage": {
            "prompt_tokens": outcome.usage.prompt_tokens,
            "completion_tokens": outcome.usage.completion_tokens,
        },
    }


class RunWriter:
    """Appends outcomes; called from the event loop only, so records never interleave."""

    def __init__(self, run_dir: Path, funnel: Funnel, session: int):
        self.run = DatagenRun(run_dir)
        self.funnel = funnel
        self.session = session
        self.blueprints = JsonlAppender(self.run.blueprints)
        self.rejections = JsonlAppender(self.run.rejections)
        self.events = JsonlAppender(self.run.events)

    def write(self, outcome: TaskOutcome) -> Blueprint | None:
        record = funnel_record(outcome)
        if outcome.blueprint is not None:
            blueprint: Blueprint = outcome.blueprint
            blueprint.provenance["funnel"] = record
            self.blueprints.write(blueprint.model_dump(mode="json"))
        else:
            self.rejections.write(
                {
                    "task_id": outcome.task_id,
                    "kind": outcome.kind,
                    "stage": outcome.stage,
                    "reasons": outcome.reasons[:20],
                    "draft": outcome.draft,
                    "provenance": outcome.provenance,
                    "session": self.session,
                    "funnel": record,
                }
            )
        self.funnel.add(record, accepted=outcome.blueprint is not None)
        self.events.write(
            {
                "event": "task_done",
                "task_id": outcome.task_id,
                "kind": outcome.kind,
                "accepted": outcome.blueprint is not None,
                "stage": outcome.stage,
                "session": self.session,
            }
        )
        self.run.write_phase1_stats(self.funnel.as_dict())
        return outcome.blueprint

    def close(self) -> None:
        self.run.write_phase1_stats(self.funnel.as_dict())
        for appender in (self.blueprints, self.rejections, self.events):
            appender.close()


def rejected_by_error(task_id: str, kind: str, exc: BaseException) -> TaskOutcome:
    """A task whose code raised, as a rejection at stage ``error`` (one row; the run goes on)."""
    return TaskOutcome(
        task_id, kind, attempts=[], usage=Usage(), stage=ERROR_STAGE, reasons=[error_message(exc)]
    )


def build_context(
    config: DatagenRecipe, domain: Domain, models: Models, accepted: list[Blueprint], session: int
) -> RunContext:
    """What every task of a run shares (see :class:`RunContext`), as of the blueprints ``accepted``
    before this session: the few-shot pool holds the base ones, the near-duplicate index all."""
    db_seed = config.db_seed if config.db_seed is not None else domain.train_seed
    pool = FewshotPool(domain.example_tasks, config.samplers.fewshot_pool_max)
    for blueprint in accepted:
        if blueprint.provenance.get("kind") == "base":
            pool.add(blueprint)
    users = UserIndex(domain.new_env(db_seed), config.samplers.user_table)
    return RunContext(
        config=config,
        domain=domain,
        generator=models.generator,
        judges=models.judges,
        generator_system=generator_system_prompt(domain),
        judge_system=judge_system_prompt(domain),
        pool=pool,
        traits=load_traits(),
        db_seed=db_seed,
        users=users,
        planner=StatePlanner(domain, users, db_seed),
        session=session,
        accepted_keys={duplicate_key(b.user_id, b.actions) for b in accepted},
    )


class TaskJobs:
    """Phase 1's job function over one :class:`RunContext`: a base task by index, a recombination by
    group; ``notify`` tells it of a blueprint the run accepted (wherever it was drafted)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    async def __call__(self, payload: int | list[Blueprint]) -> TaskOutcome:
        if isinstance(payload, int):
            return await develop_task(self.ctx, payload)
        return await recombine(self.ctx, payload)

    def notify(self, blueprint: Blueprint) -> None:
        self.ctx.accepted_keys.add(duplicate_key(blueprint.user_id, blueprint.actions))
        if blueprint.provenance.get("kind") == "base":
            self.ctx.pool.add(blueprint)


@dataclass(frozen=True)
class TaskWork:
    """Phase 1's tasks as plain data for an executor's workers: each builds its own context (domain,
    models by alias, few-shot pool, state planner) from the recipe and the blueprints accepted before
    this session, then learns of every blueprint accepted since through ``notify``."""

    config: DatagenRecipe
    accepted: list[Blueprint]
    session: int

    def bind(self, pool: ModelPool) -> TaskJobs:
        domain = load_domain(self.config.env)
        return TaskJobs(
            build_context(self.config, domain, build_models(self.config, pool), self.accepted, self.session)
        )


def duplicate_rejection(outcome: TaskOutcome) -> TaskOutcome:
    """An accepted outcome whose customer and actions another task took first (two workers accepted
    both at once): the one writer keeps the first and records this one at stage ``duplicate``."""
    return TaskOutcome(
        outcome.task_id,
        outcome.kind,
        attempts=outcome.attempts,
        usage=outcome.usage,
        stage=Stage.DUPLICATE.value,
        reasons=["an identical task was accepted meanwhile (by another worker)"],
        draft=outcome.blueprint.model_dump(mode="json") if outcome.blueprint is not None else None,
        provenance=outcome.provenance,
    )


async def run_blueprints(
    config: DatagenRecipe,
    run_dir: Path,
    *,
    resume: bool = False,
    domain: Domain | None = None,
    models: Models | None = None,
    executor: Executor = LOCAL,
    on_progress: Callable[[Funnel], None] | None = None,
    on_accepted: Callable[[Blueprint], None] | None = None,
    concurrency: int | None = None,
    opened: bool = False,
) -> Funnel:
    """Runs Phase 1 to the end and returns the run's funnel (all sessions). ``on_accepted`` gets each
    newly accepted blueprint the moment it is written (the pipeline hands it to Phase 2); blueprints
    accepted by an earlier session are in ``read_run(run_dir).accepted``. ``models`` stay open; under
    a remote ``executor`` the workers build their own and ``models`` is not needed. ``concurrency``:
    tasks in flight, when the caller has planned it below the recipe's ceiling (``datagen.pipeline_shape``).
    ``opened``: the caller has opened the run for writing (``generate``: Phase 2's files exist by now).

    Shared state: the few-shot pool and the near-duplicate index grow as tasks are accepted. Locally
    every task sees them at once; on Ray each worker holds a copy that the driver tells of every
    accepted blueprint (one round trip later), and the driver, which alone writes, keeps the first of
    two identical tasks that two workers accepted at the same time."""
    if not opened:
        prepare_run_dir(config, run_dir, resume)
    state = read_run(run_dir)
    domain = domain or load_domain(config.env)
    writer = RunWriter(run_dir, state.funnel, state.sessions)
    start = {
        "event": "session_start",
        "session": state.sessions,
        "resume": resume,
        "done_before": len(state.done),
    }
    writer.events.write(start)
    accepted = list(state.accepted)
    claimed = {duplicate_key(b.user_id, b.actions) for b in accepted}

    def local() -> TaskJobs:
        if models is None:
            raise ValueError("run_blueprints on the local executor needs the run's models")
        return TaskJobs(build_context(config, domain, models, state.accepted, state.sessions))

    runner = executor.runner(TaskWork(config, state.accepted, state.sessions), local=local)

    def record(job: Job[Any], outcome: TaskOutcome) -> None:
        if outcome.blueprint is not None:
            key = duplicate_key(outcome.blueprint.user_id, outcome.blueprint.actions)
            if key in claimed:
                outcome = duplicate_rejection(outcome)
            claimed.add(key)
        blueprint = writer.write(outcome)
        if blueprint is not None:
            accepted.append(blueprint)
            runner.notify(blueprint)
            if on_accepted is not None:
                on_accepted(blueprint)
        if on_progress is not None:
            on_progress(writer.funnel)

    def batch(kind: str) -> Batch[Any, TaskOutcome]:
        return Batch(
            runner.run,
            concurrency=executor.in_flight(concurrency or config.concurrency),
            record=record,
            record_error=lambda job, exc: record(job, rejected_by_error(job.key, kind, exc)),
            done=state.done,
            stop_on=OUTAGES,
            name=f"phase 1 ({kind})",
        )

    try:
        await run_base_then_recombined(config, state.done, accepted, batch)
    finally:
        writer.events.write(
            {"event": "session_end", "session": state.sessions, "funnel": writer.funnel.as_dict()}
        )
        writer.close()
    return writer.funnel


async def run_base_then_recombined(
    config: DatagenRecipe,
    done: set[str],
    accepted: list[Blueprint],
    batch: Callable[[str], Batch[Any, TaskOutcome]],
) -> None:
    """Phase 1's two passes: the base tasks (those in ``done`` are skipped), then, with
    ``recombination.share``, the recombined tasks over the base tasks ``accepted`` holds by then."""
    base_ids = {base_task_id(config.name, i): i for i in range(config.num_tasks)}
    todo = [task_id for task_id in base_ids if task_id not in done]
    log.info(
        "phase 1: %d of %d base tasks to run (%d done before)",
        len(todo),
        config.num_tasks,
        config.num_tasks - len(todo),
    )
    async with batch("base") as base:
        base.submit_all(Job(task_id, index) for task_id, index in base_ids.items())
    recombination = config.recombination
    if recombination.share > 0:
        groups = plan_groups(
            [b for b in accepted if b.id in base_ids],
            recombination.share,
            recombination.group_size,
            config.seed,
        )
        async with batch("recombined") as recombined:
            recombined.submit_all(Job(group_id(config.name, group), group) for group in groups)
