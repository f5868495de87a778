"""A dialogue record (Phase 2 trajectory, τ trial, dataset row) as the viewer shows it: the list
row, the detail record, and the final-state diff against the blueprint's gold end state."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from apigen_rules.fields import items, mapping, text_of
from datagen.envs.base import Domain
from datagen.quality.corpus import DialogueFacts

log = logging.getLogger(__name__)

SHOWN_ELSEWHERE = {
    "id", "blueprint_id", "env", "seed", "attempt", "persona", "instruction", "messages", "tools", "success",
    "reward", "failure", "checks", "models", "agent_mode", "usage", "task_id", "trial", "state_diff_vs_gold",
    "user_device_calls", "user_unsupported_facts", "split", "error",
}  # fmt: skip


def shorten(text: Any, limit: int = 120) -> str:
    text = " ".join(text_of(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def well_formed(messages: Any) -> list[dict[str, Any]]:
    """The messages of a record in the shape the counts read: objects, each with its tool calls as a
    list of objects whose ``function`` (where present) is an object. A record holds what a model wrote,
    so anything else is left out of the counts (the page still shows it as written)."""
    kept = []
    for message in items(messages):
        if not isinstance(message, dict):
            continue
        calls = [
            c
            for c in items(message.get("tool_calls"))
            if isinstance(c, dict) and isinstance(c.get("function") or {}, dict)
        ]
        kept.append({**message, "tool_calls": calls})
    return kept


def shape(messages: Any) -> tuple[int, int]:
    """(user turns, agent tool calls)."""
    facts = DialogueFacts("", well_formed(messages))
    return len(facts.user_turns()), len(facts.tool_calls())


def list_row(row: dict[str, Any], row_id: str) -> dict[str, Any]:
    turns, calls = shape(row.get("messages"))
    checks = mapping(row.get("checks"))
    return {
        "id": row_id,
        "success": row.get("success"),
        "failure": row.get("failure"),
        "turns": turns,
        "calls": calls,
        "termination": checks.get("termination"),
        "persona": shorten(row.get("persona"), 80),
    }


def detail(row: dict[str, Any], row_id: str, state_diff: list[str] | None, note: str = "") -> dict[str, Any]:
    record = {k: row[k] for k in SHOWN_ELSEWHERE if k in row and k != "tools"}
    record["id"] = row_id
    record["state_diff"] = state_diff or []
    record["state_diff_note"] = note
    extra = {k: v for k, v in row.items() if k not in SHOWN_ELSEWHERE}
    if extra:
        record["extra"] = extra
    return record


def agent_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls = []
    for m in well_formed(messages):
        if m.get("role") != "assistant":
            continue
        for call in m["tool_calls"]:
            fn = call.get("function") or call
            arguments = fn.get("arguments") or {}
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments) if arguments.strip() else {}
                except ValueError:
                    arguments = {"_raw": arguments}
            calls.append({"name": fn.get("name"), "arguments": arguments})
    return calls


class GoldDiffs:
    """The final-state diff of a dialogue against its blueprint's gold end state, by replaying both
    on fresh environments of the blueprint's domain (gold end states cached per blueprint)."""

    def __init__(self, domains: Callable[[str], Domain]):
        self.domains = domains
        self._domains: dict[str, Domain | None] = {}
        self._gold: dict[str, Any] = {}

    def _domain(self, name: str) -> Domain | None:
        if name not in self._domains:
            try:
                self._domains[name] = self.domains(name)
            except Exception as exc:
                log.info("view: domain %s not loaded (%s); no state diffs for it", name, exc)
                self._domains[name] = None
        return self._domains[name]

    def diff(self, row: dict[str, Any], blueprint: dict[str, Any] | None) -> tuple[list[str], str]:
        checks = mapping(row.get("checks"))
        if checks.get("state_match") is True:
            return [], "the final state equals the gold end state"
        if blueprint is None:
            return [], "no blueprint to compare with"
        env_name = str(row.get("env") or blueprint.get("env"))
        domain = self._domain(env_name)
        if domain is None:
            return [], f"domain {env_name!r} is not installed here; the diff could not be replayed"
        try:
            if blueprint["id"] not in self._gold:
                gold = domain.new_env(blueprint.get("seed"))
                gold.replay(blueprint.get("actions") or [])
                self._gold[blueprint["id"]] = gold.snapshot()
            env = domain.new_env(row.get("seed", blueprint.get("seed")))
            env.replay(agent_calls(row.get("messages") or []))
            lines = env.diff(self._gold[blueprint["id"]], env.snapshot())
        except Exception as exc:  # a record this build of the domain cannot replay
            return [], f"replay failed: {type(exc).__name__}: {exc}"
        note = "" if lines else "no difference after replaying the agent's calls"
        return lines, note + " (- gold end state, + this dialogue's end state)" if lines else note
