"""`apigen-mt view PATH... --out DIR [--open]` and `apigen-mt stats PATH... [--json]`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from datagen.cli_errors import run_command
from datagen.cli_flags import command_parser
from viewer.kinds import Options, discover

log = logging.getLogger(__name__)


def _sources(paths: list[Path]) -> tuple[list, list[str]]:
    found, problems = [], []
    for path in paths:
        if not path.exists():
            problems.append(f"{path}: does not exist; expected a run, dataset or evaluation directory")
            continue
        hits = discover(path)
        if not hits:
            problems.append(
                f"{path}: expected a datagen run, an exported dataset, a τ or a BFCL evaluation (or a folder "
                "holding some), found none; point at the directory `generate`, `export` or `eval` wrote"
            )
        found += hits
    return found, problems


def build_site(
    paths: list[Path], out: Path, options: Options | None = None
) -> tuple[Path, list[str], list[str]]:
    """Writes the site for ``paths`` into ``out``; returns (home page, lines built, problems)."""
    from datagen.rundir import check_output_folder
    from viewer.site import SiteWriter

    check_output_folder(out, reads=paths)  # a site inside a run it shows would be read back as part of it
    options = options or Options()
    found, problems = _sources(paths)
    writer = SiteWriter(out)
    writer.write_assets()
    written, built = [], []
    for kind, path in found:
        started = time.monotonic()
        try:
            source = kind.build(path, options)
            written.append((source, writer.write_source(source)))
        except Exception as exc:  # one unreadable source is one line; the others are still shown
            log.debug("view: %s failed", path, exc_info=True)
            problems.append(f"{path}: could not be read as a {kind.name} ({type(exc).__name__}: {exc})")
            continue
        built.append(f"{kind.name:<16} {path} -> {out / source.slug} ({time.monotonic() - started:.1f}s)")
    return writer.write_home(written), built, problems


def view_main(argv: list[str]) -> int:
    parser = command_parser("apigen-mt view", __doc__)
    parser.add_argument(
        "paths", nargs="+", type=Path, help="datagen runs, datasets, τ/BFCL evaluations, or folders of them"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the static site into")
    parser.add_argument("--open", action="store_true", help="open the site in a browser when written")
    parser.add_argument(
        "--no-stats", action="store_true", help="skip the quality figures (faster on huge runs)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_command("view", lambda: _view(args))


def _view(args: argparse.Namespace) -> int:
    home, built, problems = build_site(args.paths, args.out, Options(stats=not args.no_stats))
    for line in built:
        print(line)
    for problem in problems:
        print(f"apigen-mt view: {problem}", file=sys.stderr)
    if not built:
        return 2
    print(f"wrote {home}")
    if args.open:
        import webbrowser

        webbrowser.open(home.resolve().as_uri())
    return 1 if problems else 0


def stats_main(argv: list[str]) -> int:
    from datagen.quality import Settings, corpus_from_rows, corpus_from_run, quality_report
    from datagen.quality.text import to_markdown
    from datagen.rundir import DatagenRun
    from viewer.kinds import datagen_run, dataset

    parser = command_parser(
        "apigen-mt stats",
        "Quality figures of datagen runs and datasets: coverage, near-duplicates (within and across the paths), "
        "benchmark contamination.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="datagen run directories or exported datasets")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    parser.add_argument("--threshold", type=float, default=Settings().threshold, help="near-duplicate Jaccard threshold")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    found, problems = _sources(args.paths)
    corpora = []
    for kind, path in found:
        try:
            if kind is datagen_run.KIND:
                corpora.append(corpus_from_run(DatagenRun(path)))
            elif kind is dataset.KIND:
                rows, _, _ = dataset.read_dataset(path)
                corpora.append(corpus_from_rows(path.name, rows))
            else:
                problems.append(
                    f"{path}: a {kind.name} has no training data to measure; expected a datagen run or a dataset"
                )
        except Exception as exc:
            problems.append(f"{path}: could not be read as a {kind.name} ({type(exc).__name__}: {exc})")
    for problem in problems:
        print(f"apigen-mt stats: {problem}", file=sys.stderr)
    if not corpora:
        return 2
    report = quality_report(corpora, duplicates=Settings(threshold=args.threshold))
    print(
        json.dumps(report, indent=2, ensure_ascii=False) if args.json else to_markdown(report),
        end="" if not args.json else "\n",
    )
    return 1 if problems else 0
