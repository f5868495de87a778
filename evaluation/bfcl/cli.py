"""`apigen-mt eval bfcl` (generate, then score) and `apigen-mt eval bfcl-score` (score existing files)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from evaluation.bfcl import data, results
from evaluation.bfcl.scoring import CategoryScore, score_category, score_json, summarise

log = logging.getLogger(__name__)


def _score_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apigen-mt eval bfcl-score",
        description="Score BFCL result files (ours or the official runner's).",
    )
    parser.add_argument(
        "result_dir",
        type=Path,
        help="directory holding BFCL_v4_<category>_result.json files (searched recursively)",
    )
    parser.add_argument(
        "--format",
        default=None,
        help="how raw results are written: python (prompt-mode call syntax), json (FC handlers' "
        "{name: arguments} list), or a runtime format (hermes, xlam, llama3); default: the run's metadata, else python",
    )
    parser.add_argument(
        "--underscore-names",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="expect dots in function names replaced by underscores (FC APIs); default: the run's metadata, else on for json",
    )
    parser.add_argument(
        "--categories",
        nargs="+",
        default=None,
        help="categories or groups to score (default: every result file found)",
    )
    parser.add_argument(
        "--score-dir",
        type=Path,
        default=None,
        help="where to write CSVs, summary and verdicts (default: RESULT_DIR/score)",
    )
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
    underscore_names: bool | None = None,
    categories: list[str] | None = None,
) -> tuple[dict[str, CategoryScore], dict[str, Any]]:
    """Score every result file under result_dir; returns the scores and the settings used."""
    metadata = results.read_metadata(result_dir)
    fmt = fmt or metadata.get("format") or "python"
    if underscore_names is None:
        underscore_names = bool(metadata.get("underscore_names", fmt == "json"))
    files = results.find_result_files(result_dir)
    wanted = (
        data.expand_categories(categories) if categories else [c for c in data.ALL_CATEGORIES if c in files]
    )
    scores: dict[str, CategoryScore] = {}
    for category in wanted:
        if category not in files:
            log.warning("no result file for %s under %s", category, result_dir)
            continue
        if category in data.SKIPPED:
            log.warning("not scoring %s: %s", category, data.SKIPPED[category])
            continue
        scores[category] = score_category(
            category, results.read_results(files[category]), fmt, underscore_names
        )
    return scores, {**metadata, "format": fmt, "underscore_names": underscore_names}


def write_reports(
    score_dir: Path, model: str, settings: dict[str, Any], scores: dict[str, CategoryScore]
) -> None:
    results.write_score_tables(score_dir, model, scores)
    results.write_verdicts(score_dir, scores)
    (score_dir / "summary.md").write_text(results.markdown_summary(model, settings, scores), encoding="utf-8")
    (score_dir / "scores.json").write_text(json.dumps(score_json(scores), indent=2) + "\n", encoding="utf-8")


def _print_table(scores: dict[str, CategoryScore]) -> None:
    summary = summarise(scores)
    for category, score in scores.items():
        print(f"{category:<26} {score.accuracy * 100:6.2f}%  ({score.correct}/{score.total})")
    print(f"{'overall (v4 weights)':<26} {summary['overall_v4'] * 100:6.2f}%")
    print(f"{'overall (v3 formula)':<26} {summary['overall_v3'] * 100:6.2f}%")


def score_main(argv: list[str] | None = None) -> int:
    args = _score_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.result_dir.is_dir():
        print(
            f"bfcl-score: {args.result_dir} is not a directory; expected a folder of BFCL result files",
            file=sys.stderr,
        )
        return 2
    try:
        scores, settings = score_directory(
            args.result_dir, args.format, args.underscore_names, args.categories
        )
    except (ValueError, FileNotFoundError, data.BfclDataMissing) as exc:
        print(f"bfcl-score: {exc}", file=sys.stderr)
        return 2
    if not scores:
        print(f"bfcl-score: no BFCL_v4_*_result.json files under {args.result_dir}", file=sys.stderr)
        return 2
    model = args.model or settings.get("model") or args.result_dir.resolve().name
    write_reports(args.score_dir or args.result_dir / "score", model, settings, scores)
    if args.json:
        print(json.dumps(score_json(scores)))
    else:
        _print_table(scores)
    return 0


def _generate_parser() -> argparse.ArgumentParser:
    from evaluation.bfcl.generate import MODES

    parser = argparse.ArgumentParser(
        prog="apigen-mt eval bfcl", description="Run a model on BFCL (v4 data from bfcl-eval) and score it."
    )
    parser.add_argument(
        "--model", required=True, help='model path or Hub id, or "embedded" (the bundled SmolLM2-135M)'
    )
    parser.add_argument("--backend", choices=["vllm", "openai", "transformers"], default="vllm")
    parser.add_argument(
        "--format",
        choices=MODES,
        default="fc",
        help="fc: native tool calls; prompt: BFCL-style Python-call prompting; or a runtime tool-call format",
    )
    parser.add_argument(
        "--base-url", action="append", default=[], help="openai backend: server URL (repeat to spread load)"
    )
    parser.add_argument(
        "--categories",
        nargs="+",
        default=["all"],
        help="categories or groups (all, non_live, live, multi_turn, ...)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="first N items of each category (a quick run); for memory categories N questions, "
        "after the pre-requisite conversations of their scenarios",
    )
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--max-concurrency", type=int, default=256, help="requests in flight at once")
    parser.add_argument(
        "--out", type=Path, required=True, help="run directory for result files, metadata and scores"
    )
    parser.add_argument(
        "--result-name",
        default=None,
        help="folder the result files go in (default: the model path's last part); BFCL's `bfcl evaluate` "
        "re-scores a folder only under a model name it knows, written with / as _ (e.g. Salesforce_xLAM-2-8b-fc-r)",
    )
    parser.add_argument("--no-score", action="store_true", help="only generate")
    return parser


async def _generate(args: argparse.Namespace) -> dict[str, list[dict]]:
    from datagen.llm import ModelSpec, build_chat_model
    from evaluation.bfcl.generate import RunSettings, generate, model_result_dir

    settings = RunSettings(mode=args.format, max_tokens=args.max_tokens)
    spec = ModelSpec(
        model=args.model,
        backend=args.backend,
        tool_format=settings.tool_format,
        base_urls=args.base_url,
        max_concurrency=args.max_concurrency,
    )
    model = build_chat_model(spec)
    try:
        return await generate(
            model,
            data.expand_categories(args.categories),
            settings,
            args.limit,
            model_result_dir(args.out, _model_label(args)),
        )
    finally:
        await model.aclose()


def _model_label(args: argparse.Namespace) -> str:
    return args.result_name or args.model.rstrip("/").split("/")[-1]


def generate_main(argv: list[str] | None = None) -> int:
    args = _generate_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from evaluation.bfcl.generate import RunSettings, write_run

    try:
        categories = data.expand_categories(args.categories)
        data.data_dir()
    except (ValueError, data.BfclDataMissing) as exc:
        print(f"bfcl: {exc}", file=sys.stderr)
        return 2
    by_category = asyncio.run(_generate(args))
    settings = RunSettings(mode=args.format, max_tokens=args.max_tokens)
    metadata = {
        "model": args.model,
        "backend": args.backend,
        "mode": args.format,
        "format": settings.score_format,
        "underscore_names": settings.underscore_names,
        "categories": categories,
        "limit": args.limit,
        "max_tokens": args.max_tokens,
        "temperature": settings.temperature,
        "bfcl_eval_version": data.installed_version(),
        "skipped": {c: data.SKIPPED[c] for c in categories if c in data.SKIPPED},
    }
    write_run(args.out, _model_label(args), by_category, metadata)
    print(f"results written under {args.out}")
    if args.no_score:
        return 0
    return score_main([str(args.out)])
