"""Phase 2 and the τ harness on the runner core: one job that raises is one error row (and is not run
again on resume), an interrupted run leaves no job behind and no half-written row, and both set up
their dialogues through the same build layer (same seeds, the user's judge honoured everywhere)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from scripted import ScriptedModel
from toydomain import make_toy_domain

from datagen.envs.base import Task
from datagen.llm import ModelSpec
from datagen.recipe.episode import AgentRole, SimulateConfig, UserRole
from datagen.records import Blueprint
from datagen.rundir import DatagenRun, TauRun
from datagen.simulate.build import episode_seed
from datagen.simulate.runner import SimulationRunner
from evaluation.tau.config import TauConfig
from evaluation.tau.harness import TauHarness

WITHDRAW = {"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}


def _user(messages, kwargs):
    said = [m for m in messages if m["role"] == "assistant"]
    return ["Please withdraw 40 from a10." if not said else "Thanks! ###STOP###"] * kwargs.get("n", 1)


def _agent(messages, kwargs):
    if messages[-1]["role"] == "user":
        return [WITHDRAW]
    return ["Done: a10 now holds $60.00."]


class Models:
    def __init__(self, agent=_agent, user=_user, judge=None):
        self.models = {
            "agent": ScriptedModel(agent, "agent-model"),
            "user": ScriptedModel(user, "user-model"),
        }
        if judge is not None:
            self.models["critic"] = ScriptedModel(judge, "critic-model")

    def get(self, alias: str):
        return self.models[alias]


def _blueprint(i: int, **changes) -> Blueprint:
    fields = dict(id=f"bp{i}", env="toy", seed=1, persona=f"Person {i}", instruction="Withdraw 40 from a10.",
                  actions=[WITHDRAW], outputs=["60"])  # fmt: skip
    return Blueprint(**(fields | changes))


def test_a_phase2_job_that_raises_is_one_error_row_and_is_not_rerun(tmp_path: Path):
    domain = make_toy_domain(tmp_path)

    def domains(name: str):
        if name == "broken":
            raise RuntimeError("this environment cannot be built")
        return domain

    config = SimulateConfig(
        agent=AgentRole(model="agent"), user=UserRole(model="user", best_of_n=1), attempts=1
    )
    run = DatagenRun(tmp_path / "run")
    blueprints = [_blueprint(0), _blueprint(1, env="broken"), _blueprint(2)]
    summary = asyncio.run(SimulationRunner(config, run, domains, Models()).run(blueprints))
    assert summary["attempts"] == 3 and summary["successful_trajectories"] == 2
    failed = [json.loads(line) for line in run.failures.read_text().splitlines()]
    assert [(r["blueprint_id"], r["failure"]) for r in failed] == [("bp1", "error")]
    assert "cannot be built" in failed[0]["checks"]["error"]
    again = asyncio.run(SimulationRunner(config, run, domains, Models()).run(blueprints))
    assert again["attempts"] == 3 and again["this_session"]["attempts"] == 0


def test_an_interrupted_phase2_run_leaves_no_job_and_no_half_written_row(tmp_path: Path):
    domain = make_toy_domain(tmp_path)

    class SlowModels(Models):
        def get(self, alias: str):
            model = super().get(alias)

            class Slow:
                name = model.name

                async def chat(self, messages, **kwargs):
                    await asyncio.sleep(0.02)
                    return await model.chat(messages, **kwargs)

            return Slow()

    config = SimulateConfig(
        agent=AgentRole(model="agent"), user=UserRole(model="user", best_of_n=1), attempts=2, concurrency=4
    )
    run = DatagenRun(tmp_path / "run")

    async def main() -> None:
        task = asyncio.create_task(
            SimulationRunner(config, run, lambda _: domain, SlowModels()).run(
                [_blueprint(i) for i in range(40)]
            )
        )
        while not run.trajectories.exists() or len(run.trajectories.read_text().splitlines()) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(main())
    rows = [
        json.loads(line)
        for path in run.phase2_records()
        if path.exists()
        for line in path.read_text().splitlines()
    ]
    assert 3 <= len(rows) < 80 and run.trajectories.read_text().endswith("\n")
    resumed = asyncio.run(
        SimulationRunner(config, run, lambda _: domain, Models()).run([_blueprint(i) for i in range(40)])
    )
    assert resumed["attempts"] == 80


def _tau_config(**user) -> TauConfig:
    models = {alias: ModelSpec(model=alias) for alias in ("agent", "user", "critic")}
    return TauConfig(
        env="toy", models=models, agent={"model": "agent"}, user={"model": "user", **user}, trials=2
    )


def test_a_tau_trial_that_raises_is_one_error_row(tmp_path: Path, monkeypatch):
    domain = make_toy_domain(tmp_path)
    tasks = [
        Task(id="ok", persona="p", instruction="Withdraw 40 from a10.", outputs=["60"], actions=[WITHDRAW]),
        Task(id="bad", persona="p", instruction="Withdraw 40 from a10.", outputs=["60"], actions=[WITHDRAW]),
    ]
    harness = TauHarness(_tau_config(best_of_n=1), domain, tasks, TauRun(tmp_path), Models())
    build = domain.env_for_task

    def env_for_task(task):
        if task.id == "bad":
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return build(task)

    monkeypatch.setattr(domain, "env_for_task", env_for_task)
    summary = asyncio.run(harness.run())
    rows = [json.loads(line) for line in TauRun(tmp_path).results.read_text().splitlines()]
    assert len(rows) == 4 and summary["tasks"] == 2
    assert {r["failure"] for r in rows if r["task_id"] == "bad"} == {"error"}
    assert all(r["success"] for r in rows if r["task_id"] == "ok")
    assert "surrogates not allowed" in next(r for r in rows if r["task_id"] == "bad")["checks"]["error"]


def test_phase2_and_tau_seed_alike_and_both_use_the_users_judge(tmp_path: Path):
    """The build layer is shared: the τ harness honours the user's judge (it used to ignore it) and
    seeds each trial as Phase 2 seeds each attempt."""
    domain = make_toy_domain(tmp_path)
    judged: list[str] = []

    def judge(messages, kwargs):
        judged.append(messages[-1]["content"])
        return ['{"score": 5}']

    task = Task(id="w", persona="p", instruction="Withdraw 40 from a10.", outputs=["60"], actions=[WITHDRAW])
    harness = TauHarness(
        _tau_config(best_of_n=2, judge="critic"),
        domain,
        [task],
        TauRun(tmp_path / "tau"),
        Models(judge=judge),
    )
    asyncio.run(harness.run())
    tau_rows = [json.loads(line) for line in TauRun(tmp_path / "tau").results.read_text().splitlines()]
    assert judged and tau_rows[0]["models"]["judge"] == "critic-model"
    assert {r["seed"] for r in tau_rows} == {episode_seed(0, "w", 0), episode_seed(0, "w", 1)}

    config = SimulateConfig(
        agent=AgentRole(model="agent"), user=UserRole(model="user", best_of_n=2, judge="critic"), attempts=2
    )
    run = DatagenRun(tmp_path / "run")
    asyncio.run(
        SimulationRunner(config, run, lambda _: domain, Models(judge=judge)).run([_blueprint(0, id="w")])
    )
    row = json.loads(run.trajectories.read_text().splitlines()[0])
    assert row["models"]["judge"] == "critic-model"
