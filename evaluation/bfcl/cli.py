"""`apigen-mt eval bfcl` (generate, then score) and `apigen-mt eval bfcl-score` (score existing files)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from apigen_rules.errors import UsageError
from datagen.cli_errors import run_command
from datagen.cli_flags import (
    add_executor_flags,
    add_quiet_flag,
    command_parser,
    deprecated_alias,
    executor_overrides,
)
from datagen.rundir import BFCL_PREFIX, BfclRun, check_output_folder
from evaluation.bfcl import data, results, summary
from evaluation.bfcl.handlers import FORMATS, LENIENT, STRICT
from evaluation.bfcl.scoring import CategoryScore, score_category

log = logging.getLogger(__name__)
PROBLEMS_SHOWN_PER_FILE = 20


def _formats_epilog() -> str:
    width = max(len(name) for name in FORMATS)
    lines = [
        "result formats (--result-format): each decodes results exactly as these BFCL handler classes do"
    ]
    for decoder in STRICT.values():
        lines.append(f"  {decoder.name:<{width}}  {decoder.summary}")
        lines.append(f"  {'':<{width}}  BFCL: {', '.join(decoder.handler_names)}")
    lines += [
        "",
        "Without --result-format: the run's metadata, else BFCL's model name in the folder path",
        "(e.g. Salesforce_xLAM-2-1b-fc-r -> xlam, gpt-4o-2024-11-20-FC -> json), else the rows.",
        "A folder naming a BFCL model whose handler has no decoder here is refused without --result-format.",
        f"--lenient reads with the runtime's forgiving parsers instead ({', '.join(LENIENT)}).",
    ]
    return "\n".join(lines)


def _score_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "apigen-mt eval bfcl-score",
        "Score BFCL result files (ours or the official runner's, e.g. the leaderboard's published ones).",
        epilog=_formats_epilog(),
    )
    parser.add_argument(
        "result_dir",
        type=Path,
        help="directory holding BFCL_v4_<category>_result.json files (searched recursively)",
    )
    parser.add_argument(
        "--result-format",
        default=None,
        choices=FORMATS,
        metavar="FORMAT",
        help=f"how the result files' raw model output is written, and so decoded, one of: {', '.join(FORMATS)} "
        "(see below); default: the run's metadata, else the BFCL model folder name, else sniffed from the rows",
    )
    deprecated_alias(parser, "--format", "--result-format")
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="decode with the LLM runtime's forgiving parsers instead of BFCL's (not comparable with the leaderboard)",
    )
    parser.add_argument(
        "--underscore-to-dot",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the model was given function names with dots replaced by underscores, and is checked "
        "against those (BFCL's underscore_to_dot); default: the run's metadata, else BFCL's registry entry "
        "for the model the folder names (whatever --result-format says), else on for json only",
    )
    deprecated_alias(parser, "--underscore-names", "--underscore-to-dot")
    deprecated_alias(parser, "--no-underscore-names", "--no-underscore-to-dot")
    parser.add_argument(
        "--categories",
        nargs="+",
        default=None,
        help="categories or groups to score (default: every result file found)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the CSVs, summary and verdicts (default: RESULT_DIR/score)",
    )
    deprecated_alias(parser, "--score-dir", "--out")
    parser.add_argument(
        "--model",
        default=None,
        help="model name for the tables (default: the run's metadata, else the directory name)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"categories": {name: accuracy}, "overall": {...}} on stdout',
    )
    return parser


def score_directory(
    result_dir: Path,
    fmt: str | None = None,
    underscore_to_dot: bool | None = None,
    categories: list[str] | None = None,
    lenient: bool = False,
) -> tuple[dict[str, CategoryScore], dict[str, Any]]:
    """Score every result file under result_dir; returns the scores and the settings used.

    The settings hold the decoder chosen and why (``decoder``), every line that could not be read
    (``problems``) and every "wrong format?" warning (``warnings``)."""
    from evaluation.bfcl import resolve

    metadata = results.read_metadata(result_dir)
    files = results.find_result_files(result_dir)
    wanted = (
        data.expand_categories(categories) if categories else [c for c in data.ALL_CATEGORIES if c in files]
    )
    loaded: dict[str, results.ResultFile] = {}
    for category in wanted:
        if category not in files:
            log.warning("no result file for %s under %s", category, result_dir)
        elif category in data.SKIPPED:
            log.warning("not scoring %s: %s", category, data.SKIPPED[category])
        else:
            loaded[category] = results.load_result_file(files[category], category)
    resolution = resolve.resolve(
        result_dir,
        [files[c] for c in loaded],
        {c: f.rows for c, f in loaded.items()},
        fmt,
        metadata,
        results.find_metadata(result_dir),
        lenient,
        underscore_to_dot,
    )
    underscore_names = resolution.underscore_names
    scores: dict[str, CategoryScore] = {}
    warnings: list[str] = []
    for category, result_file in loaded.items():
        scores[category] = score_category(
            category,
            result_file.rows,
            resolution.format,
            underscore_names,
            lenient,
            unreadable=result_file.unreadable,
            void=result_file.duplicates,
        )
        warning = resolve.decode_warning(
            scores[category], {r["id"]: r for r in result_file.rows}, resolution.format
        )
        if warning:
            warnings.append(warning)
    settings = {
        **metadata,
        "format": resolution.format,
        "underscore_names": underscore_names,
        "underscore_to_dot": {"value": underscore_names, "source": resolution.underscore_source},
        "decoder": resolution.as_dict(),
        "warnings": warnings,
        "problems": [p for f in loaded.values() for p in f.problems],
    }
    return scores, settings


def _report_problems(problems: list[str], score_dir: Path) -> None:
    shown: dict[str, int] = {}
    for problem in problems:
        path = problem.split(":", 1)[0]
        shown[path] = shown.get(path, 0) + 1
        if shown[path] <= PROBLEMS_SHOWN_PER_FILE:
            print(f"bfcl-score: {problem}", file=sys.stderr)
    for path, count in shown.items():
        if count > PROBLEMS_SHOWN_PER_FILE:
            print(
                f"bfcl-score: {path}: {count - PROBLEMS_SHOWN_PER_FILE} more unreadable lines, "
                f"all listed in {BfclRun.summary_file(score_dir)}",
                file=sys.stderr,
            )


def score_main(argv: list[str] | None = None) -> int:
    args = _score_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.result_dir.is_dir():
        print(
            f"bfcl-score: {args.result_dir} is not a directory; expected a folder of BFCL result files",
            file=sys.stderr,
        )
        return 2
    score_dir = args.out or BfclRun(args.result_dir).score_dir
    try:
        check_output_folder(score_dir)  # the score folder inside the run is its layout: no input check
        scores, settings = score_directory(
            args.result_dir, args.result_format, args.underscore_to_dot, args.categories, args.lenient
        )
    except (ValueError, FileNotFoundError, data.BfclDataMissing) as exc:
        print(f"bfcl-score: {exc}", file=sys.stderr)
        return 2
    print(f"bfcl-score: {_decoder_line(settings['decoder'])}", file=sys.stderr)
    print(
        f"bfcl-score: function names {'with dots as underscores' if settings['underscore_names'] else 'as written'}"
        f" ({settings['underscore_to_dot']['source']})",
        file=sys.stderr,
    )
    _report_problems(settings["problems"], score_dir)
    for warning in settings["warnings"]:
        print(f"bfcl-score: WARNING: {warning}", file=sys.stderr)
    if not scores:
        print(
            f"bfcl-score: no BFCL result files ({BFCL_PREFIX}_<category>_result.json) under {args.result_dir}",
            file=sys.stderr,
        )
        return 2
    if not any(score.scored_from_rows for score in scores.values()):
        print(
            f"bfcl-score: nothing could be scored: no readable result line under {args.result_dir} "
            "(see the problems above); expected one JSON object per line with an id and a result",
            file=sys.stderr,
        )
        return 2
    model = args.model or settings.get("model") or args.result_dir.resolve().name
    report = summary.write_reports(score_dir, model, settings, scores)
    if args.json:
        print(json.dumps(report))
    else:
        summary.print_table(scores, report["intervals"])
    return 0


def _decoder_line(decoder: dict[str, Any]) -> str:
    mode = "strict (BFCL's decoding)" if decoder["strict"] else "lenient (the runtime's forgiving parsers)"
    return f"decoder {decoder['format']}, {mode}: {decoder['reason']}"


def _generate_parser() -> argparse.ArgumentParser:
    from evaluation.bfcl.generate import MODES

    parser = command_parser(
        "apigen-mt eval bfcl",
        "Run a model on BFCL (v4 data from bfcl-eval) and score it.",
        epilog="Flags override the recipe given with --config; without one, --model is needed.",
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="evaluation recipe, e.g. recipes/eval/bfcl/demo.yaml"
    )
    parser.add_argument(
        "--model", default=None, help='model path or Hub id, or "embedded" (the bundled SmolLM2-135M)'
    )
    parser.add_argument(
        "--backend", choices=["vllm", "openai", "transformers"], default=None, help="default: vllm"
    )
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
        "--base-url",
        action="append",
        default=None,
        help="openai backend: server URL; repeat for several servers (the recipe's base_urls)",
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
        "--out", type=Path, required=True, help="run directory for result files, metadata and scores"
    )
    parser.add_argument(
        "--result-name",
        default=None,
        help="folder the result files go in (default: the model path's last part); BFCL's `bfcl evaluate` "
        "re-scores a folder only under a model name it knows, written with / as _ (e.g. Salesforce_xLAM-2-8b-fc-r)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue a run in --out (items already written are kept)"
    )
    parser.add_argument("--no-score", action="store_true", help="only generate")
    add_quiet_flag(parser)
    add_executor_flags(parser)
    return parser


def recipe_data(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The recipe as plain data with the flags applied over it, and where it came from."""
    from datagen.recipe import read_recipe_data, set_override

    if args.config is None:
        if args.model is None:
            raise UsageError("expected --config RECIPE or --model; found neither")
        data_: dict[str, Any] = {"models": {}, "agent": {"model": "agent"}}
        source = "the command line"
    else:
        data_ = read_recipe_data(args.config)
        source = str(args.config)
    alias = str(data_.setdefault("agent", {}).setdefault("model", "agent"))
    flags = {"model": args.model, "backend": args.backend, "base_urls": args.base_url}
    if any(v is not None for v in flags.values()):
        data_.setdefault("models", {}).setdefault(alias, {}).update(
            {k: v for k, v in flags.items() if v is not None}
        )
    for dotted, value in {
        "format": args.prompt_mode, "lenient": args.lenient, "categories": args.categories, "limit": args.limit,
        "concurrency": args.concurrency, "result_name": args.result_name, "agent.max_tokens": args.max_tokens,
        **executor_overrides(args.executor, args.workers),
    }.items():  # fmt: skip
        if value is not None:
            set_override(data_, dotted, value)
    return data_, source


def _check_out_dir(run: BfclRun, resume: bool, metadata: dict[str, Any]) -> None:
    """A finished or half-done run is continued only with --resume, and only with the same model and
    generation settings (categories and limits may grow)."""
    saved = run.read_metadata()
    if saved is None:
        if any(True for _ in BfclRun.find_result_files(run.root)) and not resume:
            raise UsageError(
                f"{run.root} already holds BFCL result files; pass --resume to continue or choose another --out"
            )
        return
    if not resume:
        raise UsageError(
            f"{run.root} already holds a BFCL run; pass --resume to continue it or choose another --out"
        )
    changed = [key for key in GENERATION_KEYS if saved.get(key) != metadata.get(key)]
    if changed:
        raise UsageError(
            f"{run.root} was generated with other settings ({', '.join(f'{k}: {saved.get(k)!r} -> {metadata.get(k)!r}' for k in changed)}); "
            "resume needs the same ones, or choose another --out"
        )


def result_label(config: Any) -> str:
    """The result folder's name: ``result_name``, else the model path's last part."""
    return config.result_name or config.models[config.agent.model].model.rstrip("/").split("/")[-1]


# What decides the rows of a run: resuming with any of them changed would mix two runs in one file.
GENERATION_KEYS = ("model", "backend", "mode", "max_tokens", "temperature", "result_folder")


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
    spec = config.models[config.agent.model]
    run = BfclRun(check_output_folder(args.out))
    label = result_label(config)
    metadata = {
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
        "result_folder": run.result_folder(label).name,
        "bfcl_eval_version": data.installed_version(),
        "skipped": {c: data.SKIPPED[c] for c in categories if c in data.SKIPPED},
    }
    _check_out_dir(run, args.resume, metadata)
    run.write_metadata(metadata)
    counts = asyncio.run(_generate(config, settings, categories, run.result_folder(label), quiet=args.quiet))
    print(f"results written under {run.result_folder(label)} ({sum(counts.values())} rows)", file=sys.stderr)
    if args.no_score:
        return 0
    return score_main([str(args.out), *(["--lenient"] if config.lenient else [])])


async def _generate(
    config: Any, settings: Any, categories: list[str], folder: Path, quiet: bool = False
) -> dict[str, int]:
    from datagen.llm.pool import ModelPool
    from datagen.runner.executor import open_executor
    from datagen.runner.progress import ProgressLine
    from evaluation.bfcl.generate import generate

    spec = config.models[config.agent.model].model_copy(update={"tool_format": settings.tool_format})
    latest: dict[str, Any] = {}
    display = ProgressLine(
        lambda: (
            f"[bfcl] {latest.get('finished', 0)}/{latest.get('submitted', 0)} items "
            f"({latest.get('skipped', 0)} done before, {latest.get('errors', 0)} errors)"
        ),
        enabled=not quiet,
    )

    def on_progress(counts: Any) -> None:
        latest.update(counts.as_dict())
        display.update()

    specs = {config.agent.model: spec}
    async with ModelPool(specs) as pool, open_executor(config.executor, specs) as executor:
        counts = await generate(
            None if executor.remote else pool.get(config.agent.model), categories, settings, config.limit,
            folder, concurrency=config.concurrency, on_progress=on_progress, executor=executor,
            alias=config.agent.model,
        )  # fmt: skip
    display.finish()
    return counts
