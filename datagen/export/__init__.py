"""`apigen-mt export RUN_DIR --out DIR [--output-format FORMAT] [--push-to-hub --hub-dataset-id ORG/NAME]`.

Exports the successful trajectories of a run directory as a Hugging Face dataset (``messages`` +
``tools``, the schema transformers chat templates and TRL expect), as the APIGen-MT ShareGPT layout,
or as JSONL; or, with ``--output-format preference``, pairs of a verified and a failed dialogue of one
blueprint in TRL's conversational preference format (``datagen.export.preference``); writes a
dataset card from the run; optionally pushes to the Hub.

The ``hf`` export is the Hub's own layout on disk: ``data/{split}-*.parquet`` and a README.md whose
``configs`` name them, so ``datasets.load_dataset(DIR)`` and ``trl sft --dataset_name DIR`` open the
folder as it is, and ``--push-to-hub`` uploads it with ``DatasetDict.push_to_hub``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apigen_rules.export_files import HUB_LAYOUT
from apigen_rules.jsonl import read_models
from datagen.cli_flags import command_parser, deprecated_alias, deprecation_line
from datagen.envs.provenance import RULE_TEXT
from datagen.export.rows import split_groups, split_rows, trajectory_row
from datagen.export.sharegpt import to_sharegpt
from datagen.records import Blueprint, Trajectory
from datagen.rundir import DatagenRun, check_output_folder, read_records

log = logging.getLogger(__name__)

FORMATS = ("hf", "sharegpt", "jsonl", "preference")


@dataclass
class ExportResult:
    """What an export wrote: the folder, the rows per split, why some dialogues were skipped, the files."""

    out_dir: Path
    splits: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


UNGROUNDED = "ungrounded_arguments"


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


def run_split_groups(run_dir: Path, group_by: str = "blueprint") -> dict[str, str]:
    """The split groups of a run's blueprints (``datagen.export.rows.split_groups``); a run without
    blueprints (dialogues simulated from elsewhere) gives none, and each blueprint is its own group."""
    run = DatagenRun(run_dir)
    blueprints = read_records(run.blueprints, Blueprint) if run.blueprints.exists() else []
    return split_groups(blueprints, group_by)


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
    from apigen_rules.export_files import FACTS_FILE, LICENSE_FILE
    from datagen.export.card import (
        build_card,
        data_fingerprint,
        export_facts,
        license_file,
        resolve_license,
    )
    from datagen.simulate.runner import phase2_funnel

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if whole_dialogues and fmt != "preference":
        raise ValueError("--whole-dialogues applies to --output-format preference only")
    chosen_license = resolve_license(run_dir, license, license_name, license_link)
    pair_facts: dict[str, Any] | None = None
    if fmt == "preference":
        from datagen.export.preference import preference_rows

        rows, pair_facts, skipped = preference_rows(run_dir, whole_dialogues=whole_dialogues)
    else:
        trajectories, skipped = load_trajectories(run_dir, include_ungrounded=include_ungrounded)
        if not trajectories:
            ungrounded = provenance_facts(run_dir, [], False)["ungrounded_dialogues_in_run"]
            hint = (
                f"; {ungrounded} dialogues failed only the provenance check: add --include-ungrounded to export them"
                if ungrounded and not include_ungrounded
                else ""
            )
            found = f" (records skipped: {len(skipped)}; the first: {skipped[0]})" if skipped else ""
            raise ValueError(f"{run_dir} holds no complete successful trajectory to export{found}{hint}")
        rows = [trajectory_row(t) for t in trajectories]
    splits = split_rows(
        rows, seed=seed, validation=validation, test=test, groups=run_split_groups(run_dir, group_by)
    )
    check_output_folder(out_dir, reads=[run_dir])
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out_dir=out_dir, splits={s: len(r) for s, r in splits.items()}, skipped=skipped)
    if fmt in HUB_LAYOUT:
        from datasets import Dataset, DatasetDict

        from datagen.export.preference import preference_features, preference_hf_row
        from datagen.export.rows import hf_features, hf_row

        to_row, features = (
            (hf_row, hf_features()) if fmt == "hf" else (preference_hf_row, preference_features())
        )
        dataset = DatasetDict(
            {s: Dataset.from_list([to_row(r) for r in part], features=features) for s, part in splits.items()}
        )
        result.files += write_parquet_shards(dataset, out_dir, max_shard_size)
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
    facts = export_facts(
        run_dir,
        splits,
        phase2_funnel(DatagenRun(run_dir)),
        fmt=fmt,
        skipped=skipped,
        seed=seed,
        fractions={"validation": validation, "test": test},
        license=chosen_license,
        group_by=group_by,
    )
    if fmt != "preference":
        facts["provenance"] = provenance_facts(
            run_dir, [r for part in splits.values() for r in part], include_ungrounded
        )
    if pair_facts is not None:
        facts["preference"] = pair_facts
    facts["data_sha256"] = data_fingerprint(out_dir, result.files)
    (out_dir / FACTS_FILE).write_text(
        json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    card = build_card(facts, run_dir, pretty_name=pretty_name or f"apigen-mt {run_dir.name}")
    card.save(str(out_dir / "README.md"))
    result.files += [out_dir / FACTS_FILE, out_dir / "README.md"]
    if chosen_license.license_link == LICENSE_FILE:
        (out_dir / LICENSE_FILE).write_text(license_file(facts), encoding="utf-8")
        result.files.append(out_dir / LICENSE_FILE)
    return result


class _PushToHub(argparse.Action):
    """``--push-to-hub`` is a switch (the repo is ``--hub-dataset-id``, as TRL's ``--hub_model_id``);
    the old ``--push-to-hub ORG/NAME`` still works for one release."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:  # fmt: skip
        namespace.push_to_hub = True
        if values is None:
            return
        if Path(values).exists():  # `--push-to-hub RUN_DIR ...`: the switch took the positional argument
            parser.error(
                f"--push-to-hub takes no value, found {values!r} (a path): put RUN_DIR before --push-to-hub "
                "and name the repo with --hub-dataset-id ORG/NAME"
            )
        print(
            deprecation_line(
                parser.prog, "--push-to-hub ORG/NAME", "--push-to-hub --hub-dataset-id ORG/NAME"
            ),
            file=sys.stderr,
        )
        namespace.hub_dataset_id = values


def main(argv: list[str]) -> int:
    """`apigen-mt export`: parses ``argv`` and runs :func:`export_run` (then the Hub push, if asked)."""
    parser = command_parser("apigen-mt export", __doc__)
    parser.add_argument(
        "run_dir", type=Path, help="run directory written by `apigen-mt generate` or `simulate`"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the export into")
    parser.add_argument(
        "--output-format",
        choices=FORMATS,
        default="hf",
        help="hf: Parquet shards + card, opened by datasets.load_dataset(OUT); sharegpt: APIGen-MT-5k's "
        "layout; jsonl: one trajectory a line; preference: verified vs failed dialogues of one blueprint "
        "as prompt/chosen/rejected pairs for TRL's DPOTrainer, in the hf layout (default: %(default)s)",
    )
    deprecated_alias(parser, "--format", "--output-format")
    parser.add_argument(
        "--whole-dialogues",
        action="store_true",
        help="preference: also pair the whole rest of both dialogues from their last shared assistant turn",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="split seed; splits are by blueprint (default: %(default)s)"
    )
    parser.add_argument(
        "--group-by",
        choices=("blueprint", "user"),
        default="blueprint",
        help="what keeps dialogues on one side of the split: blueprint groups (recombined tasks with their "
        "parents, shared ground-truth calls, same instruction), or also every task of one user "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--include-ungrounded",
        action="store_true",
        help="also export dialogues that passed every check but the provenance check (a write call used a "
        "value nobody said; failure class ungrounded_arguments); the card counts them either way",
    )
    parser.add_argument(
        "--validation",
        type=float,
        default=0.0,
        help="fraction of blueprints for validation (default: %(default)s)",
    )
    parser.add_argument(
        "--test", type=float, default=0.1, help="fraction of blueprints for test (default: %(default)s)"
    )
    parser.add_argument(
        "--license",
        default=None,
        help="card licence, a Hub licence id (default: the recipe's `license`, else 'other')",
    )
    parser.add_argument(
        "--license-name",
        default=None,
        help="with licence 'other': its name (default: the recipe's `license_name`)",
    )
    parser.add_argument(
        "--license-link",
        default=None,
        help="with licence 'other': a URL or a file in the export (default: the recipe's `license_link`)",
    )
    parser.add_argument(
        "--max-shard-size",
        default="500MB",
        help="hf: largest Parquet shard, as push_to_hub (default: %(default)s)",
    )
    parser.add_argument(
        "--push-to-hub",
        action=_PushToHub,
        nargs="?",
        default=False,
        metavar="",
        help="also upload the export to the Hub dataset repo --hub-dataset-id with DatasetDict.push_to_hub",
    )
    parser.add_argument(
        "--hub-dataset-id", metavar="ORG/NAME", default=None, help="with --push-to-hub: the Hub dataset repo"
    )
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    args = parser.parse_args(argv)
    if args.push_to_hub and not args.hub_dataset_id:
        parser.error("--push-to-hub needs --hub-dataset-id ORG/NAME (the Hub dataset repo to upload to)")
    if args.hub_dataset_id and not args.push_to_hub:
        parser.error(f"--hub-dataset-id {args.hub_dataset_id} uploads nothing without --push-to-hub; add it")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = export_run(
            args.run_dir,
            args.out,
            fmt=args.output_format,
            seed=args.seed,
            validation=args.validation,
            test=args.test,
            license=args.license,
            license_name=args.license_name,
            license_link=args.license_link,
            max_shard_size=args.max_shard_size,
            whole_dialogues=args.whole_dialogues,
            include_ungrounded=args.include_ungrounded,
            group_by=args.group_by,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"apigen-mt export: {exc}", file=sys.stderr)
        return 2
    for note in result.skipped:
        print(f"skipped: {note}", file=sys.stderr)
    what = "preference pairs" if args.output_format == "preference" else "trajectories"
    print(
        f"exported {sum(result.splits.values())} {what} {result.splits} to {result.out_dir} ({args.output_format})"
    )
    if args.push_to_hub:
        from datagen.export.hub import push_export

        url = push_export(result.out_dir, args.hub_dataset_id, fmt=args.output_format, private=args.private)
        print(f"pushed to {url}")
    return 0
