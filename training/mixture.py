"""The training-data mixture: load every source, convert it, weight it, and count what was lost.

A source is a local dataset folder (``apigen-mt export`` output, any folder ``load_dataset`` opens, or
``save_to_disk`` output), a JSON or JSONL file, or a dataset on the Hub, in one of three layouts (see ``training.convert``). Rows that
cannot be converted are counted per reason with an example id and logged, never dropped silently;
examples longer than ``max_length`` tokens are dropped whole and counted, never truncated
mid-trajectory. Everything counted ends up in ``data_report.json`` and the model card.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from apigen_rules.export_files import CARD_FILE, FACTS_FILE
from apigen_rules.messages import message_features
from apigen_rules.redact import redact_text
from training.convert import CONVERTERS, PREFERENCE_LAYOUTS, ConversionError

if TYPE_CHECKING:
    from datasets import Dataset, Features
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


class SourceConfig(BaseModel):
    """One entry of ``sources:`` in a recipe."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="local dataset dir, .json/.jsonl file, or Hub dataset id")
    layout: Literal["messages", "sharegpt", "xlam60k", "preference"] = Field(
        "messages",
        description="messages (our export, chat rows with tools), sharegpt (APIGen-MT-5k), xlam60k "
        "(xlam-function-calling-60k), preference (DPO pairs)",
    )
    name: str | None = Field(default=None, description="Hub dataset config name")
    split: str = Field("train", description="the split to read")
    data_files: str | list[str] | None = Field(
        None, description="file patterns to read (passed to `load_dataset`)"
    )
    weight: float = Field(
        default=1.0,
        gt=0,
        description="rows used = round(weight x converted rows): 0.5 keeps a random half, 2.0 repeats every row twice",
    )


@dataclass
class SourceReport:
    """What happened to one source's rows, from reading to the final training examples."""

    path: str
    layout: str
    weight: float
    rows_read: int = 0
    rows_converted: int = 0
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)  # reason -> count, example id, detail
    rows_used: int = 0
    examples: int = 0  # after per-turn expansion
    dropped_over_long: int = 0
    card: dict[str, Any] = field(
        default_factory=dict
    )  # dataset card facts (funnel, ids) when the source has them

    def record_failure(self, error: ConversionError, row_id: str) -> None:
        entry = self.failures.setdefault(
            error.reason, {"count": 0, "example_id": row_id, "detail": error.detail}
        )
        entry["count"] += 1

    @property
    def rows_failed(self) -> int:
        return sum(entry["count"] for entry in self.failures.values())


@dataclass
class MixtureReport:
    sources: list[SourceReport]
    per_turn_examples: bool
    max_length: int | None

    def to_dict(self) -> dict[str, Any]:
        """The report as data, credentials redacted: it is written to ``data_report.json`` and the
        model card, both pushed to the Hub with the model, and a source's path may be a URL with
        ``user:password@`` or ``?token=`` or a local path that names a secret."""
        from apigen_rules.redact import redact_config

        return redact_config(asdict(self))

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")


def conversation_features() -> Features:
    from datasets import Features, List, Value

    return Features(
        {
            "messages": List(message_features()),
            "tools": Value("string"),
            "source": Value("string"),
            "id": Value("string"),
        }
    )


def preference_features() -> Features:
    from datasets import Features, List, Value

    messages = List(message_features())
    return Features(
        {
            "prompt": messages,
            "chosen": messages,
            "rejected": messages,
            "tools": Value("string"),
            "source": Value("string"),
            "id": Value("string"),
        }
    )


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in ("state.json", "dataset_dict.json"))


def _read_json_rows(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError(
            f"{path}: expected a JSON list of rows, found {type(data).__name__}; use .jsonl for one row a line."
        )
    return data


def _pick_split(loaded: Any, source: SourceConfig, path: Path) -> Any:
    from datasets import DatasetDict

    if not isinstance(loaded, DatasetDict):
        return loaded
    if source.split not in loaded:
        raise ValueError(
            f"{path} has splits {sorted(loaded)}, not {source.split!r}; set `split:` in the source."
        )
    return loaded[source.split]


def read_rows(source: SourceConfig) -> Iterable[dict[str, Any]]:
    """The raw rows of a source, before conversion.

    A local folder is read as ``datasets.load_dataset`` reads it (``apigen-mt export`` writes the
    Hub's layout: ``data/{split}-*.parquet`` named by its card's ``configs``); a ``save_to_disk``
    folder (older exports) through ``load_from_disk``.
    """
    from datasets import load_dataset, load_from_disk

    path = Path(source.path)
    if _is_saved_dataset(path):
        return _pick_split(load_from_disk(str(path)), source, path)
    if path.is_dir():
        data_files = source.data_files or _card_data_files(path, source.name)
        return _pick_split(load_dataset(str(path), name=source.name, data_files=data_files), source, path)
    if path.is_file() and path.suffix in {".json", ".jsonl"}:
        return _read_json_rows(path)
    if path.exists():
        raise ValueError(
            f"{path} is neither a dataset folder (an `apigen-mt export`, a save_to_disk folder) nor a .json/.jsonl file."
        )
    return load_dataset(source.path, name=source.name, split=source.split, data_files=source.data_files)


def _card_data_files(path: Path, name: str | None) -> dict[str, Any] | None:
    """The data files the folder's card names for config ``name`` (default: ``default``), passed to
    ``load_dataset`` explicitly: datasets 5.2 caches a folder whose card has ``configs`` under the
    folder's name and the card alone, so new data under an unchanged card would be read from the
    cache of the old; named files are hashed with their modification times. Our exports now put a
    fingerprint of their data in the card (``datagen.export.card.data_fingerprint``); this still
    covers exports made before it and dataset folders from elsewhere."""
    card = read_dataset_card(path).get("card", {})
    configs = card.get("configs") if isinstance(card, dict) else None
    for config in configs or []:
        if isinstance(config, dict) and config.get("config_name", "default") == (name or "default"):
            files = config.get("data_files")
            if isinstance(files, list) and all(isinstance(f, dict) for f in files):
                return {f["split"]: f["path"] for f in files}
            return files if isinstance(files, str | dict) else None
    return None


def _row_id(row: dict[str, Any], index: int, path: str) -> str:
    for key in ("id", "trajectory_id", "blueprint_id"):
        if isinstance(row.get(key), str | int) and str(row[key]):
            return str(row[key])
    return f"{path}#{index}"


def read_dataset_card(path: Path) -> dict[str, Any]:
    """Facts for the model card from a local dataset dir: what its export states (``export.json``, under
    ``export``) and its card's YAML header (under ``card``)."""
    facts: dict[str, Any] = {}
    directory = path if path.is_dir() else path.parent
    exported = directory / FACTS_FILE
    if exported.is_file():
        try:
            facts["export"] = json.loads(exported.read_text())
        except json.JSONDecodeError:
            logger.warning("ignoring unreadable %s", exported)
    card = directory / CARD_FILE
    if card.is_file():
        text = card.read_text(encoding="utf-8")
        if text.startswith("---"):
            from apigen_rules.yamlsafe import YamlError, load_yaml

            header = text.split("---", 2)[1]
            try:
                facts["card"] = load_yaml(header, str(card)) or {}
            except YamlError as exc:
                logger.warning("ignoring the unreadable YAML header of %s: %s", card, exc)
    return facts


def convert_source(source: SourceConfig, rng: random.Random) -> tuple[list[dict[str, Any]], SourceReport]:
    """Convert and weight one source; failures are counted in the report."""
    report = SourceReport(path=source.path, layout=source.layout, weight=source.weight)
    converter = CONVERTERS[source.layout]
    rows: list[dict[str, Any]] = []
    for index, raw in enumerate(read_rows(source)):
        report.rows_read += 1
        row_id = _row_id(raw, index, source.path)
        try:
            converted = converter(raw)
        except ConversionError as error:
            report.record_failure(error, row_id)
            continue
        rows.append({**converted, "source": source.path, "id": row_id})
    report.rows_converted = len(rows)
    for reason, entry in report.failures.items():
        logger.warning(
            "%s: %d row(s) not converted (%s), e.g. %s: %s",
            redact_text(source.path),
            entry["count"],
            reason,
            redact_text(entry["example_id"]),
            redact_text(str(entry["detail"])),
        )
    rows = apply_weight(rows, source.weight, rng)
    report.rows_used = len(rows)
    report.card = read_dataset_card(Path(source.path)) if Path(source.path).exists() else {}
    return rows, report


def apply_weight(rows: list[dict[str, Any]], weight: float, rng: random.Random) -> list[dict[str, Any]]:
    """Repeat every row floor(weight) times, then add a random sample for the fractional part."""
    whole, fraction = int(math.floor(weight)), weight - math.floor(weight)
    extra = rng.sample(rows, round(fraction * len(rows))) if rows else []
    return [row for _ in range(whole) for row in rows] + extra


def build_mixture(sources: list[SourceConfig], seed: int) -> tuple[Dataset, MixtureReport]:
    """All sources converted into one dataset: conversations (columns messages, tools, source, id)
    for SFT, or preference pairs (prompt, chosen, rejected, tools, source, id) for DPO."""
    from datasets import Dataset

    if not sources:
        raise ValueError("the recipe lists no `sources:`; add at least one (path + layout) to train on.")
    pairs = {source.layout in PREFERENCE_LAYOUTS for source in sources}
    if len(pairs) > 1:
        raise ValueError(
            "the sources mix preference pairs with conversations "
            f"({[(s.path, s.layout) for s in sources]}); a DPO recipe takes layout: preference only, "
            "an SFT recipe the other layouts."
        )
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    reports: list[SourceReport] = []
    for source in sources:
        source_rows, report = convert_source(source, rng)
        rows += source_rows
        reports.append(report)
    if not rows:
        raise ValueError(f"no source produced a usable row: {[redact_text(str(asdict(r))) for r in reports]}")
    features = preference_features() if pairs == {True} else conversation_features()
    dataset = Dataset.from_list(rows, features=features)
    return dataset, MixtureReport(sources=reports, per_turn_examples=False, max_length=None)


def _per_turn(batch: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    for messages, tools, source, row_id in zip(
        batch["messages"], batch["tools"], batch["source"], batch["id"], strict=True
    ):
        for index, message in enumerate(messages):
            if message["role"] == "assistant":
                yield {
                    "prompt": messages[:index],
                    "completion": [message],
                    "tools": tools,
                    "source": source,
                    "id": f"{row_id}#turn{index}",
                }


def expand_per_turn(dataset: Dataset, num_proc: int | None = None) -> Dataset:
    """One prompt/completion example per assistant turn, the earlier turns as context
    ("filtered behavioural cloning"); with assistant-only loss the loss falls on that turn alone."""
    from datasets import Features, List, Value

    features = Features(
        {
            "prompt": List(message_features()),
            "completion": List(message_features()),
            "tools": Value("string"),
            "source": Value("string"),
            "id": Value("string"),
        }
    )

    def expand(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {key: [] for key in features}
        for example in _per_turn(batch):
            for key, value in example.items():
                out[key].append(value)
        return out

    return dataset.map(
        expand,
        batched=True,
        remove_columns=dataset.column_names,
        features=features,
        num_proc=num_proc,
        desc="One example per assistant turn",
    )


def count_tokens(example: dict[str, Any], tokenizer: PreTrainedTokenizerBase) -> int:
    """Tokens of an example as the trainer will tokenize it (same template, same tools); a preference
    pair counts as its prompt with the longer side."""
    if "messages" in example:
        conversations = [example["messages"]]
    elif "chosen" in example:
        conversations = [example["prompt"] + example["chosen"], example["prompt"] + example["rejected"]]
    else:
        conversations = [example["prompt"] + example["completion"]]
    tools = json.loads(example["tools"]) or None
    return max(
        len(tokenizer.apply_chat_template(m, tools=tools, tokenize=True, return_dict=True)["input_ids"])
        for m in conversations
    )


def drop_over_long(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int | None,
    report: MixtureReport,
    num_proc: int | None = None,
) -> Dataset:
    """Drop (never truncate) examples over ``max_length`` tokens; count examples and drops per source."""
    by_path = {source.path: source for source in report.sources}
    report.max_length = max_length
    for path, count in _count_by_source(dataset["source"]).items():
        by_path[path].examples = count
    if max_length is None:
        return dataset
    measured = dataset.map(
        lambda example: {"num_tokens": count_tokens(example, tokenizer)},
        num_proc=num_proc,
        desc="Measuring examples",
    )
    keep = [n <= max_length for n in measured["num_tokens"]]
    for path, count in _count_by_source(
        [s for s, k in zip(measured["source"], keep, strict=True) if not k]
    ).items():
        by_path[path].dropped_over_long = count
        logger.warning(
            "%s: dropped %d example(s) longer than max_length=%d tokens", redact_text(path), count, max_length
        )
    kept = dataset.select([i for i, k in enumerate(keep) if k])
    if len(kept) == 0:
        raise ValueError(
            f"every example is longer than max_length={max_length} tokens; raise max_length in the recipe."
        )
    return kept


def _count_by_source(sources: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for source in sources:
        counts[source] = counts.get(source, 0) + 1
    return counts


def prepare_datasets(
    script_args: Any, training_args: Any, tokenizer: PreTrainedTokenizerBase
) -> tuple[Any, Any, MixtureReport]:
    """What an entry point trains on: the mixture, optionally one example per assistant turn,
    over-long examples dropped (never cut), and a held-out part when ``test_split_size`` asks for one."""
    dataset, report = build_mixture(script_args.sources, seed=training_args.seed)
    report.per_turn_examples = script_args.per_turn_examples
    if script_args.per_turn_examples:
        dataset = expand_per_turn(dataset, num_proc=training_args.dataset_num_proc)
    dataset = drop_over_long(
        dataset, tokenizer, training_args.max_length, report, training_args.dataset_num_proc
    )
    eval_dataset = None
    if script_args.test_split_size:
        size = script_args.test_split_size
        split = dataset.train_test_split(test_size=int(size) if size >= 1 else size, seed=training_args.seed)
        dataset, eval_dataset = split["train"], split["test"]
    return dataset, eval_dataset, report
