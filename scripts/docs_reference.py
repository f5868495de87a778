"""The documentation's reference pages, generated from the code: one command regenerates them all.

    .venv/bin/python scripts/docs_reference.py           # (re)write them; `make docs-reference` runs this
    .venv/bin/python scripts/docs_reference.py --check   # exit 1 naming what is stale or undocumented

What is generated (and nothing under those paths is written by hand):

- ``docs/reference/recipes/*.md``: every key of every recipe kind, with its type, default and
  description, read from the pydantic models (and, for training, our dataclasses' ``help``);
- ``docs/reference/commands/*.md``: every `apigen-mt` command's options, read from the parser its
  ``main`` builds (captured at its first parse, so the page is what ``--help`` shows);
- ``docs/reference/errors.md``: every one-line error a command prints (``docs_errors``);
- the Reference part of ``mkdocs.yml``'s nav, between its two marker lines.

A recipe key without a description is an error here, and ``tests/test_docs.py`` runs
:func:`generate` and :func:`stale` in the default test suite, so a key cannot be added without
saying what it does and no page can fall behind the code. The pieces: ``docs_recipes.py``,
``docs_commands.py``, ``docs_errors.py`` (with ``docs_markdown.py``'s helpers), beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file: the packages are importable from a checkout too
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The generators are sibling scripts (found through the path above).
import docs_errors  # noqa: E402
from docs_commands import (  # noqa: E402
    COMMANDS_DIR,
    command_pages,
    command_parsers,
    options,
    replaced_by,
)
from docs_markdown import escape  # noqa: E402
from docs_recipes import KINDS, RECIPES_DIR, RecipeKind, recipe_page, shared_page  # noqa: E402

__all__ = [
    "RecipeKind",
    "command_parsers",
    "generate",
    "options",
    "recipe_page",
    "replaced_by",
    "stale",
    "write",
]

DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"
NAV_BEGIN = "    # BEGIN generated reference nav (scripts/docs_reference.py; do not edit by hand)"
NAV_END = "    # END generated reference nav"


def nav_block(pages: dict[str, str]) -> list[str]:
    """The Reference entries of mkdocs.yml's nav (indented under `- Reference:`)."""
    recipe_pages = [f"{RECIPES_DIR}/{kind.slug}.md" for kind in KINDS] + [f"{RECIPES_DIR}/shared.md"]
    titles = {f"{RECIPES_DIR}/{kind.slug}.md": kind.title for kind in KINDS}
    titles[f"{RECIPES_DIR}/shared.md"] = "Shared sections (models, executor)"
    lines = [NAV_BEGIN, "    - reference/index.md", "    - Recipes:"]
    lines += [f"      - {json.dumps(titles[p], ensure_ascii=False)}: {p}" for p in recipe_pages]
    lines += ["    - Commands:", f"      - {COMMANDS_DIR}/index.md"]
    command_paths = sorted(p for p in pages if p.startswith(COMMANDS_DIR) and not p.endswith("index.md"))
    for path in command_paths:
        name = (
            Path(path).stem.replace("-", " ", 1) if Path(path).stem.startswith("eval-") else Path(path).stem
        )
        lines.append(f"      - {json.dumps('apigen-mt ' + name)}: {path}")
    lines += ["    - Errors: reference/errors.md", "    - Python API:"]
    api = sorted((DOCS / "reference" / "api").glob("*.md"))
    lines += [f"      - reference/api/{p.name}" for p in api]
    return [*lines, NAV_END]


def with_nav(mkdocs_text: str, block: list[str]) -> str:
    lines = mkdocs_text.splitlines()
    if NAV_BEGIN not in lines or NAV_END not in lines:
        raise SystemExit(f"{MKDOCS}: expected the marker lines {NAV_BEGIN!r} and {NAV_END!r} in its nav")
    start, end = lines.index(NAV_BEGIN), lines.index(NAV_END)
    return "\n".join([*lines[:start], *block, *lines[end + 1 :]]) + "\n"


def generate() -> tuple[dict[str, str], list[str]]:
    """Every generated page (path under docs/ -> text) and every recipe key without a description."""
    os.environ["COLUMNS"] = "80"  # argparse sizes usage lines by the terminal: the same everywhere
    pages: dict[str, str] = {}
    undocumented: list[str] = []
    for kind in KINDS:
        pages[f"{RECIPES_DIR}/{kind.slug}.md"], missing = recipe_page(kind)
        undocumented += missing
    pages[f"{RECIPES_DIR}/shared.md"], missing = shared_page()
    undocumented += missing
    pages.update(command_pages(command_parsers()))
    pages["reference/errors.md"] = docs_errors.errors_page(ROOT, escape)
    return pages, sorted(set(undocumented))


def generated_dirs() -> list[Path]:
    return [DOCS / RECIPES_DIR, DOCS / COMMANDS_DIR]


def stale(pages: dict[str, str]) -> list[str]:
    """Paths (under docs/, and mkdocs.yml) whose committed text differs from ``pages``, or that no
    longer belong (a page of a removed command)."""
    found = [path for path, text in pages.items() if not (DOCS / path).is_file()
             or (DOCS / path).read_text(encoding="utf-8") != text]  # fmt: skip
    for folder in generated_dirs():
        found += [
            p.relative_to(DOCS).as_posix()
            for p in sorted(folder.glob("*.md"))
            if p.relative_to(DOCS).as_posix() not in pages
        ]
    text = MKDOCS.read_text(encoding="utf-8")
    if with_nav(text, nav_block(pages)) != text:
        found.append("../mkdocs.yml (its Reference nav)")
    return found


def write(pages: dict[str, str]) -> list[str]:
    """Writes ``pages`` and the nav; removes generated pages that no longer belong. Returns what changed."""
    changed = stale(pages)
    for folder in generated_dirs():
        for path in folder.glob("*.md"):
            if path.relative_to(DOCS).as_posix() not in pages:
                path.unlink()
    for path, text in pages.items():
        target = DOCS / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    MKDOCS.write_text(with_nav(MKDOCS.read_text(encoding="utf-8"), nav_block(pages)), encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is stale")
    args = parser.parse_args(argv)
    pages, undocumented = generate()
    for key in undocumented:
        print(f"recipe key without a description: {key} (add Field(description=...))", file=sys.stderr)
    if args.check:
        changed = stale(pages)
        for path in changed:
            print(f"stale: docs/{path}; run `make docs-reference`", file=sys.stderr)
        return 1 if changed or undocumented else 0
    for path in write(pages):
        print(f"wrote docs/{path}")
    return 1 if undocumented else 0


if __name__ == "__main__":
    raise SystemExit(main())
