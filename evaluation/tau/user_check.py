"""Flags simulated-user mistakes: the user stated a concrete fact the instruction does not contain.

τ-bench users report that up to 30% of failures are the simulator's fault. A failure where the user
invented an id, number, email or date is classified `user_error`, not charged to the agent. The
check is deliberately narrow (concrete tokens only), so it does not excuse real agent failures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_TOKEN = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.]+"  # emails
    r"|#?[A-Za-z]*\d[\w-]*"  # ids and numbers with at least one digit
)


def _tokens(text: str) -> set[str]:
    return {t.lower().lstrip("#").rstrip(".,") for t in _TOKEN.findall(text)}


def unsupported_user_facts(
    user_messages: Sequence[str], instruction: str, persona: str, agent_messages: Sequence[str]
) -> list[str]:
    """Concrete tokens the user said that appear neither in their instruction/persona nor earlier from the agent."""
    allowed = _tokens(instruction) | _tokens(persona) | _tokens(" ".join(agent_messages))
    said = (
        set().union(
            *(_tokens(m.replace("###STOP###", "").replace("###TRANSFER###", "")) for m in user_messages)
        )
        if user_messages
        else set()
    )
    return sorted(t for t in said - allowed if len(t) > 1)


def conversation_sides(messages: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
    agents = [m.get("content") or "" for m in messages if m.get("role") == "assistant"]
    return users, agents
