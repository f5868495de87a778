"""What a dataset card says about where the data came from: the toolkit build that exported it,
and the teacher models with the licence terms their outputs come under.

Licence terms are read, never guessed: from the model card (README.md) of a local model directory
or of a model already in the local Hugging Face cache (no network), else the card gives the model's
Hub page to check. No table of model licences is kept here.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from apigen_rules.yamlsafe import YamlError, load_yaml

# The embedded default model (datagen.llm.embedded) is a conversion of this Hub model; its licence
# is Apache-2.0. training/model_card.py names the same id for models fine-tuned from it
# (tests/test_export.py checks the two agree).
EMBEDDED_MODEL = "embedded"
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_LICENSE = "apache-2.0"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def toolkit_build() -> dict[str, Any]:
    """The apigen-mt version, and the git commit when it runs from a checkout (None from a wheel)."""
    try:
        version = metadata.version("apigen-mt")
    except metadata.PackageNotFoundError:
        version = None
    commit, dirty = None, None
    if (_PACKAGE_ROOT / ".git").exists():
        head = _git("rev-parse", "HEAD")
        if head:
            commit = head
            dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {"version": version, "commit": commit, "uncommitted_changes": dirty}


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(_PACKAGE_ROOT), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _card_header(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return {}
    try:
        header = load_yaml(text.split("---", 2)[1], str(path))
    except (YamlError, IndexError):
        return {}
    return header if isinstance(header, dict) else {}


def _local_card(model: str) -> Path | None:
    """The model card of a local model directory, or of a Hub model in the local cache."""
    if Path(model).is_dir():
        card = Path(model) / "README.md"
        return card if card.is_file() else None
    if _HUB_ID.match(model):
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "README.md")
        return Path(cached) if isinstance(cached, str) else None
    return None


def teacher_terms(role: str, model: str) -> dict[str, Any]:
    """One teacher model and the licence its card declares (None where no card could be read)."""
    entry: dict[str, Any] = {"role": role, "model": model, "hub_id": None, "license": None}
    entry |= {"license_name": None, "license_link": None, "source": None}
    if model == EMBEDDED_MODEL:
        return entry | {
            "hub_id": EMBEDDED_HUB_ID,
            "license": EMBEDDED_LICENSE,
            "source": "the embedded model (apigen-mt's bundled conversion)",
        }
    if _HUB_ID.match(model) and not Path(model).exists():
        entry["hub_id"] = model
    card = _local_card(model)
    if card is None:
        entry["source"] = (
            f"no local model card; check https://huggingface.co/{model}" if entry["hub_id"] else "unknown"
        )
        return entry
    header = _card_header(card)
    for key in ("license", "license_name", "license_link"):
        value = header.get(key)
        entry[key] = ", ".join(map(str, value)) if isinstance(value, list) else value
    entry["source"] = "the local copy of its model card"
    return entry


def teachers(models: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Every (role, model) pair of the exported rows with its licence terms."""
    return [teacher_terms(role, model) for role, names in models.items() for model in names]
