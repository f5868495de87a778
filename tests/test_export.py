"""Export: the hf folder opens with `load_dataset` and TRL as it is, every row renders through the
chat templates, the rows are what training reads, ShareGPT, splits, the Hub push through
`push_to_hub` (Hub faked at the HfApi boundary), and incomplete run directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from exportrun import TOOLS, write_run

from datagen.export import export_run, load_trajectories
from datagen.export.rows import split_rows

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted((ROOT / "training" / "templates").glob("*.jinja"))


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    out = write_run(tmp_path / "run")
    (out / "config.yaml").write_text("name: toy-run\nenv: bank\nlicense: cc-by-4.0\n")
    return out


def _load(path: Path):
    from datasets import load_dataset

    return load_dataset(str(path))


def test_hf_export_opens_with_load_dataset_as_it_is(run_dir: Path, tmp_path: Path):
    out = tmp_path / "hf"
    result = export_run(run_dir, out, fmt="hf", seed=3, test=0.25, max_shard_size=4000)
    shards = sorted(p.name for p in (out / "data").glob("*.parquet"))
    assert "train-00001-of-00004.parquet" in shards  # sharded by size
    dataset = _load(out)
    assert {s: len(part) for s, part in dataset.items()} == result.splits
    original = {t.id: t for t in load_trajectories(run_dir)[0]}
    for part in dataset.values():
        for row in part:
            messages = original[row["id"]].messages
            assert [m["content"] for m in row["messages"]] == [m["content"] for m in messages]
            call = row["messages"][3]["tool_calls"][1]
            assert call["id"] == "call_3_1" and call["function"]["name"] == "get_account"
            assert (
                json.loads(call["function"]["arguments"])
                == messages[3]["tool_calls"][1]["function"]["arguments"]
            )
            assert json.loads(row["tools"]) == TOOLS
            assert row["source_models"] == [
                {"role": "agent", "model": "embedded"},
                {"role": "user", "model": "embedded"},
            ]
    # A second export into the same folder leaves no shard of the first behind.
    export_run(run_dir, out, fmt="hf", seed=3, test=0.25)
    assert sorted(p.name for p in (out / "data").glob("*.parquet")) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
    ]
    assert sum(len(part) for part in _load(out).values()) == 12


def test_messages_are_stored_as_chats_the_hub_viewer_draws(run_dir: Path, tmp_path: Path):
    """A list of structs, not JSON strings; only the tool-call arguments (keys vary by tool) are strings."""
    from datasets import List, Value

    export_run(run_dir, tmp_path / "hf", fmt="hf")
    features = _load(tmp_path / "hf")["train"].features
    assert isinstance(features["messages"], List) and isinstance(features["messages"].feature, dict)
    message = features["messages"].feature
    assert message["role"] == Value("string") and message["content"] == Value("string")
    assert message["tool_calls"].feature["function"]["arguments"] == Value("string")


def test_hf_rows_are_exactly_what_training_reads(run_dir: Path, tmp_path: Path):
    """datagen writes the row training.convert makes; the two schemas must agree."""
    from datagen.export.rows import hf_features
    from training.convert import from_messages
    from training.mixture import SourceConfig, build_mixture, conversation_features

    assert hf_features()["messages"] == conversation_features()["messages"]
    export_run(run_dir, tmp_path / "hf", fmt="hf", test=0.25, seed=3)
    for row in _load(tmp_path / "hf")["train"]:
        assert from_messages(row) == {"messages": row["messages"], "tools": row["tools"]}
    dataset, report = build_mixture([SourceConfig(path=str(tmp_path / "hf"))], seed=0)
    assert report.sources[0].rows_converted == len(dataset) == 8 and not report.sources[0].failures
    with pytest.raises(ValueError, match="splits"):
        build_mixture([SourceConfig(path=str(tmp_path / "hf"), split="validation")], seed=0)


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.stem for t in TEMPLATES])
def test_every_row_renders_through_chat_templates(run_dir: Path, tmp_path: Path, template: Path):
    from transformers import AutoTokenizer

    from datagen.llm.embedded import embedded_model_path

    export_run(run_dir, tmp_path / "hf", fmt="hf")
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_path()))
    tokenizer.chat_template = template.read_text()
    for part in _load(tmp_path / "hf").values():
        for row in part:
            # As TRL does: a string `tools` column is json.loads'ed per row.
            text = tokenizer.apply_chat_template(
                row["messages"], tools=json.loads(row["tools"]), tokenize=False
            )
            assert '"account_id": "a11", "fields": ["balance", {"\\u00e9": null}]' in text or (
                '"account_id": "a11", "fields": ["balance", {"é": null}]' in text
            )
            assert "None" not in text  # no key of another message or call leaked in as null


def test_trl_prepares_the_export_with_loss_on_the_assistant_turns(run_dir: Path, tmp_path: Path):
    """TRL's own dataset preparation (SFTTrainer) on the loaded folder, a tiny model in place of a real one."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    from datagen.llm.embedded import embedded_model_path

    export_run(run_dir, tmp_path / "hf", fmt="hf", test=0.25, seed=3)
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_path()))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    args = SFTConfig(
        output_dir=str(tmp_path / "unused"), assistant_only_loss=True, report_to="none", use_cpu=True
    )
    train = _load(tmp_path / "hf")["train"]
    trainer = SFTTrainer(
        model=LlamaForCausalLM(config), args=args, train_dataset=train, processing_class=tokenizer
    )
    assert len(trainer.train_dataset) == len(train)
    for example in trainer.train_dataset:
        trained = tokenizer.decode([label for label in example["labels"] if label != -100])
        assert '{"name": "withdraw", "arguments": {"account_id": "a10", "amount":' in trained
        assert "Done: a10 now holds $60.00" in trained and "###STOP###" not in trained


@pytest.mark.slow
def test_trl_sft_cli_trains_on_the_export_folder(run_dir: Path, tmp_path: Path, embedded_model: Path):
    """`trl sft --dataset_name DIR`, TRL's real command line, one step on the embedded model."""
    export_run(run_dir, tmp_path / "hf", fmt="hf", test=0.25, seed=3)
    trl = Path(sys.executable).with_name("trl")
    command = [
        str(trl), "sft", "--model_name_or_path", str(embedded_model), "--dataset_name", str(tmp_path / "hf"),
        "--output_dir", str(tmp_path / "out"), "--max_steps", "1", "--per_device_train_batch_size", "1",
        "--assistant_only_loss", "true", "--use_cpu", "true", "--report_to", "none", "--save_strategy", "no",
        "--logging_steps", "1",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert "'loss'" in done.stdout + done.stderr


@pytest.mark.parametrize("fmt", ["hf", "sharegpt", "jsonl"])
def test_every_format_opens_with_load_dataset_through_its_card(run_dir: Path, tmp_path: Path, fmt: str):
    result = export_run(run_dir, tmp_path / fmt, fmt=fmt, test=0.25, seed=3)
    dataset = _load(tmp_path / fmt)
    assert {s: len(part) for s, part in dataset.items()} == result.splits
    if fmt == "sharegpt":
        tools = json.loads(dataset["train"][0]["tools"])
        assert all(set(tool) == {"name", "description", "parameters"} for tool in tools)


def test_splits_are_by_blueprint_and_deterministic():
    rows = [{"blueprint_id": f"b{i % 40}", "n": i} for i in range(200)]
    first = split_rows(rows, seed=7, validation=0.1, test=0.2)
    assert first == split_rows(rows, seed=7, validation=0.1, test=0.2)
    owners = {}
    for split, part in first.items():
        for row in part:
            assert owners.setdefault(row["blueprint_id"], split) == split
    assert set(first) == {"train", "validation", "test"}
    with pytest.raises(ValueError):
        split_rows(rows, seed=0, validation=0.6, test=0.5)


def test_truncated_run_exports_what_is_complete(run_dir: Path, tmp_path: Path):
    with (run_dir / "trajectories.jsonl").open("a") as fh:
        fh.write('{"id": "cut-off", "messages": [{"role": "us')
    result = export_run(run_dir, tmp_path / "jl", fmt="jsonl", test=0.0)
    assert result.splits == {"train": 12}
    assert any("incomplete last line" in note for note in result.skipped)
    assert "incomplete last line" in (tmp_path / "jl" / "README.md").read_text()


def test_a_message_key_the_hf_columns_cannot_hold_is_an_error_not_a_loss(run_dir: Path, tmp_path: Path):
    lines = (run_dir / "trajectories.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["messages"][1]["reasoning_content"] = "thinking"
    (run_dir / "trajectories.jsonl").write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"trajectory bp0-0 message 1: message keys \['reasoning_content'\]"):
        export_run(run_dir, tmp_path / "hf", fmt="hf")
    export_run(run_dir, tmp_path / "jl", fmt="jsonl")  # the format that keeps every key


def test_missing_run_dir_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="trajectories.jsonl"):
        export_run(tmp_path, tmp_path / "out")


def test_the_export_command_runs_from_a_plain_environment(run_dir: Path, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HF_", "APIGEN"))}
    env["HOME"] = os.environ.get("HOME", str(tmp_path))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "datagen.cli",
            "export",
            str(run_dir),
            "--out",
            str(tmp_path / "cli"),
            "--test",
            "0.25",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "exported 12 trajectories" in done.stdout
    assert sum(len(part) for part in _load(tmp_path / "cli").values()) == 12
