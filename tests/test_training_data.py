"""Converters and the data mixture: every layout becomes messages + tools; nothing is lost silently."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from training.convert import ConversionError, from_messages, from_sharegpt, from_xlam60k
from training.mixture import (
    SourceConfig,
    apply_weight,
    build_mixture,
    drop_over_long,
    expand_per_turn,
)

DATA = Path(__file__).parent / "data"
SHAREGPT = DATA / "training_sharegpt_sample.json"
XLAM = DATA / "training_xlam60k_sample.json"
CONVERSATIONS = DATA / "training_conversations.json"


def calls_of(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message["tool_calls"] or []
    ]


def test_sharegpt_rows_become_openai_messages() -> None:
    row = json.loads(SHAREGPT.read_text())[0]
    converted = from_sharegpt(row)
    roles = [m["role"] for m in converted["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant", "user"]
    # Consecutive function_calls are one assistant turn with parallel calls; string arguments are parsed.
    assert calls_of(converted["messages"][2]) == [
        ("get_user", {"user_id": "mia_li_3668"}),
        ("get_reservation", {"reservation_id": "NO6JO3"}),
    ]
    assert [m["name"] for m in converted["messages"][3:5]] == ["get_user", "get_reservation"]
    tools = json.loads(converted["tools"])
    assert [t["type"] for t in tools] == ["function", "function"]
    assert tools[0]["function"]["name"] == "get_reservation"


@pytest.mark.parametrize(
    ("index", "reason"),
    [(2, "unknown ShareGPT speaker"), (3, "tool call is not valid JSON"), (4, "no assistant turn")],
)
def test_bad_sharegpt_rows_say_why(index: int, reason: str) -> None:
    row = json.loads(SHAREGPT.read_text())[index]
    with pytest.raises(ConversionError) as caught:
        from_sharegpt(row)
    assert caught.value.reason == reason


def test_xlam60k_rows_become_a_user_turn_and_parallel_calls() -> None:
    rows = json.loads(XLAM.read_text())
    converted = from_xlam60k(rows[1])
    user, assistant = converted["messages"]
    assert user == {
        "role": "user",
        "content": rows[1]["query"],
        "tool_calls": None,
        "tool_call_id": None,
        "name": None,
    }
    assert calls_of(assistant) == [("sum_list", {"numbers": [3, 5, 11]}), ("is_prime", {"n": 17})]
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in json.loads(converted["tools"])}
    assert tools["sum_list"]["properties"]["numbers"]["type"] == "array"
    assert "List[int]" in tools["sum_list"]["properties"]["numbers"]["description"]
    assert tools["is_prime"]["required"] == ["n"]  # "bool, optional" is not required
    assert tools["is_prime"]["properties"]["verbose"]["type"] == "boolean"
    defaults = json.loads(from_xlam60k(rows[0])["tools"])[0]["function"]["parameters"]
    assert defaults["required"] == [] and defaults["properties"]["type"]["default"] == "game"


@pytest.mark.parametrize(
    ("index", "reason"), [(2, "answers is not valid JSON"), (3, "answer calls a tool that is not listed")]
)
def test_bad_xlam60k_rows_say_why(index: int, reason: str) -> None:
    with pytest.raises(ConversionError) as caught:
        from_xlam60k(json.loads(XLAM.read_text())[index])
    assert caught.value.reason == reason


def test_messages_accept_object_and_string_arguments_alike() -> None:
    as_object = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"name": "f", "arguments": {"b": [1, 2], "a": "é"}}]},
        ],
        "tools": [{"name": "f", "parameters": {}}],
    }
    as_string = json.loads(json.dumps(as_object))
    as_string["messages"][1]["tool_calls"][0] = {
        "type": "function",
        "function": {"name": "f", "arguments": json.dumps({"b": [1, 2], "a": "é"})},
    }
    as_string["tools"] = json.dumps(as_string["tools"])
    assert from_messages(as_object) == from_messages(as_string)
    with pytest.raises(ConversionError, match="not a JSON object"):
        from_messages(
            {"messages": [{"role": "assistant", "tool_calls": [{"name": "f", "arguments": "[1]"}]}]}
        )


def test_mixture_counts_every_row_and_reports_failures_with_an_example() -> None:
    sources = [
        SourceConfig(path=str(SHAREGPT), layout="sharegpt"),
        SourceConfig(path=str(XLAM), layout="xlam60k", weight=2.0),
        SourceConfig(path=str(CONVERSATIONS), layout="messages", weight=0.5),
    ]
    dataset, report = build_mixture(sources, seed=0)
    sharegpt, xlam, conversations = report.sources
    assert (sharegpt.rows_read, sharegpt.rows_converted, sharegpt.rows_used) == (5, 2, 2)
    assert sharegpt.failures["unknown ShareGPT speaker"] == {
        "count": 1,
        "example_id": "sg-bad-speaker",
        "detail": "'bot'",
    }
    assert sharegpt.rows_failed == 3
    assert (xlam.rows_read, xlam.rows_converted, xlam.rows_used) == (4, 2, 4)
    assert xlam.failures["answers is not valid JSON"]["example_id"] == "3"
    assert (conversations.rows_converted, conversations.rows_used) == (2, 1)
    assert len(dataset) == 2 + 4 + 1
    assert set(dataset.column_names) == {"messages", "tools", "source", "id"}


def test_saved_dataset_dirs_load_and_their_card_facts_are_kept(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    rows = json.loads(CONVERSATIONS.read_text())
    # Like an export that keeps arguments as JSON strings so that Arrow round-trips them exactly.
    for row in rows:
        for message in row["messages"]:
            for call in message.get("tool_calls") or []:
                call["function"]["arguments"] = (
                    json.dumps(call["function"]["arguments"])
                    if isinstance(call["function"]["arguments"], dict)
                    else call["function"]["arguments"]
                )
        row["tools"] = json.dumps(row["tools"])
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "export"))
    (tmp_path / "export" / "README.md").write_text(
        "---\nfunnel:\n  blueprints: 10\n  trajectories: 4\n---\n# card\n"
    )
    dataset, report = build_mixture([SourceConfig(path=str(tmp_path / "export"))], seed=0)
    assert len(dataset) == 2
    assert report.sources[0].card["card"]["funnel"] == {"blueprints": 10, "trajectories": 4}
    with pytest.raises(ValueError, match="splits"):
        build_mixture([SourceConfig(path=str(tmp_path / "export"), split="test")], seed=0)


def test_weights_repeat_and_subsample() -> None:
    rows = [{"i": i} for i in range(10)]
    assert len(apply_weight(rows, 1.0, random.Random(0))) == 10
    assert len(apply_weight(rows, 0.3, random.Random(0))) == 3
    doubled = apply_weight(rows, 2.5, random.Random(0))
    assert len(doubled) == 25 and all(doubled.count(r) >= 2 for r in rows)


def test_over_long_examples_are_dropped_whole_and_counted(embedded_model: Path) -> None:
    from transformers import AutoTokenizer

    from training.chat_templates import SHIPPED_TEMPLATES

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model))
    tokenizer.chat_template = SHIPPED_TEMPLATES["smollm2"].read()
    dataset, report = build_mixture([SourceConfig(path=str(CONVERSATIONS))], seed=0)
    lengths = sorted(
        len(
            tokenizer.apply_chat_template(
                r["messages"], tools=json.loads(r["tools"]), tokenize=True, return_dict=True
            )["input_ids"]
        )
        for r in dataset
    )
    kept = drop_over_long(dataset, tokenizer, lengths[0], report)
    assert len(kept) == 1
    assert report.sources[0].dropped_over_long == 1 and report.sources[0].examples == 2
    # Kept examples are whole: the trainer never has to truncate them.
    kept_messages = kept[0]["messages"]
    assert kept_messages in dataset["messages"]
    per_turn = expand_per_turn(dataset)
    _, report = build_mixture([SourceConfig(path=str(CONVERSATIONS))], seed=0)
    drop_over_long(per_turn, tokenizer, lengths[0], report)
    assert report.sources[0].examples == 6 and 0 < report.sources[0].dropped_over_long < 6


def test_a_recipe_without_usable_rows_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"conversations": [{"from": "human", "value": "x"}]}]))
    with pytest.raises(ValueError, match="no source produced a usable row"):
        build_mixture([SourceConfig(path=str(bad), layout="sharegpt")], seed=0)
    with pytest.raises(ValueError, match="no `sources:`"):
        build_mixture([], seed=0)


def test_a_re_export_into_a_folder_of_the_same_name_is_read_anew(tmp_path: Path) -> None:
    """datagen's hf export names its files in the card's `configs`; datasets 5.2 caches such a folder
    under its name and the patterns alone, so `load_dataset(DIR)` handed the rows of an earlier export
    of the same name to training (found with the preference export). The mixture names the files."""
    from exportrun import write_run

    from datagen.export import export_run

    counts = []
    for index, count in enumerate((3, 5)):
        run = write_run(tmp_path / f"run{index}", count=count)
        export_run(run, tmp_path / f"try{index}" / "dataset", fmt="hf", test=0.0)
        dataset, _ = build_mixture([SourceConfig(path=str(tmp_path / f"try{index}" / "dataset"))], seed=0)
        counts.append(len(dataset))
    assert counts == [3, 5]
