"""A domain's self-test (``apigen-mt envs check``): graders checked on gold.

- every tool schema is a valid JSON schema in the OpenAI function-tool shape;
- every gold task (evaluation seed) and example task (training seed) replays: each call succeeds,
  no policy check fires, the state changes exactly when the task has write actions, and every
  expected output appears in some observation (by the value rule, :mod:`apigen_rules.values`);
- the state hash is deterministic across two resets and two replays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apigen_rules.values import missing_outputs
from datagen.envs.base import Domain, Environment, Observation, Task

log = logging.getLogger(__name__)


@dataclass
class TaskReplay:
    """What replaying one task's ground truth did."""

    task_id: str
    seed: int
    start_hash: str
    end_hash: str
    observations: list[Observation]
    failures: list[str] = field(default_factory=list)


def check_tool_schemas(domain: Domain) -> list[str]:
    failures = []
    for spec in domain.tools:
        schema = spec.schema
        function = schema.get("function", {}) if schema.get("type") == "function" else {}
        if function.get("name") != spec.name or not function.get("description"):
            failures.append(
                f"tool {spec.name}: schema is not an OpenAI function tool with name and description"
            )
            continue
        parameters = function.get("parameters")
        try:
            Draft202012Validator.check_schema(parameters)
        except SchemaError as exc:
            failures.append(f"tool {spec.name}: parameters are not a valid JSON schema: {exc.message}")
            continue
        if parameters.get("type") != "object":
            failures.append(
                f"tool {spec.name}: parameters must be a JSON object schema, got {parameters.get('type')!r}"
            )
    return failures


def replay_task(domain: Domain, task: Task, seed: int, env: Environment | None = None) -> TaskReplay:
    """Replays ``task.actions`` on a fresh state of ``seed`` and checks the ground truth is consistent."""
    env = env or domain.env_for_task(task)
    env.reset(seed)
    before = env.snapshot()
    start = env.state_hash()
    observations = env.replay(task.actions)
    report = TaskReplay(task.id, seed, start, env.state_hash(), observations)
    if not domain.authored_gold:
        return report  # imported gold: only that it replays without raising and deterministically
    for i, (call, obs) in enumerate(zip(task.actions, observations, strict=True)):
        if not obs.ok:
            report.failures.append(f"task {task.id}: call {i} {call.name} failed: {obs.content[:300]}")
    for violation in env.policy_violations(before):
        report.failures.append(f"task {task.id}: policy violation {violation}")
    writes = [c.name for c in task.actions if (s := domain.tool(c.name)) is not None and s.kind == "write"]
    changed = report.end_hash != start
    if writes and not changed:
        report.failures.append(f"task {task.id}: has write actions {writes} but the state did not change")
    if not writes and changed:
        report.failures.append(f"task {task.id}: has no write action but the state changed")
    # The value rule Phase 1 and Phase 2 judge outputs by (apigen_rules.values), so a task this check
    # passes is one Phase 2 can verify, and the reverse.
    for output in missing_outputs(task.outputs, [o.content for o in observations]):
        report.failures.append(f"task {task.id}: expected output {output!r} appears in no observation")
    return report


def check_tasks(domain: Domain) -> list[str]:
    failures = []
    gold_ids = {t.id for t in domain.gold_tasks}
    for task in domain.example_tasks:
        if task.id in gold_ids:
            failures.append(
                f"example task {task.id} is also a gold task (the held-out set must stay separate)"
            )
    env: Environment | None = None
    for pool, default_seed in (
        (domain.gold_tasks, domain.eval_seed),
        (domain.example_tasks, domain.train_seed),
    ):
        for task in pool:
            seed = default_seed if task.seed is None else task.seed
            if env is None and domain.authored_gold:
                env = domain.new_env(seed)
            failures.extend(replay_task(domain, task, seed, env).failures)
    return failures


def check_determinism(domain: Domain) -> list[str]:
    failures = []
    env = domain.new_env(domain.eval_seed)
    first = env.state_hash()
    env.reset(domain.eval_seed)
    second = env.state_hash()
    fresh = domain.new_env(domain.eval_seed).state_hash()
    if not first == second == fresh:
        failures.append(
            f"state hash differs across resets of seed {domain.eval_seed}: {first} {second} {fresh}"
        )
    tasks = [t for t in domain.gold_tasks if t.seed in (None, domain.eval_seed)]
    if tasks:
        task = tasks[0]
        ends = {replay_task(domain, task, domain.eval_seed, env).end_hash for _ in range(2)}
        if len(ends) != 1:
            failures.append(f"replaying task {task.id} twice gave different final hashes: {sorted(ends)}")
        env.reset(domain.eval_seed)
        if env.state_hash() != first:
            failures.append("reset after a replay did not restore the start state hash")
    return failures


def self_test(domain: Domain) -> list[str]:
    """Every failure found, as readable lines; an empty list means the domain passes."""
    failures = check_tool_schemas(domain)
    if not domain.gold_tasks:
        failures.append(f"domain {domain.name} has no gold tasks")
    try:
        domain.dependency_graph()
    except Exception as exc:
        failures.append(f"dependency graph failed: {type(exc).__name__}: {exc}")
    failures += check_determinism(domain)
    failures += check_tasks(domain)
    return failures
