"""An exported dataset (``apigen-mt export``: HF Parquet + card, ShareGPT JSON, JSONL), or any
dataset folder or .json/.jsonl file ``datasets.load_dataset`` opens in one of the layouts training
reads. Rows are read through ``training.convert``, the toolkit's one reader of those layouts."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from apigen_rules.export_files import FACTS_FILE
from apigen_rules.fields import items, mapping, texts
from datagen.quality import corpus_from_rows
from datagen.rundir import read_rows
from viewer import dialogues
from viewer.kinds.base import Kind, Options, quality_section
from viewer.site import Collection, Column, Section, Source, slugify
from viewer.untrusted import link

log = logging.getLogger(__name__)

COLUMNS = [
    Column("split", "split", filter=True),
    Column("env", "env", filter=True),
    Column("blueprint", "blueprint", search=True),
    Column("turns", "user turns", "num"),
    Column("calls", "tool calls", "num"),
    Column("agent_mode", "agent mode", filter=True),
    Column("persona", "persona", search=True),
]
KEPT_FIELDS = ("id", "env", "blueprint_id", "persona", "agent_mode", "reward", "source_models")


def layout_of(columns: list[str]) -> str:
    if "messages" in columns:
        return "messages"
    if "conversations" in columns:
        return "sharegpt"
    if {"query", "answers"} <= set(columns):
        return "xlam60k"
    raise ValueError(
        f"expected a dataset with `messages`, `conversations` (ShareGPT) or `query`/`answers` (xlam), "
        f"found columns {sorted(columns)}"
    )


def load_splits(path: Path) -> dict[str, Any]:
    """Split name -> rows: a ``datasets.Dataset``, or a list of objects for JSON that Python's reader
    reads and Arrow's does not (a lone surrogate, half an emoji a model wrote, stops Arrow's parser)."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    try:
        if path.is_file():
            return dict(load_dataset("json", data_files=str(path)))
        return dict(load_dataset(str(path)))
    except DatasetGenerationError as exc:
        files = (
            [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl"))
        )
        splits = {
            ("train" if path.is_file() else f.stem): _json_rows(f) for f in files if f.name != FACTS_FILE
        }
        if not any(splits.values()):
            raise
        log.warning(
            "%s: datasets could not read it (%s); read with Python's JSON reader", path, exc.__cause__ or exc
        )
        return {split: rows for split, rows in splits.items() if rows}


def _json_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return read_rows(path)  # the one JSONL reader: a damaged line is logged with its place and skipped
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("%s: expected a JSON array of rows, found unreadable content (%s)", path, exc)
        return []
    return [row for row in items(value) if isinstance(row, dict)]


def _columns(part: Any) -> list[str]:
    if hasattr(part, "column_names"):
        return list(part.column_names)
    return sorted({key for row in part for key in row})


def read_dataset(path: Path) -> tuple[list[dict[str, Any]], Counter[str], str]:
    """(rows as OpenAI-format messages with their split, conversion failures by reason, layout)."""
    from training.convert import CONVERTERS, ConversionError

    rows: list[dict[str, Any]] = []
    failures: Counter[str] = Counter()
    layout = ""
    for split, part in load_splits(path).items():
        layout = layout_of(_columns(part))
        convert = CONVERTERS[layout]
        for index, raw in enumerate(part):
            try:
                converted = convert(raw)
            except ConversionError as exc:
                failures[exc.reason] += 1
                continue
            except (TypeError, AttributeError, KeyError, ValueError) as exc:  # a shape the reader missed
                failures[f"unreadable row ({type(exc).__name__})"] += 1
                continue
            kept = {k: raw[k] for k in KEPT_FIELDS if raw.get(k) is not None}
            kept.setdefault("id", f"{split}-{index}")
            rows.append({**kept, **converted, "split": split})
    return rows, failures, layout


def _records(rows: list[dict[str, Any]]):
    for row in rows:
        row_id = str(row["id"])
        listed = dialogues.list_row(row, row_id)
        listed.update(
            split=row["split"],
            env=row.get("env"),
            blueprint=row.get("blueprint_id"),
            agent_mode=row.get("agent_mode"),
        )
        record = dialogues.detail(row, row_id, [], "an exported dataset keeps verified dialogues only")
        record["success"] = True
        yield listed, record


def _facts(path: Path) -> list[Section]:
    folder = path if path.is_dir() else path.parent
    facts_file = folder / FACTS_FILE
    if not facts_file.is_file():
        return []
    try:
        facts = json.loads(facts_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        return [Section("Export facts", "kv", [("note", f"{facts_file} is unreadable ({exc})")])]
    facts = mapping(facts)
    split = mapping(facts.get("split"))
    teachers = [
        [t.get("role"), t.get("model"), link(t.get("license_link"), t.get("license") or "not found")]
        for t in map(mapping, items(facts.get("teachers")))
    ]
    return [
        Section("Export", "kv", [
            ("format", facts.get("format")), ("exported", facts.get("created")), ("from run", facts.get("run_dir")),
            ("toolkit", facts.get("toolkit")), ("licence", facts.get("license")), ("domains", ", ".join(texts(facts.get("domains")))),
            ("split rule", split.get("rule")), ("split seed / fractions", f"seed {split.get('seed')}, validation {split.get('validation')}, test {split.get('test')}"),
        ]),
        Section("Teacher models", "table", {"header": ["role", "model", "licence"], "rows": teachers, "numeric": set()}),
    ]  # fmt: skip


def build(path: Path, options: Options) -> Source:
    rows, failures, layout = read_dataset(path)
    splits = Counter(r["split"] for r in rows)
    sections = [
        Section("Dataset", "kv", [
            ("path", str(path)), ("layout", layout), ("rows", len(rows)),
            ("splits", ", ".join(f"{s} {n}" for s, n in sorted(splits.items()))),
            ("rows that could not be read", ", ".join(f"{k} ×{v}" for k, v in failures.items()) or "none"),
        ]),
        *_facts(path),
    ]  # fmt: skip
    sections += quality_section(lambda: corpus_from_rows(path.name, rows), options)
    return Source(
        slug=slugify(f"dataset-{path.name}", options.slugs),
        title=f"dataset {path.name}",
        kind="dataset",
        sections=sections,
        collections=[Collection("dialogues", "Dialogues", "dialogue", COLUMNS, _records(rows))],
        headline=f"{len(rows)} rows ({layout})",
    )


def _detect(path: Path) -> bool:
    if path.is_file():
        return path.suffix in {".json", ".jsonl"}
    if not path.is_dir():
        return False
    return (path / FACTS_FILE).is_file() or (
        (path / "README.md").is_file() and any(path.glob("data/*.parquet"))
    )


KIND = Kind("dataset", _detect, build)
