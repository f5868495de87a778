"""Model output in pages (issue 30, items 1, 2, 5 and 6), in headless Chromium: a site of every page
kind whose records hold what an adversary or a broken model writes (scripts, ``javascript:`` links,
lone surrogates, ``__proto__`` keys, a 5 MB token, a 5 MB message, long filter values, fields of the
wrong type). Every page opens and renders in full, no page is wider than its viewport, no link has a
scheme other than file/http/https, and clicking every link on the way runs no injected script."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hostile import copy_source, parquet_rows, read_lines, write_lines, write_parquet
from viewrun import write_sources

from viewer.browser import Browser, find_chromium
from viewer.cli import build_site
from viewer.kinds import Options

PWN = "window.__pwned=1"
SCRIPT = f"</script><script>{PWN}</script><img src=x onerror='{PWN}'>"
JS_LINK = f"javascript:{PWN}"
TOKEN = "x" * 5_000_000  # one 5 MB word
MESSAGE = "word " * 1_000_000  # one 5 MB message
LONG_VALUE = "F" * 3000  # a filter value as long as a paragraph
TRAP = """(() => {
  const report = (what) => { try { window.__pwned_report(String(what)); } catch (e) {} };
  Object.defineProperty(window, "__pwned", { configurable: false, get() { return undefined; },
    set(v) { report(`window.__pwned = ${v}`); } });
  for (const name of ["alert", "confirm", "prompt"]) window[name] = (m) => report(`${name}(${m})`);
})();"""

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="Debian's chromium is not installed (scripts/test-setup.sh installs it)"
)


def _edit_lines(path: Path, edit) -> None:
    rows = read_lines(path)
    edit(rows)
    write_lines(path, rows)


def _edit_json(path: Path, edit) -> None:
    value = json.loads(path.read_text(encoding="utf-8"))
    edit(value)
    path.write_text(json.dumps(value), encoding="utf-8")


def _hostile_run(rows: list[dict[str, Any]]) -> None:
    first = rows[0]
    first["persona"] = SCRIPT
    first["failure"] = LONG_VALUE
    first["checks"] = {
        "missing_outputs": "a string, not a list",
        "user_scores": "x",
        "termination": {"toString": 1},
    }
    first["scratch"] = {"__proto__": {"polluted": True}, "constructor": {"prototype": {"polluted": True}}}
    first["messages"] += [
        {"role": "user", "content": TOKEN},
        {"role": "assistant", "content": MESSAGE, "tool_calls": [None, "a call as a string", {"function": {"name": SCRIPT, "arguments": "{bad json"}}]},
        {"role": "user", "content": [{"type": "text", "text": "part one"}, {"toString": 1, "valueOf": 2}]},
        {"role": "tool", "name": {"x": 1}, "tool_call_id": 7, "content": {"nested": [JS_LINK]}},
        "a message that is a string",
    ]  # fmt: skip


def _hostile_blueprint(rows: list[dict[str, Any]]) -> None:
    bp = rows[0]
    bp["instruction"] = SCRIPT + "\ud83d"
    bp["actions"] = [None, {"name": {"x": 1}, "arguments": JS_LINK}, *bp["actions"]]
    bp["provenance"]["diff"] = [1, None, {"toString": 1}, "+ added", ["- removed"]]
    bp["provenance"]["parents"] = "not a list"
    bp["provenance"]["reviews"] = [
        {"round": 1, "voted": "x", "verdicts": [None, {"judge": SCRIPT, "scores": [1]}]}
    ]
    bp["provenance"]["funnel"]["attempts"][0]["passed"] = "format"


def _hostile_dataset(folder: Path) -> None:
    for shard, (schema, rows) in parquet_rows(folder).items():
        rows[0]["persona"] = SCRIPT
        rows[0]["env"] = LONG_VALUE
        rows[0]["messages"][-1]["content"] = TOKEN
        write_parquet(shard, schema, rows)

    def licence(facts: dict[str, Any]) -> None:
        facts["teachers"] = [
            {"role": "agent", "model": SCRIPT, "license": {"href": JS_LINK, "text": "MIT"}},
            {"role": "user", "model": "m", "license": "apache-2.0", "license_link": f" {JS_LINK}"},
        ]
        facts["domains"] = [JS_LINK, {"__proto__": 1}]

    _edit_json(folder / "export.json", licence)


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-site")
    clean = write_sources(root / "clean")
    sources = {name: copy_source(path, root / "hostile" / name) for name, path in clean.items()}
    _edit_lines(sources["run"] / "trajectories.jsonl", _hostile_run)
    _edit_lines(sources["run"] / "blueprints.jsonl", _hostile_blueprint)
    _hostile_dataset(sources["hf"])

    def sharegpt(rows: list[dict[str, Any]]) -> None:
        rows[0]["conversations"][0]["value"] = "half an emoji \ud83d " + SCRIPT

    _edit_json(sources["sharegpt"] / "train.json", sharegpt)

    def jsonl(rows: list[dict[str, Any]]) -> None:
        rows[0]["messages"][1]["content"] = MESSAGE
        rows[0]["persona"] = JS_LINK

    _edit_lines(sources["jsonl"] / "train.jsonl", jsonl)

    def tau(rows: list[dict[str, Any]]) -> None:
        rows[0]["state_diff_vs_gold"] = [{"a": 1}, 5, "- x", None]
        rows[0]["failure"] = '=HYPERLINK("http://x.invalid","y")'
        rows[0]["messages"].append({"role": "assistant", "content": None, "tool_calls": [None]})
        rows[1]["task_id"] = SCRIPT

    _edit_lines(sources["tau"] / "results.jsonl", tau)
    _edit_json(
        sources["tau"] / "summary.json", lambda s: s.update(agent=f"$x$ {SCRIPT}", pass_k={"1": "x", "k": 1})
    )

    def bfcl(rows: list[dict[str, Any]]) -> None:
        rows[0].update(error=SCRIPT, category=LONG_VALUE, valid="yes")
        rows[1]["id"] = {"__proto__": 1}

    _edit_lines(sources["bfcl"] / "score" / "verdicts.jsonl", bfcl)
    _edit_json(sources["bfcl"] / "settings.json", lambda m: m.update(model=JS_LINK))

    def turns(rows: list[dict[str, Any]]) -> None:
        rows[0].update(key="__proto__", gold_calls="a string", predicted_calls=[None], raw=SCRIPT)
        rows[1].update(key="constructor", gold_content={"toString": 1})

    _edit_lines(sources["next-action"] / "turns.jsonl", turns)
    site = root / "site"
    _, built, problems = build_site(list(sources.values()), site, Options())
    assert len(built) == len(sources) and not problems, problems
    return site


def _records(site: Path) -> list[tuple[Path, str, str]]:
    """(source folder, collection, record id) of every record of the site, from its data files."""
    found = []
    for index in sorted(site.glob("*/data/*/index-*.js")):
        text = index.read_text(encoding="utf-8")
        rows = json.loads(json.loads(text[text.index(",") + 1 : text.rindex(")")]))
        found += [(index.parents[2], index.parent.name, row[0]) for row in rows]
    return found


def _url(path: Path, fragment: str = "") -> str:
    return path.resolve().as_uri() + (f"#{fragment}" if fragment else "")


class _Visit:
    """Opens pages in one browser and checks each: rendered, no part drawn from the fallback, no wider
    than the viewport and at most ``tall`` viewports high, only file/http/https links."""

    def __init__(self, browser: Browser, tall: int = 60):
        self.browser, self.tall, self.opened = browser, tall, 0

    def open(self, url: str, rendered: bool) -> list[str]:
        self.browser.open(url, timeout_s=120, rendered=rendered)
        self.opened += 1
        page = self.browser.evaluate(
            "({fallback: document.body.dataset.fallback || '', wide: document.documentElement.scrollWidth, "
            "high: document.documentElement.scrollHeight, vw: window.innerWidth, vh: window.innerHeight, "
            "links: [...document.querySelectorAll('a[href]')].map(a => [a.protocol, a.getAttribute('href')])})"
        )
        assert not page["fallback"], (url[-120:], page["fallback"])
        assert page["wide"] <= page["vw"], (
            f"{url[-120:]}: {page['wide']} px wide in a {page['vw']} px viewport"
        )
        assert page["high"] <= self.tall * page["vh"], f"{url[-120:]}: {page['high']} px high"
        bad = [href for protocol, href in page["links"] if protocol not in ("file:", "http:", "https:")]
        assert not bad, (url[-120:], bad[:3])
        return [href for protocol, href in page["links"] if protocol == "file:"]

    def click_all(self, url: str, rendered: bool, most: int = 12) -> None:
        """Opens ``url`` again before each click; clicks every distinct site link (up to ``most``)."""
        hrefs = list(dict.fromkeys(self.open(url, rendered)))[:most]
        for href in hrefs:
            self.browser.open(url, timeout_s=120, rendered=rendered)
            self._settle(
                f"[...document.querySelectorAll('a[href]')].find(a => a.getAttribute('href') === {json.dumps(href)}).click()"
            )
            time.sleep(0.05)
            self._settle("document.readyState === 'complete'")

    def _settle(self, expression: str, timeout_s: float = 60) -> None:
        """Evaluates ``expression`` until it is not false, through the navigation a click starts."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.browser.evaluate(expression) is not False:
                    return
            except RuntimeError:  # the page navigated while the expression ran
                pass
            time.sleep(0.05)
        raise TimeoutError(expression)


def test_no_hostile_field_runs_a_script_or_breaks_a_page(hostile_site: Path):
    records = _records(hostile_site)
    assert len({(folder.name, c) for folder, c, _ in records}) == 9  # every collection of the 7 sources
    with Browser() as browser:
        browser.watch("Runtime.bindingCalled")
        browser.add_binding("__pwned_report")
        browser.on_every_document(TRAP)
        visit = _Visit(browser)
        browser.open(_url(hostile_site / "index.html"), rendered=False)
        browser.evaluate("window.__pwned = 'the trap works'")
        assert [e["params"]["payload"] for e in browser.events] == ["window.__pwned = the trap works"]
        browser.events.clear()

        visit.click_all(_url(hostile_site / "index.html"), rendered=False)
        for overview in sorted(hostile_site.glob("*/index.html")):
            visit.click_all(_url(overview), rendered=False)
            for listing in sorted(overview.parent.glob("*.html")):
                if listing.name not in ("index.html", "item.html"):
                    visit.click_all(_url(listing), rendered=True, most=4)
        clicked: Counter[tuple[str, str]] = Counter()
        for folder, collection, record_id in records:
            url = _url(folder / "item.html", urlencode({"c": collection, "id": record_id}))
            # Every record opens; the links of the first two of each collection (where the hostile
            # fields are) are clicked too.
            if clicked[folder.name, collection] < 2:
                visit.click_all(url, rendered=True, most=6)
                clicked[folder.name, collection] += 1
            else:
                visit.open(url, rendered=True)
        browser.evaluate("1")  # reads the events still in flight
        assert not browser.events, [e["params"]["payload"] for e in browser.events][:5]
    assert visit.opened > len(records)


def test_hostile_fields_are_shown_as_text(hostile_site: Path):
    """Item 6: each field of the wrong type used to put its record page into "could not render"."""
    run = hostile_site / "run"
    records = {(f.name, c): i for f, c, i in _records(hostile_site)}
    with Browser() as browser:
        browser.open(_url(run / "item.html", "c=dialogues&id=shop-view-00000-a0"))
        text = browser.evaluate("document.getElementById('app').textContent")
        assert "part one" in text and '"toString": 1' in text  # a content part with toString
        assert "(not a tool call)" in text and "a call as a string" in text  # null and string tool calls
        assert (
            "a string, not a list" in text and '"__proto__": {' in text
        )  # .join on a string; __proto__ kept
        assert "show all 5,000,000 characters" in text
        assert browser.evaluate("Object.getPrototypeOf({}).polluted") is None
        browser.open(_url(run / "item.html", "c=blueprints&id=shop-view-00000"))
        diff = browser.evaluate("[...document.querySelectorAll('pre.diff span')].map(s => s.textContent)")
        assert diff[:5] == [
            "1\n",
            "\n",
            '{"toString":1}\n',
            "+ added\n",
            '["- removed"]\n',
        ]  # non-string diff lines
        assert browser.evaluate("document.querySelector('pre.diff .add').textContent") == "+ added\n"
        turns = next(f for f, c in records if c == "turns")
        browser.open(_url(hostile_site / turns / "item.html", "c=turns&id=__proto__"))
        assert browser.evaluate("document.querySelector('h1').textContent").startswith("__proto__")
        select = browser.evaluate(
            "(() => { const s = document.querySelector('select'); return s && s.getBoundingClientRect().width; })()"
        )
        assert select is None  # an item page has no filters
        browser.open(_url(run / "dialogues.html"))
        widths = browser.evaluate(
            "[...document.querySelectorAll('select')].map(s => s.getBoundingClientRect().width)"
        )
        assert widths and max(widths) < 300
