"""BFCL's question and answer files, read from the installed `bfcl-eval` package at run time.

The data is never copied into this repository: every loader resolves the package's own `data/`
directory. Only the file layout is assumed (one JSON object per line, answers aligned with the
questions by position), which is what the official runner relies on too.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from datagen.rundir import BFCL_PREFIX

PACKAGE = "bfcl_eval"
DISTRIBUTION = "bfcl-eval"
PINNED_VERSION = "2026.3.23"
FILE_PREFIX = BFCL_PREFIX  # BFCL's v4 files: its data, and the result and score files of runs

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
ALL_CATEGORIES = NON_LIVE + LIVE + MULTI_TURN + AGENTIC

# Categories this harness does not run, and why. They still count as 0 in the overall scores,
# exactly as the leaderboard counts a category that was not evaluated.
SKIPPED = {
    **dict.fromkeys(WEB_SEARCH, "needs live internet search (SerpAPI) at generation time"),
    "memory_vector": "needs sentence-transformers embeddings and faiss (several GB), not installed",
}
MEMORY_RUN = [c for c in MEMORY if c not in SKIPPED]
SCORED = [c for c in ALL_CATEGORIES if c not in SKIPPED]
# The memory backend class each memory category runs on (BFCL: MemoryAPI_<backend>).
MEMORY_CLASSES = {c: f"MemoryAPI_{c.removeprefix('memory_')}" for c in MEMORY_RUN}
PREREQ_SUFFIX = "_prereq"

GROUPS = {
    "all": SCORED,
    "non_live": NON_LIVE,
    "live": LIVE,
    "multi_turn": MULTI_TURN,
    "single_turn": NON_LIVE + LIVE,
    "ast": [c for c in NON_LIVE + LIVE if "relevance" not in c],
    "memory": MEMORY,
    "agentic": AGENTIC,
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
    "MemoryAPI_kv": "memory_kv.json",
    "MemoryAPI_rec_sum": "memory_rec_sum.json",
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
    # memory categories: the scenario whose pre-requisite conversations fill the memory
    scenario: str = ""

    @property
    def is_memory_prereq(self) -> bool:
        return self.category.endswith(PREREQ_SUFFIX)


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


def use_private_project_root() -> None:
    """Point bfcl_eval's project root at a temporary folder unless the user chose one.

    Importing ``bfcl_eval.utils`` (the official checker, the memory backends) creates result,
    score and lock folders under that root, which defaults to site-packages.
    """
    if "BFCL_PROJECT_ROOT" not in os.environ:
        root = tempfile.mkdtemp(prefix="bfcl-root-")
        atexit.register(shutil.rmtree, root, True)
        os.environ["BFCL_PROJECT_ROOT"] = root


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


def _memory_entry(raw: dict[str, Any], category: str, question: list[list[dict[str, Any]]]) -> Entry:
    class_name = MEMORY_CLASSES[category.removesuffix(PREREQ_SUFFIX)]
    return Entry(
        id=raw["id"].replace("memory", category.removesuffix(PREREQ_SUFFIX), 1),
        category=category,
        question=question,
        functions=list(_func_docs(class_name)),
        involved_classes=[class_name],
        scenario=raw["scenario"] if "scenario" in raw else raw["id"].split("-")[1],
    )


def _agentic_question(question: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """The question with BFCL's answer-format system message first, as the official loader adds it."""
    from bfcl_eval.constants.default_prompts import ADDITIONAL_SYSTEM_PROMPT_FOR_AGENTIC_RESPONSE_FORMAT

    first = [{"role": "system", "content": ADDITIONAL_SYSTEM_PROMPT_FOR_AGENTIC_RESPONSE_FORMAT}]
    return [first + question[0], *question[1:]]


@cache
def _prereq_entries(category: str) -> tuple[Entry, ...]:
    folder = data_dir() / "memory_prereq_conversation"
    paths = sorted(folder.glob("memory_*.json"))
    if not paths:
        raise FileNotFoundError(
            f"expected BFCL memory pre-requisite conversations in {folder}; "
            f"is bfcl-eval=={PINNED_VERSION} installed (found {installed_version()})?"
        )
    prereq = category + PREREQ_SUFFIX
    return tuple(_memory_entry(raw, prereq, raw["question"]) for path in paths for raw in _read_jsonl(path))


def load_memory_prereqs(category: str, scenario: str) -> list[Entry]:
    """The scenario's pre-requisite conversations for a memory category, in the order they run.

    They fill the memory that the category's questions are asked against; their ids carry the
    category (``memory_kv_prereq_0-customer-0``) and end in their position within the scenario.
    """
    entries = [e for e in _prereq_entries(category) if e.scenario == scenario]
    return sorted(entries, key=lambda e: int(e.id.rsplit("-", 1)[1]))


@cache
def _load_raw(category: str, answers: bool) -> tuple[dict[str, Any], ...]:
    if category in SKIPPED:
        raise ValueError(f"category {category!r} is not run by this harness: {SKIPPED[category]}")
    folder = data_dir() / "possible_answer" if answers else data_dir()
    stem = "memory" if category in MEMORY else category
    path = folder / f"{FILE_PREFIX}_{stem}.json"
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
    if category in MEMORY:
        return tuple(_memory_entry(raw, category, _agentic_question(raw["question"])) for raw in raws)
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
