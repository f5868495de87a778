"""Writes the static site: pages from templates, data as chunked scripts, assets from the package.

Layout of ``OUT``::

    index.html                       every source, with a line of figures each
    assets/app.js, assets/app.css    shipped in this package; no network, no CDN
    <source>/index.html              the overview (static HTML: figures, charts, recipe, quality)
    <source>/<collection>.html       a paginated, searchable list
    <source>/item.html#c=..&id=..    one record (rendered by app.js from its detail chunk)
    <source>/data/<collection>/      manifest.js, index-NNNNN.js (list rows), detail-NNNNN.js (records)

A list page loads its manifest and first index chunk only; a record page loads one detail chunk.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from viewer.untrusted import Link, data_json, data_script, safe_href, shown, text_of

INDEX_CHUNK = 5000  # list rows per index file
DETAIL_CHUNK_BYTES = 1_000_000  # a detail file closes once it holds about this much
DETAIL_CHUNK_ROWS = 200
PAGE_SIZE = 50
FILTER_VALUES = 60  # a column with more distinct values gets no drop-down


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = "text"  # text | num | bool | verdict | list | link | ref
    filter: bool = False
    search: bool = False
    target: str | None = None  # kind "ref": the collection the value is an id of


@dataclass
class Collection:
    """Records of one type: ``rows`` yields (list row, detail record); both carry the record's id."""

    name: str
    title: str
    record_type: str  # a renderer of app.js: dialogue | blueprint | tau_task | bfcl_item
    columns: list[Column]
    rows: Iterable[tuple[dict[str, Any], dict[str, Any]]]


@dataclass
class Section:
    title: str
    kind: str  # kv | table | svg | pre | quality | links
    data: Any
    note: str = ""

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


@dataclass
class Source:
    """One thing to view: a run, a dataset or an evaluation."""

    slug: str
    title: str
    kind: str
    sections: list[Section] = field(default_factory=list)
    collections: list[Collection] = field(default_factory=list)
    headline: str = ""


def filter_value(value: Any) -> str:
    """A value as the list page's filters compare it (app.js's ``asText(value)``)."""
    return text_of(value)


def _script(key: str, value: Any) -> str:
    return data_script(key, data_json(value))


def _templates():
    from jinja2 import Environment, select_autoescape

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["href"] = safe_href
    env.filters["shown"] = shown
    env.tests["link"] = lambda value: isinstance(value, Link)
    folder = resources.files("viewer").joinpath("templates")
    quality = env.from_string(folder.joinpath("quality.html.jinja").read_text(encoding="utf-8"))
    page = env.from_string(folder.joinpath("page.html.jinja").read_text(encoding="utf-8"))
    page.globals["quality"] = quality.module.quality
    return page


def slugify(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "source"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


class SiteWriter:
    def __init__(self, out: Path):
        self.out = out
        self.page = _templates()

    def _write_page(self, path: Path, **context: Any) -> None:
        context.setdefault("sections", [])
        context.setdefault("preload", [])
        context.setdefault("collection", None)
        # A lone surrogate (valid JSON, not valid UTF-8) becomes a character reference, shown as U+FFFD.
        path.write_text(self.page.render(**context), encoding="utf-8", errors="xmlcharrefreplace")

    def _nav(self, source: Source) -> list[dict[str, str]]:
        nav = [{"href": "index.html", "title": source.title}]
        return nav + [{"href": f"{c.name}.html", "title": c.title} for c in source.collections]

    def write_collection(self, folder: Path, collection: Collection) -> dict[str, Any]:
        """The data files of one collection; returns its manifest."""
        data = folder / "data" / collection.name
        data.mkdir(parents=True, exist_ok=True)
        index_sizes: list[int] = []
        index: list[list[Any]] = []
        detail: list[dict[str, Any]] = []
        detail_bytes = 0
        detail_number = 0
        values: dict[str, Counter[str]] = {c.key: Counter() for c in collection.columns if c.filter}

        def flush_index() -> None:
            (data / f"index-{len(index_sizes):05d}.js").write_text(
                _script(f"{collection.name}/index/{len(index_sizes)}", index), encoding="utf-8"
            )
            index_sizes.append(len(index))
            index.clear()

        def flush_detail() -> None:
            nonlocal detail_bytes, detail_number
            text = data_script(f"{collection.name}/detail/{detail_number}", f"[{','.join(detail_json)}]")
            (data / f"detail-{detail_number:05d}.js").write_text(text, encoding="utf-8")
            detail_number += 1
            detail_bytes = 0
            detail.clear()
            detail_json.clear()

        detail_json: list[str] = []
        total = 0
        for row, record in collection.rows:
            key = text_of(row.get("id"))
            encoded = data_json({**record, "id": key})  # app.js finds a record by the id its list row shows
            detail.append(record)
            detail_json.append(encoded)
            detail_bytes += len(encoded)
            index.append([key, detail_number, *(row.get(c.key) for c in collection.columns)])
            for key, counter in values.items():
                value = row.get(key)
                counter.update(
                    filter_value(v) for v in (value if isinstance(value, list) else [value]) if v is not None
                )
            total += 1
            if len(detail) >= DETAIL_CHUNK_ROWS or detail_bytes >= DETAIL_CHUNK_BYTES:
                flush_detail()
            if len(index) >= INDEX_CHUNK:
                flush_index()
        if detail:
            flush_detail()
        if index or not index_sizes:
            flush_index()
        manifest = {
            "name": collection.name,
            "title": collection.title,
            "record_type": collection.record_type,
            "columns": [{k: v for k, v in c.__dict__.items() if v is not None} for c in collection.columns],
            "total": total,
            "index_chunks": index_sizes,
            "page_size": PAGE_SIZE,
            "filters": {
                key: [[v, n] for v, n in sorted(counter.items())]
                for key, counter in values.items()
                if len(counter) <= FILTER_VALUES
            },
        }
        (data / "manifest.js").write_text(_script(f"{collection.name}/manifest", manifest), encoding="utf-8")
        return manifest

    def write_source(self, source: Source) -> dict[str, int]:
        folder = self.out / source.slug
        folder.mkdir(parents=True, exist_ok=True)
        nav = self._nav(source)
        totals: dict[str, int] = {}
        for collection in source.collections:
            manifest = self.write_collection(folder, collection)
            totals[collection.name] = manifest["total"]
            self._write_page(
                folder / f"{collection.name}.html",
                title=f"{collection.title} · {source.title}",
                root="../",
                page="list",
                collection=collection.name,
                nav=nav,
                preload=[f"data/{collection.name}/manifest.js", f"data/{collection.name}/index-00000.js"],
            )
        if source.collections:
            self._write_page(folder / "item.html", title=source.title, root="../", page="item", nav=nav)
        links = [
            Section(
                "Browse",
                "links",
                [
                    {"href": f"{c.name}.html", "title": c.title, "note": f"{totals[c.name]} records"}
                    for c in source.collections
                ],
            )
        ]
        self._write_page(
            folder / "index.html",
            title=source.title,
            root="../",
            page="overview",
            nav=nav,
            sections=(links if source.collections else []) + source.sections,
        )
        return totals

    def write_assets(self) -> None:
        """The script and style every page links to, copied from this package."""
        assets = self.out / "assets"
        assets.mkdir(parents=True, exist_ok=True)
        static = resources.files("viewer").joinpath("static")
        for name in ("app.js", "app.css"):
            with resources.as_file(static.joinpath(name)) as path:
                shutil.copyfile(path, assets / name)

    def write_home(self, written: list[tuple[Source, dict[str, int]]]) -> Path:
        rows = []
        for source, totals in written:
            counts = ", ".join(f"{n} {name}" for name, n in totals.items())
            rows.append(
                [
                    Link(f"{source.slug}/index.html", source.title),
                    source.kind,
                    source.headline,
                    counts,
                ]
            )
        home = [
            Section(
                "Sources",
                "table",
                {"header": ["source", "kind", "figures", "records"], "rows": rows, "numeric": set()},
            )
        ]
        self._write_page(
            self.out / "index.html", title="apigen-mt view", root="", page="home", nav=[], sections=home
        )
        return self.out / "index.html"
