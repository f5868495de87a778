"""`apigen-mt export` goes on past damaged lines and damaged records of a run (messages that are not chat
messages) in every format, names each in the card, and says in one line when nothing is left."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_runs import APIGEN_MT, ROOT
from hypothesis import given, settings
from test_messages import JSON, MESSAGE_LIKE
from test_runio import DAMAGED, _damage, _trajectory

from datagen.export import export_run
from datagen.rundir import DatagenRun


def test_export_goes_on_past_damaged_lines(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    path = DatagenRun(run).trajectories
    path.write_text("".join(json.dumps(_trajectory(i, True)) + "\n" for i in range(4)))
    _damage(path)
    result = export_run(run, tmp_path / "out", fmt="jsonl", test=0.0)
    assert result.splits == {"train": 4}
    notes = [note for note in result.skipped if note.startswith(f"{path.name}:")]
    assert len(notes) == len(DAMAGED) + 1  # every damaged line, the wrong-schema one included
    assert any("expected a Trajectory record" in note for note in notes)


# ---------------------------------------------------------------- damaged messages in a record

# A record whose line parses but whose messages are not chat messages (apigen_rules.messages): each is one
# named, skipped line in every format, and the card counts it.
BAD_MESSAGES = {
    "no role": {"content": "hi"},
    "tool_calls a string": {"role": "assistant", "content": "", "tool_calls": "f(x=1)"},
    "a call without function": {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "name": "f"}]},
    "content a list": {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    "content an object": {"role": "user", "content": {"text": "hi"}},
    "a message that is a string": "hello",
}


def _record(i: int, success: bool, extra: object | None = None) -> dict:
    row = _trajectory(i, success)
    if extra is not None:
        row["messages"] = [*row["messages"][:3], extra, {"role": "assistant", "content": "done"}]
    return row


def _run_with(tmp_path: Path, bad: object) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    files = DatagenRun(run)
    good = [_record(i, True) for i in range(3)]
    files.trajectories.write_text("".join(json.dumps(r) + "\n" for r in [*good, _record(7, True, bad)]))
    failed = [_trajectory(i, False) for i in range(3)]
    for row in failed:  # parts from the verified dialogue at the assistant's turn: a turn and a dialogue pair
        row["messages"][2] = {"role": "assistant", "content": "not done"}
    files.failures.write_text("".join(json.dumps(r) + "\n" for r in [*failed, _record(8, False, bad)]))
    return run


@pytest.mark.parametrize("fmt", ["hf", "jsonl", "sharegpt", "preference"])
@pytest.mark.parametrize("case", list(BAD_MESSAGES))
def test_a_record_with_damaged_messages_is_named_and_skipped(tmp_path: Path, case: str, fmt: str):
    run = _run_with(tmp_path, BAD_MESSAGES[case])
    result = export_run(run, tmp_path / "out", fmt=fmt, test=0.0, whole_dialogues=fmt == "preference")
    assert sum(result.splits.values()) == (6 if fmt == "preference" else 3)  # a turn and a dialogue pair each
    expected = (
        ["trajectories.jsonl:4:", "failures.jsonl:4:"] if fmt == "preference" else ["trajectories.jsonl:4:"]
    )
    assert [note.split(" ")[0] for note in result.skipped] == expected, result.skipped
    assert all("expected a Trajectory record, found messages" in note for note in result.skipped)
    facts = json.loads((tmp_path / "out" / "export.json").read_text())
    assert len(facts["skipped"]) == len(expected)


def test_whole_dialogue_pairs_of_dialogues_without_messages_are_counted_not_a_crash(tmp_path: Path):
    from datagen.export.preference import build_pairs
    from datagen.records import Trajectory

    def record(i: int, messages: list, success: bool) -> Trajectory:
        return Trajectory.model_validate(
            {**_trajectory(i, success), "blueprint_id": "bp", "messages": messages}
        )

    for failed in ([], [{"role": "user", "content": "x"}]):
        rows, stats = build_pairs([record(0, [], True)], [record(1, failed, False)], whole_dialogues=True)
        assert rows == []
        assert stats.as_dict()["failures_without_a_dialogue_pair"] == {
            "no assistant turn at or before the first difference": 1
        }


def test_a_trajectories_file_that_is_a_folder_is_one_line(tmp_path: Path, plain_env: dict[str, str]):
    run = tmp_path / "run"
    DatagenRun(run).trajectories.mkdir(parents=True)
    for fmt in ("jsonl", "preference"):
        done = subprocess.run(
            [APIGEN_MT, "export", str(run), "--out", str(tmp_path / fmt), "--output-format", fmt],
            capture_output=True, text=True, env=plain_env, cwd=ROOT, timeout=300,
        )  # fmt: skip
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert "trajectories.jsonl: expected a file of JSON lines, found a folder" in lines[0]


@settings(max_examples=300, deadline=None)
@given(bad=MESSAGE_LIKE | JSON)
def test_any_message_value_is_refused_by_the_record_or_exported_in_every_format(bad: object):
    """What the record lets through, every format's row conversion takes (the hf layout refuses only
    message keys it has no column for, by name): the crash sites of the old export, checked directly."""
    from datasets import Dataset
    from pydantic import ValidationError

    from datagen.export.preference import build_pairs, preference_features, preference_hf_row
    from datagen.export.rows import hf_features, hf_row, trajectory_row
    from datagen.export.sharegpt import to_sharegpt
    from datagen.records import Trajectory

    try:
        failure = Trajectory.model_validate({**_record(7, False, bad), "blueprint_id": "bp0"})
    except ValidationError:
        return  # the run readers skip it with its file and line (tests above)
    success = Trajectory.model_validate(_record(0, True))
    to_sharegpt(failure.messages, failure.tools)
    pairs, _ = build_pairs([success], [failure], whole_dialogues=True)
    try:
        Dataset.from_list([hf_row(trajectory_row(failure))], features=hf_features())
        if pairs:
            Dataset.from_list([preference_hf_row(p) for p in pairs], features=preference_features())
    except ValueError as exc:
        assert "have no column in the hf export" in str(exc), exc
