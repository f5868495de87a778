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
import logging
import sys
from pathlib import Path
from typing import Any

from datagen.cli_flags import command_parser, deprecated_alias, deprecation_line
from datagen.export.formats import EXPORT_FORMATS


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


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("apigen-mt export", __doc__)
    parser.add_argument(
        "run_dir", type=Path, help="run directory written by `apigen-mt generate` or `simulate`"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the export into")
    parser.add_argument(
        "--output-format",
        choices=tuple(EXPORT_FORMATS),
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
    _add_split_flags(parser)
    _add_card_flags(parser)
    parser.add_argument(
        "--max-shard-size",
        default="500MB",
        help="hf: largest Parquet shard, as push_to_hub (default: %(default)s)",
    )
    _add_hub_flags(parser)
    return parser


def _add_split_flags(parser: argparse.ArgumentParser) -> None:
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


def _add_card_flags(parser: argparse.ArgumentParser) -> None:
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


def _add_hub_flags(parser: argparse.ArgumentParser) -> None:
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


def main(argv: list[str]) -> int:
    """`apigen-mt export`: parses ``argv`` and runs :func:`datagen.export.export_run` (then the Hub
    push, if asked)."""
    from datagen.export import export_run

    parser = build_parser()
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
    what = EXPORT_FORMATS[args.output_format].noun
    print(
        f"exported {sum(result.splits.values())} {what} {result.splits} to {result.out_dir} ({args.output_format})"
    )
    if args.push_to_hub:
        from datagen.export.hub import push_export

        url = push_export(result.out_dir, args.hub_dataset_id, fmt=args.output_format, private=args.private)
        print(f"pushed to {url}")
    return 0
