"""What every kind of `apigen-mt view` shares: the options a builder gets, the ``Kind`` record, and
the sections several kinds show (quality figures, saved settings, count tables). Its own module, so
the kinds import it without importing the package that lists them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apigen_rules.fields import count, mapping, text_of
from apigen_rules.jsonl import json_text
from datagen.quality.coverage import DomainLoader, load_domain
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
