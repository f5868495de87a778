"""One whole episode driven from outside: the client is the agent, everything else is ours.

The episode is the runner core's own: the sides come from the build layer (:func:`build_sides`: the
simulated user with its Best-of-N judge, and an agent whose "model" is the client), the dialogue from
the episode layer (:func:`play_episode`), the reward from Phase 2's verdict (:func:`judge_episode`,
provenance check included). Each agent turn the episode layer asks for becomes a wait for the
client's next action, so a tool call runs, is recorded and fails exactly as in Phase 2.

The user is a model of the server's recipe (an alias) or, without one, the task itself: it says the
task's instruction, and ends the dialogue (``###STOP###``) after the agent's next message to it. That
is the shape of a single-prompt RL rollout (TRL's environment loop), judged by the same verdict.

Without a task (a seed only) there is nothing to judge: tool calls run, a message ends the episode,
and the reward is None.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from datagen.envs.base import Domain, Environment, Task, ToolCallModel
from datagen.envs.serve.sessions import StartState, find_task, start_env, violation_records
from datagen.envs.store import Tables
from datagen.llm.types import ChatModel, ChatResult, Choice, Usage
from datagen.recipe.episode import AgentRole, EpisodeConfig, UserRole
from datagen.simulate.build import EpisodeSides, build_sides, play_episode
from datagen.simulate.episode import EpisodeResult
from datagen.simulate.user import STOP
from datagen.simulate.verdict import Verdict, gold_hash, judge_episode

CLIENT = "client"  # the alias of the agent's model: the client of the server
TASK_USER = "task"  # the alias of the user that says the instruction and stops after the next answer


class EpisodeError(ValueError):
    """An action the episode cannot take now (after its end, or a malformed one); one line for people."""


@dataclass(frozen=True)
class Action:
    """What the client does: ``call`` a tool (``name``, ``arguments``) or say ``text`` to the user."""

    kind: Literal["call", "message"]
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def as_choice(self) -> Choice:
        if self.kind == "call":
            call = {"name": self.name, "arguments": self.arguments}
            return Choice(content="", tool_calls=[call], raw=json.dumps(call), finish_reason="tool_calls")
        return Choice(content=self.text, tool_calls=[], raw=self.text, finish_reason="stop")


class ClientAgent:
    """The agent's model in a served episode: each request waits for the client's next action."""

    name = CLIENT

    def __init__(self) -> None:
        self.turn = asyncio.Event()  # set while the episode waits for the client
        self.conversation: list[dict[str, Any]] = []  # as of the last request, system prompt left out
        self._reply: asyncio.Future[ChatResult] | None = None

    async def chat(self, messages: list[dict[str, Any]], **_: Any) -> ChatResult:
        self.conversation = list(messages[1:])
        self._reply = asyncio.get_running_loop().create_future()
        self.turn.set()
        return await self._reply

    def answer(self, action: Action) -> None:
        if self._reply is None or self._reply.done():
            raise EpisodeError("the episode is not waiting for the agent")
        self.turn.clear()
        self._reply.set_result(ChatResult(choices=[action.as_choice()], usage=Usage(), model=CLIENT))

    async def aclose(self) -> None:
        pass


class TaskUser:
    """The user without a model: the instruction, then ``###STOP###`` once the agent has answered."""

    name = TASK_USER

    def __init__(self, instruction: str) -> None:
        self.instruction = instruction
        self.spoken = False

    async def chat(self, messages: list[dict[str, Any]], *, n: int = 1, **_: Any) -> ChatResult:
        text = STOP if self.spoken else self.instruction
        self.spoken = True
        choices = [Choice(content=text, tool_calls=[], raw=text, finish_reason="stop") for _ in range(n)]
        return ChatResult(choices=choices, usage=Usage(), model=TASK_USER)

    async def aclose(self) -> None:
        pass


class _SideModels:
    def __init__(self, found: dict[str, ChatModel], pool: Any) -> None:
        self.found, self.pool = found, pool

    def get(self, alias: str) -> ChatModel:
        return self.found[alias] if alias in self.found else self.pool.get(alias)


@dataclass
class Goal:
    """What the episode is judged against: the task's instruction, ground truth and expected state."""

    id: str
    instruction: str
    persona: str
    actions: list[ToolCallModel]
    outputs: list[str]
    seed: int
    expected_hash: str


def goal_of(
    domain: Domain, task_id: str | None, blueprint: dict[str, Any] | None
) -> tuple[Goal | None, StartState]:
    """The goal and start state a reset names: a blueprint record, a task id, or neither."""
    if blueprint is not None:
        from datagen.records import Blueprint

        record = Blueprint.model_validate(blueprint)
        task = Task(
            id=record.id,
            user_id=record.user_id,
            persona=record.persona,
            instruction=record.instruction,
            actions=record.actions,
            outputs=record.outputs,
            seed=record.seed,
        )
        start = StartState(seed=record.seed)
    elif task_id is not None:
        task = find_task(domain, task_id)
        start = StartState(task_id=task_id)
    else:
        return None, StartState()
    seed = domain.task_seed(task)
    expected = gold_hash(domain, seed, task.actions)[0]
    goal = Goal(
        task.id, task.instruction, task.persona, list(task.actions), list(task.outputs), seed, expected
    )
    return goal, start


@dataclass
class Turn:
    """What one action brought: the tool's answer or the user's reply, and the end of the episode."""

    content: str
    ok: bool = True
    done: bool = False
    verdict: Verdict | None = None


class ServedEpisode:
    """One episode (module docstring). ``start`` then ``act`` until ``done``; ``close`` at the end."""

    def __init__(
        self, domain: Domain, config: EpisodeConfig, pool: Any = None, user_alias: str | None = None
    ):
        self.domain = domain
        self.config = config
        self.pool = pool
        self.user_alias = user_alias if pool is not None else None
        self.env: Environment | None = None
        self.before: Tables = {}  # the state the episode started from (policy checks judge against it)
        self.goal: Goal | None = None
        self.sides: EpisodeSides | None = None
        self._agent = ClientAgent()
        self._task: asyncio.Task[EpisodeResult] | None = None
        self.verdict: Verdict | None = None
        self.done = False

    async def start(
        self,
        *,
        seed: int | None = None,
        task_id: str | None = None,
        blueprint: dict | None = None,
        sandbox: bool = False,
        attempt: int = 0,
    ) -> str:
        """Resets to the start the client names and returns the user's first message ('' without a
        task). ``sandbox``: the task or blueprint only sets the start state; no dialogue, no verdict
        (a client that runs its own episode loop over the tools: apigen-mt's remote domains)."""
        await self.close()
        self.goal, start = goal_of(self.domain, task_id, blueprint)
        if self.goal is None:
            start = StartState(seed=seed)
        if sandbox:
            self.goal = None
        self.env = start_env(self.domain, start)
        self.before = self.env.snapshot()
        self.verdict, self.done, self._agent = None, False, ClientAgent()
        if self.goal is None:
            return ""
        user = self.user_alias or TASK_USER
        config = self.config.model_copy(
            update={
                "agent": AgentRole(model=CLIENT),
                "user": self.config.user.model_copy(update={"model": user})
                if self.user_alias
                else UserRole(model=TASK_USER, best_of_n=1),
            }
        )
        found: dict[str, ChatModel] = {CLIENT: self._agent}
        if not self.user_alias:
            found[TASK_USER] = TaskUser(self.goal.instruction)
        self.sides = build_sides(
            config,
            _SideModels(found, self.pool),
            self.domain,
            self.env,
            item_id=self.goal.id,
            attempt=attempt,
            instruction=self.goal.instruction,
            persona=self.goal.persona,
        )
        self._task = asyncio.ensure_future(play_episode(config, self.sides, self.env))
        await self._next_turn()
        if self.done:
            self.verdict = self._judge()
        users = [m for m in self._conversation() if m["role"] == "user"]
        return users[0]["content"] if users else ""

    def violations(self) -> list[dict[str, str]]:
        return violation_records(self.env, self.before) if self.env is not None else []

    @property
    def system_prompt(self) -> str:
        return self.sides.agent.system if self.sides is not None else ""

    async def act(self, action: Action) -> Turn:
        if self.env is None:
            raise EpisodeError("reset the environment before stepping")
        if self.done:
            raise EpisodeError("the episode is over; reset to start another")
        if self._task is None:  # no task: a tool sandbox
            if action.kind == "message":
                self.done = True
                return Turn(content="", done=True)
            observation = await self.env.acall({"name": action.name, "arguments": action.arguments})
            return Turn(observation.content, observation.ok)
        seen = len(self._conversation())
        self._agent.answer(action)
        await self._next_turn()
        new = self._conversation()[seen:]
        if self.done:
            self.verdict = self._judge()
        tools = [m for m in new if m["role"] == "tool"]
        users = [m for m in new if m["role"] == "user"]
        if action.kind == "call" and tools:
            content = tools[-1]["content"]
            return Turn(content, not content.startswith("Error:"), self.done, self.verdict)
        reply = users[-1]["content"] if users else ""
        return Turn(reply, True, self.done, self.verdict)

    async def _next_turn(self) -> None:
        """Waits until the episode asks the client again, or ends."""
        assert self._task is not None
        waiter = asyncio.ensure_future(self._agent.turn.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            waiter.cancel()
            self.done = True
            self._task.result()  # an error of the episode itself reaches the client

    def _conversation(self) -> list[dict[str, Any]]:
        """The dialogue so far: the finished episode's, else what the agent was last shown."""
        if self._task is not None and self._task.done():
            return self._task.result().messages
        return self._agent.conversation

    def _judge(self) -> Verdict:
        assert self.goal is not None and self.env is not None
        return judge_episode(
            self.env,
            self._task.result(),  # type: ignore[union-attr]
            expected_hash=self.goal.expected_hash,
            expected_outputs=self.goal.outputs,
            provenance=True,
        )

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self.env is not None:
            self.env.close()


def verdict_parts(verdict: Verdict) -> dict[str, bool]:
    """The verdict's four parts by name: state, outputs, policy, provenance."""
    checks = verdict.checks
    return {
        "state": bool(checks.get("state_match")),
        "outputs": not checks.get("missing_outputs"),
        "policy": not checks.get("policy_violations"),
        "provenance": not checks.get("ungrounded_arguments"),
    }
