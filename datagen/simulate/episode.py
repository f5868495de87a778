"""One episode: the simulated human and the agent talk inside one environment until the human stops,
asks for a transfer, a replay agent told to stop has finished its script, or the step limit is reached.
A request that fails, or an agent prompt that no longer fits the model's context, ends it as an error.
Phase 2 and the τ-bench-style harness both use it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from datagen.envs.base import Environment
from datagen.envs.store import Tables
from datagen.llm.base import ModelUnavailableError
from datagen.llm.formats import runnable_calls
from datagen.llm.types import Message, Usage
from datagen.simulate.agent import Agent, AgentTurn, assistant_message
from datagen.simulate.scripted_user import ScriptedUser
from datagen.simulate.user import STOP, TRANSFER, SimulatedUser, UserTurn

GREETING = "Hi! How can I help you today?"

Termination = Literal["user_stop", "transfer", "script_done", "step_limit", "error"]


@dataclass
class EpisodeResult:
    """One finished dialogue: its messages, how it ended, the state it started from, the agent's
    unreadable tool calls, the user's turns (with Best-of-N candidates and scores) and its steps."""

    messages: list[Message]  # conversation without the system prompt
    termination: Termination
    before: Tables
    format_errors: list[str] = field(default_factory=list)
    user_turns: list[UserTurn] = field(default_factory=list)
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    error: str | None = None


class ContextOverflow(RuntimeError):
    """The agent's prompt no longer fits its model's context: the dialogue cannot go on (τ²-bench's
    runner ends such a simulation as an error too, with reward 0)."""


def _tool_message(call_id: str, name: str, content: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


async def _agent_turns(
    env: Environment, agent: Agent, messages: list[Message], result: EpisodeResult, max_steps: int
) -> bool:
    """Runs the agent until it answers the user in text; False when the step limit cut it short."""
    while result.steps < max_steps:
        turn: AgentTurn = await agent.act(messages)
        result.steps += 1
        if turn.parse_error is not None and turn.parse_error.kind == "context_overflow":
            raise ContextOverflow(turn.parse_error.message)
        if turn.parse_error is not None:
            result.format_errors.append(f"{turn.parse_error.kind}: {turn.parse_error.message}")
        # The rule of datagen.llm.formats: a broken message runs nothing and is kept as the text the
        # model wrote (it reaches the user like any text answer); a message read in full runs all
        # its calls, and the environment answers those that do not fit the tools with an error.
        calls = runnable_calls(turn.tool_calls, turn.parse_error)
        if calls:
            content = turn.content
        elif turn.tool_calls:
            content = turn.raw.strip()
        else:
            content = turn.content or turn.raw.strip()
        call_ids = [f"call_{len(messages)}_{i}" for i in range(len(calls))]
        messages.append(assistant_message(AgentTurn(content, calls, turn.raw), call_ids))
        if not calls:
            return True
        for call_id, call in zip(call_ids, calls, strict=True):
            observation = await env.acall(call)  # parallel calls are all executed, in order
            messages.append(_tool_message(call_id, call["name"], observation.content))
    return False


async def run_episode(
    env: Environment, agent: Agent, user: SimulatedUser | ScriptedUser, *, max_steps: int = 30
) -> EpisodeResult:
    """Plays one dialogue on ``env`` (which the caller has reset) and returns it with its trace in ``env``."""
    messages: list[Message] = [{"role": "assistant", "content": GREETING}]
    result = EpisodeResult(messages=messages, termination="step_limit", before=env.snapshot())
    try:
        while result.steps < max_steps:
            turn = await user.reply(messages)
            result.steps += 1
            result.user_turns.append(turn)
            messages.append({"role": "user", "content": turn.text})
            if turn.ends:
                result.termination = (
                    "transfer" if TRANSFER in turn.text and STOP not in turn.text else "user_stop"
                )
                break
            if not await _agent_turns(env, agent, messages, result, max_steps):
                break
            if agent.script_done:
                result.termination = "script_done"
                break
    except ModelUnavailableError:
        raise  # an outage is not this episode's failure: the run stops and resumes it later
    except Exception as exc:  # a failed request ends this episode, not the run
        result.termination = "error"
        result.error = f"{type(exc).__name__}: {exc}"
    result.usage.add(agent.usage)
    result.usage.add(user.usage)
    return result


def final_messages(system_prompt: str, episode: EpisodeResult) -> list[dict[str, Any]]:
    """The dialogue as stored and trained on: the agent's system prompt, then every message."""
    return [{"role": "system", "content": system_prompt}, *episode.messages]
