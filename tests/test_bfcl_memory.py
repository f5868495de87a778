"""BFCL memory categories: pre-requisite conversations fill the official memory backend, the
snapshot carries over between them, and questions are answered (and scored) from it.

The model is scripted so that what it remembers is known: a model that writes what it hears
into memory and answers from it must score well; one that never writes must score nothing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import zlib

import pytest

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("bfcl_eval", "rank_bm25", "overrides")),
    reason="needs bfcl-eval and its memory backends' light deps (requirements/data-light.txt)",
)

from scripted import ScriptedModel  # noqa: E402

from datagen.rundir import BfclRun  # noqa: E402
from evaluation.bfcl import data, memory, results, scoring  # noqa: E402
from evaluation.bfcl.generate import RunSettings, generate, run_memory_scenario  # noqa: E402

SCENARIO = "notetaker"  # the shortest pre-requisite conversations (5 of 4-5 turns)


def _questions(category: str) -> list[data.Entry]:
    return [e for e in data.load_entries(category) if e.scenario == SCENARIO]


def _prereq_user_messages(category: str) -> list[str]:
    return [
        message["content"]
        for entry in data.load_memory_prereqs(category, SCENARIO)
        for turn in entry.question
        for message in turn
        if message["role"] == "user"
    ]


def _is_question(messages: list[dict]) -> bool:
    # Questions carry BFCL's answer-format instruction in their system prompt; conversations do not.
    return "For your final answer" in messages[0]["content"]


def _memory_in_prompt(messages: list[dict]) -> str:
    return messages[0]["content"].split("from previous interactions:\n", 1)[1]


def _recorder(messages, kwargs):
    """Prompt mode, rec_sum: append every user message to memory; answer with what memory holds."""
    last = messages[-1]
    if _is_question(messages):
        return [repr({"answer": _memory_in_prompt(messages), "context": "my memory"})]
    if last["role"] == "user" and not last["content"].startswith("Function results"):
        return [f"[memory_append(text={last['content'] + ' '!r})]"]
    return ["Noted."]


def _forgetter(messages, kwargs):
    if _is_question(messages):
        return [repr({"answer": _memory_in_prompt(messages), "context": "my memory"})]
    return ["Noted."]


def _score(category: str, rows: list[dict], fmt: str) -> scoring.CategoryScore:
    questions = [r for r in rows if data.category_of_id(r["id"]) == category]
    return scoring.score_category(category, questions, fmt, underscore_names=fmt == "json")


def test_rec_sum_memory_carries_over_conversations_and_answers_questions(tmp_path):
    category, settings = "memory_rec_sum", RunSettings(mode="prompt")
    model = ScriptedModel(_recorder)
    rows = asyncio.run(run_memory_scenario(model, _questions(category), settings, tmp_path))

    prereqs = data.load_memory_prereqs(category, SCENARIO)
    assert [r["id"] for r in rows[: len(prereqs)]] == [e.id for e in prereqs]
    assert all(r["id"].startswith("memory_rec_sum_prereq_") for r in rows[: len(prereqs)])
    # The snapshot is where BFCL's runner keeps it, and holds every message of every conversation.
    snapshot = tmp_path / "agentic" / "memory" / "rec_sum" / "memory_snapshot" / f"{SCENARIO}_final.json"
    remembered = json.loads(snapshot.read_text())["memory"]
    assert all(message in remembered for message in _prereq_user_messages(category))
    # The second conversation starts with the first one's memory in its system prompt.
    first_of_second = next(
        r["messages"]
        for r in model.requests
        if prereqs[1].question[0][0]["content"] in r["messages"][-1]["content"]
    )
    assert prereqs[0].question[0][0]["content"] in _memory_in_prompt(first_of_second)

    recorded = _score(category, rows, "python")
    assert recorded.total == len(_questions(category)) == 25
    assert recorded.accuracy >= 0.6, [i for i in recorded.items if not i.valid][:3]

    forgetful = asyncio.run(
        run_memory_scenario(ScriptedModel(_forgetter), _questions(category), settings, tmp_path / "forgetful")
    )
    assert _score(category, forgetful, "python").correct == 0


def _archivist(messages, kwargs):
    """FC mode, kv: file each user message in archival memory; to answer, list the keys, read them all."""
    last = messages[-1]
    if _is_question(messages):
        if last["role"] == "user":
            return [{"name": "archival_memory_list_keys", "arguments": {}}]
        listed = json.loads(last["content"])
        if "keys" in listed:
            return [[{"name": "archival_memory_retrieve", "arguments": {"key": k}} for k in listed["keys"]]]
        read = [json.loads(m["content"]).get("value", "") for m in messages if m["role"] == "tool"]
        return [repr({"answer": " ".join(read), "context": "archival memory"})]
    if last["role"] == "user":
        key = f"note_{zlib.crc32(last['content'].encode())}"
        return [{"name": "archival_memory_add", "arguments": {"key": key, "value": last["content"][:2000]}}]
    return ["Noted."]


def test_kv_archival_memory_through_generate_and_the_result_files(tmp_path):
    category, settings = "memory_kv", RunSettings(mode="fc")
    heard = " ".join(_prereq_user_messages(category))
    target = next(  # a question that whoever kept every message can answer
        k
        for k, (e, a) in enumerate(zip(data.load_entries(category), data.load_answers(category), strict=True))
        if e.scenario == SCENARIO and memory.answer_matches(heard, a)
    )
    with pytest.raises(ValueError, match="model_result_dir"):
        asyncio.run(generate(ScriptedModel(_archivist), [category], settings, limit=1))

    # --limit counts questions: the first N of the category, here up to that notetaker question.
    entries = data.load_entries(category)[: target + 1]
    scenarios = list(dict.fromkeys(e.scenario for e in entries))
    counts = asyncio.run(
        generate(ScriptedModel(_archivist), [category], settings, limit=target + 1, model_result_dir=tmp_path)
    )
    by_category = {name: results.read_results(BfclRun.result_file(tmp_path, name)) for name in counts}
    assert [r["id"] for r in by_category[category]] == [e.id for e in entries]
    prereq_ids = [e.id for s in scenarios for e in data.load_memory_prereqs(category, s)]
    assert sorted(r["id"] for r in by_category[f"{category}_prereq"]) == sorted(prereq_ids)

    notetaker = by_category[category][-1]
    steps = notetaker["result"][0]
    assert list(steps[0][0]) == ["archival_memory_list_keys"]
    assert {next(iter(call)) for call in steps[1]} == {"archival_memory_retrieve"}
    assert len(steps[1]) == len(_prereq_user_messages(category))  # every message was filed once
    assert _score(category, [notetaker], "json").correct == 1

    # The result files: the questions are scored, the pre-requisite conversations are not.
    assert set(results.find_result_files(tmp_path)) == {category}
    snapshot = tmp_path / "agentic" / "memory" / "kv" / "memory_snapshot" / f"{SCENARIO}_final.json"
    assert len(json.loads(snapshot.read_text())["archival_memory"]) == len(_prereq_user_messages(category))


def test_a_failed_conversation_leaves_the_memory_as_it_was(tmp_path):
    """A pre-requisite conversation that errors is kept as an error row; the next starts from the last snapshot."""
    category, settings = "memory_rec_sum", RunSettings(mode="prompt")
    prereqs = data.load_memory_prereqs(category, SCENARIO)
    broken_opening = prereqs[1].question[0][0]["content"]

    def flaky(messages, kwargs):
        if any(m["role"] == "user" and m["content"] == broken_opening for m in messages):
            raise RuntimeError("engine died")
        return _recorder(messages, kwargs)

    rows = asyncio.run(run_memory_scenario(ScriptedModel(flaky), _questions(category), settings, tmp_path))
    assert rows[1]["error"] and "engine died" in rows[1]["result"]
    snapshot = tmp_path / "agentic" / "memory" / "rec_sum" / "memory_snapshot" / f"{SCENARIO}_final.json"
    remembered = json.loads(snapshot.read_text())["memory"]
    assert prereqs[0].question[0][0]["content"] in remembered
    assert broken_opening not in remembered
    assert prereqs[2].question[0][0]["content"] in remembered


def test_memory_system_prompt_shows_the_memory_and_keeps_the_answer_format():
    from bfcl_eval.eval_checker.multi_turn_eval.func_source_code.memory_kv import MemoryAPI_kv

    backend = MemoryAPI_kv()
    backend.core_memory = {"user_name": "Michael"}
    question = data.load_entries("memory_kv")[0]
    turns = memory.with_memory_prompt(question, backend)
    system = turns[0][0]
    assert system["role"] == "system" and [m["role"] for m in turns[0]] == ["system", "user"]
    assert '"user_name": "Michael"' in system["content"]
    assert system["content"].endswith(question.question[0][0]["content"])  # answer format kept, after
    assert question.question[0][0]["role"] == "system" and "Michael" not in question.question[0][0]["content"]

    prereq = data.load_memory_prereqs("memory_kv", "customer")[0]
    opening = memory.with_memory_prompt(prereq, MemoryAPI_kv())
    assert [m["role"] for m in opening[0]] == ["system", "user"]
    assert "no content in the core memory" in opening[0][0]["content"]


@pytest.mark.parametrize(
    ("answer", "possible", "passes"),
    [
        ("{'answer': 'Michael'}", ["Michael"], True),
        ("{'answer': 'michael.'}", ["Michael"], True),
        ("{'answer': '350'}", ["35", "thirty five"], False),  # whole words only
        ("{'answer': 'Thirty five'}", ["35", "thirty five"], True),
        ("April 1,2024", ["April 1, 2024"], False),  # punctuation goes, spaces stay
        ("April 1 2024", ["April 1, 2024"], True),
        ("10 AM - 12 PM", ["10 AM - 12 PM"], True),
    ],
)
def test_answer_match_is_whole_word_after_normalisation(answer, possible, passes):
    assert memory.answer_matches(answer, possible) is passes


@pytest.mark.slow
def test_a_memory_scenario_on_the_embedded_model(tmp_path, embedded_model):
    """The real engine through one scenario: a row per conversation and question, the snapshot
    chain on disk (one checkpoint per conversation), and every question scored."""
    from datagen.llm import ModelSpec, build_chat_model

    category = "memory_kv"
    spec = ModelSpec(
        model="embedded", backend="vllm", max_concurrency=32, engine_args={"enforce_eager": True}
    )

    async def run() -> list[dict]:
        model = build_chat_model(spec)
        try:
            return await run_memory_scenario(
                model, _questions(category), RunSettings(mode="hermes", max_tokens=48), tmp_path
            )
        finally:
            await model.aclose()

    rows = asyncio.run(run())
    prereqs = data.load_memory_prereqs(category, SCENARIO)
    assert len(rows) == len(prereqs) + len(_questions(category))
    assert not [r for r in rows if r.get("error")]
    for row, entry in zip(rows, prereqs, strict=False):
        assert 1 <= len(row["result"]) <= len(entry.question)
    snapshots = tmp_path / "agentic" / "memory" / "kv" / "memory_snapshot"
    assert {p.stem for p in (snapshots / "prereq_checkpoints").glob("*.json")} == {e.id for e in prereqs}
    assert (snapshots / f"{SCENARIO}_final.json").exists()
    score = _score(category, rows, "hermes")
    assert score.total == len(_questions(category))
    assert all(item.valid or item.error_type.startswith("agentic:") for item in score.items)
