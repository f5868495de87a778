"""`eval next-action --data` on damaged data: every damaged row is named with its file and line (or
its place in the dataset), skipped and counted; the good rows are evaluated; a damaged `export.json`
or a source with no usable row is one line on stderr, exit 2, before any engine starts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_runs import APIGEN_MT, ROOT
from exportrun import messages, write_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apigen_rules.errors import UsageError
from evaluation.next_action.config import NextActionConfig
from evaluation.next_action.data import load_dialogues, read_dialogues

GOOD = {"id": "good", "messages": messages(0), "tools": [], "seed": 3, "env": "bank"}
# (damaged line, what its problem line says)
DAMAGED_LINES = [
    (b'{"id": "x", "messages": [{"ro', "incomplete last line"),  # torn: only as the last line
    (b"\xff\xfe{}", "not valid UTF-8"),
    (b'{"id": "x", "seed": ' + b"1" * 5000 + b"}", "Python will not read"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"null", "expected a JSON object, found null"),
    (json.dumps({**GOOD, "messages": "hello"}).encode(), "expected messages as a list, found the string 'hello'"),
    (json.dumps({**GOOD, "messages": ["hello", 3]}).encode(), "message 0: expected a message object"),
    (json.dumps({**GOOD, "messages": [{"role": "assistant", "tool_calls": ["f(x=1)"]}]}).encode(), "tool call 0: expected a tool call object"),
    (json.dumps({**GOOD, "messages": [{"role": "assistant", "tool_calls": "f(x=1)"}]}).encode(), "expected tool_calls as a list"),
    (json.dumps({**GOOD, "messages": [{"content": "hi"}]}).encode(), "expected a role"),
    (json.dumps({**GOOD, "messages": [{"role": "user", "content": [{"type": "text"}]}]}).encode(), "expected content as text or null"),
    (json.dumps({**GOOD, "seed": "abc"}).encode(), "expected seed as an integer, found the string 'abc'"),
    (json.dumps({**GOOD, "seed": 1.5}).encode(), "expected seed as an integer, found a number"),
    (json.dumps({**GOOD, "seed": "--5"}).encode(), "expected seed as an integer, found the string '--5'"),
    (json.dumps({**GOOD, "seed": "²"}).encode(), "expected seed as an integer, found the string '²'"),
    (json.dumps({**GOOD, "tools": "[not json"}).encode(), "expected tools as a JSON list"),
    (json.dumps({**GOOD, "tools": [1]}).encode(), "expected tools as a list of tool-schema objects"),
    (json.dumps({**GOOD, "env": ["bank"]}).encode(), "expected env as text"),
    (json.dumps({"id": "x"}).encode(), "expected a dialogue with `messages` and `tools`"),
]  # fmt: skip


def _config(data: Path, **extra) -> NextActionConfig:
    return NextActionConfig.model_validate(
        {
            "data": [str(data)],
            "split": "train",
            "models": {"m": {"model": "x"}},
            "agent": {"model": "m"},
            **extra,
        }
    )


@pytest.mark.parametrize("line, problem", DAMAGED_LINES, ids=[p for _, p in DAMAGED_LINES])
def test_a_damaged_row_is_named_skipped_and_the_others_read(tmp_path: Path, line: bytes, problem: str):
    path = tmp_path / "data.jsonl"
    good = json.dumps(GOOD).encode()
    path.write_bytes(
        good + b"\n" + line + (b"" if problem == "incomplete last line" else b"\n" + good + b"\n")
    )
    dialogues, skipped = read_dialogues(_config(path))
    assert [d.id for d in dialogues] == ["good"] * (1 if problem == "incomplete last line" else 2)
    assert dialogues[0].seed == 3 and dialogues[0].messages[3]["tool_calls"][0]["function"]["arguments"]
    assert len(skipped) == 1 and skipped[0].startswith(f"{path}:2: ") and problem in skipped[0], skipped


def test_a_json_file_names_the_item(tmp_path: Path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps([GOOD, None, {**GOOD, "messages": "x"}]))
    dialogues, skipped = read_dialogues(_config(path))
    assert len(dialogues) == 1 and len(skipped) == 2
    assert skipped[0].startswith(f"{path} item 1: expected a dialogue object, found null")
    path.write_bytes(b"[" * 100_000)
    with pytest.raises(UsageError, match="expected a JSON list of dialogues"):
        read_dialogues(_config(path))


def test_flat_tool_calls_are_still_read(tmp_path: Path):
    path = tmp_path / "data.jsonl"
    flat = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"name": "f", "arguments": '{"a": 1}'}]},
    ]
    path.write_text(json.dumps({**GOOD, "messages": flat}) + "\n")
    (dialogue,), skipped = read_dialogues(_config(path))
    assert skipped == [] and dialogue.messages[1]["tool_calls"] == [
        {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    ]  # fmt: skip


@pytest.mark.parametrize("content", [b"{not json", b"[1]", b"\xff", b"[" * 100_000])
def test_a_damaged_export_json_is_one_line(tmp_path: Path, content: bytes):
    from datagen.export import export_run

    out = tmp_path / "export"
    export_run(write_run(tmp_path / "run", 3), out, fmt="jsonl", test=0.0)
    (out / "export.json").write_bytes(content)
    with pytest.raises(
        UsageError, match=r"export\.json: expected the export's facts as a JSON object, found"
    ):
        read_dialogues(_config(out))


def test_a_cut_parquet_file_is_one_line(tmp_path: Path):
    from datagen.export import export_run

    out = tmp_path / "export"
    export_run(write_run(tmp_path / "run", 3), out, fmt="hf", test=0.0)
    shard = next((out / "data").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:100])
    for data in (out, out / "data"):  # as an export, and as a plain dataset folder
        with pytest.raises(UsageError, match=f"--data {data}: expected a dataset `datasets` can read, found"):
            read_dialogues(_config(data))


def test_a_run_whose_trajectories_file_is_a_folder_is_named(tmp_path: Path):
    run = tmp_path / "run"
    (run / "trajectories.jsonl").mkdir(parents=True)
    dialogues, skipped = read_dialogues(_config(run))
    assert dialogues == [] and skipped == [
        f"{run}/trajectories.jsonl: expected a file of JSON lines, found a folder; skipped"
    ]
    with pytest.raises(UsageError, match="no dialogue on the 'train' split"):
        load_dialogues(_config(run))


LINES = st.lists(
    st.binary(max_size=30)
    | st.sampled_from([line for line, _ in DAMAGED_LINES])
    | st.just(json.dumps(GOOD).encode())
    | st.builds(
        lambda key, value: json.dumps({**GOOD, key: value}).encode(),
        st.sampled_from(["messages", "tools", "seed", "id", "env", "blueprint_id"]),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                     max_leaves=8),
    ),
    max_size=8,
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES)
def test_any_lines_give_dialogues_or_one_usage_error(tmp_path: Path, lines: list[bytes]):
    path = tmp_path / "any.jsonl"
    path.write_bytes(b"\n".join(lines))
    try:
        dialogues, skipped = read_dialogues(_config(path))
        load_dialogues(_config(path))
    except UsageError as exc:
        assert any(
            what in str(exc) for what in ("no dialogue on the 'train' split", "ShareGPT", "preference")
        )
        return
    assert all(line.startswith(f"{path}:") for line in skipped)
    for dialogue in dialogues:
        assert all(isinstance(m["content"], str) for m in dialogue.messages)
        assert dialogue.seed is None or isinstance(dialogue.seed, int)


def test_the_cli_names_damaged_rows_and_refuses_data_with_none_usable(
    tmp_path: Path, plain_env: dict[str, str]
):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\n".join(line for line, _ in DAMAGED_LINES[1:]) + b"\n")
    done = subprocess.run(
        [APIGEN_MT, "eval", "next-action", "--data", str(path), "--model", "embedded", "--split", "train",
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=plain_env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("apigen-mt eval next-action: no dialogue on the 'train' split")
    assert (
        sum(line.startswith(f"apigen-mt eval next-action: {path}:") for line in lines)
        >= len(DAMAGED_LINES) - 2
    )
    assert not (tmp_path / "o").exists()
