"""τ² tasks as our ``Task`` records.

- ``actions``: τ²'s gold actions with requestor ``assistant`` (what the agent must do). Gold actions
  of the user (telecom: toggling settings on the phone) cannot be our agent's actions; they are
  listed in ``notes`` and replayed by ``evaluate.replay_gold`` through ``Tau2Environment.call_user``.
- ``outputs``: τ²'s ``communicate_info``.
- ``instruction``: τ²'s user scenario (reason for call, known and unknown info, task instructions).
- ``notes``: τ²'s purpose, NL assertions (judged by an LLM in τ², not by our reward), env
  assertions and user-side actions, so nothing τ² checks is silently lost.
"""

from __future__ import annotations

import json
import re
from typing import Any

from datagen.envs.base import Task, ToolCallModel
from datagen.envs.store import Tables

Split = str  # τ² split names: base, train, test (telecom also small, full)

_USER_ARGS = ("user_id", "customer_id")
_OWNED_BY = {"order_id": "orders", "reservation_id": "reservations"}


def _instruction(scenario: Any) -> str:
    instructions = scenario.instructions
    if isinstance(instructions, str):
        return instructions.strip()
    parts = [("Reason for call", instructions.reason_for_call)]
    parts += [("Known info", instructions.known_info), ("Unknown info", instructions.unknown_info)]
    parts += [("How to behave", instructions.task_instructions)]
    return "\n\n".join(f"{title}:\n{text.strip()}" for title, text in parts if text and text.strip())


_TOKEN = re.compile(r"[#\w.@-]+")


def _owner(base: Tables, key: str, value: Any) -> str | None:
    record = base.get(_OWNED_BY[key], {}).get(str(value))
    owner = record.get("user_id") if record is not None else None
    return owner if isinstance(owner, str) else None


def _user_id(actions: list[Any], base: Tables, instruction: str) -> str | None:
    """The user the task is about: a user id in the gold arguments, or the owner of an
    order/reservation there; failing both, a user id, order or reservation named in the instruction."""
    for action in actions:
        for key in _USER_ARGS:
            if isinstance(action.arguments.get(key), str):
                return action.arguments[key]
    candidates = [(key, action.arguments.get(key)) for action in actions for key in _OWNED_BY]
    named = [token.rstrip(".") for token in _TOKEN.findall(instruction)]
    users = base.get("users", {})
    for token in named:
        if token in users:
            return token
    candidates += [(key, token) for token in named for key in _OWNED_BY]
    for key, value in candidates:
        if value is not None and (owner := _owner(base, key, value)):
            return owner
    return None


def _notes(task: Any) -> str:
    criteria = task.evaluation_criteria
    lines = []
    if task.description is not None and task.description.purpose:
        lines.append(f"Purpose: {task.description.purpose.strip()}")
    if criteria is not None:
        user_actions = [a for a in criteria.actions or [] if a.requestor == "user"]
        if user_actions:
            calls = "; ".join(f"{a.name}({json.dumps(a.arguments, sort_keys=True)})" for a in user_actions)
            lines.append(f"User-side gold actions (the user does these on their device): {calls}")
        if criteria.env_assertions:
            asserted = "; ".join(
                f"{a.func_name}({json.dumps(a.arguments, sort_keys=True)}) is {a.assert_value}"
                for a in criteria.env_assertions
            )
            lines.append(f"τ² env assertions: {asserted}")
        if criteria.nl_assertions:
            lines.append(
                "τ² NL assertions (LLM-judged, not in our reward): " + " | ".join(criteria.nl_assertions)
            )
        lines.append("τ² reward basis: " + ", ".join(str(r.value) for r in criteria.reward_basis))
    if task.initial_state is not None:
        lines.append("Starts from τ²'s task initial state: use domain.env_for_task(task).")
    return "\n".join(lines)


def convert_task(task: Any, base: Tables) -> Task:
    """One τ² ``Task`` as ours; ``base`` (the domain's plain database) resolves the task's user."""
    criteria = task.evaluation_criteria
    gold = list(criteria.actions or []) if criteria is not None else []
    agent_actions = [a for a in gold if a.requestor == "assistant"]
    instruction = _instruction(task.user_scenario)
    return Task(
        id=str(task.id),
        user_id=_user_id(agent_actions, base, instruction),
        persona=(task.user_scenario.persona or "").strip(),
        instruction=instruction,
        actions=[ToolCallModel(name=a.name, arguments=a.arguments) for a in agent_actions],
        outputs=list(criteria.communicate_info or []) if criteria is not None else [],
        seed=None,
        notes=_notes(task),
    )
