"""datagen's ShareGPT importer and training's loader are two copies (training may not import
datagen); they must read the APIGen-MT layout the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datagen.export.sharegpt import from_sharegpt as datagen_from_sharegpt
from datagen.export.sharegpt import to_sharegpt
from training.convert import ConversionError, from_messages, from_sharegpt

SAMPLE = Path(__file__).parent / "data" / "training_sharegpt_sample.json"


def _without_ids(row: dict) -> dict:
    messages = []
    for m in row["messages"]:
        m = {**m, "tool_call_id": None}
        if m["tool_calls"]:
            m["tool_calls"] = [{**c, "id": None} for c in m["tool_calls"]]
        messages.append(m)
    return {"messages": messages, "tools": row["tools"]}


def _rows() -> list[dict]:
    rows = json.loads(SAMPLE.read_text())
    # Text and calls in one assistant message, and parallel calls: the cases a loader can split.
    rows.append(to_sharegpt(
        [{"role": "system", "content": "policy"}, {"role": "user", "content": "hi"},
         {"role": "assistant", "content": "Let me check.", "tool_calls": [
             {"id": "c1", "type": "function", "function": {"name": "a", "arguments": {"x": 1}}},
             {"id": "c2", "type": "function", "function": {"name": "b", "arguments": {"y": [1, {"z": None}]}}}]},
         {"role": "tool", "tool_call_id": "c1", "name": "a", "content": "1"},
         {"role": "tool", "tool_call_id": "c2", "name": "b", "content": "2"},
         {"role": "assistant", "content": "Done."}],
        [{"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}}],
    ))  # fmt: skip
    return rows


@pytest.mark.parametrize("index", range(len(_rows())))
def test_datagen_and_training_read_sharegpt_alike(index: int):
    row = _rows()[index]
    try:
        ours_messages, ours_tools = datagen_from_sharegpt(row, row_id=str(index))
    except ValueError:
        with pytest.raises(ValueError):
            from_sharegpt(row)
        return
    if not any(m["role"] == "assistant" for m in ours_messages):
        # Readable, but nothing to learn from: training refuses it on purpose.
        with pytest.raises(ConversionError, match="no assistant turn"):
            from_sharegpt(row)
        return
    via_datagen = from_messages({"messages": ours_messages, "tools": ours_tools})
    assert _without_ids(via_datagen) == _without_ids(from_sharegpt(row))
