"""A ChatModel that answers from a script and records every request: for testing the logic around
model calls (vote counting, Best-of-N selection, what a prompt contains). End-to-end tests use the real engine."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from datagen.llm.types import ChatResult, Choice, Usage

Responder = Callable[
    [list[dict[str, Any]], dict[str, Any]], list[str | dict[str, Any] | list[dict[str, Any]]]
]


class ScriptedModel:
    def __init__(self, respond: Responder, name: str = "scripted"):
        self.name = name
        self.requests: list[dict[str, Any]] = []
        self._respond = respond

    async def chat(self, messages, **kwargs) -> ChatResult:
        self.requests.append({"messages": json.loads(json.dumps(messages)), **kwargs})
        choices = []
        for answer in self._respond(messages, kwargs):
            if isinstance(answer, dict | list):  # a tool call, or parallel calls in one turn
                calls = answer if isinstance(answer, list) else [answer]
                choices.append(
                    Choice(content="", tool_calls=calls, raw=json.dumps(answer), finish_reason="tool_calls")
                )
            else:
                choices.append(Choice(content=answer, tool_calls=[], raw=answer, finish_reason="stop"))
        return ChatResult(
            choices=choices, usage=Usage(prompt_tokens=10, completion_tokens=5), model=self.name
        )

    async def aclose(self) -> None:
        pass


class ScriptedPool:
    """Scripted models by alias, where a harness takes a model pool (``get(alias)``)."""

    def __init__(self, **models: ScriptedModel):
        self.models = models

    def get(self, alias: str) -> ScriptedModel:
        return self.models[alias]
