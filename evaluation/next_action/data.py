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
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apigen_rules.errors import UsageError
from apigen_rules.jsonl import json_kind, numbered_objects
from apigen_rules.messages import messages_problem
from datagen.rundir import DatagenRun
from evaluation.next_action.config import NextActionConfig, RunSplit

log = logging.getLogger(__name__)


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


class RowProblem(ValueError):
    """A row that is not a dialogue this evaluation can read; the text says what was expected and found.
    The row is skipped and counted, the others are evaluated."""


def _openai_call(call: Any, index: int) -> Any:
    """A tool call in OpenAI's nested shape; the flat ``{"name", "arguments"}`` of the toolkit and of
    APIGen-MT-5k is nested, anything else is left for :func:`apigen_rules.messages.call_problem` to name."""
    if not isinstance(call, dict):
        return call
    if "function" not in call and "name" in call:
        call = {"id": call.get("id"), "function": {"name": call["name"], "arguments": call.get("arguments")}}
    if not isinstance(call.get("function"), dict):
        return call
    return {"id": call.get("id") or f"call_{index}", "type": "function", "function": call["function"]}


def _arguments(value: Any) -> dict[str, Any]:
    """Call arguments as an object (already checked: an object, a JSON-object string, or none)."""
    if isinstance(value, str) and value.strip():
        return json.loads(value)
    return value if isinstance(value, dict) else {}


def _message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    out: dict[str, Any] = {"role": message.get("role"), "content": message.get("content")}
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = (
            [_openai_call(c, i) for i, c in enumerate(calls)] if isinstance(calls, list) else calls
        )
    for key in ("tool_call_id", "name"):
        if message.get(key):
            out[key] = message[key]
    return out


def _messages(value: Any) -> list[dict[str, Any]]:
    """The row's messages in the toolkit's shape: OpenAI chat messages, content text, arguments objects."""
    messages = [_message(m) for m in value] if isinstance(value, list) else value
    problem = messages_problem(messages)
    if problem:
        raise RowProblem(problem)
    for message in messages:
        message["content"] = message["content"] or ""
        for call in message.get("tool_calls") or []:
            call["function"] = {
                **call["function"],
                "arguments": _arguments(call["function"].get("arguments")),
            }
    return messages


def _tools(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except (ValueError, RecursionError):
            raise RowProblem(
                "expected tools as a JSON list of tool schemas, found text that is not JSON"
            ) from None
    value = value or []
    if not isinstance(value, list) or not all(isinstance(tool, dict) for tool in value):
        raise RowProblem(f"expected tools as a list of tool-schema objects, found {json_kind(value)}")
    return value


def _seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) < 30:  # a seed written as text ("7"), as some exports do
        try:
            return int(value)
        except ValueError:
            pass
    raise RowProblem(f"expected seed as an integer, found {json_kind(value)}")


def _text_or_none(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise RowProblem(f"expected {key} as text, found {json_kind(value)}")


def dialogue_of(row: Any, source: str, position: int) -> Dialogue:
    """A dataset row (export, TRL ``messages``/``tools``, run trajectory) as a :class:`Dialogue`.

    A row of another layout (ShareGPT, preference pairs) refuses the source with a
    :class:`UsageError`; a damaged row raises :class:`RowProblem`."""
    where = f"{source} row {position}"
    if not isinstance(row, dict):
        raise RowProblem(f"expected a dialogue object, found {json_kind(row)}")
    if "conversations" in row and "messages" not in row:
        raise UsageError(
            f"{where}: expected `messages` and `tools` (an hf or jsonl export), found ShareGPT `conversations`; "
            "export the run with --output-format hf or jsonl, or pass the run directory"
        )
    if "chosen" in row:
        raise UsageError(
            f"{where}: expected a dialogue with `messages` and `tools`, found preference pairs "
            f"(columns {sorted(row)[:8]}); pass an hf or jsonl export or a run directory"
        )
    if "messages" not in row:
        raise RowProblem(
            f"expected a dialogue with `messages` and `tools`, found keys {sorted(map(str, row))[:8]}"
        )
    row_id = row.get("id")
    return Dialogue(
        id=str(row_id) if isinstance(row_id, str | int) and str(row_id) else f"row{position}",
        messages=_messages(row["messages"]),
        tools=_tools(row.get("tools")),
        env=_text_or_none(row, "env"),
        seed=_seed(row.get("seed")),
        blueprint_id=_text_or_none(row, "blueprint_id"),
        source=source,
    )


Rows = list[tuple[str, Any]]  # (where the row is, for a problem line; the row)


def _run_rows(path: Path, split: str, rule: RunSplit) -> tuple[Rows, list[str]]:
    """The dialogues of a run directory on ``split``, as the export would split them."""
    from datagen.export import load_trajectories, run_split_groups
    from datagen.export.rows import split_rows, trajectory_row

    trajectories, skipped = load_trajectories(path, include_ungrounded=rule.include_ungrounded)
    rows = [trajectory_row(t) for t in trajectories]
    splits = split_rows(
        rows, seed=rule.seed, validation=rule.validation, test=rule.test,
        groups=run_split_groups(path, rule.group_by),
    )  # fmt: skip
    rows = [(f"{path} dialogue {row['id']}", row) for row in splits.get(split, [])]
    return rows, [f"{path}/{note}" for note in skipped]


def _jsonl_rows(path: Path) -> tuple[Rows, list[str]]:
    numbered, problems = numbered_objects(path, label=str(path))
    return [(f"{path}:{number}", row) for number, row in numbered], problems


def _read_facts(path: Path) -> dict[str, Any]:
    from apigen_rules.export_files import FACTS_FILE

    facts_path = path / FACTS_FILE
    try:
        facts = json.loads(facts_path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        found = f"a file that cannot be read as JSON ({str(exc)[:120]})"
    else:
        if isinstance(facts, dict):
            return facts
        found = json_kind(facts)
    raise UsageError(
        f"{facts_path}: expected the export's facts as a JSON object, found {found}; "
        f"export the run again, or remove {FACTS_FILE} to read the folder as a plain dataset"
    )


def _opened(path: Path, load: Callable[[], Any]) -> Any:
    """What ``datasets`` opens at ``path``; a file it cannot read (a cut or foreign Parquet file, a
    folder without data) is one line, since a binary file has no rows to skip one by one."""
    from datasets.exceptions import DatasetGenerationError

    try:
        return load()
    except (OSError, ValueError, DatasetGenerationError) as exc:
        raise UsageError(
            f"--data {path}: expected a dataset `datasets` can read, found {type(exc).__name__}: "
            f"{str(exc)[:200]}; export the run again or pass another --data"
        ) from None


def _export_rows(path: Path, split: str, facts: dict[str, Any]) -> tuple[Rows, list[str]]:
    from apigen_rules.export_files import DATA_FILES

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
        rows: Rows = []
        problems: list[str] = []
        for file in files:
            found, damaged = _jsonl_rows(file)
            rows += found
            problems += damaged
        return rows, problems
    from datasets import load_dataset

    # Named files: datasets hashes them with their contents, so a re-export is never read from a cache.
    loaded = _opened(
        path, lambda: load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split)
    )
    return [(f"{path} {split} row {i}", row) for i, row in enumerate(loaded)], []


def _dataset_rows(path: Path, split: str) -> Rows:
    from datasets import DatasetDict, load_dataset, load_from_disk

    saved = any((path / name).is_file() for name in ("state.json", "dataset_dict.json"))
    loaded = _opened(path, lambda: load_from_disk(str(path)) if saved else load_dataset(str(path)))
    if isinstance(loaded, DatasetDict):
        if split not in loaded:
            raise UsageError(f"{path} has splits {sorted(loaded)}, not {split!r}; choose one with --split")
        loaded = loaded[split]
    return [(f"{path} {split} row {i}", row) for i, row in enumerate(loaded)]


def _file_rows(path: Path, source: str) -> tuple[Rows, list[str]]:
    if path.suffix not in (".jsonl", ".json"):
        raise UsageError(
            f"--data {source}: expected a .jsonl or .json file of dialogues, found {path.suffix or 'no suffix'}"
        )
    if path.suffix == ".jsonl":
        return _jsonl_rows(path)
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise UsageError(
            f"--data {source}: expected a JSON list of dialogues, found a file that cannot be read as JSON "
            f"({str(exc)[:120]}); fix it or pass a .jsonl file, where a damaged line skips only itself"
        ) from None
    if not isinstance(value, list):
        raise UsageError(f"--data {source}: expected a JSON list of dialogues, found {json_kind(value)}")
    return [(f"{path} item {i}", row) for i, row in enumerate(value)], []


def source_rows(source: str, split: str, rule: RunSplit) -> tuple[Rows, list[str]]:
    """The raw rows of one data source on ``split`` (module docstring), each with where it is, and one
    problem line per row or file that could not be read (skipped)."""
    from apigen_rules.export_files import FACTS_FILE

    path = Path(source)
    if not path.exists():
        raise UsageError(
            f"--data {source}: no such file or folder; expected an export, a dataset or a run directory"
        )
    if path.is_file():
        return _file_rows(path, source)
    run = DatagenRun(path)
    if run.trajectories.exists() or run.trajectories.is_symlink():
        return _run_rows(path, split, rule)
    if (path / FACTS_FILE).exists():
        return _export_rows(path, split, _read_facts(path))
    return _dataset_rows(path, split), []


def read_dialogues(config: NextActionConfig) -> tuple[list[Dialogue], list[str]]:
    """Every dialogue the recipe names, ``limit`` per source, in file order; and one line per row
    skipped (``where: expected ..., found ...; skipped``)."""
    dialogues: list[Dialogue] = []
    skipped: list[str] = []
    for source in config.data:
        rows, problems = source_rows(source, config.split, config.run_split)
        skipped += problems
        kept: list[Dialogue] = []
        for position, (where, row) in enumerate(rows):
            if config.limit is not None and len(kept) >= config.limit:
                break
            try:
                kept.append(dialogue_of(row, source, position))
            except RowProblem as exc:
                skipped.append(f"{where}: {exc}; skipped")
        dialogues += kept
    return dialogues, skipped


def require_dialogues(config: NextActionConfig, dialogues: list[Dialogue], skipped: list[str]) -> None:
    """Refuses data that gave no dialogue, in one line (the rows skipped were named already)."""
    if not dialogues:
        found = f" ({len(skipped)} rows skipped as damaged)" if skipped else ""
        raise UsageError(
            f"no dialogue on the {config.split!r} split of {config.data}{found}; choose another --split or data"
        )


def load_dialogues(config: NextActionConfig) -> list[Dialogue]:
    """:func:`read_dialogues`, each skipped row logged as a warning; no dialogue at all is a UsageError."""
    dialogues, skipped = read_dialogues(config)
    for line in skipped:
        log.warning("%s", line)
    require_dialogues(config, dialogues, skipped)
    return dialogues
