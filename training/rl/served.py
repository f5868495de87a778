"""TRL's own environment path on a domain served over OpenEnv (``apigen-mt envs serve NAME --protocol openenv``).

TRL 1.16's ``GRPOTrainer(environment_factory=...)`` runs the rollout loop itself: it asks the
environment class for its tool methods (public methods with type hints and a Google docstring, from
which transformers builds the schemas the prompt shows), calls ``reset(**row)`` with each dataset row
and appends the string it returns to the row's last user message, generates, runs every tool call on
the rollout's own instance, and stops at the first reply without a call. Reward functions receive the
rollouts' environments (``environments=``) beside the completions.

This module is that class for any served domain, built from the server's own tool list, plus the reward
function: :func:`verdict_reward` hands the policy's final reply to the server as its message to the
user, which ends the episode, and returns the server's verdict (Phase 2's: state, outputs, policy,
provenance, computed by the server with the runner core's verdict) as the reward. Everything crosses
the wire through openenv-core's own client; nothing here imports the toolkit's datagen package.

The episode the server plays for TRL has no simulated-user model: the user is the task (it says the
instruction, then ends the dialogue at the agent's answer), the shape of TRL's single-prompt loop. For
dialogues with a simulated user, ``training/grpo.py`` runs whole episodes on TRL's ``rollout_func``; on
the same scripted episode both give the same reward (tests/test_trl_served.py).
"""

from __future__ import annotations

import inspect
import json
import keyword
from typing import Any, Literal

from openenv.core import GenericEnvClient

_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "object": dict,
}


def python_type(schema: dict[str, Any]) -> Any:
    """The type hint transformers turns back into (nearly) ``schema``: enums as Literal, arrays as lists."""
    if "enum" in schema:
        return Literal[tuple(schema["enum"])]
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        kinds = [python_type(o) for o in options if o.get("type") != "null"]
        found = kinds[0] if len(kinds) == 1 else Any
        return found | None if any(o.get("type") == "null" for o in options) and found is not Any else found
    kind = schema.get("type")
    if kind == "array":
        return list[python_type(schema.get("items", {}))]
    return _JSON_TYPES.get(kind, Any)


def _docstring(description: str, properties: dict[str, Any]) -> str:
    lines = [description.strip() or "A tool.", "", "Args:"]
    for name, prop in properties.items():
        text = " ".join(str(prop.get("description") or name.replace("_", " ")).split())
        lines.append(f"    {name}: {text}")
    return "\n".join(lines) if properties else lines[0]


def tool_method(schema: dict[str, Any]) -> Any:
    """A method ``name(self, **arguments) -> str`` whose signature and docstring carry the tool's schema."""
    function = schema["function"]
    name, parameters = function["name"], function.get("parameters") or {}
    properties, required = parameters.get("properties", {}), set(parameters.get("required", []))
    unusable = [
        arg for arg in properties if not arg.isidentifier() or keyword.iskeyword(arg) or arg == "self"
    ]
    if unusable:
        raise ValueError(
            f"tool {name!r} has parameters {unusable} that cannot be Python parameter names, which TRL's "
            "environment_factory needs (it reads tools from methods); rename them on the server, or train with "
            "training/grpo.py, which reads the schemas as they are"
        )

    def method(self: ServedEnvironment, **arguments: Any) -> str:
        return self._call(name, arguments)

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    hints: dict[str, Any] = {"return": str}
    for arg, prop in properties.items():
        hints[arg] = python_type(prop)
        default = inspect.Parameter.empty if arg in required else prop.get("default")
        params.append(
            inspect.Parameter(arg, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hints[arg])
        )
    method.__name__ = method.__qualname__ = name
    method.__doc__ = _docstring(function.get("description", ""), properties)
    method.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    method.__annotations__ = hints
    return method


class ServedEnvironment:
    """One rollout's session on the server (a subclass per server carries its tools as methods)."""

    url: str = ""
    timeout_s: float = 120.0

    def __init__(self) -> None:
        self._client = GenericEnvClient(
            base_url=self.url, connect_timeout_s=self.timeout_s, message_timeout_s=self.timeout_s
        ).sync()
        self._client.connect()
        self.verdict: dict[str, Any] | None = None
        self.done = False

    def reset(self, **row: Any) -> str:
        """Starts the row's task (``task_id``, or a ``blueprint`` record) and returns the user's first
        message, which TRL appends to the prompt's last user message."""
        reset = {key: row[key] for key in ("task_id", "blueprint", "seed") if row.get(key) is not None}
        if isinstance(reset.get("blueprint"), str):
            reset["blueprint"] = json.loads(reset["blueprint"])
        observation = self._client.reset(**reset).observation
        if observation.get("kind") == "error":
            raise ValueError(f"the server refused reset({reset}): {observation.get('content')}")
        self.verdict, self.done = None, False
        return str(observation.get("content") or "")

    # Every public method but reset and get_reward is a tool to TRL: the plumbing is private.
    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        observation = self._client.step(
            {"type": "call_tool", "tool_name": name, "arguments": arguments}
        ).observation
        return str(observation.get("content", ""))

    def _finish(self, answer: str) -> float:
        """Says ``answer`` to the user, which ends the episode, and returns the verdict's reward."""
        if not self.done:
            result = self._client.step({"type": "message", "content": answer})
            observation = result.observation
            self.verdict = observation.get("verdict")
            self.done = bool(result.done)
        return float((self.verdict or {}).get("reward") or 0.0)

    def _close(self) -> None:
        self._client.close()


def served_environment(url: str, *, timeout_s: float = 120.0) -> type[ServedEnvironment]:
    """The ``environment_factory`` of TRL's GRPOTrainer for the domain served at ``url``: a class whose
    public methods are the server's tools (their schemas from the server's own list)."""
    probe = GenericEnvClient(base_url=url, connect_timeout_s=timeout_s, message_timeout_s=timeout_s).sync()
    with probe:
        observation = probe.reset().observation
    tools = observation.get("tools")
    if not isinstance(tools, list) or not tools:
        raise ValueError(
            f"{url} is not an apigen-mt OpenEnv server: its reset lists no tools ({observation!r:.200})"
        )
    methods = {t["function"]["name"]: tool_method(t) for t in tools}
    clash = sorted(set(methods) & {"reset", "get_reward"})
    if clash:
        raise ValueError(
            f"tools {clash} would shadow the environment's own methods; rename them on the server"
        )
    return type("ServedDomain", (ServedEnvironment,), {"url": url, "timeout_s": timeout_s, **methods})


def final_text(completion: Any) -> str:
    """The text of a completion's last assistant message (conversational), or the completion (plain)."""
    if isinstance(completion, str):
        return completion
    said = [
        m.get("content") or "" for m in completion if isinstance(m, dict) and m.get("role") == "assistant"
    ]
    return said[-1] if said else ""


def verdict_reward(completions: list[Any], environments: list[ServedEnvironment], **_: Any) -> list[float]:
    """TRL reward function: the server's verdict for each rollout, after its final reply reaches the user."""
    return [env._finish(final_text(c)) for c, env in zip(completions, environments, strict=True)]


def served_rows(
    url: str, *, tasks: Literal["gold", "examples"] = "examples", timeout_s: float = 120.0
) -> list[dict[str, Any]]:
    """Dataset rows for TRL: one per task of the served domain, the agent's system prompt first and an
    empty user message that ``reset`` fills with the user's first message."""
    with GenericEnvClient(
        base_url=url, connect_timeout_s=timeout_s, message_timeout_s=timeout_s
    ).sync() as client:
        observation = client.reset(describe=True).observation
    info = observation.get("domain") or {}
    found = info.get("gold_tasks" if tasks == "gold" else "example_tasks") or []
    system = observation.get("system_prompt") or observation.get("policy") or ""
    return [
        {
            "prompt": [{"role": "system", "content": system}, {"role": "user", "content": ""}],
            "task_id": t["id"],
        }
        for t in found
    ]
