"""A domain as an OpenEnv environment, on ``openenv-core``'s ``HTTPEnvServer`` (no protocol code of ours).

Each WebSocket session (``/ws``: what ``GenericEnvClient`` and TRL/verifiers-style clients use) gets
its own :class:`ServedDomainEnv`, i.e. its own :class:`~datagen.envs.serve.episode.ServedEpisode`.

- ``reset(task_id=... | blueprint={...} | seed=...)`` starts an episode: from a gold or example task,
  from a blueprint record (Phase 1's output), or from a bare seed. The observation carries the policy,
  the agent's system prompt, the tools (OpenAI function schemas) and, for a task or blueprint, the
  user's first message (the instruction, or the simulated user's opening when the server was given a
  user model: ``--recipe R --user ALIAS``).
- ``step(action)``: ``{"type": "call_tool", "tool_name": ..., "arguments": {...}}`` (the wire shape of
  OpenEnv's own ``CallToolAction``) runs a tool; ``{"type": "message", "content": ...}`` says something
  to the user, whose reply comes back. Every observation carries the state hash after it.
- When the episode ends, ``reward`` is Phase 2's verdict (1.0 or 0.0) and ``verdict`` names its parts:
  ``state``, ``outputs``, ``policy``, ``provenance`` (with the full checks beside them).
- ``state()`` is the database snapshot (``tables``), its hash, the start and the policy violations so far.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from openenv.core.env_server import Action, Environment, Observation, State, create_fastapi_app
from openenv.core.env_server.types import ConcurrencyConfig
from openenv.core.utils import run_async_safely
from pydantic import Field

from apigen_rules.errors import UsageError
from datagen.envs.base import Domain
from datagen.envs.serve.episode import Action as EpisodeAction
from datagen.envs.serve.episode import EpisodeError, ServedEpisode, verdict_parts
from datagen.envs.serve.sessions import StartError, StartState, domain_info
from datagen.recipe.episode import EpisodeConfig
from datagen.simulate.agent import agent_system_prompt


class DomainAction(Action):
    """A tool call (``call_tool``, the wire shape of OpenEnv's ``CallToolAction``) or a message."""

    type: Literal["call_tool", "message", "list_tools", "check"] = Field(
        description="call_tool: run a tool; message: say content; list_tools: the tools (OpenEnv's MCP "
        "action); check: the state hash and the policy violations so far (changes nothing)"
    )
    tool_name: str = Field("", description="call_tool: the tool's name")
    arguments: dict[str, Any] = Field(default_factory=dict, description="call_tool: the arguments")
    content: str = Field("", description="message: what the agent says to the user")


class DomainObservation(Observation):
    kind: Literal["start", "tool_result", "user_message", "end", "tools", "check", "error"] = "start"
    content: str = Field("", description="the tool's answer, the user's message, or the error")
    ok: bool = True
    state_hash: str = ""
    violations: list[dict[str, str]] | None = Field(
        None, description="policy checks broken so far (at the end, and on a check action)"
    )
    policy: str | None = None  # on reset
    system_prompt: str | None = None  # on reset: what Phase 2's agent is told (policy included)
    tools: list[dict[str, Any]] | None = None  # on reset: OpenAI function schemas
    read_tools: list[str] | None = None  # on reset: the tools that only read
    domain: dict[str, Any] | None = None  # on reset: seeds, references, provenance rule, tasks
    verdict: dict[str, Any] | None = None  # at the end: success, failure, parts, checks


class DomainState(State):
    tables: dict[str, Any] = Field(default_factory=dict)
    state_hash: str = ""
    start: dict[str, Any] = Field(default_factory=dict)
    violations: list[dict[str, str]] = Field(default_factory=list)


class ServedDomainEnv(Environment):
    """One OpenEnv session over a domain (module docstring)."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(
        self, domain: Domain, config: EpisodeConfig, pool: Any, user: str | None, default: StartState
    ):
        super().__init__()
        self.domain = domain
        self.default = default
        self.episode = ServedEpisode(domain, config, pool, user)
        self.start: dict[str, Any] = {}
        self._info: dict[str, Any] | None = None  # made on the first reset that asks to describe
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the OpenEnv interface -------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> DomainObservation:
        return run_async_safely(self.reset_async(seed=seed, episode_id=episode_id, **kwargs))

    async def reset_async(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        task_id: str | None = None,
        blueprint: dict[str, Any] | None = None,
        sandbox: bool = False,
        describe: bool = False,
        **kwargs: Any,
    ) -> DomainObservation:
        self._loop = asyncio.get_running_loop()
        if kwargs:
            return _error(f"unknown reset argument(s) {sorted(kwargs)}; expected seed, task_id or blueprint")
        if seed is None and task_id is None and blueprint is None:
            seed, task_id = self.default.seed, self.default.task_id
        try:
            opening = await self.episode.start(
                seed=seed, task_id=task_id, blueprint=blueprint, sandbox=sandbox
            )
        except (StartError, EpisodeError, ValueError) as exc:
            return _error(str(exc))
        self.start = {"seed": seed, "task_id": task_id, "blueprint": (blueprint or {}).get("id")}
        assert self.episode.env is not None
        done = self.episode.done
        return DomainObservation(
            kind="start",
            content=opening,
            policy=self.domain.policy,
            system_prompt=self.episode.system_prompt or agent_system_prompt(self.domain.policy),
            tools=self.domain.tool_schemas(),
            read_tools=[t.name for t in self.domain.read_tools()],
            domain=self._described() if describe else None,
            state_hash=self.episode.env.state_hash(),
            done=done,
            reward=self.episode.verdict.reward if self.episode.verdict else None,
            verdict=_verdict(self.episode.verdict),
        )

    def _described(self) -> dict[str, Any]:
        if self._info is None:
            self._info = domain_info(self.domain)
        return self._info

    def step(self, action: Action, timeout_s: float | None = None, **kwargs: Any) -> DomainObservation:
        return run_async_safely(self.step_async(action, timeout_s=timeout_s, **kwargs))

    async def step_async(
        self, action: Action, timeout_s: float | None = None, **kwargs: Any
    ) -> DomainObservation:
        if not isinstance(action, DomainAction):
            return _error(f"expected a call_tool or message action, found {type(action).__name__}")
        if action.type == "list_tools":
            return DomainObservation(kind="tools", tools=self.domain.tool_schemas())
        if action.type == "check":
            if self.episode.env is None:
                return _error("reset the environment before checking it")
            env = self.episode.env
            return DomainObservation(
                kind="check", state_hash=env.state_hash(), violations=self.episode.violations()
            )
        if action.type == "call_tool":
            act = EpisodeAction("call", name=action.tool_name, arguments=action.arguments)
        else:
            act = EpisodeAction("message", text=action.content)
        try:
            turn = await self.episode.act(act)
        except EpisodeError as exc:
            return _error(str(exc))
        verdict = self.episode.verdict
        env = self.episode.env
        assert env is not None
        kind = "end" if turn.done else ("tool_result" if action.type == "call_tool" else "user_message")
        return DomainObservation(
            kind=kind,
            content=turn.content,
            ok=turn.ok,
            state_hash=env.state_hash(),
            violations=self.episode.violations() if turn.done else None,
            done=turn.done,
            reward=verdict.reward if verdict is not None else None,
            verdict=_verdict(verdict),
        )

    @property
    def state(self) -> DomainState:
        env = self.episode.env
        if env is None:
            return DomainState()
        return DomainState(
            tables=env.snapshot(),
            state_hash=env.state_hash(),
            start=self.start,
            violations=self.episode.violations(),
        )

    def close(self) -> None:
        # OpenEnv calls close from a worker thread; the episode lives on the server's loop.
        if self._loop is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.episode.close(), self._loop)


def _error(message: str) -> DomainObservation:
    return DomainObservation(kind="error", content=f"Error: {message}", ok=False)


def _verdict(verdict: Any) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {
        "success": verdict.success,
        "reward": verdict.reward,
        "failure": verdict.failure,
        "parts": verdict_parts(verdict),
        "checks": verdict.checks,
    }


def served_models(recipe: Path, user: str | None) -> tuple[EpisodeConfig, Any, str | None]:
    """(episode settings, model pool, user alias) from a recipe's ``models:`` and ``simulate:``."""
    from datagen.llm.pool import ModelPool
    from datagen.recipe import Recipe, read_recipe_data, validate_recipe

    data = read_recipe_data(recipe)

    class ServeRecipe(Recipe):
        simulate: EpisodeConfig = Field(default_factory=EpisodeConfig)

    section = {k: v for k, v in (data.get("simulate") or {}).items() if k in EpisodeConfig.model_fields}
    config = validate_recipe(
        {"models": data.get("models", {}), "simulate": section}, ServeRecipe, str(recipe)
    )
    alias = user or config.simulate.user.model
    if alias not in config.models:
        raise UsageError(
            f"{recipe} declares no model {alias!r} under `models:`; declared: {sorted(config.models)}"
        )
    return config.simulate, ModelPool(config.models), alias


def openenv_app(
    domain: Domain,
    default: StartState,
    models: tuple[EpisodeConfig, Any, str | None] | None = None,
    max_sessions: int = 64,
) -> Any:
    """The FastAPI app (``/ws``, ``/reset``, ``/step``, ``/state``, ``/schema``, ``/health``)."""
    config, pool, user = models if models is not None else (EpisodeConfig(), None, None)

    def factory() -> ServedDomainEnv:
        return ServedDomainEnv(domain, config, pool, user, default)

    return create_fastapi_app(
        factory,
        DomainAction,
        DomainObservation,
        concurrency_config=ConcurrencyConfig(max_concurrent_envs=max_sessions),
    )
