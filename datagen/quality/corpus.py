"""What the quality figures are computed over: a corpus of task instructions and dialogues, built
from a datagen run directory or from rows of an exported dataset.

A corpus is read-only data; nothing here knows about files except :func:`corpus_from_run`, which
reads a run through :mod:`datagen.rundir`. Exported datasets are read by the caller (their one
reader is ``training.mixture``) and handed in as rows with ``messages`` (:func:`corpus_from_rows`).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apigen_rules.jsonl import numbered_objects
from apigen_rules.messages import messages_problem
from datagen.rundir import DatagenRun, read_rows

log = logging.getLogger(__name__)
STOP_MARKERS = ("###STOP###", "###TRANSFER###")
_VIOLATION = re.compile(r"^\[(?P<rule>[^\]]*)\]\s*(?P<check>[^:]+):")


@dataclass
class DialogueFacts:
    """One dialogue as the figures need it."""

    id: str
    messages: list[dict[str, Any]]
    blueprint_id: str | None = None
    split: str | None = None
    success: bool | None = None

    def tool_calls(self) -> list[str]:
        """The names of the agent's tool calls, in order."""
        return [
            str((call.get("function") or call).get("name"))
            for m in self.messages
            if m.get("role") == "assistant"
            for call in m.get("tool_calls") or []
            if isinstance(call, Mapping)
        ]

    def user_turns(self) -> list[str]:
        """What the (simulated) user said, without the stop markers."""
        texts = []
        for m in self.messages:
            if m.get("role") == "user" and isinstance(m.get("content"), str):
                text = m["content"]
                for marker in STOP_MARKERS:
                    text = text.replace(marker, "")
                if text.strip():
                    texts.append(text.strip())
        return texts


@dataclass
class Corpus:
    """Instructions (task id, text) and dialogues of one run or dataset; ``envs`` names its domains."""

    name: str
    envs: list[str] = field(default_factory=list)
    instructions: list[tuple[str, str]] = field(default_factory=list)
    dialogues: list[DialogueFacts] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    personas: list[str] = field(default_factory=list)
    policy_hits: Counter[str] = field(default_factory=Counter)  # check name -> times it fired
    splits: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> rows, blueprints

    def duplicate_texts(self) -> list[tuple[str, str]]:
        """What near-duplicates are looked for in: the task instructions, else each dialogue's user side."""
        if self.instructions:
            return self.instructions
        return [(d.id, "\n".join(d.user_turns())) for d in self.dialogues if d.user_turns()]


def violation_check(text: str) -> str:
    """The check name in a policy violation as ``datagen.envs.policy.Violation`` prints it."""
    match = _VIOLATION.match(text.strip())
    return match.group("check").strip() if match else text.strip()[:60]


def _kept_once(rows: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    seen: set[str] = set()
    kept = []
    for row in rows:
        value = row.get(key)
        if isinstance(value, str) and value not in seen:
            seen.add(value)
            kept.append(row)
    return kept


def _checked_messages(messages: Any, where: str) -> list[dict[str, Any]] | None:
    """A dialogue's messages (a JSON string of them too, as some datasets store them), or None, with a
    warning naming ``where``, when they are not chat messages (``apigen_rules.messages``)."""
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except (ValueError, RecursionError):
            log.warning(
                "%s: expected messages, found a string that is not JSON; left out of the figures", where
            )
            return None
    problem = messages_problem(messages)
    if problem:
        log.warning("%s: %s; left out of the figures", where, problem)
        return None
    return messages


def corpus_from_run(run: DatagenRun, name: str | None = None) -> Corpus:
    """The accepted blueprints' instructions and the verified dialogues of a run; policy checks count
    Phase 1 policy rejections and the violations of failed dialogues."""
    blueprints = _kept_once(read_rows(run.blueprints), "id")
    rejections = _kept_once(read_rows(run.rejections), "task_id")
    numbered, problems = numbered_objects(run.trajectories)
    for problem in problems:
        log.warning("%s", problem)
    lines = {id(row): number for number, row in numbered}
    trajectories = _kept_once((row for _, row in numbered), "id")
    failures = read_rows(run.failures)
    corpus = Corpus(name or run.root.name)
    envs = Counter(str(b.get("env")) for b in blueprints if b.get("env"))
    envs.update(str(t.get("env")) for t in trajectories if t.get("env"))
    corpus.envs = sorted(envs)
    corpus.instructions = [(b["id"], str(b.get("instruction") or "")) for b in blueprints]
    corpus.users = [str(b["user_id"]) for b in blueprints if b.get("user_id")]
    corpus.personas = [str(b["persona"]) for b in blueprints if b.get("persona")]
    for t in trajectories:
        messages = _checked_messages(t.get("messages"), f"{run.trajectories.name}:{lines[id(t)]}")
        if t.get("success", True) and messages is not None:
            corpus.dialogues.append(DialogueFacts(str(t["id"]), messages, t.get("blueprint_id"), None, True))
    for r in rejections:
        if r.get("stage") == "policy":
            corpus.policy_hits.update(violation_check(str(reason)) for reason in r.get("reasons") or [])
    for f in failures:
        checks = f.get("checks") or {}
        corpus.policy_hits.update(violation_check(str(v)) for v in checks.get("policy_violations") or [])
    return corpus


def corpus_from_rows(name: str, rows: Sequence[Mapping[str, Any]]) -> Corpus:
    """Rows of an exported dataset (``messages`` with ``split``, ``env``, ``persona``, ``blueprint_id``
    where the layout keeps them)."""
    corpus = Corpus(name)
    envs: set[str] = set()
    blueprints: dict[str, set[str]] = {}
    rows_per_split: Counter[str] = Counter()
    for index, row in enumerate(rows):
        split = str(row.get("split") or "train")
        row_id = str(row.get("id") or f"{split}#{index}")
        if row.get("messages") is None:  # a row of another layout (preference pairs): no dialogue to measure
            continue
        messages = _checked_messages(row["messages"], f"{name} row {index} ({row_id})")
        if messages is None:
            continue
        blueprint = row.get("blueprint_id")
        corpus.dialogues.append(DialogueFacts(row_id, messages, blueprint, split, True))
        rows_per_split[split] += 1
        if blueprint:
            blueprints.setdefault(split, set()).add(str(blueprint))
        if row.get("env"):
            envs.add(str(row["env"]))
        if row.get("persona"):
            corpus.personas.append(str(row["persona"]))
    corpus.envs = sorted(envs)
    corpus.splits = {
        s: {"rows": n, "blueprints": len(blueprints.get(s, ()))} for s, n in sorted(rows_per_split.items())
    }
    return corpus
