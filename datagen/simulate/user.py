"""The simulated human: sees the instruction and persona, never the agent's tools or the policy.

Best-of-N: N candidate replies are sampled in one request and a self-critique judge scores each
0–10 against the instruction; the best is used (ties: the first). N=1 turns the judge off.

Dual control (τ²-telecom): a user may be given *device tools* that act on its own side of the
environment (the phone). Its calls run through ``use_device`` between its chat messages, stay out of
the agent's view, and are kept in the user's own view of the conversation and in ``UserTurn.device_calls``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from datagen.envs.base import Observation
from datagen.llm.formats import runnable_calls
from datagen.llm.types import ChatModel, Choice, Message, ToolCall, ToolSchema, Usage
from datagen.simulate.agent import AgentTurn, assistant_message

STOP = "###STOP###"
TRANSFER = "###TRANSFER###"

_JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "score": {"type": "integer", "minimum": 0, "maximum": 10}},
    "required": ["reason", "score"],
}


@functools.cache
def _prompt(name: str) -> str:
    """A prompt file, read once per process (every user turn and judge call renders one)."""
    return resources.files("datagen.simulate").joinpath("prompts", name).read_text(encoding="utf-8")


def user_system_prompt(persona: str, instruction: str, *, device: bool = False) -> str:
    """The simulated human's system prompt: the fixed rules (and device rules) first, then who this
    customer is and what they want, so every dialogue of a domain shares the rules in the prefix cache."""
    rules = _prompt("user_device.md") if device else ""
    return _prompt("user_system.md").format(device=rules, persona=persona, instruction=instruction)


def user_judge_prompt(instruction: str, history: str, candidate: str) -> str:
    """The Best-of-N judge's prompt: rules, then instruction and history (shared by every candidate
    of one turn), then the candidate, so the calls of one turn differ only at the end."""
    return _prompt("user_judge.md").format(instruction=instruction, history=history, candidate=candidate)


@dataclass
class UserTurn:
    text: str
    candidates: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    device_calls: list[dict[str, Any]] = field(default_factory=list)  # {name, arguments, ok, observation}

    @property
    def ends(self) -> bool:
        return STOP in self.text or TRANSFER in self.text

    @property
    def transferred(self) -> bool:
        return TRANSFER in self.text


def user_view(messages: list[Message]) -> list[Message]:
    """The conversation as the simulated human sees it: roles flipped, tools and system hidden."""
    view: list[Message] = []
    for m in messages:
        if m["role"] == "user":
            view.append({"role": "assistant", "content": m["content"]})
        elif m["role"] == "assistant" and (m.get("content") or "").strip():
            view.append({"role": "user", "content": m["content"]})
    return view


def parse_judge_score(text: str) -> float | None:
    """The 0–10 score from the judge's answer (JSON preferred; a bare number accepted)."""
    try:
        value = json.loads(text)
        if isinstance(value, dict) and isinstance(value.get("score"), (int, float)):
            return float(min(10, max(0, value["score"])))
    except (json.JSONDecodeError, TypeError):
        pass
    match = re.search(r'"?score"?\s*[:=]\s*(\d+(?:\.\d+)?)', text) or re.fullmatch(
        r"\s*(\d+(?:\.\d+)?)\s*", text
    )
    return float(min(10.0, float(match.group(1)))) if match else None


def best_candidate(candidates: list[str], scores: list[float | None]) -> int:
    """Index of the highest score; unscorable candidates rank last; ties go to the first."""
    ranked = [(-1.0 if s is None else s) for s in scores]
    return max(range(len(candidates)), key=lambda i: (ranked[i], -i))


class SimulatedUser:
    def __init__(
        self,
        model: ChatModel,
        *,
        instruction: str,
        persona: str,
        best_of_n: int = 4,
        judge: ChatModel | None = None,
        temperature: float = 1.0,
        max_tokens: int = 200,
        judge_max_tokens: int = 120,
        seed: int | None = None,
        device_tools: list[ToolSchema] | None = None,
        use_device: Callable[[dict[str, Any]], Observation] | None = None,
        max_device_calls: int = 8,
    ):
        if best_of_n < 1:
            raise ValueError(f"best_of_n must be at least 1, got {best_of_n}")
        if bool(device_tools) != (use_device is not None):
            raise ValueError(
                "device_tools and use_device go together: the tools the user sees and what runs them"
            )
        self.model = model
        self.judge = judge or model
        self.instruction = instruction
        self.best_of_n = best_of_n
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.judge_max_tokens = judge_max_tokens
        self.seed = seed
        self._turns = 0
        self.device_tools = device_tools or None
        self.use_device = use_device
        self.max_device_calls = max_device_calls
        self.system = user_system_prompt(persona, instruction, device=bool(self.device_tools))
        # The user's device calls and their results, each at the position in its view where it made them.
        self._device_log: list[tuple[int, Message]] = []
        self.usage = Usage()

    def prompt_messages(self, conversation: list[Message]) -> list[Message]:
        """Exactly what is sent to the model: the system prompt, the flipped conversation and the
        user's own device calls where it made them."""
        view = user_view(conversation)
        merged: list[Message] = []
        for position in range(len(view) + 1):
            merged += [m for at, m in self._device_log if at == position]
            if position < len(view):
                merged.append(view[position])
        if not merged or merged[-1]["role"] == "assistant":
            # The human speaks first or again: models need a user turn to answer.
            merged.append({"role": "user", "content": "(The chat is open. Write your next message.)"})
        return [{"role": "system", "content": self.system}, *merged]

    def _turn_seed(self) -> int | None:
        """A fresh seed per turn: one seed for every turn replays one random stream, and the human then
        tends to repeat its first message. vLLM seeds the n candidates seed, seed+1, ..., hence the stride."""
        if self.seed is None:
            return None
        seed = self.seed + self._turns * self.best_of_n
        self._turns += 1
        return seed

    async def reply(self, conversation: list[Message]) -> UserTurn:
        """The user's next chat message, after any device calls it makes first."""
        device_calls: list[dict[str, Any]] = []
        while True:
            tools = self.device_tools if len(device_calls) < self.max_device_calls else None
            result = await self.model.chat(
                self.prompt_messages(conversation),
                tools=tools,
                n=self.best_of_n,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=self._turn_seed(),
            )
            self.usage.add(result.usage)
            acting = result.choices[0]
            calls = runnable_calls(acting.tool_calls, acting.parse_error)  # none from a broken message
            if not (tools and calls):
                break
            # A candidate that acts is taken as sampled: the judge scores chat messages only.
            device_calls += self._run_device_calls(acting, calls, position=len(user_view(conversation)))
        candidates = [c.content.strip() for c in result.choices]
        if self.best_of_n == 1:
            return UserTurn(text=candidates[0], candidates=candidates, device_calls=device_calls)
        scores = await asyncio.gather(*(self._score(conversation, c) for c in candidates))
        best = best_candidate(candidates, scores)
        return UserTurn(
            text=candidates[best], candidates=candidates, scores=[-1.0 if s is None else s for s in scores],
            device_calls=device_calls,
        )  # fmt: skip

    def _run_device_calls(self, choice: Choice, calls: list[ToolCall], position: int) -> list[dict[str, Any]]:
        assert self.use_device is not None
        ids = [f"device_{len(self._device_log)}_{n}" for n in range(len(calls))]
        self._device_log.append(
            (position, assistant_message(AgentTurn(choice.content, calls, choice.raw), ids))
        )
        done = []
        for call_id, call in zip(ids, calls, strict=True):
            observation = self.use_device(call)
            self._device_log.append(
                (
                    position,
                    {
                        "role": "tool",
                        "tool_call_id": call_id,
                        "name": call["name"],
                        "content": observation.content,
                    },
                )
            )
            done.append({**call, "ok": observation.ok, "observation": observation.content})
        return done

    async def _score(self, conversation: list[Message], candidate: str) -> float | None:
        if not candidate:
            return 0.0
        history = "\n".join(
            f"{'Customer' if m['role'] == 'assistant' else 'Agent'}: {m['content']}"
            for m in user_view(conversation)
        )
        prompt = user_judge_prompt(self.instruction, history or "(nothing yet)", candidate)
        result = await self.judge.chat(
            [{"role": "user", "content": prompt}],
            temperature=0.0,
            max_tokens=self.judge_max_tokens,
            json_schema=_JUDGE_SCHEMA,
        )
        self.usage.add(result.usage)
        return parse_judge_score(result.first.content or result.first.raw)
