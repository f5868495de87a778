"""Phase 2 logic: the verdict on hand-built episodes, Best-of-N selection, what the human is shown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from scripted import ScriptedModel
from toydomain import make_toy_domain

from datagen.simulate.agent import Agent
from datagen.simulate.episode import EpisodeResult, run_episode
from datagen.simulate.user import SimulatedUser, best_candidate, parse_judge_score
from datagen.simulate.verdict import gold_hash, judge_episode

WITHDRAW = {"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}


@pytest.fixture()
def domain(tmp_path: Path):
    return make_toy_domain(tmp_path)


def _episode(env, actions, said: list[str], termination="user_stop", format_errors=()):
    before = env.snapshot()
    env.replay(actions)
    messages = [{"role": "user", "content": "hi"}] + [{"role": "assistant", "content": s} for s in said]
    return EpisodeResult(
        messages=messages, termination=termination, before=before, format_errors=list(format_errors)
    )


@pytest.mark.parametrize(
    "actions, said, termination, format_errors, failure",
    [
        ([WITHDRAW], ["Done, your balance is $60.00."], "user_stop", (), None),
        ([], ["Done, your balance is 60."], "user_stop", (), "state_mismatch"),
        ([WITHDRAW], ["Done."], "user_stop", (), "missing_output"),
        ([WITHDRAW], ["Done, balance 60."], "step_limit", (), "step_limit"),
        ([], ["oops"], "user_stop", ("invalid_json: bad",), "format_error"),
    ],
)
def test_verdict(domain, actions, said, termination, format_errors, failure):
    expected, start, ok = gold_hash(domain, 1, [WITHDRAW])
    assert ok and expected != start
    env = domain.new_env(1)
    verdict = judge_episode(
        env,
        _episode(env, actions, said, termination, format_errors),
        expected_hash=expected,
        expected_outputs=["60"],
    )
    assert verdict.failure == failure
    assert verdict.success is (failure is None) and verdict.reward == (1.0 if failure is None else 0.0)
    assert verdict.checks["state_match"] is (actions == [WITHDRAW])


def test_policy_violation_fails_even_when_state_matches(domain):
    big = {"name": "withdraw", "arguments": {"account_id": "a14", "amount": 150}}
    expected, _, _ = gold_hash(domain, 1, [big])
    env = domain.new_env(1)
    verdict = judge_episode(env, _episode(env, [big], ["ok"]), expected_hash=expected, expected_outputs=[])
    assert verdict.failure == "policy_violation" and verdict.checks["policy_violations"]


def test_best_of_n_picks_highest_judge_score_and_hides_tools():
    candidates = ["I want to withdraw money.", "Withdraw 40 from a10 please.", "I don't remember.", ""]
    scores = {candidates[0]: 6, candidates[1]: 9, candidates[2]: 2}

    def user_side(messages, kwargs):
        return candidates

    def judge_side(messages, kwargs):
        text = messages[0]["content"]
        candidate = (
            text.split("# The candidate next message from the customer\n", 1)[1].split("\n\n#", 1)[0].strip()
        )
        return [json.dumps({"reason": "r", "score": scores[candidate]})]

    user_model, judge = ScriptedModel(user_side), ScriptedModel(judge_side)
    user = SimulatedUser(
        user_model, instruction="Withdraw 40 from a10.", persona="Ann", best_of_n=4, judge=judge
    )
    conversation = [
        {"role": "assistant", "content": "Hi! How can I help you today?"},
        {"role": "user", "content": "hello"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_account", "arguments": {"account_id": "a10"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "get_account", "content": '{"balance": 100}'},
        {"role": "assistant", "content": "What would you like to do?"},
    ]
    turn = asyncio.run(user.reply(conversation))
    assert turn.text == candidates[1]
    assert turn.scores == [6, 9, 2, 0]
    assert len(judge.requests) == 3  # the empty candidate is scored 0 without asking
    sent = user_model.requests[0]
    assert "tools" not in sent or sent["tools"] is None
    flat = json.dumps(sent["messages"])
    assert "get_account" not in flat and "balance" not in flat and "tool_calls" not in flat
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]


def test_best_candidate_ties_and_unscorable():
    assert best_candidate(["a", "b", "c"], [5, 7, 7]) == 1
    assert best_candidate(["a", "b"], [None, 0]) == 1
    assert parse_judge_score('{"reason": "x", "score": 12}') == 10
    assert parse_judge_score("score: 4") == 4 and parse_judge_score("no idea") is None


def test_episode_runs_tools_in_order_and_stops(domain):
    env = domain.new_env(1)
    turns = iter(["Please withdraw 40 from a10.", "Thanks! ###STOP###"])
    user = SimulatedUser(
        ScriptedModel(lambda m, k: [next(turns)]),
        instruction="Withdraw 40 from a10.",
        persona="Ann",
        best_of_n=1,
    )

    def agent_side(messages, kwargs):
        assert kwargs["tools"] and messages[0]["role"] == "system"
        if messages[-1]["role"] == "user":
            return [WITHDRAW]
        return ["Done. Your balance is now $60."]

    agent = Agent(ScriptedModel(agent_side), policy="Be nice.", tools=domain.tool_schemas())
    episode = asyncio.run(run_episode(env, agent, user, max_steps=10))
    assert episode.termination == "user_stop"
    assert [m["role"] for m in episode.messages] == [
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert episode.messages[2]["tool_calls"][0]["function"]["arguments"] == {
        "account_id": "a10",
        "amount": 40,
    }
    expected, _, _ = gold_hash(domain, 1, [WITHDRAW])
    assert judge_episode(env, episode, expected_hash=expected, expected_outputs=["60"]).success


def test_an_agent_prompt_over_the_context_ends_the_episode_as_an_error(domain):
    """The agent's context overflows after its write: the dialogue stops there as an error (it used to
    go on with an empty agent message, and a user's later ###STOP### made it a success)."""
    from datagen.llm.base import context_overflow_result

    env = domain.new_env(1)
    turns = iter(["Please withdraw 40 from a10.", "Thanks! ###STOP###"])
    user = SimulatedUser(ScriptedModel(lambda m, k: [next(turns)]), instruction="x", persona="y", best_of_n=1)

    class Overflowing(ScriptedModel):
        async def chat(self, messages, **kwargs):
            if messages[-1]["role"] == "tool":
                return context_overflow_result(9001, 8192, 1, self.name)
            return await super().chat(messages, **kwargs)

    agent = Agent(Overflowing(lambda m, k: [WITHDRAW]), policy="Be nice.", tools=domain.tool_schemas())
    episode = asyncio.run(run_episode(env, agent, user, max_steps=10))
    assert episode.termination == "error" and episode.error.startswith("ContextOverflow: the prompt has 9001")
    assert [m["role"] for m in episode.messages] == ["assistant", "user", "assistant", "tool"]
    expected, _, _ = gold_hash(domain, 1, [WITHDRAW])
    verdict = judge_episode(env, episode, expected_hash=expected, expected_outputs=[])
    assert verdict.checks["state_match"] and not verdict.success and verdict.failure == "error"


def test_replay_agent_follows_blueprint_actions(domain):
    env = domain.new_env(1)
    turns = iter(["Hi, I need a withdrawal.", "Bye ###STOP###"])
    user = SimulatedUser(ScriptedModel(lambda m, k: [next(turns)]), instruction="x", persona="y", best_of_n=1)
    # The model tries a different call; replay mode ignores model tool calls and follows the blueprint.
    agent = Agent(
        ScriptedModel(lambda m, k: ["Done, 60 left."]),
        policy="p",
        tools=domain.tool_schemas(),
        mode="replay",
        gold_actions=[WITHDRAW],
    )
    episode = asyncio.run(run_episode(env, agent, user, max_steps=10))
    assert [a.name for a in env.trace] == ["withdraw"]
    assert episode.termination == "user_stop"


def test_replay_agent_told_to_stop_ends_after_its_script_and_passes(domain):
    env = domain.new_env(1)
    user_model = ScriptedModel(lambda m, k: ["I need a withdrawal, and then more chat."])
    user = SimulatedUser(user_model, instruction="x", persona="y", best_of_n=1)
    agent = Agent(
        ScriptedModel(lambda m, k: ["Done, 60 left."]),
        policy="p",
        tools=domain.tool_schemas(),
        mode="replay",
        gold_actions=[WITHDRAW],
        stop_after_script=True,
    )
    episode = asyncio.run(run_episode(env, agent, user, max_steps=10))
    assert episode.termination == "script_done"
    assert [m["role"] for m in episode.messages] == ["assistant", "user", "assistant", "tool", "assistant"]
    assert len(user_model.requests) == 1
    expected, _, _ = gold_hash(domain, 1, [WITHDRAW])
    verdict = judge_episode(env, episode, expected_hash=expected, expected_outputs=["60"])
    assert verdict.success and verdict.checks["termination"] == "script_done"


def test_stop_after_script_needs_replay_mode(domain):
    with pytest.raises(ValueError, match="replay mode only"):
        Agent(ScriptedModel(lambda m, k: ["x"]), policy="p", tools=[], stop_after_script=True)
    from datagen.recipe.episode import AgentRole

    with pytest.raises(ValueError, match="needs agent.mode: replay"):
        AgentRole.model_validate({"model": "embedded", "stop_after_script": True})


def test_parallel_calls_all_run_in_order_and_a_failing_one_is_an_observation(domain):
    env = domain.new_env(1)
    turns = iter(["Withdraw 40 from a10 and 40 from a99, then show a10.", "ok ###STOP###"])
    user = SimulatedUser(ScriptedModel(lambda m, k: [next(turns)]), instruction="x", persona="y", best_of_n=1)
    calls = [
        WITHDRAW,
        {"name": "withdraw", "arguments": {"account_id": "a99", "amount": 40}},  # no such account
        {"name": "withdraw", "arguments": {"account_id": "a10", "amount": "forty"}},  # wrong type
        {"name": "get_account", "arguments": {"account_id": "a10"}},
    ]

    def agent_side(messages, kwargs):
        return [calls] if messages[-1]["role"] == "user" else ["a10 holds 60; a99 does not exist."]

    agent = Agent(ScriptedModel(agent_side), policy="p", tools=domain.tool_schemas())
    episode = asyncio.run(run_episode(env, agent, user, max_steps=10))
    tool_messages = [m for m in episode.messages if m["role"] == "tool"]
    assert [m["name"] for m in tool_messages] == ["withdraw", "withdraw", "withdraw", "get_account"]
    assert not tool_messages[0]["content"].startswith("Error")
    assert tool_messages[1]["content"].startswith("Error") and "a99" in tool_messages[1]["content"]
    assert tool_messages[2]["content"].startswith("Error")
    assert '"balance": 60' in tool_messages[3]["content"].replace(
        ".0", ""
    )  # only the valid withdrawal changed it
    assert [m["tool_call_id"] for m in tool_messages] == [c["id"] for c in episode.messages[2]["tool_calls"]]
    expected, _, _ = gold_hash(domain, 1, [WITHDRAW])
    assert judge_episode(env, episode, expected_hash=expected, expected_outputs=["60"]).checks["state_match"]
