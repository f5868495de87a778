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
from evaluation.report.collect import Collected, collect

BFCL_COLUMNS = (("BFCL overall (v4)", "overall_v4"), ("BFCL overall (v3)", "overall_v3"), ("non-live", "non_live"),
                ("live", "live"), ("multi-turn", "multi_turn"))  # fmt: skip
# Next-action figures in the leaderboard (turns that should call a tool, but for the decision).
NEXT_ACTION_COLUMNS = (("decode", "decode_rate"), ("name match", "name_match"), ("exact match", "exact_match"),
                       ("decision", "decision_accuracy"))  # fmt: skip


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def plain(text: str) -> str:
    """``text`` as a file can hold it: a lone surrogate (valid JSON, half an emoji) becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


# OWASP's CSV-injection advice: a cell that starts with one of these is a formula to a spreadsheet, so
# it is written with a leading apostrophe, which spreadsheets read as "text follows".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A cell of leaderboard.csv: never a formula when a spreadsheet opens the file."""
    text = plain(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


_MARKDOWN_SPECIAL = re.compile(r"([\\|<>\[\]`*])")


def markdown_cell(text: str) -> str:
    """Text in one cell of a markdown table: one line, no column break, no markup, no link."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(plain(text).splitlines())).replace("\t", " ")


def leaderboard(found: Collected) -> tuple[list[str], list[list[str]]]:
    """One row per model; BFCL group scores, then pass^1 per τ environment (and without no-op tasks),
    then the next-action figures per evaluated dataset."""
    envs = sorted({t.env for t in found.tau})
    datasets = sorted({n.label for n in found.next_action})
    header = ["model"]
    if found.bfcl:
        header += [name for name, _ in BFCL_COLUMNS]
    for env in envs:
        header += [f"τ {env} pass^1", f"τ {env} pass^1 (state-changing)"]
    for label in datasets:
        header += [f"next-action {label} {name}" for name, _ in NEXT_ACTION_COLUMNS]
    models = sorted(
        {r.model for r in found.bfcl} | {t.model for t in found.tau} | {n.model for n in found.next_action}
    )
    rows = []
    for model in models:
        row = [model]
        if found.bfcl:
            bfcl = next((r for r in found.bfcl if r.model == model), None)
            row += [_pct(bfcl.overall.get(key)) if bfcl else "–" for _, key in BFCL_COLUMNS]
        for env in envs:
            tau = next((t for t in found.tau if t.model == model and t.env == env), None)
            row += [
                _pct(tau.pass_k().get(1)) if tau else "–",
                _pct(tau.pass_k("pass_k_state_changing_only").get(1)) if tau else "–",
            ]
        for label in datasets:
            na = next((n for n in found.next_action if n.model == model and n.label == label), None)
            row += [_pct(na.overall.get(key)) if na else "–" for _, key in NEXT_ACTION_COLUMNS]
        rows.append(row)
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(map(markdown_cell, cells)) + " |"

    lines = [line(header), "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += [line(row) for row in rows]
    return "\n".join(lines)


def write_report(dirs: list[Path], out: Path, title: str = "apigen-mt leaderboard") -> tuple[Path, str]:
    """Writes leaderboard.md/.csv/.html and the PNGs into ``out``; returns (html path, markdown table)."""
    from jinja2 import Environment

    from evaluation.report import plots

    found = collect(dirs)
    if not (found.bfcl or found.tau or found.next_action or found.runs):
        raise ValueError("no results found: " + "; ".join(found.ignored))
    out.mkdir(parents=True, exist_ok=True)
    header, rows = leaderboard(found)
    table = markdown_table(header, rows) if rows else "(no model results)"
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
    with (out / "leaderboard.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerows([csv_cell(c) for c in row] for row in [header, *rows])
    md = [f"# {markdown_cell(title)}", "", table, ""]
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
        html, table = write_report(args.dirs, args.out, args.title)
    except ValueError as exc:
        print(f"apigen-mt report: {exc}", file=sys.stderr)
        return 2
    print(table)
    print(f"\nwrote {args.out}/leaderboard.md, leaderboard.csv and {html}")
    return 0
