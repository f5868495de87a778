"""`apigen-mt eval bfcl-score`: score BFCL result files, ours (``eval bfcl`` writes them) or the
official runner's (e.g. the leaderboard's published ones)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from datagen.cli_flags import command_parser, deprecated_alias
from datagen.rundir import BFCL_PREFIX, BfclRun, check_output_folder
from evaluation.bfcl import data, results, summary
from evaluation.bfcl.handlers import FORMATS, LENIENT, STRICT
from evaluation.bfcl.scoring import CategoryScore, score_category
from evaluation.command import print_result

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
    print_result(report, as_json=args.json, text=lambda: summary.table_text(scores, report["intervals"]))
    return 0


def _decoder_line(decoder: dict[str, Any]) -> str:
    mode = "strict (BFCL's decoding)" if decoder["strict"] else "lenient (the runtime's forgiving parsers)"
    return f"decoder {decoder['format']}, {mode}: {decoder['reason']}"
