"""The scripted simulated user (``user.mode: scripted``): it says only what it was given, never sees a
tool, answers what the agent asks, confirms, stops when its goal is met; with a replay agent every
write call's values are said before it (the demo's dialogues pass the provenance check)."""

from __future__ import annotations

import asyncio
import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scripted import ScriptedModel
from toydomain import make_toy_domain

from datagen.envs.registry import get_domain
from datagen.recipe.episode import AgentRole, EpisodeConfig, SimulateConfig, UserRole
from datagen.records import Blueprint
from datagen.rundir import DatagenRun
from datagen.simulate import scripted_user
from datagen.simulate.build import build_sides, play_episode, role_models
from datagen.simulate.runner import SimulationRunner
from datagen.simulate.scripted_user import Fact, ScriptedUser, UserScript, first_person_request, user_script
from datagen.simulate.user import STOP
from datagen.simulate.verdict import gold_hash, judge_episode
from evaluation.tau.user_check import unsupported_user_facts

WITHDRAW = {"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}
AGENT_LINES = [
    "Sure, I can help with that.",
    "Could you please confirm you want to proceed? (yes/no)",
    "Which order is it?",
    "Done. Anything else?",
    "Your request has been processed.",
    "Can you give me your phone number?",
    "Please verify your identity: what is your email?",
]


class Models:
    """Every alias is a stub that writes one of ``lines`` (the agent's text around replayed calls)."""

    def __init__(self, lines: list[str] = AGENT_LINES):
        self.lines = lines

    def get(self, alias):
        return ScriptedModel(lambda m, k: [random.Random(len(m)).choice(self.lines)], name="stub")


def _talk(user: ScriptedUser, agent_lines: list[str], extra: list[dict] | None = None) -> list[str]:
    """The user's messages when the agent answers each with the next of ``agent_lines``."""
    conversation = [{"role": "assistant", "content": "Hi! How can I help you today?"}]
    said = []
    for line in ["", *agent_lines]:
        if line:
            conversation += extra or []
            conversation.append({"role": "assistant", "content": line})
        turn = asyncio.run(user.reply(conversation))
        said.append(turn.text)
        conversation.append({"role": "user", "content": turn.text})
        if turn.ends:
            break
    return said


def _script(reveal="actions", outputs=()):
    retail = get_domain("retail")
    task = retail.gold_tasks[0]  # find_user_id_by_email, cancel_pending_order; output "1149.16"
    return task, user_script(
        retail, retail.task_seed(task), task.actions, instruction=task.instruction,
        outputs=outputs, reveal=reveal,
    )  # fmt: skip


def test_the_script_holds_each_steps_values_and_no_tool():
    task, script = _script()
    assert [[f.label for f in step] for step in script.steps] == [["email"], ["order id", "reason"]]
    assert script.identity_step
    assert script.request.startswith("I ordered Desk Lamp") and "You" not in script.request
    assert not any(hasattr(script, name) for name in ("tools", "policy", "domain", "env"))
    # the user object holds the script only
    assert set(vars(ScriptedUser(script, seed=0))) == {
        "script",
        "instruction",
        "rng",
        "patience",
        "usage",
        "_state",
    }


def test_gold_tasks_reveal_only_what_the_instruction_states():
    task, script = _script(reveal="instruction")
    said = [v for step in script.steps for f in step for v in f.values]
    assert "#W14721574" in said and "alexander.wright14995@example.com" in said
    assert "no longer needed" not in said  # the reason value is not in the instruction's words


def test_it_opens_with_its_request_and_who_it_is_then_says_the_next_step():
    _, script = _script()
    user = ScriptedUser(script, seed=3)
    said = _talk(user, ["Thanks, one moment.", "Done."])
    assert "I want the whole order cancelled" in said[0] and "alexander.wright14995@example.com" in said[0]
    assert "#W14721574" in said[0]  # the instruction names the order
    assert "no longer needed" in said[1]


def test_it_answers_what_is_asked_and_confirms():
    script = UserScript(
        request="I want to withdraw money.",
        steps=(
            (Fact("account id", "a10", ("a10",), ("account",)),),
            (Fact("amount", "40", (40,), ("amount",)),),
        ),
    )
    user = ScriptedUser(script, seed=0)
    said = _talk(user, ["Which amount would you like?", "Shall I proceed with the withdrawal? (yes/no)"])
    assert "a10" in said[0]
    assert "40" in said[1]
    assert said[2].startswith("Yes")


def test_an_open_closing_question_ends_it_and_a_request_it_cannot_answer_does_not():
    _, script = _script()
    said = _talk(
        ScriptedUser(script, seed=2), ["One moment.", "Done. Anything else about your email or account?"]
    )
    assert said[-1].endswith(STOP) and len(said) == 3
    said = _talk(ScriptedUser(script, seed=2), ["One moment.", "What is your phone number?", "Done."])
    assert said[2] in scripted_user.UNKNOWN and said[3].endswith(STOP)


def test_it_waits_until_the_agent_says_it_did_something():
    """A model agent may need several turns after the last value: the user tells it to go on until
    it says the request was carried out, not merely until every value was said."""
    task, script = _script()
    lines = [
        "One moment.",
        "Let me look at that order.",
        "Checking the items.",
        "Your order has been cancelled.",
    ]
    said = _talk(ScriptedUser(script, seed=4), lines)
    assert [s in scripted_user.WAITING for s in said[2:4]] == [True, True] and said[4].endswith(STOP)


def test_it_stops_once_its_goal_is_met_and_waits_for_the_outputs():
    _, script = _script(outputs=("1149.16",))
    said = _talk(ScriptedUser(script, seed=1), ["One moment.", "Cancelled. Your refund is $1,149.16."])
    assert said[-1].endswith(STOP) and len(said) == 3
    patient = _talk(ScriptedUser(script, seed=1, patience=2), ["One moment.", "Cancelled."] + ["Done."] * 10)
    assert patient[-1].endswith(STOP) and STOP not in " ".join(patient[:-1])
    assert len(patient) == 2 + 2 + 1  # opening, one step, two reminders (its patience), then it stops


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(AGENT_LINES), st.text(max_size=60)), min_size=1, max_size=12),
    st.integers(0, 2**31),
)
def test_it_never_says_a_value_it_was_not_given(lines, seed):
    """Whatever the agent writes (ids of its own included), the user says only tokens of its
    instruction and its facts."""
    task, script = _script()
    facts = " ".join(f.text for step in script.steps for f in step)
    leaked = [{"role": "tool", "content": "secret #W99999999 credit_card_7777"}]
    said = _talk(ScriptedUser(script, seed=seed), lines, extra=leaked)
    assert not unsupported_user_facts(said, task.instruction + " " + facts, "", [])
    assert "#W99999999" not in " ".join(said) and "credit_card_7777" not in " ".join(said)


def test_wording_varies_with_the_seed_and_repeats_with_it():
    _, script = _script()
    lines = ["Sure.", "Done. Anything else?"]
    runs = {tuple(_talk(ScriptedUser(script, seed=s), lines)) for s in range(8)}
    assert len(runs) >= 4
    assert _talk(ScriptedUser(script, seed=5), lines) == _talk(ScriptedUser(script, seed=5), lines)


def test_first_person_request_keeps_the_request_only():
    text = first_person_request(
        "You are Ann (ann@x.com). You want to cancel your order #W1. Ask how much you get back. "
        "If the agent offers a voucher, decline. Give your email when asked."
    )
    assert text == "I want to cancel my order #W1. Could you tell me how much I get back."


@pytest.mark.parametrize("name", ["retail", "airline", "bank"])
def test_with_a_replay_agent_every_gold_dialogue_passes_every_check(name):
    """The demo's set-up on each native domain's gold tasks: replay agent (stub text), scripted user.
    Every dialogue ends with the user's stop and passes the state, policy and provenance checks."""
    domain = get_domain(name)
    config = EpisodeConfig(
        agent=AgentRole(model="a", mode="replay"), user=UserRole(mode="scripted"), max_steps=30
    )
    for task in domain.gold_tasks:
        env = domain.env_for_task(task)
        actions = [a.model_dump() for a in task.actions]
        sides = build_sides(
            config, Models(), domain, env, item_id=task.id, attempt=0, instruction=task.instruction,
            persona=task.persona, gold_actions=actions, outputs=task.outputs,
        )  # fmt: skip
        episode = asyncio.run(play_episode(config, sides, env))
        verdict = judge_episode(
            env, episode, expected_hash=gold_hash(domain, env.seed, actions)[0], expected_outputs=[], provenance=True
        )  # fmt: skip
        assert verdict.success and episode.termination == "user_stop", (task.id, verdict.checks)


def test_phase2_records_the_user_mode_and_exports_the_dialogues_without_include_ungrounded(tmp_path: Path):
    """The case the 135M user failed: a blueprint whose instruction names neither the account nor the
    amount. The scripted user says both, the replay agent's write is grounded, the row and the card
    say user_mode scripted."""
    from datagen.export import export_run

    domain = make_toy_domain(tmp_path)
    config = SimulateConfig(
        agent=AgentRole(model="agent", mode="replay"), user=UserRole(mode="scripted"), attempts=2, concurrency=4
    )  # fmt: skip
    blueprints = [
        Blueprint(id=f"bp{i}", env="toy", seed=1, persona="Ann", instruction="You need some cash.", actions=[WITHDRAW])
        for i in range(3)
    ]  # fmt: skip
    run = DatagenRun(tmp_path / "run")
    models = Models(["Done.", "Anything else?"])
    summary = asyncio.run(SimulationRunner(config, run, lambda n: domain, models).run(blueprints))
    assert (
        summary["failures"] == {} and summary["successful_trajectories"] + summary["duplicate_successes"] == 6
    )
    rows = [json.loads(line) for line in run.trajectories.read_text().splitlines()]
    assert all(r["user_mode"] == "scripted" and r["models"]["user"] == "scripted" for r in rows)
    assert all(r["checks"]["termination"] == "user_stop" for r in rows)
    assert role_models(config, models)["user"] == "scripted"
    export_run(run.root, tmp_path / "data", fmt="jsonl", test=0.0)
    exported = [json.loads(line) for line in (tmp_path / "data" / "train.jsonl").read_text().splitlines()]
    assert exported and all(r["user_mode"] == "scripted" and r["grounded"] for r in exported)
    facts = json.loads((tmp_path / "data" / "export.json").read_text())
    assert facts["user_modes"] == ["scripted"]
    assert re.search(
        r"User mode: scripted \(scripted: a declared stand-in", (tmp_path / "data" / "README.md").read_text()
    )


def test_a_scripted_user_has_no_model_and_no_judge():
    role = UserRole(mode="scripted")
    assert role.aliases() == []
    with pytest.raises(ValueError, match="user.judge needs user.mode: model"):
        UserRole(mode="scripted", judge="j")
    assert UserRole().mode == "model"  # never the default


def test_tau_harness_with_the_scripted_user_reveals_what_the_instruction_states(tmp_path: Path):
    """``eval tau --user-mode scripted``: the flag needs no user model; the user says the values the
    task's instruction states and nothing else, and rows name it."""
    from datagen.envs.base import Task
    from datagen.llm import ModelSpec
    from datagen.recipe import validate_recipe
    from datagen.rundir import TauRun
    from evaluation.tau.cli import build_parser, recipe_data
    from evaluation.tau.config import TauConfig
    from evaluation.tau.harness import TauHarness

    args = build_parser().parse_args(
        ["--env", "toy", "--model", "agent", "--user-mode", "scripted", "--out", "o"]
    )
    data, _ = recipe_data(args)
    assert validate_recipe(data, TauConfig, "flags").user.mode == "scripted"
    # the agent's server flags are not the scripted user's: no user model is declared or started
    served = ["--env", "toy", "--model", "m", "--backend", "openai", "--base-url", "http://127.0.0.1:1/v1"]
    data, _ = recipe_data(build_parser().parse_args([*served, "--user-mode", "scripted", "--out", "o"]))
    assert list(data["models"]) == ["agent"]  # the saved settings name no user server
    assert list(validate_recipe(data, TauConfig, "flags").used_specs()) == ["agent"]

    domain = make_toy_domain(tmp_path)
    tasks = [
        Task(id="stated", persona="Ann", instruction="You want to withdraw 40 from account a10.", actions=[WITHDRAW]),
        Task(id="unstated", persona="Ann", instruction="You want some cash from your account.", actions=[WITHDRAW]),
    ]  # fmt: skip

    def agent(messages, kwargs):
        said = " ".join(m["content"] for m in messages if m["role"] == "user")
        if messages[-1]["role"] == "user" and "a10" in said and "40" in said:
            return [WITHDRAW]
        return ["Done, anything else?" if messages[-1]["role"] == "tool" else "Which account and amount?"]

    class Pool:
        def get(self, alias):
            return ScriptedModel(agent, "agent-under-test")

    config = TauConfig(
        env="toy", models={"agent": ModelSpec(model="agent")}, agent=AgentRole(model="agent"),
        user={"mode": "scripted"}, trials=1, concurrency=2, max_steps=12,
    )  # fmt: skip
    summary = asyncio.run(TauHarness(config, domain, tasks, TauRun(tmp_path / "tau"), Pool()).run())
    assert summary["user"] == "scripted" and summary["per_task_successes"] == {"stated": 1, "unstated": 0}
    rows = {
        json.loads(line)["task_id"]: json.loads(line) for line in (tmp_path / "tau" / "results.jsonl").open()
    }
    unstated = " ".join(m["content"] for m in rows["unstated"]["messages"] if m["role"] == "user")
    assert "a10" not in unstated and "40" not in unstated and rows["stated"]["models"]["user"] == "scripted"
