"""The kinds of thing `apigen-mt view` shows. Each is one module with a ``KIND``: how to recognise
a path of that kind and how to build its pages. Adding a kind (a new evaluation) is one module and
one line in ``KINDS``; the first kind that recognises a path takes it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datagen.fields import count, mapping, text_of
from datagen.quality.coverage import DomainLoader, load_domain
from datagen.runio import json_text
from viewer.site import Section, Source

log = logging.getLogger(__name__)


@dataclass
class Options:
    """What every kind's builder may use."""

    domains: DomainLoader = load_domain
    stats: bool = True  # compute the quality figures (coverage, duplicates, contamination)
    slugs: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Kind:
    name: str
    detect: Callable[[Path], bool]
    build: Callable[[Path, Options], Source]


def quality_section(corpus: Callable[[], object], options: Options) -> list[Section]:
    """The quality figures of one corpus as a section (none with ``--no-stats``); figures that cannot
    be computed on what the files hold are one line in the page, not a source without pages."""
    from datagen.quality import quality_report

    if not options.stats:
        return []
    try:
        report = quality_report([corpus()], domains=options.domains)
    except Exception as exc:
        log.debug("view: quality figures failed", exc_info=True)
        return [Section("Quality figures", "kv", [("not computed", f"{type(exc).__name__}: {exc}")])]
    return [Section("Quality figures", "quality", next(iter(report["collections"].values())))]


def settings_section(recipe: dict[str, Any], title: str, note: str) -> Section:
    """A saved recipe (already redacted) as YAML; as JSON where YAML cannot write what it holds."""
    import yaml

    try:
        text = yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError:
        text = json_text(recipe, indent=2, default=str)
    return Section(title, "pre", text, note=note)


def counts_table(counts: Any, header: list[str]) -> dict[str, Any]:
    """A table of (name, count) rows, largest first, from a mapping a summary holds."""
    rows = sorted(((text_of(k), count(v)) for k, v in mapping(counts).items()), key=lambda kv: -kv[1])
    return {"header": header, "rows": rows, "numeric": {1}}


def kinds() -> tuple[Kind, ...]:
    from viewer.kinds import bfcl, datagen_run, dataset, next_action, tau

    return (datagen_run.KIND, tau.KIND, bfcl.KIND, next_action.KIND, dataset.KIND)


def kind_of(path: Path) -> Kind | None:
    return next((k for k in kinds() if k.detect(path)), None)


def discover(path: Path, depth: int = 4) -> list[tuple[Kind, Path]]:
    """``path`` itself when a kind recognises it, else every recognised folder below it (not
    descending into one that is recognised)."""
    kind = kind_of(path)
    if kind is not None:
        return [(kind, path)]
    if depth == 0 or not path.is_dir():
        return []
    found: list[tuple[Kind, Path]] = []
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found += discover(child, depth - 1)
    return found
