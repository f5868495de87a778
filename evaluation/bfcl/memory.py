"""BFCL's memory categories (``memory_kv``, ``memory_rec_sum``): fill a memory, then ask about it.

Per category and scenario (student, customer, finance, healthcare, notetaker), as BFCL's runner does:

1. The scenario's pre-requisite conversations run one after another through the multi-turn loop,
   on the official memory backend from the installed ``bfcl-eval`` (``MemoryAPI_kv``: a small core
   and a large archival key-value store with BM25 key search; ``MemoryAPI_rec_sum``: one text the
   model keeps rewriting). Each starts from the scenario's latest snapshot and is flushed to it
   when it ends, so the memory carries over from one conversation to the next.
2. Then each question of the scenario runs from that final snapshot. Questions only read it, so
   they run concurrently.

The model is told about its memory in a system prompt that also shows the memory content (the core
memory for kv, the whole text for rec_sum); its wording is BFCL's, read from the installed package
so that scores stay comparable. Snapshots are kept where the official runner keeps them, under the
model's result directory (``agentic/memory/<backend>/memory_snapshot/``).

Scoring is BFCL's agentic check: a result is one turn of steps; its last step that decodes to no
call is the answer, and it passes when one of the possible answers occurs in it as whole words,
after both are lower-cased and stripped of ``,./-_*^()`` (so "April 1, 2024" matches "april 1 2024").
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

from evaluation.bfcl.ast_checker import Verdict
from evaluation.bfcl.data import MEMORY_CLASSES, PREREQ_SUFFIX, Entry

_IGNORED_PUNCTUATION = re.compile(r"[,./\-_*^()]")


def is_memory(entry: Entry) -> bool:
    return entry.category.removesuffix(PREREQ_SUFFIX) in MEMORY_CLASSES


def with_snapshot_config(entry: Entry, model_result_dir: Path) -> Entry:
    """The entry with the initial configuration the memory backend needs to find its snapshots."""
    config = {
        "model_result_dir": Path(model_result_dir),
        "scenario": entry.scenario,
        "test_id": entry.id,
        "test_category": entry.category,
    }
    return dataclasses.replace(entry, initial_config={entry.involved_classes[0]: config})


def memory_system_prompt(entry: Entry, backend: Any) -> str:
    """BFCL's memory instruction for the entry's scenario, with the memory as it is now."""
    from bfcl_eval.constants.default_prompts import (
        MEMORY_AGENT_SETTINGS,
        MEMORY_BACKEND_INSTRUCTION_CORE_ARCHIVAL,
        MEMORY_BACKEND_INSTRUCTION_UNIFIED,
    )

    if entry.scenario not in MEMORY_AGENT_SETTINGS:
        raise ValueError(
            f"{entry.id}: unknown memory scenario {entry.scenario!r}; expected one of {sorted(MEMORY_AGENT_SETTINGS)}"
        )
    unified = entry.category.removesuffix(PREREQ_SUFFIX) == "memory_rec_sum"
    template = MEMORY_BACKEND_INSTRUCTION_UNIFIED if unified else MEMORY_BACKEND_INSTRUCTION_CORE_ARCHIVAL
    return template.format(
        scenario_setting=MEMORY_AGENT_SETTINGS[entry.scenario],
        memory_content=backend._dump_core_memory_to_context(),
    )


def with_memory_prompt(entry: Entry, backend: Any) -> list[list[dict[str, Any]]]:
    """The entry's turns with the memory instruction first; merged into a system message it has."""
    question = copy.deepcopy(entry.question)
    system = memory_system_prompt(entry, backend)
    first_turn = question[0]
    if first_turn and first_turn[0]["role"] == "system":
        first_turn[0]["content"] = f"{system}\n\n{first_turn[0]['content']}"
    else:
        first_turn.insert(0, {"role": "system", "content": system})
    return question


def standardize(text: str) -> str:
    return _IGNORED_PUNCTUATION.sub("", text).lower().replace("'", '"')


def answer_matches(response: Any, possible_answers: list[str]) -> bool:
    """Whether one of the possible answers occurs in the response as whole words (BFCL's rule)."""
    if isinstance(response, list):
        response = response[0] if response else ""
    text = standardize(response if isinstance(response, str) else str(response))
    return any(re.search(rf"\b{re.escape(standardize(answer))}\b", text) for answer in possible_answers)


def check_result(result: Any, possible_answers: list[str], decode_step: Any) -> Verdict:
    """Score one memory question's result: one turn whose last non-call step holds an answer.

    ``decode_step(raw)`` says whether a step holds a call (its calls, or True; falsy or raising when
    it holds none).
    """
    if not isinstance(result, list) or len(result) != 1 or not isinstance(result[0], list):
        return Verdict(False, "agentic:inference_error", "result is not a list of one turn of steps")
    answer = None
    for raw in result[0]:
        try:
            calls = decode_step(raw)
        except Exception:  # any step that is not a call is a candidate answer, as in BFCL
            calls = []
        if not calls:
            answer = raw
    if not answer:  # an empty last message counts as none, as in BFCL
        return Verdict(False, "agentic:no_last_message", "no non-empty step without a function call")
    if not answer_matches(answer, possible_answers):
        return Verdict(
            False,
            "agentic:answer_not_found",
            f"none of {possible_answers[:3]} in the answer {str(answer)[:200]!r}",
        )
    return Verdict(True)
