"""`apigen-mt export RUN_DIR --out DIR [--format hf|sharegpt|jsonl] [--push-to-hub ORG/NAME] [--private]`.

Exports the successful trajectories of a run directory as a Hugging Face dataset (``messages`` +
``tools``, the schema transformers chat templates and TRL expect), as the APIGen-MT ShareGPT layout,
or as JSONL; writes a dataset card from the run; optionally pushes to the Hub.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from datagen.export.rows import split_rows, trajectory_row
from datagen.export.sharegpt import to_sharegpt
from datagen.records import Trajectory
from datagen.rundir import DatagenRun
from datagen.runio import read_jsonl

log = logging.getLogger(__name__)

FORMATS = ("hf", "sharegpt", "jsonl")


@dataclass
class ExportResult:
    out_dir: Path
    splits: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def load_trajectories(run_dir: Path) -> tuple[list[Trajectory], list[str]]:
    """The complete, valid successful trajectories, and a note for everything skipped."""
    path = DatagenRun(run_dir).trajectories
    if not path.exists():
        raise FileNotFoundError(
            f"{run_dir} has no {path.name}; expected a run directory written by `apigen-mt simulate` or `generate`"
        )
    rows, skipped = read_jsonl(path)
    trajectories: list[Trajectory] = []
    for number, row in enumerate(rows, start=1):
        try:
            trajectory = Trajectory.model_validate(row)
        except ValidationError as exc:
            skipped.append(
                f"{path.name} record {number}: not a trajectory ({exc.error_count()} errors); skipped"
            )
            continue
        if trajectory.success:
            trajectories.append(trajectory)
        else:
            skipped.append(f"{path.name} record {number} ({trajectory.id}): not successful; skipped")
    return trajectories, skipped


def export_run(
    run_dir: Path,
    out_dir: Path,
    *,
    fmt: str = "hf",
    seed: int = 0,
    validation: float = 0.0,
    test: float = 0.1,
    license: str | None = None,
    pretty_name: str | None = None,
) -> ExportResult:
    from datagen.export.card import FACTS_FILE, build_card, export_facts
    from datagen.simulate.runner import phase2_funnel

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    trajectories, skipped = load_trajectories(run_dir)
    if not trajectories:
        raise ValueError(f"{run_dir} holds no complete successful trajectory to export")
    splits = split_rows(
        (trajectory_row(t) for t in trajectories), seed=seed, validation=validation, test=test
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out_dir=out_dir, splits={s: len(r) for s, r in splits.items()}, skipped=skipped)
    if fmt == "hf":
        from datasets import Dataset, DatasetDict

        from datagen.export.rows import hf_features

        dataset = DatasetDict({s: Dataset.from_list(r, features=hf_features()) for s, r in splits.items()})
        dataset.save_to_disk(str(out_dir))
        result.files.append(out_dir / "dataset_dict.json")
    elif fmt == "sharegpt":
        for split, rows in splits.items():
            path = out_dir / f"{split}.json"
            path.write_text(
                json.dumps(
                    [to_sharegpt(r["messages"], r["tools"]) for r in rows], ensure_ascii=False, indent=1
                ),
                encoding="utf-8",
            )
            result.files.append(path)
    else:
        for split, rows in splits.items():
            path = out_dir / f"{split}.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            result.files.append(path)
    facts = export_facts(run_dir, splits, phase2_funnel(DatagenRun(run_dir)), fmt=fmt, skipped=skipped)
    (out_dir / FACTS_FILE).write_text(
        json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    card = build_card(facts, run_dir, license=license, pretty_name=pretty_name or f"apigen-mt {run_dir.name}")
    card.save(str(out_dir / "README.md"))
    result.files += [out_dir / FACTS_FILE, out_dir / "README.md"]
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="apigen-mt export", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", choices=FORMATS, default="hf")
    parser.add_argument("--seed", type=int, default=0, help="split seed (splits are by blueprint)")
    parser.add_argument("--validation", type=float, default=0.0, help="fraction of blueprints for validation")
    parser.add_argument("--test", type=float, default=0.1, help="fraction of blueprints for test")
    parser.add_argument(
        "--license", default=None, help="card license (default: the recipe's `license`, else 'other')"
    )
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", default=None)
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = export_run(
            args.run_dir,
            args.out,
            fmt=args.format,
            seed=args.seed,
            validation=args.validation,
            test=args.test,
            license=args.license,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"apigen-mt export: {exc}", file=sys.stderr)
        return 2
    for note in result.skipped:
        print(f"skipped: {note}", file=sys.stderr)
    print(
        f"exported {sum(result.splits.values())} trajectories {result.splits} to {result.out_dir} ({args.format})"
    )
    if args.push_to_hub:
        from datagen.export.hub import push_export

        url = push_export(result.out_dir, args.push_to_hub, fmt=args.format, private=args.private)
        print(f"pushed to {url}")
    return 0
