"""One job's failure is one error row, never a dead run (Phase 2 and τ), and text that cannot be
encoded (a lone surrogate, valid JSON any model can emit) never reaches a state hash."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from scripted import ScriptedModel
from toydomain import make_toy_domain

from datagen.envs.registry import get_domain
from datagen.envs.store import BaseState, Store
from datagen.llm import ModelSpec
from datagen.recipe.episode import AgentRole, SimulateConfig, UserRole
from datagen.records import Blueprint
from datagen.rundir import DatagenRun, TauRun
from datagen.simulate.runner import SimulationRunner
from evaluation.tau import harness as tau_harness
from evaluation.tau.config import TauConfig

SURROGATE = "\ud800"  # what json.loads('"\\ud800"') returns: a str no UTF-8 writer accepts


def _payee_call(name: str) -> dict:
    return {
        "name": "add_payee",
        "arguments": {
            "customer_id": "CUS1-0004",
            "name": name,
            "bank_name": "First Bank",
            "routing_number": "021000021",
            "account_number": "12345678",
        },
    }


def _retail_address_call(domain) -> dict:
    env = domain.new_env(domain.eval_seed)
    user_id = env.store.keys("users")[0]
    return {
        "name": "modify_user_address",
        "arguments": {
            "user_id": user_id,
            "address1": "1 Main St",
            "address2": SURROGATE,
            "city": "Austin",
            "state": "TX",
            "country": "USA",
            "zip": "78701",
        },
    }


@pytest.mark.parametrize("domain_name", ["bank", "retail"])
def test_a_lone_surrogate_in_a_tool_argument_is_a_clean_tool_error(domain_name: str):
    domain = get_domain(domain_name)
    call = _payee_call("A" + SURROGATE) if domain_name == "bank" else _retail_address_call(domain)
    assert domain.tool(call["name"]) is not None
    env = domain.new_env(domain.eval_seed)
    before = env.state_hash()
    observation = env.call(call)
    assert not observation.ok and "not valid Unicode" in observation.content
    assert "\\ud800" in observation.content  # named, as an escape the agent can read
    assert env.state_hash() == before  # nothing changed, and hashing did not raise


def test_the_state_hash_never_raises_on_text_that_cannot_be_encoded():
    store = Store(BaseState({"notes": {"n1": {"text": "ok"}}}))
    with store.transaction():
        store.edit("notes", "n1")["text"] = "bad " + SURROGATE
    assert len(store.state_hash()) == 64


def _blueprint(id_: str, env: str, task) -> Blueprint:
    return Blueprint(
        id=id_,
        env=env,
        seed=1,
        user_id=task.user_id,
        persona=task.persona,
        instruction=task.instruction,
        actions=task.actions,
        outputs=task.outputs,
    )


class _Pool:
    def __init__(self, agent, user):
        self.models = {"agent": ScriptedModel(agent, "agent"), "user": ScriptedModel(user, "user")}

    def get(self, alias: str):
        return self.models[alias]


def _user(messages, kwargs):
    said = [m for m in messages if m["role"] == "assistant"]
    return ["Please save a payee for me." if not said else "thanks ###STOP###"]


def _surrogate_agent(messages, kwargs):
    if messages[-1]["role"] == "user":
        return [_payee_call("Bob " + SURROGATE)]
    return ["I could not save that payee."]


def test_phase2_a_failing_job_is_one_error_row_and_resume_does_not_die_on_it(tmp_path: Path):
    bank = get_domain("bank")
    task = bank.gold_tasks[0]
    blueprints = [
        _blueprint("bp-surrogate", "bank", task),
        _blueprint("bp-unknown-env", "no_such_domain", task),  # its build step raises
    ]
    config = SimulateConfig(
        agent=AgentRole(model="agent"),
        user=UserRole(model="user", best_of_n=1),
        attempts=2,
        concurrency=4,
    )
    run = DatagenRun(tmp_path / "run")
    pool = _Pool(_surrogate_agent, _user)
    summary = asyncio.run(SimulationRunner(config, run, get_domain, pool).run(blueprints))
    assert summary["attempts"] == 4
    rows = [json.loads(line) for line in run.failures.read_text().splitlines()]
    errors = [r for r in rows if r["blueprint_id"] == "bp-unknown-env"]
    assert len(errors) == 2 and all(r["failure"] == "error" for r in errors)
    assert "no_such_domain" in errors[0]["checks"]["error"]
    judged = [r for r in rows if r["blueprint_id"] == "bp-surrogate"]
    assert len(judged) == 2 and all(r["failure"] != "error" for r in judged)  # judged, not crashed
    refused = [m for m in judged[0]["messages"] if m["role"] == "tool"]
    assert refused and "not valid Unicode" in refused[0]["content"]
    assert not run.trajectories.read_text().strip()

    # Resume: nothing is run again (the error rows count as done) and nothing dies.
    again = asyncio.run(SimulationRunner(config, run, get_domain, pool).run(blueprints))
    assert again["this_session"]["attempts"] == 0 and again["attempts"] == 4


def test_tau_a_trial_whose_verdict_raises_is_one_error_row(tmp_path: Path, monkeypatch):
    from datagen.envs.base import Task

    domain = make_toy_domain(tmp_path)
    withdraw = {"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}
    tasks = [
        Task(
            id="fine", persona="Ann", instruction="Withdraw 40 from a10.", actions=[withdraw], outputs=["60"]
        ),
        Task(
            id="boom",
            persona="Bob",
            instruction="Withdraw 40 from a10.",
            actions=[withdraw],
            outputs=["boom"],
        ),
    ]
    judge = tau_harness.judge_episode

    def judge_or_raise(env, episode, *, expected_hash, expected_outputs):
        if expected_outputs == ["boom"]:
            raise RuntimeError("the verdict of this trial failed")
        return judge(env, episode, expected_hash=expected_hash, expected_outputs=expected_outputs)

    monkeypatch.setattr(tau_harness, "judge_episode", judge_or_raise)

    def agent(messages, kwargs):
        return [withdraw] if messages[-1]["role"] == "user" else ["Done, 60 left."]

    pool = _Pool(agent, lambda m, k: ["Withdraw 40 from a10." if len(m) < 3 else "bye ###STOP###"])
    config = TauConfig(
        env="toy",
        models={"agent": ModelSpec(model="agent"), "user": ModelSpec(model="user")},
        agent={"model": "agent"},
        user={"model": "user", "best_of_n": 1},
        trials=2,
        concurrency=4,
    )
    out = tmp_path / "out"
    summary = asyncio.run(tau_harness.TauHarness(config, domain, tasks, TauRun(out), pool).run())
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    errors = [r for r in rows if r["task_id"] == "boom"]
    assert all(r["failure"] == "error" and not r["success"] and r["reward"] == 0.0 for r in errors)
    assert "the verdict of this trial failed" in errors[0]["checks"]["error"]
    assert errors[0]["messages"], "the dialogue that ran is kept in the error row"
    assert all(r["success"] for r in rows if r["task_id"] == "fine")
    assert summary["failure_classes"] == {"error": 2}
    again = asyncio.run(tau_harness.TauHarness(config, domain, tasks, TauRun(out), pool).run())
    assert again["pass_k"] == summary["pass_k"]
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
