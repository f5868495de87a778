"""Docs that cannot rot: the site builds with --strict (no broken link, no page outside the nav, no
warning), the generated reference pages are what the code generates today, every recipe key says
what it does, and every file, make target and import rule the pages name is real.

The site is built once per session into a temporary folder, offline (the theme loads no fonts).
The commands in the pages are parsed against the parsers in tests/test_cli_vocabulary.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
docs_reference = import_module("docs_reference")

README_MAX_LINES = 150
PAGES = sorted((ROOT / "docs").rglob("*.md"))
# Repository files a page may name; placeholders (`<model>`, `$d`, `**`) stop a match before its suffix.
NAMED_FILE = re.compile(
    r"(?<![\w/.(-])((?:recipes|scripts|benchmarks|datagen|training|evaluation|viewer|tests|requirements)/"
    r"[\w./-]*\.(?:ya?ml|sh|py|slurm|md|txt|jinja|json))\b"
)
# Documents the code writes into what it produces (a dataset card, its licence), not repository files.
WRITTEN_DOCS = {"README.md", "LICENSE.md"}
MAKE_TARGET = re.compile(r"`make ([a-z][\w-]*)`|^\s*make ([a-z][\w-]*)", flags=re.M)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """`mkdocs build --strict` as `make docs` runs it, into a temporary folder: (exit code, log, site)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, out


@pytest.fixture(scope="session")
def generated() -> tuple[dict[str, str], list[str]]:
    return docs_reference.generate()


def test_the_site_builds_strict_without_a_warning(site):
    code, log, out = site
    assert code == 0, log[-3000:]
    assert not [line for line in log.splitlines() if "WARNING" in line], log[-3000:]
    assert (out / "index.html").is_file() and (
        out / "reference" / "recipes" / "datagen" / "index.html"
    ).is_file()


def test_strict_mode_makes_every_link_and_nav_problem_a_warning():
    """What keeps the build honest: a broken link, a missing anchor or a page left out of the nav is a
    warning (mkdocs only logs some of them by default), and --strict turns warnings into a failure."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["strict"] is True
    assert set(config["validation"]["nav"].values()) == {"warn"}
    assert set(config["validation"]["links"].values()) == {"warn"}
    assert {"omitted_files", "not_found"} <= set(config["validation"]["nav"])
    assert {"not_found", "anchors", "unrecognized_links"} <= set(config["validation"]["links"])
    assert config["theme"]["font"] is False  # no Google Fonts: the site builds and reads offline


def test_the_generated_reference_pages_are_current(generated):
    pages, _ = generated
    assert docs_reference.stale(pages) == [], "run `make docs-reference` and commit the pages it writes"


def test_every_recipe_key_has_a_description(generated):
    _, undocumented = generated
    assert undocumented == [], "give these recipe keys a Field(description=...) (or a dataclass field's help)"


class _Section(BaseModel):
    described: int = Field(1, description="a key that says what it does")
    silent: int = 2


class _Recipe(BaseModel):
    """A recipe kind with one key that says nothing."""

    section: _Section = Field(default_factory=_Section, description="a nested section")


def test_a_recipe_key_without_a_description_is_reported():
    kind = docs_reference.RecipeKind("probe", "Probe", f"{__name__}:_Recipe", "A probe.")
    page, undocumented = docs_reference.recipe_page(kind)
    assert undocumented == [f"{__name__}:_Section.silent"]
    assert (
        "## section {#section}" in page
        and "| `described` | int | `1` | a key that says what it does |" in page
    )


def test_the_generator_runs_as_make_docs_reference_runs_it(plain_env):
    """`make docs-reference` runs the generator as a script, not as the module the tests import: its
    imports resolve from a plain shell (the generation itself is checked in-process above)."""
    done = subprocess.run(
        [sys.executable, "scripts/docs_reference.py", "--help"],
        cwd=ROOT, env=plain_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0 and "--check" in done.stdout, done.stderr[-2000:]


def test_the_readme_is_short_and_points_into_the_site():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    links = re.findall(r"\]\((docs/[^)#\s]+)", text)
    assert len(links) >= 5
    assert sorted(link for link in links if not (ROOT / link).is_file()) == []


@pytest.mark.parametrize("path", [ROOT / "README.md", *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_page_names_exists(path: Path):
    named = set(NAMED_FILE.findall(path.read_text(encoding="utf-8")))
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


def test_every_make_target_named_exists():
    """Pages, the README and the messages the code prints name only targets the Makefile has (an error
    message once told users to run `make install`, which never existed)."""
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(encoding="utf-8"), flags=re.M))
    sources = [ROOT / "README.md", *PAGES]
    sources += [
        p
        for package in ("datagen", "evaluation", "training", "viewer")
        for p in (ROOT / package).rglob("*.py")
    ]
    named = {
        (path.relative_to(ROOT).as_posix(), target)
        for path in sources
        for pair in MAKE_TARGET.findall(path.read_text(encoding="utf-8"))
        for target in pair
        if target
    }
    assert named, "no page names a make target"
    assert sorted((where, t) for where, t in named if t not in targets) == []


def _table(text: str, heading: str) -> dict[str, set[str]]:
    """A two-column table that follows ``heading`` in ``text``: first-column name -> second-column names."""
    rows = text.split(heading, 1)[1].split("\n\n", 1)[0].strip("\n").splitlines()[1:]  # after the --- row
    table = {}
    for row in rows:
        first, second = (cell.strip() for cell in row.strip("|").split("|"))
        table[first.strip("`")] = set(re.findall(r"`(\w+)`", second))
    return table


def test_the_architecture_page_states_the_enforced_import_rules():
    """docs/architecture.md says what tests/test_project_layout.py enforces, no more and no less: the
    package rules and the layers inside the packages."""
    import test_project_layout as layout

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert _table(text, "| package | never imports |") == {k: set(v) for k, v in layout.FORBIDDEN.items()}
    assert _table(text, "| module | may import besides |") == {
        k: set(v) for k, v in layout.MAY_IMPORT.items()
    }
    rows = text.split("| layer | modules |", 1)[1].split("\n\n", 1)[0].strip("\n").splitlines()[1:]
    layers = [
        (row.strip("|").split("|")[0].strip(), tuple(re.findall(r"`([\w.]+)`", row.strip("|").split("|")[1])))
        for row in rows
    ]
    assert layers == list(layout.LAYERS), "the layer table lists the layers of LAYERS, in order, ground up"


def test_the_pages_workflow_installs_the_docs_extra_s_pins():
    """The GitHub Pages build installs exactly the docs tools pyproject pins (`make docs` uses those)."""
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    workflow = (ROOT / ".github" / "workflows" / "docs.yml").read_text(encoding="utf-8")
    assert sorted(re.findall(r'"([\w\[\]-]+==[\d.]+)"', workflow)) == sorted(extra["docs"])


def test_the_documents_the_code_points_to_exist():
    """Docstrings, messages and templates point readers at docs/ pages and top-level documents that
    exist (the runner core's docstring once sent them to an ARCHITECTURE.md the repository did not have)."""
    sources = [
        path
        for package in ("datagen", "evaluation", "training", "viewer")
        for pattern in ("*.py", "*.jinja")
        for path in (ROOT / package).rglob(pattern)
    ]
    named = {
        (path.relative_to(ROOT).as_posix(), doc)
        for path in sources
        for doc in re.findall(r"\b(docs/[\w./-]+\.md|[A-Z][A-Z_]+\.md)\b", path.read_text(encoding="utf-8"))
    }
    assert any(doc.startswith("docs/") for _, doc in named)
    assert (
        sorted((where, doc) for where, doc in named if doc not in WRITTEN_DOCS and not (ROOT / doc).is_file())
        == []
    )
