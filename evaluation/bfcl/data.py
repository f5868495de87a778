"""BFCL's question and answer files, read from the installed `bfcl-eval` package at run time.

The data is never copied into this repository: every loader resolves the package's own `data/`
directory. Only the file layout is assumed (one JSON object per line, answers aligned with the
questions by position), which is what the official runner relies on too.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGE = "bfcl_eval"
DISTRIBUTION = "bfcl-eval"
PINNED_VERSION = "2026.3.23"
FILE_PREFIX = "BFCL_v4"

NON_LIVE = [
    "simple_python",
    "simple_java",
    "simple_javascript",
    "multiple",
    "parallel",
    "parallel_multiple",
    "irrelevance",
]
LIVE = [
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "live_irrelevance",
    "live_relevance",
]
MULTI_TURN = [
    "multi_turn_base",
    "multi_turn_miss_func",
    "multi_turn_miss_param",
    "multi_turn_long_context",
]
WEB_SEARCH = ["web_search_base", "web_search_no_snippet"]
MEMORY = ["memory_kv", "memory_vector", "memory_rec_sum"]
AGENTIC = WEB_SEARCH + MEMORY
SCORED = NON_LIVE + LIVE + MULTI_TURN
ALL_CATEGORIES = SCORED + AGENTIC

# Categories this harness does not run, and why. They still count as 0 in the overall scores,
# exactly as the leaderboard counts a category that was not evaluated.
SKIPPED = {
    **dict.fromkeys(WEB_SEARCH, "needs live internet search (SerpAPI) at generation time"),
    "memory_kv": "needs a multi-session pre-requisite conversation run; not implemented here yet",
    "memory_rec_sum": "needs a multi-session pre-requisite conversation run; not implemented here yet",
    "memory_vector": "needs sentence-transformers embeddings and faiss (several GB), not installed",
}

GROUPS = {
    "all": SCORED,
    "non_live": NON_LIVE,
    "live": LIVE,
    "multi_turn": MULTI_TURN,
    "single_turn": NON_LIVE + LIVE,
    "ast": [c for c in NON_LIVE + LIVE if "relevance" not in c],
}

# Which backend class each multi-turn function-doc file documents.
FUNC_DOC_FILES = {
    "GorillaFileSystem": "gorilla_file_system.json",
    "MathAPI": "math_api.json",
    "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json",
    "TicketAPI": "ticket_api.json",
    "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json",
    "VehicleControlAPI": "vehicle_control.json",
}


class BfclDataMissing(RuntimeError):
    """The `bfcl-eval` package (the data source) is not installed."""


@dataclass
class Entry:
    """One test item: the question turns, the function docs, and for multi-turn the backends."""

    id: str
    category: str
    question: list[list[dict[str, Any]]]
    functions: list[dict[str, Any]]
    initial_config: dict[str, Any] = field(default_factory=dict)
    involved_classes: list[str] = field(default_factory=list)
    # turn index -> function docs handed to the model at that turn (miss_func category)
    missed_functions: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def data_dir() -> Path:
    """The installed package's data directory, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BfclDataMissing(
            f"expected the `{DISTRIBUTION}` package (BFCL data) to be installed, found nothing; "
            f"install it with `pip install --no-deps {DISTRIBUTION}=={PINNED_VERSION}` "
            "(or `make setup`, which installs requirements/data-packages.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def installed_version() -> str | None:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return None


def is_available() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


def expand_categories(names: list[str] | None) -> list[str]:
    """Group names (all, live, ...) and category names to a de-duplicated list in canonical order."""
    wanted: set[str] = set()
    for name in names or ["all"]:
        if name in GROUPS:
            wanted.update(GROUPS[name])
        elif name in ALL_CATEGORIES:
            wanted.add(name)
        else:
            raise ValueError(
                f"unknown BFCL category {name!r}; expected a group {sorted(GROUPS)} "
                f"or a category {ALL_CATEGORIES}"
            )
    return [c for c in ALL_CATEGORIES if c in wanted]


def language_of(category: str) -> str:
    if category == "simple_java":
        return "java"
    if category == "simple_javascript":
        return "javascript"
    return "python"


def category_of_id(item_id: str) -> str:
    return item_id.split(":")[0].rsplit("_", 1)[0]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@cache
def _func_docs(class_name: str) -> tuple[dict[str, Any], ...]:
    return tuple(_read_jsonl(data_dir() / "multi_turn_func_doc" / FUNC_DOC_FILES[class_name]))


def _multi_turn_entry(raw: dict[str, Any], category: str) -> Entry:
    functions: list[dict[str, Any]] = []
    for class_name in raw["involved_classes"]:
        functions.extend(_func_docs(class_name))
    missed: dict[int, list[dict[str, Any]]] = {}
    for turn, names in raw.get("missed_function", {}).items():
        held_out = [doc for doc in functions if doc["name"] in names]
        functions = [doc for doc in functions if doc["name"] not in names]
        missed[int(turn)] = held_out
    return Entry(
        id=raw["id"],
        category=category,
        question=raw["question"],
        functions=functions,
        initial_config=raw.get("initial_config", {}),
        involved_classes=list(raw["involved_classes"]),
        missed_functions=missed,
    )


@cache
def _load_raw(category: str, answers: bool) -> tuple[dict[str, Any], ...]:
    if category in AGENTIC:
        raise ValueError(f"category {category!r} is not run by this harness: {SKIPPED[category]}")
    folder = data_dir() / "possible_answer" if answers else data_dir()
    path = folder / f"{FILE_PREFIX}_{category}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"expected BFCL file {path} for category {category!r}; "
            f"is bfcl-eval=={PINNED_VERSION} installed (found {installed_version()})?"
        )
    return tuple(_read_jsonl(path))


@cache
def _cached_entries(category: str) -> tuple[Entry, ...]:
    raws = _load_raw(category, answers=False)
    if category in MULTI_TURN:
        return tuple(_multi_turn_entry(raw, category) for raw in raws)
    return tuple(
        Entry(id=raw["id"], category=category, question=raw["question"], functions=raw["function"])
        for raw in raws
    )


def load_entries(category: str) -> list[Entry]:
    """The category's test items, in file order. Shared and cached: treat them as read-only
    (`tools.functions_for_model` copies the docs before changing them)."""
    return list(_cached_entries(category))


def load_answers(category: str) -> list[Any]:
    """The ground truth of each item, aligned with `load_entries` by position (ids can differ).

    Relevance categories have no answer file; their answers are empty lists.
    """
    if "relevance" in category:
        return [[] for _ in _load_raw(category, answers=False)]
    return [raw["ground_truth"] for raw in _load_raw(category, answers=True)]
