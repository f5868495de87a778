"""`apigen-mt envs new NAME`: writes a minimal, working user domain from the templates beside this file."""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")  # whole name: fullmatch (`$` would let "x\n" pass)


def scaffold_domain(name: str, parent: Path, *, overwrite: bool = False) -> Path:
    """Creates ``parent/name/`` with every file of a user domain; returns the folder."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"domain name must be lower-case letters, digits and underscores, starting with a letter "
            f"(at most 40 characters), e.g. 'library'; got {name!r}"
        )
    folder = parent.expanduser().resolve() / name
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"{folder} already exists and is not empty; pick another name or pass --force")
    folder.mkdir(parents=True, exist_ok=True)
    jinja = Environment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True
    )
    for template in sorted(TEMPLATES.glob("*.jinja")):
        target = folder / template.name.removesuffix(".jinja")
        target.write_text(jinja.get_template(template.name).render(name=name), encoding="utf-8")
    return folder
