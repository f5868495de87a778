"""`apigen-mt eval bfcl`: run a model on BFCL and score what it wrote (``eval bfcl-score``,
:mod:`evaluation.bfcl.score_cli`, scores result files alone)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from apigen_rules.errors import UsageError
from datagen.cli_errors import run_command
from datagen.cli_flags import add_executor_flags, command_parser, deprecated_alias, executor_overrides
from datagen.rundir import BfclRun
from evaluation import command
from evaluation.bfcl import data
from evaluation.bfcl.score_cli import score_directory, score_main

__all__ = ["generate_main", "recipe_data", "result_label", "run_metadata", "score_directory", "score_main"]


def _generate_parser() -> argparse.ArgumentParser:
    from evaluation.bfcl.generate import MODES

    parser = command_parser(
        "apigen-mt eval bfcl",
        "Run a model on BFCL (v4 data from bfcl-eval) and score it.",
        epilog="Flags override the recipe given with --config; without one, --model is needed.",
    )
    command.add_recipe_flag(parser, "recipes/eval/bfcl/demo.yaml")
    command.add_model_flags(parser, 'model path or Hub id, or "embedded" (the bundled SmolLM2-135M)')
    parser.add_argument(
        "--prompt-mode",
        choices=MODES,
        default=None,
        help="how the model is prompted and its results stored (the recipe's `format`); default fc. fc: native tool calls, stored as BFCL's API FC handlers store them (scored as json); "
        "prompt: BFCL-style Python-call prompting (python); hermes: Qwen-FC <tool_call> blocks, stored as BFCL's "
        "QwenFCHandler stores them; xlam: xLAM's JSON list (SalesforceQwenHandler); llama3: Llama 3.1 JSON "
        "(LlamaHandler_3_1); python: the runtime's Python-call format",
    )
    deprecated_alias(parser, "--format", "--prompt-mode")
    parser.add_argument(
        "--lenient",
        action="store_true",
        default=None,
        help="score with the runtime's forgiving parsers instead of BFCL's decoding (not leaderboard-comparable)",
    )
    parser.add_argument(
        "--categories",
        nargs="+",
        default=None,
        help="categories or groups (all, non_live, live, multi_turn, ...); default all",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="first N items of each category (a quick run); for memory categories N questions, "
        "after the pre-requisite conversations of their scenarios",
    )
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="max new tokens per model call (default 512)"
    )
    parser.add_argument("--concurrency", type=int, default=None, help="items in flight at once (default 256)")
    deprecated_alias(parser, "--max-concurrency", "--concurrency")
    parser.add_argument(
        "--result-name",
        default=None,
        help="folder the result files go in (default: the model path's last part); BFCL's `bfcl evaluate` "
        "re-scores a folder only under a model name it knows, written with / as _ (e.g. Salesforce_xLAM-2-8b-fc-r)",
    )
    command.add_output_flags(
        parser,
        "run directory for result files, settings and scores",
        "continue a run in --out (items already written are kept)",
        json_flag=False,
    )
    parser.add_argument("--no-score", action="store_true", help="only generate")
    add_executor_flags(parser)
    return parser


def recipe_data(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The recipe as plain data with the flags applied over it, and where it came from."""
    return command.recipe_with_flags(
        args.config,
        needed={"--model": args.model},
        roles={"agent": command.model_flags(args)},
        overrides={
            "format": args.prompt_mode, "lenient": args.lenient, "categories": args.categories, "limit": args.limit,
            "concurrency": args.concurrency, "result_name": args.result_name, "agent.max_tokens": args.max_tokens,
            **executor_overrides(args.executor, args.workers),
        },
    )  # fmt: skip


def result_label(config: Any) -> str:
    """The result folder's name: ``result_name``, else the model path's last part."""
    return config.result_name or config.models[config.agent.model].model.rstrip("/").split("/")[-1]


def run_metadata(config: Any, settings: Any, categories: list[str], folder: Path) -> dict[str, Any]:
    """The run's settings (saved through the run directory's guard): what generated the rows, what
    scores them, and the data version."""
    spec = config.models[config.agent.model]
    return {
        "model": spec.model,
        "backend": spec.backend,
        "mode": config.format,
        "format": settings.score_format,
        "underscore_names": settings.underscore_names,
        "lenient": config.lenient,
        "categories": categories,
        "limit": config.limit,
        "max_tokens": settings.max_tokens,
        "temperature": settings.temperature,
        "result_folder": folder.name,
        "bfcl_eval_version": data.installed_version(),
        "skipped": {c: data.SKIPPED[c] for c in categories if c in data.SKIPPED},
    }


def generate_main(argv: list[str] | None = None) -> int:
    args = _generate_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command("eval bfcl", lambda: _generate_main(args))


def _generate_main(args: argparse.Namespace) -> int:
    from datagen.recipe import validate_recipe
    from evaluation.bfcl.config import BfclConfig
    from evaluation.bfcl.generate import RunSettings

    data_, source = recipe_data(args)
    config = validate_recipe(data_, BfclConfig, source)
    try:
        categories = data.expand_categories(config.categories)
        data.data_dir()
    except (ValueError, data.BfclDataMissing) as exc:
        raise UsageError(str(exc)) from None
    settings = RunSettings(
        mode=config.format, max_tokens=config.agent.max_tokens, temperature=config.agent.temperature
    )
    run = command.output_run(BfclRun, args.out)
    folder = run.result_folder(result_label(config))
    run.open_for_writing(run_metadata(config, settings, categories, folder), resume=args.resume)
    counts = asyncio.run(_generate(config, settings, categories, folder, quiet=args.quiet))
    print(f"results written under {folder} ({sum(counts.values())} rows)", file=sys.stderr)
    if args.no_score:
        return 0
    return score_main([str(args.out), *(["--lenient"] if config.lenient else [])])


async def _generate(
    config: Any, settings: Any, categories: list[str], folder: Path, quiet: bool = False
) -> dict[str, int]:
    from datagen.llm.pool import ModelPool
    from datagen.runner.executor import open_executor
    from evaluation.bfcl.generate import generate

    spec = config.models[config.agent.model].model_copy(update={"tool_format": settings.tool_format})
    progress = command.RunProgress(
        "bfcl", "items", tallies={"skipped": "done before", "errors": "errors"}, quiet=quiet
    )
    specs = {config.agent.model: spec}
    async with ModelPool(specs) as pool, open_executor(config.executor, specs) as executor:
        counts = await generate(
            None if executor.remote else pool.get(config.agent.model), categories, settings, config.limit,
            folder, concurrency=config.concurrency, on_progress=progress.batch_counts, executor=executor,
            alias=config.agent.model,
        )  # fmt: skip
    progress.finish()
    return counts
