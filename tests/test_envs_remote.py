"""Proof both ways on retail: served over MCP and over OpenEnv (`apigen-mt envs serve`, subprocesses from
a plain shell) and consumed back as remote domains (`env: {source: mcp|openenv, url: ...}`), every gold
task and the blueprints of a generated run give the same observations, state hashes, dialogues and
Phase 2 verdicts as in-process. The models are the stub OpenAI server (tests/openai_stub.py): what
is compared is the environment path, not a model."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PLAIN_ENV_KEYS
from servedrun import served

from datagen.envs.registry import get_domain
from datagen.recipe.remote_env import McpEnv, OpenEnvEnv

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "openai_stub.py"


def shell_env() -> dict[str, str]:
    env = {key: os.environ[key] for key in PLAIN_ENV_KEYS if key in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


@pytest.fixture(scope="module")
def retail():
    return get_domain("retail")


@pytest.fixture(scope="module")
def stub(retail, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tasks = tmp_path_factory.mktemp("stub") / "tasks.json"
    tasks.write_text(json.dumps([t.model_dump(mode="json") for t in retail.gold_tasks]))
    process = subprocess.Popen(
        [sys.executable, str(STUB), "--tasks", str(tasks)], stdout=subprocess.PIPE, text=True
    )
    yield process.stdout.readline().strip()
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def remotes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """retail served over MCP and OpenEnv, and the remote domains that consume them."""
    logs = tmp_path_factory.mktemp("served")
    with (
        served(["retail", "--protocol", "mcp"], shell_env(), logs / "mcp.log") as mcp_base,
        served(["retail", "--protocol", "openenv"], shell_env(), logs / "openenv.log") as openenv_base,
    ):
        yield {
            "retail-mcp": get_domain(McpEnv(source="mcp", name="retail-mcp", url=f"{mcp_base}/mcp")),
            "retail-openenv": get_domain(
                OpenEnvEnv(source="openenv", name="retail-openenv", url=openenv_base)
            ),
        }


def test_remote_domains_describe_the_served_domain(retail, remotes):
    for domain in remotes.values():
        assert domain.tool_schemas() == retail.tool_schemas()
        assert [t.kind for t in domain.tools] == [t.kind for t in retail.tools]
        assert domain.dependency_graph() == retail.dependency_graph()
        assert domain.policy == retail.policy
        assert (domain.train_seed, domain.eval_seed) == (retail.train_seed, retail.eval_seed)
        assert domain.references == retail.references
        assert [t.id for t in domain.gold_tasks] == [t.id for t in retail.gold_tasks]
        assert domain.verification == "state"


def test_every_gold_task_replays_identically(retail, remotes):
    for domain in remotes.values():
        for task in retail.gold_tasks:
            here, there = retail.env_for_task(task), domain.env_for_task(task)
            before = here.snapshot()
            assert there.state_hash() == here.state_hash(), (domain.name, task.id)
            assert [o.content for o in there.replay(task.actions)] == [
                o.content for o in here.replay(task.actions)
            ]
            assert there.state_hash() == here.state_hash(), (domain.name, task.id)
            assert there.policy_violations({}) == here.policy_violations(before)
            there.close()
        # Without the identity check first, the domain's policy checks fire: the server runs them
        broken = []
        for task in retail.gold_tasks:
            here, there = retail.env_for_task(task), domain.env_for_task(task)
            before = here.snapshot()
            here.replay(task.actions[1:])
            there.replay(task.actions[1:])
            assert there.policy_violations({}) == here.policy_violations(before), (domain.name, task.id)
            broken += here.policy_violations(before)
            there.close()
        assert broken, (
            "no gold task breaks a policy check without its first call: the comparison proves nothing"
        )
        fresh = domain.new_env(retail.train_seed)
        assert fresh.snapshot() == retail.new_env(retail.train_seed).snapshot()


def _config(url: str, **simulate: Any) -> Any:
    from datagen.recipe.datagen import DatagenRecipe

    return DatagenRecipe.model_validate(
        {
            "name": "round-trip",
            "env": "retail",
            "seed": 3,
            "num_tasks": 6,
            "concurrency": 4,
            "models": {
                "stub": {
                    "model": "stub",
                    "backend": "openai",
                    "base_urls": [url],
                    "tool_format": "openai",
                    "max_retries": 0,
                }
            },
            "generator": {"model": "stub", "max_tokens": 64},
            "proposal": {"type": "grounded", "outputs": False},
            "committee": {"size": 2, "threshold": 0.5},
            "refinement": {"max_rounds": 1},
            "simulate": {
                "agent": {"model": "stub"},
                "user": {"model": "stub", "best_of_n": 2},
                "max_steps": 20,
                "attempts": 1,
                "concurrency": 8,
                **simulate,
            },
        }
    )


def _phase2(config: Any, blueprints: list[Any], env: str, out: Path) -> dict[str, dict[str, Any]]:
    from datagen.llm.pool import ModelPool
    from datagen.rundir import DatagenRun, read_rows
    from datagen.simulate.runner import SimulationRunner

    relabelled = [b.model_copy(update={"env": env}) for b in blueprints]

    async def run() -> None:
        async with ModelPool(config.used_specs()) as pool:
            await SimulationRunner(config.phase2(), DatagenRun(out), get_domain, pool).run(relabelled)

    asyncio.run(run())
    run_dir = DatagenRun(out)
    rows = list(read_rows(run_dir.trajectories)) + list(read_rows(run_dir.failures))
    return {
        r["id"]: {k: r[k] for k in ("messages", "tools", "success", "reward", "failure", "checks")}
        for r in rows
    }


def gold_blueprints(domain: Any) -> list[Any]:
    from datagen.records import Blueprint

    return [
        Blueprint(
            id=t.id,
            env=domain.name,
            seed=domain.task_seed(t),
            user_id=t.user_id,
            persona=t.persona,
            instruction=t.instruction,
            actions=t.actions,
            outputs=t.outputs,
        )  # fmt: skip
        for t in domain.gold_tasks
    ]


def test_phase2_verdicts_match_on_every_gold_task(retail, remotes, stub, tmp_path: Path):
    """The stub's agent makes each gold task's calls natively and then talks; every verdict part, every
    message and every tool result are the same in-process and through both protocols."""
    config = _config(stub)
    blueprints = gold_blueprints(retail)
    native = _phase2(config, blueprints, "retail", tmp_path / "native")
    assert len(native) == len(blueprints)
    assert any(r["success"] for r in native.values()) and any(
        r["checks"]["tool_calls"] for r in native.values()
    )
    for name in remotes:
        assert _phase2(config, blueprints, name, tmp_path / name) == native, name


def test_phase2_verdicts_match_on_a_generated_run(retail, remotes, stub, tmp_path: Path):
    """Phase 1 and Phase 2 on native retail (stub models, grounded proposals, replay agent), then the
    run's blueprints played again through both protocols: the same dialogues and verdicts."""
    from datagen.pipeline import generate
    from datagen.records import Blueprint
    from datagen.rundir import read_records

    config = _config(stub, agent={"model": "stub", "mode": "replay", "stop_after_script": True}, attempts=2)
    asyncio.run(generate(config, tmp_path / "run", resume=False, live=False))
    blueprints = list(read_records(tmp_path / "run" / "blueprints.jsonl", Blueprint))
    assert blueprints, "the generated run accepted no blueprint"
    native = _phase2(config, blueprints, "retail", tmp_path / "native")
    assert len(native) == 2 * len(blueprints)
    for name in remotes:
        assert _phase2(config, blueprints, name, tmp_path / name) == native, name


def test_phase1_through_both_protocols_accepts_the_same_blueprints(retail, remotes, stub, tmp_path: Path):
    """Phase 1's grounded proposals walk the served domain's tool graph, read the state it exposes (its
    tables, its references) and try arguments on it: the same run seed gives the same blueprints (users,
    actions, outputs) natively and through both protocols."""
    from datagen.records import Blueprint
    from datagen.rundir import read_records

    def blueprints(env: Any, out: Path) -> dict[str, tuple[Any, ...]]:
        config = _config(stub, attempts=1).model_copy(update={"env": env, "simulate": None})
        from datagen.blueprint.runner import build_models, run_blueprints
        from datagen.llm.pool import ModelPool

        async def run() -> None:
            async with ModelPool(config.used_specs()) as pool:
                await run_blueprints(config, out, domain=get_domain(env), models=build_models(config, pool))

        asyncio.run(run())
        found = read_records(out / "blueprints.jsonl", Blueprint)
        # the instruction is left out: the generator's prompt names the domain, so the stub's text differs
        return {b.id: (b.seed, b.user_id, [a.model_dump() for a in b.actions], b.outputs) for b in found}

    native = blueprints("retail", tmp_path / "native")
    assert native
    for domain in remotes.values():
        assert blueprints(domain.spec, tmp_path / domain.name) == native, domain.name
