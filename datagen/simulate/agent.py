"""The agent: a tool-calling model with the domain policy as system prompt and the environment's tools.

``mode="replay"`` is for weak teachers: the agent's tool calls follow the blueprint's actions, one per
turn, while the model writes the text to the user. It is off by default and recorded in provenance.
With ``stop_after_script`` a replay episode ends once every scripted action has run and the agent has
answered: a weak user simulator rarely says ``###STOP###`` on its own, and the rest of its dialogue
would add nothing the script does not already decide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from datagen.llm.types import ChatModel, Message, ParseError, ToolCall, Usage
from datagen.recipe.episode import AgentMode


def agent_system_prompt(policy: str) -> str:
    template = (
        resources.files("datagen.simulate").joinpath("prompts", "agent_system.md").read_text(encoding="utf-8")
    )
    return template.format(policy=policy)


@dataclass
class AgentTurn:
    content: str
    tool_calls: list[ToolCall]
    raw: str
    parse_error: ParseError | None = None


def assistant_message(turn: AgentTurn, call_ids: list[str]) -> Message:
    """OpenAI chat format; arguments are kept as objects inside the toolkit."""
    message: Message = {"role": "assistant", "content": turn.content}
    if turn.tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for cid, c in zip(call_ids, turn.tool_calls, strict=True)
        ]
    return message


class Agent:
    def __init__(
        self,
        model: ChatModel,
        *,
        policy: str,
        tools: list[dict[str, Any]],
        mode: AgentMode = "model",
        gold_actions: list[ToolCall] | None = None,
        stop_after_script: bool = False,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int | None = None,
    ):
        if mode == "replay" and gold_actions is None:
            raise ValueError("replay mode needs the blueprint's actions (gold_actions)")
        if stop_after_script and mode != "replay":
            raise ValueError("stop_after_script applies to replay mode only; found mode=" + repr(mode))
        self.model = model
        self.system = agent_system_prompt(policy)
        self.tools = tools
        self.mode = mode
        self._pending = list(gold_actions or [])
        self.stop_after_script = stop_after_script
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self._calls = 0
        self.usage = Usage()

    @property
    def script_done(self) -> bool:
        """True for a replay agent told to stop once its scripted actions have all run."""
        return self.stop_after_script and not self._pending

    async def act(self, conversation: list[Message]) -> AgentTurn:
        """The next assistant message given the conversation (which has no system message)."""
        if self.mode == "replay" and self._pending and conversation[-1]["role"] == "user":
            action = self._pending.pop(0)
            return AgentTurn(content="", tool_calls=[action], raw=json.dumps(action))
        result = await self.model.chat(
            [{"role": "system", "content": self.system}, *conversation],
            tools=self.tools,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=None if self.seed is None else self.seed + self._calls,  # a fresh stream per turn
        )
        self._calls += 1
        self.usage.add(result.usage)
        choice = result.first
        if self.mode == "replay":
            # The blueprint decides the actions; the model only talks.
            return AgentTurn(content=choice.content.strip(), tool_calls=[], raw=choice.raw)
        return AgentTurn(
            content=choice.content.strip(),
            tool_calls=list(choice.tool_calls),
            raw=choice.raw,
            parse_error=choice.parse_error,
        )
