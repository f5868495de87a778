"""Phase 1 as an async producer over an append-only run directory.

Run directory (``runs/<name>/`` unless told otherwise):
- ``config.yaml``      the resolved config of the first session (a resumed run keeps it)
- ``blueprints.jsonl`` accepted blueprints, one per line, with their funnel record in provenance
- ``rejections.jsonl`` final rejections: task id, stage, reasons, the last draft, funnel record
- ``events.jsonl``     a log of sessions and finished tasks, for people reading the run
- ``stats.json``       the funnel, rewritten after every finished task

Every task writes exactly one line to ``blueprints.jsonl`` or ``rejections.jsonl`` when it finishes,
so a task is either done (its id is in one of them) or not started; a killed run resumes by
running the tasks that are not done. Task ids and every random draw derive from the run seed and the
task index, so a resumed task is the same task. Recombination runs once the base tasks are done and
plans its groups deterministically from the accepted set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict

from datagen.blueprint.committee import Judge
from datagen.blueprint.config import BlueprintRunConfig, ModelConfig
from datagen.blueprint.context import RunContext, TaskOutcome
from datagen.blueprint.funnel import Funnel
from datagen.blueprint.grounding import StatePlanner
from datagen.blueprint.lifecycle import develop_task
from datagen.blueprint.proposal import ModelCallError, generator_system_prompt, judge_system_prompt
from datagen.blueprint.recombine import group_id, plan_groups, recombine
from datagen.blueprint.samplers import FewshotPool, UserIndex, load_traits
from datagen.blueprint.validators import duplicate_key
from datagen.envs.base import Domain
from datagen.llm.types import ChatModel

if TYPE_CHECKING:
    from datagen.llm.pool import ModelPool
from datagen.records import Blueprint
from datagen.redact import redact_config
from datagen.runio import JsonlAppender, read_jsonl, read_models, write_json_atomic

log = logging.getLogger(__name__)

BLUEPRINTS = "blueprints.jsonl"
REJECTIONS = "rejections.jsonl"
EVENTS = "events.jsonl"
STATS = "stats.json"
CONFIG = "config.yaml"


@dataclass
class Models:
    generator: ChatModel
    judges: list[Judge]
    owned: list[ChatModel] = field(default_factory=list)  # built here, closed here

    async def aclose(self) -> None:
        for model in self.owned:
            await model.aclose()


def build_models(config: BlueprintRunConfig, pool: ModelPool | None = None) -> Models:
    """Each distinct model once; judges default to ``committee.size`` samples of the generator.

    With a ``pool`` (the pipeline's, shared with Phase 2) the models come from it and the pool closes them."""
    from datagen.llm import build_chat_model  # the runtime imports engines only when a model is built

    built: dict[str, ChatModel] = {}

    def get(model_config: ModelConfig) -> ChatModel:
        spec = model_config.spec()
        if pool is not None:
            return pool.get(spec)
        key = spec.model_dump_json()
        if key not in built:
            built[key] = build_chat_model(spec)
        return built[key]

    generator = get(config.generator)
    committee = config.committee
    judge_configs = committee.judges or [config.generator]
    judges = []
    for i in range(committee.size):
        judge_config = judge_configs[i % len(judge_configs)]
        judges.append(Judge(f"judge{i}:{judge_config.label}", get(judge_config), judge_config))
    return Models(generator, judges, list(built.values()))


def load_domain(name: str) -> Domain:
    from datagen.envs.registry import get_domain

    return get_domain(name)


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
    blueprints, problems = read_models(run_dir / BLUEPRINTS, Blueprint)
    rejection_rows, more = read_models(run_dir / REJECTIONS, RejectionRecord)
    event_rows, event_problems = read_jsonl(run_dir / EVENTS)
    for problem in problems + more + event_problems:
        log.warning("%s", problem)
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

    for blueprint in blueprints:
        if blueprint.id in done:
            log.warning("%s holds %s twice; the first record is kept", run_dir / BLUEPRINTS, blueprint.id)
            continue
        done.add(blueprint.id)
        accepted.append(blueprint)
        count(blueprint.id, blueprint.provenance.get("funnel"), True)
    for row in rejection_rows:
        if row.task_id not in done:
            done.add(row.task_id)
            count(row.task_id, row.funnel, False)
    sessions = sum(1 for e in event_rows if e.get("event") == "session_start")
    return RunState(accepted, done, funnel, sessions)


def prepare_run_dir(config: BlueprintRunConfig, run_dir: Path, resume: bool) -> None:
    has_records = any((run_dir / name).exists() for name in (BLUEPRINTS, REJECTIONS))
    if has_records and not resume:
        raise FileExistsError(
            f"{run_dir} already holds a Phase 1 run; pass --resume to continue it or --out for a new directory"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = yaml.safe_dump(redact_config(config.model_dump(mode="json")), sort_keys=False)
    saved = run_dir / CONFIG
    if not saved.exists():
        saved.write_text(resolved, encoding="utf-8")
    elif saved.read_text(encoding="utf-8") != resolved:
        log.warning("%s differs from the config given now; the run continues with the one given now", saved)


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
        self.run_dir = run_dir
        self.funnel = funnel
        self.session = session
        self.blueprints = JsonlAppender(run_dir / BLUEPRINTS)
        self.rejections = JsonlAppender(run_dir / REJECTIONS)
        self.events = JsonlAppender(run_dir / EVENTS)

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
        write_json_atomic(self.run_dir / STATS, self.funnel.as_dict())
        return outcome.blueprint

    def close(self) -> None:
        write_json_atomic(self.run_dir / STATS, self.funnel.as_dict())
        for appender in (self.blueprints, self.rejections, self.events):
            appender.close()


async def _run_jobs(
    jobs: list[Callable[[], Any]],
    concurrency: int,
    writer: RunWriter,
    ctx: RunContext,
    on_progress: Callable[[Funnel], None] | None,
) -> AsyncIterator[Blueprint]:
    """Runs job coroutines with ``concurrency`` in flight; writes each outcome as it finishes."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    pending = iter(jobs)
    done_marker = object()

    async def worker() -> None:
        for job in pending:  # a shared iterator: each job is taken by exactly one worker
            try:
                outcome = await job()
            except Exception as exc:
                await queue.put(exc)
                return
            accepted = writer.write(outcome)
            if accepted is not None and outcome.kind == "base":
                ctx.pool.add(accepted)
            if on_progress is not None:
                on_progress(writer.funnel)
            await queue.put(accepted)
        await queue.put(done_marker)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, len(jobs))))]
    finished = 0
    try:
        while finished < len(workers):
            item = await queue.get()
            if item is done_marker:
                finished += 1
            elif isinstance(item, ModelCallError):
                raise item
            elif isinstance(item, Exception):
                raise RuntimeError(
                    f"a Phase 1 task crashed: {item!r}; completed tasks are saved, rerun with --resume"
                ) from item
            elif item is not None:
                yield item
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def produce_blueprints(
    config: BlueprintRunConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    domain: Domain | None = None,
    models: Models | None = None,
    on_progress: Callable[[Funnel], None] | None = None,
) -> AsyncIterator[Blueprint]:
    """Yields each newly accepted blueprint as soon as it is written (base tasks, then recombined ones).

    Blueprints accepted by an earlier session of the same run are in ``run_dir/blueprints.jsonl``
    (``read_run``) and are not yielded again. ``models`` built by the caller are not closed here."""
    prepare_run_dir(config, run_dir, resume)
    state = read_run(run_dir)
    domain = domain or load_domain(config.env)
    own_models = models is None
    models = models or build_models(config)
    db_seed = config.db_seed if config.db_seed is not None else domain.train_seed
    pool = FewshotPool(domain.example_tasks, config.samplers.fewshot_pool_max)
    for blueprint in state.accepted:
        if blueprint.provenance.get("kind") == "base":
            pool.add(blueprint)
    users = UserIndex(domain.new_env(db_seed), config.samplers.user_table)
    ctx = RunContext(
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
        session=state.sessions,
        accepted_keys={duplicate_key(b.user_id, b.actions) for b in state.accepted},
    )
    writer = RunWriter(run_dir, state.funnel, state.sessions)
    writer.events.write(
        {
            "event": "session_start",
            "session": state.sessions,
            "resume": resume,
            "done_before": len(state.done),
        }
    )
    accepted = list(state.accepted)
    try:
        todo = [i for i in range(config.num_tasks) if f"{config.name}-{i:05d}" not in state.done]
        log.info(
            "phase 1: %d of %d base tasks to run (%d done before)",
            len(todo),
            config.num_tasks,
            config.num_tasks - len(todo),
        )
        base_jobs = [lambda i=i: develop_task(ctx, i) for i in todo]
        async for blueprint in _run_jobs(base_jobs, config.concurrency, writer, ctx, on_progress):
            accepted.append(blueprint)
            yield blueprint
        recombination = config.recombination
        if recombination.share > 0:
            base_ids = {f"{config.name}-{i:05d}" for i in range(config.num_tasks)}
            groups = plan_groups(
                [b for b in accepted if b.id in base_ids],
                recombination.share,
                recombination.group_size,
                config.seed,
            )
            groups = [g for g in groups if group_id(config.name, g) not in state.done]
            jobs = [lambda g=g: recombine(ctx, g) for g in groups]
            async for blueprint in _run_jobs(jobs, config.concurrency, writer, ctx, on_progress):
                yield blueprint
    finally:
        writer.events.write(
            {"event": "session_end", "session": state.sessions, "funnel": writer.funnel.as_dict()}
        )
        writer.close()
        if own_models:
            await models.aclose()


async def run_blueprints(config: BlueprintRunConfig, run_dir: Path, **kwargs: Any) -> Funnel:
    """Runs Phase 1 to the end; returns the run's funnel (all sessions)."""
    async for _ in produce_blueprints(config, run_dir, **kwargs):
        pass
    return read_run(run_dir).funnel
