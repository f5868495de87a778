"""Preference pairs from the dialogues a run keeps: a verified dialogue against a failed one of the
same blueprint, in TRL's conversational preference format (``prompt``, ``chosen``, ``rejected``,
``tools``).

The paper discards failed dialogues; a run directory keeps them with a failure class. Two dialogues of
one blueprint start alike (same system prompt, same greeting) and part at some message. When that first
differing message is an assistant turn in both, everything before it is a context both agents saw
word for word, so the verified dialogue's turn there is *chosen* and the failed one's is *rejected*
(a **turn pair**). When they part at a user turn or a tool result, the agents never faced the same
context, and no turn pair is made (the reason is counted). Optionally a **dialogue pair** keeps the
whole rest of both dialogues from the last shared assistant turn on; DPO then also scores the user
and tool messages inside them, which the card says.

Nothing is invented: a blueprint with only failures (or only successes) gives no pair, a failure of
class ``error`` (a job that raised, with no real dialogue) is never a rejected side, and every
chosen side is a dialogue that passed the verifier. Each failure is paired with the verified dialogue
of its blueprint that shares the longest prefix with it (ties: the first attempt), so every failure
gives at most one pair of each kind.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apigen_rules.jsonl import read_models
from apigen_rules.messages import message_features
from datagen.export.rows import hf_message
from datagen.records import Trajectory
from datagen.rundir import DatagenRun

PAIR_KINDS = ("turn", "dialogue")
NEVER_REJECTED = frozenset({"error"})  # a job that raised: there is no dialogue to prefer against


def _arguments(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def message_key(message: dict[str, Any]) -> str:
    """What two messages must share to be the same turn: role, text (outer white space aside), the
    calls made (names and arguments, whatever their ids) and, for a tool result, the tool."""
    calls = [
        {
            "name": call.get("function", call).get("name"),
            "arguments": _arguments(call.get("function", call).get("arguments")),
        }
        for call in message.get("tool_calls") or []
    ]
    return json.dumps(
        [message.get("role"), (message.get("content") or "").strip(), calls, message.get("name")],
        sort_keys=True,
        ensure_ascii=False,
    )


def first_divergence(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> int:
    """Index of the first message where ``a`` and ``b`` differ (the shorter length if one is a prefix)."""
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if message_key(x) != message_key(y):
            return index
    return min(len(a), len(b))


@dataclass
class PairStats:
    """What the card states about the pairs: counts, and why failures found no pair."""

    blueprints_paired: int = 0
    blueprints_failures_only: int = 0
    blueprints_successes_only: int = 0
    failures_used: int = 0
    failures_never_rejected: Counter[str] = field(default_factory=Counter)
    pairs: Counter[str] = field(default_factory=Counter)
    pairs_by_failure: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    no_turn_pair: Counter[str] = field(default_factory=Counter)
    no_dialogue_pair: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": {kind: self.pairs[kind] for kind in PAIR_KINDS if self.pairs[kind]},
            "pairs_by_failure": {
                kind: dict(sorted(counts.items())) for kind, counts in sorted(self.pairs_by_failure.items())
            },
            "blueprints_with_pairs": self.blueprints_paired,
            "blueprints_with_failures_only": self.blueprints_failures_only,
            "blueprints_with_successes_only": self.blueprints_successes_only,
            "failures_paired_against_a_success": self.failures_used,
            "failures_never_used_as_rejected": dict(sorted(self.failures_never_rejected.items())),
            "failures_without_a_turn_pair": dict(sorted(self.no_turn_pair.items())),
            **(
                {"failures_without_a_dialogue_pair": dict(sorted(self.no_dialogue_pair.items()))}
                if self.no_dialogue_pair
                else {}
            ),
        }


def _no_turn_pair_reason(chosen: list[dict[str, Any]], rejected: list[dict[str, Any]], at: int) -> str | None:
    if at >= len(chosen) or at >= len(rejected):
        return "one dialogue is a prefix of the other"
    roles = {chosen[at]["role"], rejected[at]["role"]}
    if roles == {"assistant"}:
        return None
    if "user" in roles:
        return "parted at a user turn"
    return "parted at a tool result"


def _pair_row(
    kind: str, success: Trajectory, failure: Trajectory, start: int, at: int, end: int | None
) -> dict[str, Any]:
    return {
        "id": f"{failure.id}~{success.id}#{kind}",
        "pair": kind,
        "turn": at,
        "prompt": success.messages[:start],
        "chosen": success.messages[start:end],
        "rejected": failure.messages[start:end],
        "tools": success.tools,
        "env": success.env,
        "blueprint_id": success.blueprint_id,
        "chosen_id": success.id,
        "rejected_id": failure.id,
        "rejected_failure": failure.failure or "error",
        "agent_mode": success.agent_mode,
        "user_mode": success.user_mode,
        "source_models": {**failure.models, **success.models},
    }


def _by_blueprint(records: Iterable[Trajectory]) -> dict[str, list[Trajectory]]:
    grouped: dict[str, list[Trajectory]] = defaultdict(list)
    for record in records:
        grouped[record.blueprint_id].append(record)
    return {key: sorted(group, key=lambda t: (t.attempt, t.id)) for key, group in grouped.items()}


def _dialogue_pair_start(chosen: list[dict[str, Any]], rejected: list[dict[str, Any]], at: int) -> int | None:
    """Where a dialogue pair starts: the last assistant turn both share, or the first that differs when
    it is an assistant turn in both, so that both sides open with an assistant message after the same
    context; None when there is no such turn (a dialogue without an assistant turn that early)."""
    starts = [
        i for i in range(min(at + 1, len(chosen), len(rejected)))
        if chosen[i]["role"] == rejected[i]["role"] == "assistant"
    ]  # fmt: skip
    return starts[-1] if starts else None


def _pairs_for(
    failure: Trajectory, wins: list[Trajectory], whole_dialogues: bool, stats: PairStats
) -> list[dict[str, Any]]:
    """The pairs one failure gives against the verified dialogue that stays with it longest (the
    first attempt on ties)."""
    success = max(wins, key=lambda s: first_divergence(s.messages, failure.messages))
    at = first_divergence(success.messages, failure.messages)
    stats.failures_used += 1
    made: list[dict[str, Any]] = []
    reason = _no_turn_pair_reason(success.messages, failure.messages, at)
    if reason is None:
        made.append(_pair_row("turn", success, failure, at, at, at + 1))
    else:
        stats.no_turn_pair[reason] += 1
    if whole_dialogues:
        start = _dialogue_pair_start(success.messages, failure.messages, at)
        if start is None:
            stats.no_dialogue_pair["no assistant turn at or before the first difference"] += 1
        elif success.messages[start:] != failure.messages[start:]:
            made.append(_pair_row("dialogue", success, failure, start, at, None))
    return made


def build_pairs(
    successes: Iterable[Trajectory], failures: Iterable[Trajectory], *, whole_dialogues: bool = False
) -> tuple[list[dict[str, Any]], PairStats]:
    """Preference rows (``prompt``/``chosen``/``rejected`` as OpenAI chat messages) and their counts."""
    verified = _by_blueprint(t for t in successes if t.success)
    failed = _by_blueprint(t for t in failures if not t.success)
    stats = PairStats()
    rows: list[dict[str, Any]] = []
    for blueprint_id in sorted(set(verified) | set(failed)):
        wins, losses = verified.get(blueprint_id, []), failed.get(blueprint_id, [])
        usable = [t for t in losses if (t.failure or "error") not in NEVER_REJECTED]
        stats.failures_never_rejected.update(t.failure or "error" for t in losses if t not in usable)
        if not wins:
            stats.blueprints_failures_only += bool(losses)
            continue
        if not usable:
            stats.blueprints_successes_only += 1
            continue
        paired = False
        for failure in usable:
            made = _pairs_for(failure, wins, whole_dialogues, stats)
            for row in made:
                stats.pairs[row["pair"]] += 1
                stats.pairs_by_failure[row["pair"]][row["rejected_failure"]] += 1
            rows += made
            paired = paired or bool(made)
        stats.blueprints_paired += paired
    return rows, stats


def preference_rows(
    run_dir: Path, *, whole_dialogues: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """The pairs of a run directory, the facts the card states about them, and a note for every
    record skipped (a damaged line, its file and line number)."""
    run = DatagenRun(run_dir)
    if not run.trajectories.exists() and not run.failures.exists():
        raise FileNotFoundError(
            f"{run_dir} has neither {run.trajectories.name} nor {run.failures.name}; expected a run "
            "directory written by `apigen-mt simulate` or `generate`"
        )
    successes, skipped = read_models(run.trajectories, Trajectory)
    failures, problems = read_models(run.failures, Trajectory)
    skipped += problems
    rows, stats = build_pairs(successes, failures, whole_dialogues=whole_dialogues)
    if not rows:
        raise ValueError(
            f"{run_dir} gives no preference pair: expected a blueprint with a verified dialogue and a "
            f"failed one that part at an assistant turn; found {json.dumps(stats.as_dict())}"
            + (f" (records skipped: {len(skipped)}; the first: {skipped[0]})" if skipped else "")
            + ". Run more attempts per blueprint (simulate.attempts), or add --whole-dialogues."
        )
    return rows, stats.as_dict(), skipped


def preference_features():
    from datasets import Features, List, Value

    messages = List(message_features())
    return Features(
        {
            "id": Value("string"),
            "pair": Value("string"),
            "turn": Value("int64"),
            "prompt": messages,
            "chosen": messages,
            "rejected": messages,
            "tools": Value("string"),
            "env": Value("string"),
            "blueprint_id": Value("string"),
            "chosen_id": Value("string"),
            "rejected_id": Value("string"),
            "rejected_failure": Value("string"),
            "agent_mode": Value("string"),
            "user_mode": Value("string"),
            "source_models": List({"role": Value("string"), "model": Value("string")}),
        }
    )


def preference_hf_row(row: dict[str, Any]) -> dict[str, Any]:
    """A pair in the stored shape of the hf export (``datagen.export.rows``): message structs, tool-call
    arguments and ``tools`` as JSON strings."""
    stored = {**row, "tools": json.dumps(row["tools"], ensure_ascii=False)}
    for side in ("prompt", "chosen", "rejected"):
        stored[side] = [
            hf_message(m, f"pair {row['id']} {side} message {i}") for i, m in enumerate(row[side])
        ]
    stored["source_models"] = [{"role": r, "model": m} for r, m in (row["source_models"] or {}).items()]
    return stored
