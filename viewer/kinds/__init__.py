"""The kinds of thing `apigen-mt view` shows. Each is one module with a ``KIND``: how to recognise
a path of that kind and how to build its pages. Adding a kind (a new evaluation) is one module and
one line in ``KINDS``; the first kind that recognises a path takes it."""

from __future__ import annotations

from pathlib import Path

from viewer.kinds.base import Kind, Options

__all__ = ["Kind", "Options", "discover", "kind_of", "kinds"]


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
