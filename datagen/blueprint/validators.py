"""Stage-1 validators in the paper's order: format, execution, policy; plus the near-duplicate key.

Each returns a ``StageResult``; a failure carries reasons written for the generator to act on
(they are fed back verbatim in the refinement round). Model output is only ever parsed as JSON.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apigen_rules.values import missing_outputs
from datagen.envs.base import Domain, ToolCallModel
from datagen.envs.store import canonical_json
from datagen.envs.tools import ToolError

MIN_INSTRUCTION_WORDS = 5  # "You want to cancel #W1." is about the shortest goal a customer can act on


class Draft(BaseModel):
    """What the generator writes: reasoning first, then the structured task."""

    model_config = ConfigDict(extra="forbid")
    thought: str = ""
    instruction: str = Field(min_length=1)
    actions: list[ToolCallModel] = Field(min_length=1)
    outputs: list[str] = Field(default_factory=list)


def draft_json_schema() -> dict[str, Any]:
    """The JSON schema handed to constrained decoding (arguments stay a free-form object)."""
    return {
        "type": "object",
        "properties": {
            "thought": {"type": "string", "maxLength": 600},
            "instruction": {"type": "string", "maxLength": 1200},
            "actions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "arguments": {"type": "object"}},
                    "required": ["name", "arguments"],
                },
            },
            "outputs": {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 6},
        },
        "required": ["thought", "instruction", "actions", "outputs"],
    }


@dataclass
class StageResult:
    stage: str
    ok: bool
    reasons: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json_object(text: str) -> Any:
    """The JSON object that starts at the first ``{`` of ``text`` or of a code fence in it.

    Only the outermost object counts: when it does not parse (cut off by max_tokens, broken syntax),
    an inner object such as an action's arguments must not pass for the task, so this raises a
    ValueError saying where the outer object broke."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    failure = "no '{' found"
    for candidate in candidates:
        start = candidate.find("{")
        if start < 0:
            continue
        try:
            value, _ = decoder.raw_decode(candidate[start:])
        except json.JSONDecodeError as exc:
            cut_off = not candidate.rstrip().endswith("}")
            failure = f"{exc.msg} (character {exc.pos})" + (
                "; the output stops mid-object, probably cut off by max_tokens" if cut_off else ""
            )
            continue
        if isinstance(value, dict):
            return value
    raise ValueError(
        f"expected one JSON object; found none that parses in {len(text)} characters ({failure}): {text[:120]!r}"
    )


def validate_format(raw: str | dict[str, Any], domain: Domain) -> StageResult:
    """Schema, known tools, argument names and types; on success ``data["draft"]`` is a ``Draft``."""
    try:
        payload = extract_json_object(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        return StageResult("format", False, [str(exc)])
    try:
        draft = Draft.model_validate(payload)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()]
        return StageResult("format", False, [f"task JSON does not match the schema: {p}" for p in problems])
    reasons: list[str] = []
    if len(draft.instruction.split()) < MIN_INSTRUCTION_WORDS:
        reasons.append(
            f"instruction must describe the customer's goal in at least {MIN_INSTRUCTION_WORDS} words; "
            f"found {draft.instruction!r}"
        )
    for index, output in enumerate(draft.outputs):
        if not output.strip():
            reasons.append(f"outputs[{index}] is empty")
    for index, action in enumerate(draft.actions):
        spec = domain.tool(action.name)
        if spec is None:
            reasons.append(
                f"actions[{index}]: unknown tool {action.name!r}; known tools: {', '.join(domain.tool_names)}"
            )
            continue
        try:
            spec.validate_arguments(action.arguments)
        except ToolError as exc:
            reasons.append(f"actions[{index}]: {exc}")
    if not any(
        (domain.tool(a.name) is not None and domain.tool(a.name).kind == "write") for a in draft.actions
    ):
        reasons.append("actions must include at least one state-changing (write) tool call")
    return StageResult("format", not reasons, reasons, {"draft": draft})


def validate_execution(actions: list[ToolCallModel], domain: Domain, seed: int) -> StageResult:
    """Replays a_gt on a fresh environment; ``data`` keeps the diff, the trace and the before-state."""
    env = domain.new_env(seed)
    before = env.snapshot()
    observations = env.replay(actions)
    reasons = [
        f"actions[{i}] {a.name} failed: {obs.content[:300]}"
        for i, (a, obs) in enumerate(zip(actions, observations, strict=True))
        if not obs.ok
    ]
    diff = env.diff(before, env.snapshot())
    claims_change = any(
        (domain.tool(a.name) is not None and domain.tool(a.name).kind == "write") for a in actions
    )
    if not reasons and claims_change and not diff:
        reasons.append(
            "the write actions changed nothing in the database (empty diff); the task must change state"
        )
    data = {
        "diff": diff,
        "env": env,
        "before": before,
        "state_hash": env.state_hash(),
        "observations": [o.content for o in observations],
    }
    return StageResult("execution", not reasons, reasons, data)


def validate_outputs(outputs: list[str], evidence: list[str]) -> list[str]:
    """Each expected output must appear in the data the task is built on (the sampled records or the
    replay's observations), under the rule Phase 2 judges dialogues by (``apigen_rules.values``): an output
    nobody can look up makes the task unsolvable in Phase 2."""
    return [
        f"output {o!r} appears neither in the customer's data nor in the actions' results; outputs must be "
        "values the agent can read from the database (a price, a status, an id)"
        for o in missing_outputs(outputs, evidence)
    ]


def validate_policy(execution: StageResult) -> StageResult:
    """All policy checks on the replay trace of a passed execution stage."""
    env = execution.data["env"]
    violations = env.policy_violations(execution.data["before"])
    return StageResult(
        "policy", not violations, [str(v) for v in violations], {"violations": [str(v) for v in violations]}
    )


def duplicate_key(user_id: str | None, actions: list[ToolCallModel] | list[dict[str, Any]]) -> str:
    """Same user and same multiset of calls (order ignored) give the same key."""
    calls = [a.model_dump() if isinstance(a, ToolCallModel) else a for a in actions]
    counts = Counter(canonical_json(c) for c in calls)
    return canonical_json({"user": user_id, "actions": sorted(counts.items())})
