"""The provenance check (beyond the paper): an agent's write calls may only use values someone said.

The state check accepts a dialogue in which the agent guessed an order id that the user never said
and no tool returned, as long as the guess was right. Trained on, such a dialogue teaches guessing.
Here every argument value of every agent write call must have been written earlier in the dialogue,
in a user message or a tool observation (compared by :func:`apigen_rules.values.value_written`, the one
value rule), or be a literal the domain's policy allows (:mod:`datagen.envs.provenance`). Lists and
objects are checked value by value; read calls are not checked (looking something up with a guess
does no harm, and its error teaches the agent to ask).

A dialogue that passes every other check but fails this one is kept as a failure of class
``ungrounded_arguments`` (Phase 2's verdict); the export leaves such dialogues out unless asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from apigen_rules.values import same_value, value_written, written_forms
from datagen.envs.base import Domain
from datagen.envs.provenance import ProvenanceRule


def schema_literals(schema: Any) -> list[Any]:
    """Every value a tool's JSON schema lists as allowed (``enum`` and ``const``, at any depth)."""
    found: list[Any] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "enum" and isinstance(value, list):
                found += value
            elif key == "const":
                found.append(value)
            else:
                found += schema_literals(value)
    elif isinstance(schema, list):
        for item in schema:
            found += schema_literals(item)
    return found


def argument_leaves(value: Any, shown: str = "", path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(shown path with list indices, path without them, scalar value) of every scalar in ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from argument_leaves(
                item, f"{shown}.{key}" if shown else str(key), f"{path}.{key}" if path else str(key)
            )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from argument_leaves(item, f"{shown}[{index}]", path)
    else:
        yield shown, path, value


def is_allowed_literal(value: Any, listed: Sequence[Any], rule: ProvenanceRule) -> bool:
    """A literal every domain allows (``datagen.envs.provenance``), short of the policy text."""
    if value is None or isinstance(value, bool) or value == "":
        return True
    if isinstance(value, int) and 0 <= value <= rule.small_integers:
        return True
    return any(same_value(value, option) for option in listed)


def _arguments(call: dict[str, Any]) -> tuple[str, Any]:
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            arguments = {"(arguments)": arguments}
    return str(function.get("name")), arguments if arguments is not None else {}


def ungrounded_arguments(
    messages: Sequence[dict[str, Any]], domain: Domain, *, policy: str | None = None
) -> list[dict[str, Any]]:
    """Every argument value of an agent write call in ``messages`` (OpenAI chat format; a system
    message counts as policy text) that was neither written before the call by the user or a tool
    nor a literal the policy allows; each as ``{message, tool, argument, value}``."""
    rule = domain.provenance
    writes = {spec.name: spec for spec in domain.write_tools()}
    policy_forms = written_forms([policy or domain.policy])
    said: list[str] = []  # what the user and the tools wrote so far, in normal form
    found: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role in ("user", "tool", "system") and isinstance(content, str):
            (policy_forms if role == "system" else said).extend(written_forms([content]))
            continue
        if role != "assistant":
            continue
        for call in message.get("tool_calls") or []:
            name, arguments = _arguments(call)
            spec = writes.get(name)
            if spec is None:
                continue
            listed = schema_literals(spec.schema)
            for shown, path, value in argument_leaves(arguments):
                if (
                    is_allowed_literal(value, listed, rule)
                    or rule.is_computed(name, path)
                    or value_written(value, said)
                    or value_written(value, policy_forms)
                ):
                    continue
                found.append({"message": index, "tool": name, "argument": shown, "value": value})
    return found
