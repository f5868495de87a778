"""`apigen-mt export --output-format preference` on a run directory with planted successes and failures:
pairs at the first assistant turn where a verified and a failed dialogue part, none without a
verified side, never a failed job as the rejected side, counts by failure class on the card, and
rows that TRL's DPOTrainer tokenizes as they are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from preferencerun import (
    GREETING,
    RIGHT,
    SYSTEM,
    TOOLS,
    call_message,
    record,
    write_planted_run,
)

from datagen.export import export_run
from datagen.export.preference import build_pairs, first_divergence
from datagen.rundir import DatagenRun

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return write_planted_run(tmp_path / "run")


def _load(path: Path):
    from datasets import load_dataset

    # datasets 5.2 caches a folder whose card has `configs` under the folder's name and the patterns
    # alone, so a second export named `pref` would read the first one's rows: name the files.
    return load_dataset(str(path), data_files={"train": "data/train-*.parquet"})


def test_pairs_are_taken_at_the_first_assistant_turn_where_the_dialogues_part(run_dir: Path, tmp_path: Path):
    result = export_run(run_dir, tmp_path / "pref", fmt="preference", test=0.0)
    rows = {r["blueprint_id"]: r for r in _load(tmp_path / "pref")["train"]}
    assert result.splits == {"train": 3}
    assert set(rows) == {"bp-call", "bp-answer", "bp-two"}  # no pair for one-sided blueprints

    call = rows["bp-call"]
    assert call["turn"] == 3 and call["pair"] == "turn" and call["rejected_failure"] == "state_mismatch"
    assert [m["content"] for m in call["prompt"]] == [m["content"] for m in RIGHT[:3]]
    assert json.loads(call["chosen"][0]["tool_calls"][0]["function"]["arguments"])["amount"] == 40
    assert json.loads(call["rejected"][0]["tool_calls"][0]["function"]["arguments"])["amount"] == 400
    assert (call["chosen_id"], call["rejected_id"]) == ("bp-call-a0", "bp-call-a10")
    assert json.loads(call["tools"]) == TOOLS

    answer = rows["bp-answer"]
    assert answer["turn"] == 5 and len(answer["prompt"]) == 5
    assert answer["prompt"][3]["tool_calls"][0]["function"]["name"] == "withdraw"
    assert [answer["chosen"][0]["content"], answer["rejected"][0]["content"]] == [
        "Done, a10 now holds 60.",
        "Done.",
    ]
    assert answer["rejected_failure"] == "missing_output"

    two = rows["bp-two"]  # paired with the verified dialogue it shares the user's request with
    assert two["chosen_id"] == "bp-two-a1" and two["turn"] == 5

    facts = json.loads((tmp_path / "pref" / "export.json").read_text())["preference"]
    assert facts["pairs"] == {"turn": 3}
    assert facts["pairs_by_failure"] == {
        "turn": {"missing_output": 1, "policy_violation": 1, "state_mismatch": 1}
    }
    assert facts["failures_never_used_as_rejected"] == {"error": 1}
    assert facts["failures_without_a_turn_pair"] == {"parted at a user turn": 1}
    assert facts["blueprints_with_failures_only"] == 1 and facts["blueprints_with_successes_only"] == 1
    card = (tmp_path / "pref" / "README.md").read_text()
    assert "| turn | policy_violation | 1 |" in card and "| turn | state_mismatch | 1 |" in card
    assert "data/train-*.parquet" in card


def test_whole_dialogue_pairs_open_with_the_same_assistant_turn(run_dir: Path, tmp_path: Path):
    export_run(run_dir, tmp_path / "pref", fmt="preference", test=0.0, whole_dialogues=True)
    rows = [r for r in _load(tmp_path / "pref")["train"] if r["pair"] == "dialogue"]
    # The dialogue the user took elsewhere gets a dialogue pair from the greeting on.
    by_rejected = {r["rejected_id"]: r for r in rows}
    assert set(by_rejected) == {"bp-call-a10", "bp-answer-a10", "bp-answer-a12", "bp-two-a10"}
    elsewhere = by_rejected["bp-answer-a12"]
    assert [m["role"] for m in elsewhere["prompt"]] == ["system"]
    assert elsewhere["chosen"][0]["content"] == elsewhere["rejected"][0]["content"] == GREETING["content"]
    assert len(elsewhere["chosen"]) == len(RIGHT) - 1 and elsewhere["turn"] == 2
    assert by_rejected["bp-call-a10"]["chosen"][-1]["content"] == "Thanks ###STOP###"


def test_dpo_trainer_tokenizes_the_pairs_with_our_template(
    run_dir: Path, tmp_path: Path, embedded_model: Path
):
    """TRL's DPOTrainer reads prompt/chosen/rejected and the JSON-string tools as stored; with our
    SmolLM2 template the prompt is a prefix of prompt+chosen, so the completion is exactly the turn."""
    from transformers import AutoTokenizer
    from trl.trainer.dpo_trainer import _tokenize

    export_run(run_dir, tmp_path / "pref", fmt="preference", test=0.0)
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model))
    tokenizer.chat_template = (ROOT / "training" / "templates" / "smollm2.jinja").read_text()
    for row in _load(tmp_path / "pref")["train"]:
        tools = json.loads(row["tools"])
        prompt = _tokenize(tokenizer, row["prompt"], add_generation_prompt=True, tools=tools)["input_ids"]
        for side in ("chosen", "rejected"):
            full = _tokenize(tokenizer, row["prompt"] + row[side], tools=tools)["input_ids"]
            assert full[: len(prompt)] == prompt
            completion = tokenizer.decode(full[len(prompt) :])
            assert "withdraw" in completion or row[side][0]["content"] in completion


def test_a_run_without_any_pair_is_one_clear_error(tmp_path: Path):
    run = DatagenRun(tmp_path / "run")
    run.root.mkdir()
    run.failures.write_text(record("bp", 0, RIGHT, "state_mismatch").model_dump_json() + "\n")
    with pytest.raises(ValueError, match="no preference pair"):
        export_run(run.root, tmp_path / "out", fmt="preference")
    with pytest.raises(ValueError, match="--output-format preference only"):
        export_run(run.root, tmp_path / "out", fmt="hf", whole_dialogues=True)


def test_export_preference_cli(run_dir: Path, tmp_path: Path, plain_env: dict[str, str]):
    command = [sys.executable, "-m", "datagen.cli", "export", str(run_dir), "--out", str(tmp_path / "o")]
    done = subprocess.run(
        [*command, "--output-format", "preference", "--test", "0"],
        capture_output=True,
        text=True,
        env=plain_env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "exported 3 preference pairs" in done.stdout


# -- invariants over arbitrary dialogues ---------------------------------------------------------

_turn = st.sampled_from(
    [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "x"},
        {"role": "assistant", "content": "y"},
        call_message(1, 9),
        call_message(2, 9),
        {"role": "tool", "tool_call_id": "call_9_0", "name": "withdraw", "content": "ok"},
    ]
)
_dialogues = st.lists(_turn, max_size=6).map(lambda tail: [SYSTEM, GREETING, *tail])


@settings(max_examples=200, deadline=None)
@given(
    wins=st.lists(_dialogues, min_size=0, max_size=3),
    losses=st.lists(
        st.tuples(st.sampled_from(["state_mismatch", "error", "user_error"]), _dialogues), max_size=3
    ),
)
def test_every_pair_has_a_verified_side_and_a_shared_context(wins, losses) -> None:
    successes = [record("bp", i, m, None) for i, m in enumerate(wins)]
    failures = [record("bp", 10 + i, m, cls) for i, (cls, m) in enumerate(losses)]
    by_id = {t.id: t for t in successes + failures}
    rows, stats = build_pairs(successes, failures, whole_dialogues=True)
    for row in rows:
        chosen, rejected = by_id[row["chosen_id"]], by_id[row["rejected_id"]]
        assert chosen.success and not rejected.success and rejected.failure != "error"
        start = len(row["prompt"])
        assert row["prompt"] == chosen.messages[:start] == rejected.messages[:start]
        assert row["chosen"] == chosen.messages[start : start + len(row["chosen"])]
        assert row["rejected"] == rejected.messages[start : start + len(row["rejected"])]
        if row["pair"] == "turn":
            assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
            assert start == first_divergence(chosen.messages, rejected.messages)
            assert row["chosen"] != row["rejected"]
        else:
            assert row["chosen"][0]["role"] == "assistant" and row["chosen"] != row["rejected"]
    if not wins:
        assert rows == []
    assert sum(stats.pairs.values()) == len(rows)
