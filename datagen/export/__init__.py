"""A run directory to a dataset: Hugging Face (``messages`` + ``tools``, the schema transformers chat
templates and TRL expect, in the Hub's own layout), the APIGen-MT ShareGPT layout, JSONL, or preference
pairs; with its dataset card. The formats are a table (:mod:`datagen.export.formats`);
:func:`export_run` runs any of them; `apigen-mt export` is :mod:`datagen.commands.export`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datagen.export.formats import (
    EXPORT_FORMATS,
    UNGROUNDED,
    ExportOptions,
    export_format,
    load_trajectories,
    provenance_facts,
    write_parquet_shards,
)
from datagen.export.rows import split_groups, split_rows
from datagen.records import Blueprint
from datagen.rundir import DatagenRun, check_output_folder, read_records

log = logging.getLogger(__name__)

FORMATS = tuple(EXPORT_FORMATS)


@dataclass
class ExportResult:
    """What an export wrote: the folder, the rows per split, why some dialogues were skipped, the files."""

    out_dir: Path
    splits: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def run_split_groups(run_dir: Path, group_by: str = "blueprint") -> dict[str, str]:
    """The split groups of a run's blueprints (``datagen.export.rows.split_groups``); a run without
    blueprints (dialogues simulated from elsewhere) gives none, and each blueprint is its own group."""
    run = DatagenRun(run_dir)
    blueprints = read_records(run.blueprints, Blueprint) if run.blueprints.exists() else []
    return split_groups(blueprints, group_by)


def export_run(
    run_dir: Path,
    out_dir: Path,
    *,
    fmt: str = "hf",
    seed: int = 0,
    validation: float = 0.0,
    test: float = 0.1,
    license: str | None = None,
    license_name: str | None = None,
    license_link: str | None = None,
    pretty_name: str | None = None,
    max_shard_size: str | int = "500MB",
    whole_dialogues: bool = False,
    include_ungrounded: bool = False,
    group_by: str = "blueprint",
) -> ExportResult:
    """Exports the verified dialogues of ``run_dir`` into ``out_dir`` in format ``fmt`` (``hf``,
    ``sharegpt``, ``jsonl`` or ``preference``), split by blueprint group (``seed``, ``validation``,
    ``test``, ``group_by``), with the dataset card and its licence. The keyword arguments are
    `apigen-mt export`'s options of the same names (see its command reference)."""
    from datagen.export.card import export_facts, resolve_license
    from datagen.simulate.runner import phase2_funnel

    kind = export_format(fmt)
    if whole_dialogues and not kind.pairs:
        raise ValueError("--whole-dialogues applies to --output-format preference only")
    options = ExportOptions(max_shard_size, whole_dialogues, include_ungrounded)
    chosen_license = resolve_license(run_dir, license, license_name, license_link)
    made = kind.read(run_dir, options)
    splits = split_rows(
        made.rows, seed=seed, validation=validation, test=test, groups=run_split_groups(run_dir, group_by)
    )
    check_output_folder(out_dir, reads=[run_dir])
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult(
        out_dir=out_dir, splits={s: len(r) for s, r in splits.items()}, skipped=made.skipped
    )
    result.files += kind.write(splits, out_dir, options)
    facts = export_facts(
        run_dir,
        splits,
        phase2_funnel(DatagenRun(run_dir)),
        fmt=fmt,
        skipped=made.skipped,
        seed=seed,
        fractions={"validation": validation, "test": test},
        license=chosen_license,
        group_by=group_by,
    )
    facts.update(made.facts)
    result.files += _write_card(
        facts,
        run_dir,
        out_dir,
        result.files,
        pretty_name or f"apigen-mt {run_dir.name}",
        chosen_license.license_link,
    )
    return result


def _write_card(
    facts: dict[str, Any],
    run_dir: Path,
    out_dir: Path,
    data_files: list[Path],
    pretty_name: str,
    license_link: str | None,
) -> list[Path]:
    """The facts file, the dataset card and (for a licence given as a file) the licence text."""
    from apigen_rules.export_files import CARD_FILE, FACTS_FILE, LICENSE_FILE
    from datagen.export.card import build_card, data_fingerprint, license_file

    facts["data_sha256"] = data_fingerprint(out_dir, data_files)
    (out_dir / FACTS_FILE).write_text(
        json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    build_card(facts, run_dir, pretty_name=pretty_name).save(str(out_dir / CARD_FILE))
    files = [out_dir / FACTS_FILE, out_dir / CARD_FILE]
    if license_link == LICENSE_FILE:
        (out_dir / LICENSE_FILE).write_text(license_file(facts), encoding="utf-8")
        files.append(out_dir / LICENSE_FILE)
    return files


__all__ = [
    "FORMATS",
    "UNGROUNDED",
    "ExportResult",
    "export_run",
    "load_trajectories",
    "provenance_facts",
    "run_split_groups",
    "write_parquet_shards",
]
