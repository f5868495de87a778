"""The held-out dialogues a next-action evaluation reads, and the assistant turns it scores.

A source is a datagen run directory (its verified dialogues, split by the export's own rule, so the
held-out side is the one an export of that run would have), an ``apigen-mt export`` folder (``hf``
Parquet or ``jsonl``, the split by name), a ``save_to_disk`` folder, any folder ``datasets`` opens
with ``messages`` and ``tools`` columns, or a ``.jsonl``/``.json`` file of such rows. ShareGPT and
preference exports are refused with a line that says what to pass instead (the ShareGPT reader lives
in ``training``, which evaluation does not import).

Every row becomes a :class:`Dialogue` in the toolkit's own shape (OpenAI chat messages with call
arguments as objects); every assistant message after the first user message is a :class:`Turn`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datagen.cli_errors import UsageError
from datagen.rundir import DatagenRun
from evaluation.next_action.config import NextActionConfig, RunSplit


@dataclass(frozen=True)
class Dialogue:
    id: str
    messages: list[dict[str, Any]]  # OpenAI chat format, system prompt first, call arguments as objects
    tools: list[dict[str, Any]]  # OpenAI function-tool schemas
    env: str | None = None
    seed: int | None = None  # the database seed it ran on (for replaying its state)
    blueprint_id: str | None = None
    source: str = ""


@dataclass(frozen=True)
class Turn:
    """One assistant message of a dialogue: the model sees everything before it and writes it."""

    dialogue: Dialogue
    index: int  # position of the gold assistant message in ``dialogue.messages``

    @property
    def key(self) -> str:
        return f"{self.dialogue.source}::{self.dialogue.id}#m{self.index}"

    @property
    def prefix(self) -> list[dict[str, Any]]:
        return self.dialogue.messages[: self.index]

    @property
    def gold(self) -> dict[str, Any]:
        return self.dialogue.messages[self.index]


def gold_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``{"name", "arguments"}`` calls of an assistant message."""
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call.get("function"), dict) else call
        calls.append({"name": function.get("name"), "arguments": function.get("arguments") or {}})
    return calls


def turns_of(dialogue: Dialogue) -> list[Turn]:
    """Every assistant message after the first user message (the greeting before it is scripted)."""
    roles = [m.get("role") for m in dialogue.messages]
    if "user" not in roles:
        return []
    first_user = roles.index("user")
    return [Turn(dialogue, i) for i, role in enumerate(roles) if role == "assistant" and i > first_user]


def _arguments(value: Any, where: str) -> dict[str, Any]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise UsageError(
                f"{where}: expected tool-call arguments as a JSON object, found {value[:80]!r}"
            ) from None
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected tool-call arguments as an object, found {type(value).__name__}")
    return value


def _message(message: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.get("role"), "content": message.get("content") or ""}
    calls = message.get("tool_calls") or []
    if calls:
        out["tool_calls"] = []
        for i, call in enumerate(calls):
            function = call.get("function") if isinstance(call.get("function"), dict) else call
            out["tool_calls"].append({
                "id": call.get("id") or f"call_{i}",
                "type": "function",
                "function": {"name": function.get("name"), "arguments": _arguments(function.get("arguments"), where)},
            })  # fmt: skip
    for key in ("tool_call_id", "name"):
        if message.get(key):
            out[key] = message[key]
    return out


def dialogue_of(row: dict[str, Any], source: str, position: int) -> Dialogue:
    """A dataset row (export, TRL ``messages``/``tools``, run trajectory) as a :class:`Dialogue`."""
    where = f"{source} row {position}"
    if "conversations" in row and "messages" not in row:
        raise UsageError(
            f"{where}: expected `messages` and `tools` (an hf or jsonl export), found ShareGPT `conversations`; "
            "export the run with --output-format hf or jsonl, or pass the run directory"
        )
    if "chosen" in row or "messages" not in row:
        raise UsageError(
            f"{where}: expected a dialogue with `messages` and `tools`, found columns {sorted(row)[:8]}; "
            "pass an hf or jsonl export or a run directory"
        )
    tools = row.get("tools") or []
    if isinstance(tools, str):
        tools = json.loads(tools) if tools.strip() else []
    seed = row.get("seed")
    return Dialogue(
        id=str(row.get("id") or f"row{position}"),
        messages=[_message(m, where) for m in row["messages"]],
        tools=tools,
        env=row.get("env") or None,
        seed=int(seed) if seed is not None else None,
        blueprint_id=row.get("blueprint_id"),
        source=source,
    )


def _run_rows(path: Path, split: str, rule: RunSplit) -> list[dict[str, Any]]:
    """The dialogues of a run directory on ``split``, as the export would split them."""
    from datagen.export import load_trajectories, run_split_groups
    from datagen.export.rows import split_rows, trajectory_row

    trajectories, _ = load_trajectories(path, include_ungrounded=rule.include_ungrounded)
    rows = [trajectory_row(t) for t in trajectories]
    splits = split_rows(
        rows, seed=rule.seed, validation=rule.validation, test=rule.test,
        groups=run_split_groups(path, rule.group_by),
    )  # fmt: skip
    return splits.get(split, [])


def _export_rows(path: Path, split: str, facts: dict[str, Any]) -> list[dict[str, Any]]:
    from datagen.export.card import DATA_FILES

    fmt = facts.get("format")
    if fmt not in ("hf", "jsonl"):
        raise UsageError(
            f"{path}: expected an hf or jsonl export (dialogues with messages and tools), found a {fmt} export; "
            "export the run with --output-format hf or jsonl, or pass the run directory"
        )
    files = sorted(path.glob(DATA_FILES[fmt].format(split=split)))
    if not files:
        raise UsageError(
            f"{path} has no {split!r} split (splits: {sorted(facts.get('splits') or {})}); choose one with --split"
        )
    if fmt == "jsonl":
        return [
            json.loads(line)
            for f in files
            for line in f.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    from datasets import load_dataset

    # Named files: datasets hashes them with their contents, so a re-export is never read from a cache.
    return list(load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split))


def _dataset_rows(path: Path, split: str) -> list[dict[str, Any]]:
    from datasets import DatasetDict, load_dataset, load_from_disk

    saved = any((path / name).is_file() for name in ("state.json", "dataset_dict.json"))
    loaded = load_from_disk(str(path)) if saved else load_dataset(str(path))
    if isinstance(loaded, DatasetDict):
        if split not in loaded:
            raise UsageError(f"{path} has splits {sorted(loaded)}, not {split!r}; choose one with --split")
        loaded = loaded[split]
    return list(loaded)


def source_rows(source: str, split: str, rule: RunSplit) -> list[dict[str, Any]]:
    """The raw rows of one data source on ``split`` (module docstring)."""
    from datagen.export.card import FACTS_FILE

    path = Path(source)
    if not path.exists():
        raise UsageError(
            f"--data {source}: no such file or folder; expected an export, a dataset or a run directory"
        )
    if path.is_file():
        if path.suffix not in (".jsonl", ".json"):
            raise UsageError(
                f"--data {source}: expected a .jsonl or .json file of dialogues, found {path.suffix or 'no suffix'}"
            )
        text = path.read_text(encoding="utf-8")
        return (
            [json.loads(line) for line in text.splitlines() if line.strip()]
            if path.suffix == ".jsonl"
            else json.loads(text)
        )
    if DatagenRun(path).trajectories.exists():
        return _run_rows(path, split, rule)
    if (path / FACTS_FILE).is_file():
        return _export_rows(path, split, json.loads((path / FACTS_FILE).read_text(encoding="utf-8")))
    return _dataset_rows(path, split)


def load_dialogues(config: NextActionConfig) -> list[Dialogue]:
    """Every dialogue the recipe names, ``limit`` per source, in file order."""
    dialogues: list[Dialogue] = []
    for source in config.data:
        rows = source_rows(source, config.split, config.run_split)
        if config.limit is not None:
            rows = rows[: config.limit]
        dialogues += [dialogue_of(row, source, i) for i, row in enumerate(rows)]
    if not dialogues:
        raise UsageError(
            f"no dialogue on the {config.split!r} split of {config.data}; choose another --split or data"
        )
    return dialogues
