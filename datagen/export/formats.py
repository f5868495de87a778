"""The export formats, one entry each in :data:`EXPORT_FORMATS`: how a run becomes rows, and how the
rows of each split are written. ``export_run`` looks the format up here and never branches on its name."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apigen_rules.export_files import DATA_FILES, HUB_LAYOUT
from apigen_rules.jsonl import read_models
from datagen.envs.provenance import RULE_TEXT
from datagen.export.preference import preference_features, preference_hf_row, preference_rows
from datagen.export.rows import hf_features, hf_row, trajectory_row
from datagen.export.sharegpt import to_sharegpt
from datagen.records import Trajectory
from datagen.rundir import DatagenRun, read_records

UNGROUNDED = "ungrounded_arguments"

Splits = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class ExportOptions:
    """`apigen-mt export`'s options that shape what is read and written (see its command reference)."""

    max_shard_size: str | int = "500MB"
    whole_dialogues: bool = False
    include_ungrounded: bool = False


@dataclass
class ExportRows:
    """The rows a run gives in one format, a note for everything skipped, and the card's facts about them."""

    rows: list[dict[str, Any]]
    skipped: list[str]
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportFormat:
    """One export format: ``read`` makes the rows of a run, ``write`` writes the splits into a folder
    and returns the files; ``noun`` says what a row is."""

    name: str
    noun: str
    read: Callable[[Path, ExportOptions], ExportRows]
    write: Callable[[Splits, Path, ExportOptions], list[Path]]
    pairs: bool = False  # rows are preference pairs (``--whole-dialogues`` applies)

    @property
    def hub_layout(self) -> bool:
        """Parquet shards under ``data/`` (written by ``datasets``, pushed with ``DatasetDict.push_to_hub``);
        the readers of an export know these formats by :data:`apigen_rules.export_files.HUB_LAYOUT`."""
        return self.name in HUB_LAYOUT


def load_trajectories(
    run_dir: Path, *, include_ungrounded: bool = False
) -> tuple[list[Trajectory], list[str]]:
    """The complete, valid successful trajectories (with ``include_ungrounded``, also the dialogues
    that passed every check but the provenance check), and a note for everything skipped."""
    run = DatagenRun(run_dir)
    path = run.trajectories
    if not path.exists():
        raise FileNotFoundError(
            f"{run_dir} has no {path.name}; expected a run directory written by `apigen-mt simulate` or `generate`"
        )
    records, skipped = read_models(path, Trajectory)  # damaged lines are noted with their line number
    trajectories: list[Trajectory] = []
    for trajectory in records:
        if trajectory.success:
            trajectories.append(trajectory)
        else:
            skipped.append(f"{path.name} record {trajectory.id}: not successful; skipped")
    if include_ungrounded and run.failures.exists():
        failed, problems = read_models(run.failures, Trajectory)
        skipped += problems
        trajectories += [t for t in failed if t.failure == UNGROUNDED]
    return trajectories, skipped


def provenance_facts(run_dir: Path, exported: list[dict[str, Any]], included: bool) -> dict[str, Any]:
    """The provenance check's figures for the card: how many dialogues of the run failed it only,
    whether the export includes them, and how many exported rows are checked and grounded."""
    run = DatagenRun(run_dir)
    failed = read_records(run.failures, Trajectory) if run.failures.exists() else []
    return {
        "rule": RULE_TEXT,
        "ungrounded_dialogues_in_run": sum(t.failure == UNGROUNDED for t in failed),
        "ungrounded_included": included,
        "exported_rows_grounded": sum(r.get("grounded") is True for r in exported),
        "exported_rows_ungrounded": sum(r.get("grounded") is False for r in exported),
        "exported_rows_unchecked": sum(r.get("grounded") is None for r in exported),
    }


def verified_rows(run_dir: Path, options: ExportOptions) -> ExportRows:
    """One row per verified dialogue; a run without any is one error line saying what was skipped."""
    trajectories, skipped = load_trajectories(run_dir, include_ungrounded=options.include_ungrounded)
    if not trajectories:
        ungrounded = provenance_facts(run_dir, [], False)["ungrounded_dialogues_in_run"]
        hint = (
            f"; {ungrounded} dialogues failed only the provenance check: add --include-ungrounded to export them"
            if ungrounded and not options.include_ungrounded
            else ""
        )
        found = f" (records skipped: {len(skipped)}; the first: {skipped[0]})" if skipped else ""
        raise ValueError(f"{run_dir} holds no complete successful trajectory to export{found}{hint}")
    rows = [trajectory_row(t) for t in trajectories]
    facts = {"provenance": provenance_facts(run_dir, rows, options.include_ungrounded)}
    return ExportRows(rows, skipped, facts)


def preference_pairs(run_dir: Path, options: ExportOptions) -> ExportRows:
    """Pairs of a verified and a failed dialogue of one blueprint (:mod:`datagen.export.preference`)."""
    rows, pair_facts, skipped = preference_rows(run_dir, whole_dialogues=options.whole_dialogues)
    return ExportRows(rows, skipped, {"preference": pair_facts})


def write_parquet_shards(dataset: Any, out_dir: Path, max_shard_size: str | int = "500MB") -> list[Path]:
    """Each split as ``data/{split}-NNNNN-of-MMMMM.parquet``, the layout (and shard size) that
    ``push_to_hub`` writes on the Hub, written by ``datasets``' own Parquet writer; older shards in
    ``data/`` are removed first, so the card's ``data/{split}-*.parquet`` matches only this export."""
    from datasets.utils.py_utils import convert_file_size_to_int

    limit = convert_file_size_to_int(max_shard_size)
    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob("*.parquet"):
        stale.unlink()
    files: list[Path] = []
    for split, part in dataset.items():
        count = max(1, min(len(part), math.ceil(part.data.nbytes / limit)))
        for index in range(count):
            path = data_dir / f"{split}-{index:05d}-of-{count:05d}.parquet"
            part.shard(num_shards=count, index=index, contiguous=True).to_parquet(str(path))
            files.append(path)
    return files


def _hub_writer(
    to_row: Callable[[dict[str, Any]], dict[str, Any]], features: Callable[[], Any]
) -> Callable[[Splits, Path, ExportOptions], list[Path]]:
    """A writer of Parquet shards in the Hub's layout: rows made by ``to_row`` under ``features()``."""

    def write(splits: Splits, out_dir: Path, options: ExportOptions) -> list[Path]:
        from datasets import Dataset, DatasetDict

        schema = features()
        dataset = DatasetDict(
            {s: Dataset.from_list([to_row(r) for r in part], features=schema) for s, part in splits.items()}
        )
        return write_parquet_shards(dataset, out_dir, options.max_shard_size)

    return write


def write_sharegpt(splits: Splits, out_dir: Path, options: ExportOptions) -> list[Path]:
    """``{split}.json``: a JSON list of APIGen-MT-5k's ShareGPT records."""
    files = []
    for split, rows in splits.items():
        path = out_dir / DATA_FILES["sharegpt"].format(split=split)
        records = [to_sharegpt(r["messages"], r["tools"]) for r in rows]
        path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
        files.append(path)
    return files


def write_jsonl(splits: Splits, out_dir: Path, options: ExportOptions) -> list[Path]:
    """``{split}.jsonl``: one trajectory row a line."""
    files = []
    for split, rows in splits.items():
        path = out_dir / DATA_FILES["jsonl"].format(split=split)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        files.append(path)
    return files


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "hf": ExportFormat("hf", "trajectories", verified_rows, _hub_writer(hf_row, hf_features)),
    "sharegpt": ExportFormat("sharegpt", "trajectories", verified_rows, write_sharegpt),
    "jsonl": ExportFormat("jsonl", "trajectories", verified_rows, write_jsonl),
    "preference": ExportFormat(
        "preference", "preference pairs", preference_pairs,
        _hub_writer(preference_hf_row, preference_features), pairs=True,
    ),
}  # fmt: skip


def export_format(name: str) -> ExportFormat:
    """The export format called ``name``; a ValueError naming the known ones otherwise."""
    if name not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {name!r}; expected one of {tuple(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[name]
