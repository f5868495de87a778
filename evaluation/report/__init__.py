"""`apigen-mt report RESULT_DIR... --out DIR`: a leaderboard (markdown, CSV, static HTML with plots)
from any set of BFCL-style, τ-bench-style and next-action result directories and datagen runs."""

from __future__ import annotations

import base64
import csv
import re
import sys
from importlib import resources
from pathlib import Path

from datagen.cli_flags import command_parser
from datagen.rundir import check_output_folder
from evaluation.report import board
from evaluation.report.collect import Collected, collect


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def plain(text: str) -> str:
    """``text`` as a file can hold it: a lone surrogate (valid JSON, half an emoji) becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


# OWASP's CSV-injection advice: a cell that starts with one of these is a formula to a spreadsheet, so
# it is written with a leading apostrophe, which spreadsheets read as "text follows". A plain decimal
# number ("-2.5", a difference between two models) is read as that number, never as a formula, and
# stays as it is so that the column stays numeric.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_cell(text: str) -> str:
    """A cell of leaderboard.csv or differences.csv: never a formula when a spreadsheet opens the file."""
    text = plain(text)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


_MARKDOWN_SPECIAL = re.compile(r"([\\|<>\[\]`*])")


def markdown_cell(text: str) -> str:
    """Text in one cell of a markdown table: one line, no column break, no markup, no link."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(plain(text).splitlines())).replace("\t", " ")


def _shown(cell: board.Cell | None, near_best: bool) -> str:
    """A leaderboard cell: the value in percent, its 95% interval, and the within-noise mark."""
    if cell is None or cell.value is None:
        return "–"
    text = _pct(cell.value)
    if cell.interval is not None:
        text += f" [{_pct(cell.interval.low)}, {_pct(cell.interval.high)}]"
    return f"{text} {board.NEAR_BEST}" if near_best else text


def _models(found: Collected) -> list[str]:
    return sorted(
        {r.model for r in found.bfcl} | {t.model for t in found.tau} | {n.model for n in found.next_action}
    )


def leaderboard(
    found: Collected, columns: list[board.Column] | None = None
) -> tuple[list[str], list[list[str]], list[board.Difference]]:
    """One row per model; BFCL group scores, then pass^1 per τ environment (and without no-op tasks),
    then the next-action figures per evaluated dataset — each with its interval and marked when
    within noise of its column's best; and every paired comparison made."""
    columns = board.columns(found) if columns is None else columns
    differences = board.compare_columns(columns)
    header = ["model", *(column.title for column in columns)]
    rows = [
        [model, *(_shown(c.cells.get(model), model in c.near_best) for c in columns)]
        for model in _models(found)
    ]
    return header, rows, differences


def csv_table(found: Collected, columns: list[board.Column]) -> tuple[list[str], list[list[str]]]:
    """The leaderboard for spreadsheets: each figure's value, then its interval's bounds, in percent."""
    header = ["model"]
    for column in columns:
        header += [column.title, f"{column.title} 95% low", f"{column.title} 95% high"]
    rows = []
    for model in _models(found):
        row = [model]
        for column in columns:
            cell = column.cells.get(model)
            interval = cell.interval if cell else None
            row += [
                _pct(cell.value if cell else None),
                _pct(interval and interval.low),
                _pct(interval and interval.high),
            ]
        rows.append(row)
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(map(markdown_cell, cells)) + " |"

    lines = [line(header), "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += [line(row) for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """A CSV file every cell of which went through :func:`csv_cell`."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([csv_cell(c) for c in row] for row in [header, *rows])


def write_report(dirs: list[Path], out: Path, title: str = "apigen-mt leaderboard") -> tuple[Path, str]:
    """Writes leaderboard.md/.csv/.html and the PNGs into ``out``; returns (html path, markdown table)."""
    from jinja2 import Environment

    from evaluation.report import plots

    found = collect(dirs)
    if not (found.bfcl or found.tau or found.next_action or found.runs):
        raise ValueError("no results found: " + "; ".join(found.ignored))
    out.mkdir(parents=True, exist_ok=True)
    columns = board.columns(found)
    header, rows, differences = leaderboard(found, columns)
    table = markdown_table(header, rows) if rows else "(no model results)"
    if rows:
        table += "\n\n" + board.NOISE_NOTE
    compared = board.difference_rows(differences)
    figures = []
    for name, caption, make, items in (
        (
            "funnel.png",
            "Datagen funnel: tasks at each Phase 1 stage, accepted, simulated and with a verified dialogue (base and recombined apart)",
            plots.funnel_png,
            found.runs,
        ),
        ("bfcl_categories.png", "BFCL-style accuracy per category", plots.bfcl_png, found.bfcl),
        (
            "tau_pass_k.png",
            "τ-bench-style pass^k (dashed: without tasks whose gold end state is the start state)",
            plots.pass_k_png,
            found.tau,
        ),
        (
            "next_action.png",
            "Next-action accuracy on held-out dialogues (turns that should call a tool; decision over all turns)",
            plots.next_action_png,
            found.next_action,
        ),
    ):
        if items:
            try:
                data = make(items)
            except Exception as exc:  # one figure the results cannot draw is a note; the tables stay
                found.ignored.append(f"{name} not drawn ({type(exc).__name__}: {str(exc)[:300]})")
                continue
            (out / name).write_bytes(data)
            figures.append({"file": name, "caption": caption, "data": base64.b64encode(data).decode()})
    write_csv(out / "leaderboard.csv", *csv_table(found, columns))
    write_csv(out / "differences.csv", board.DIFFERENCE_CSV_HEADER, board.difference_csv_rows(differences))
    md = [f"# {markdown_cell(title)}", "", table, ""]
    if compared:
        md += ["## Differences between models", "", markdown_table(board.DIFFERENCE_HEADER, compared), ""]
    md += [f"![{f['caption']}]({f['file']})" for f in figures]
    if found.ignored:
        md += ["", "Notes:"] + [f"- {markdown_cell(n)}" for n in found.ignored]
    (out / "leaderboard.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    template = resources.files("evaluation.report").joinpath("page.html.jinja").read_text(encoding="utf-8")
    html = (
        Environment(autoescape=True)
        .from_string(template)
        .render(
            title=title,
            header=header,
            rows=rows,
            noise_note=board.NOISE_NOTE if rows else "",
            difference_header=board.DIFFERENCE_HEADER,
            differences=compared,
            figures=figures,
            notes=found.ignored,
            sources=[str(d) for d in dirs],
        )
    )
    # A lone surrogate in a name becomes a character reference, which a browser shows as U+FFFD.
    (out / "leaderboard.html").write_text(html, encoding="utf-8", errors="xmlcharrefreplace")
    return out / "leaderboard.html", table


def main(argv: list[str]) -> int:
    parser = command_parser("apigen-mt report", __doc__)
    parser.add_argument("dirs", nargs="+", type=Path, help="result directories (searched recursively)")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for leaderboard.md, leaderboard.csv and leaderboard.html",
    )
    parser.add_argument("--title", default="apigen-mt leaderboard", help="title of the tables and the page")
    args = parser.parse_args(argv)
    try:
        check_output_folder(args.out)
        html, table = write_report(args.dirs, args.out, args.title)
    except ValueError as exc:
        print(f"apigen-mt report: {exc}", file=sys.stderr)
        return 2
    print(table)
    print(f"\nwrote {args.out}/leaderboard.md, leaderboard.csv and {html}")
    return 0
