"""Export: HF dataset round trip, chat-template rendering of every row, ShareGPT both ways, splits,
the dataset card, the Hub upload folder, and incomplete run directories."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from scripted import ScriptedModel
from toydomain import make_toy_domain

from datagen.export import export_run, load_trajectories
from datagen.export.hub import push_export, stage_upload
from datagen.export.rows import split_rows
from datagen.export.sharegpt import ShareGPTError, from_sharegpt, to_sharegpt
from datagen.llm import ModelSpec
from datagen.records import Blueprint
from datagen.simulate.config import AgentRole, SimulateConfig, UserRole
from datagen.rundir import DatagenRun
from datagen.simulate.runner import SimulationRunner

TEMPLATES = sorted((Path(__file__).parents[1] / "training" / "templates").glob("*.jinja"))


class _Pool:
    """Scripted agent and user, so the export sees trajectories written by the real runner."""

    def __init__(self):
        def user(messages, kwargs):
            said = [m for m in messages if m["role"] == "assistant"]
            return [
                "Please withdraw 40 from a10, and check a11." if not said else "Great, thanks! ###STOP###"
            ]

        def agent(messages, kwargs):
            if messages[-1]["role"] == "user":
                # Parallel calls with different argument sets: the Arrow-unfriendly case.
                return [{"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}]
            if messages[-1]["role"] == "tool" and messages[-1]["name"] == "withdraw":
                return [{"name": "get_account", "arguments": {"account_id": "a11"}}]
            return ["Done: a10 now holds $60.00 and a11 holds $200.00."]

        self.models = {
            "agent": ScriptedModel(agent, "agent-model"),
            "user": ScriptedModel(user, "user-model"),
        }

    def get(self, alias: str):
        return self.models[alias]


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    domain = make_toy_domain(tmp_path)
    config = SimulateConfig(
        agent=AgentRole(model="agent"),
        user=UserRole(model="user", best_of_n=1),
        attempts=1,
    )
    blueprints = [
        Blueprint(
            id=f"bp{i}",
            env="toy",
            seed=1,
            user_id="u0",
            persona=f"Person {i}",
            instruction="Withdraw 40 from a10 and ask for a11's balance.",
            actions=[{"name": "withdraw", "arguments": {"account_id": "a10", "amount": 40}}],
            outputs=["60", "200"],
        )
        for i in range(12)
    ]
    out = tmp_path / "run"
    runner = SimulationRunner(config, DatagenRun(out), lambda name: domain, _Pool())
    summary = asyncio.run(runner.run(blueprints))
    assert summary["successful_trajectories"] == 12
    DatagenRun(out).recipe.write_text("name: toy-run\nlicense: cc-by-4.0\n")
    return out


def test_hf_export_round_trips_exactly(run_dir: Path, tmp_path: Path):
    from datasets import load_from_disk

    result = export_run(run_dir, tmp_path / "hf", fmt="hf", seed=3, test=0.25)
    original = {t.id: t for t in load_trajectories(run_dir)[0]}
    dataset = load_from_disk(str(tmp_path / "hf"))
    assert sum(len(part) for part in dataset.values()) == 12 == sum(result.splits.values())
    for part in dataset.values():
        for row in part:
            assert row["messages"] == original[row["id"]].messages
            assert row["tools"] == original[row["id"]].tools
            call = next(m for m in row["messages"] if m.get("tool_calls"))["tool_calls"][0]
            assert isinstance(call["function"]["arguments"], dict)
    card = (tmp_path / "hf" / "README.md").read_text()
    assert card.startswith("---\n") and "license: cc-by-4.0" in card and "Phase 2 funnel" in card


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


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.stem for t in TEMPLATES])
def test_every_row_renders_through_chat_templates(run_dir: Path, tmp_path: Path, template: Path):
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from datagen.llm.embedded import embedded_model_path

    export_run(run_dir, tmp_path / "hf", fmt="hf")
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_path()))
    tokenizer.chat_template = template.read_text()
    for part in load_from_disk(str(tmp_path / "hf")).values():
        for row in part:
            text = tokenizer.apply_chat_template(row["messages"], tools=row["tools"], tokenize=False)
            assert "withdraw" in text and "a10" in text


def test_sharegpt_round_trip_and_string_arguments(run_dir: Path, tmp_path: Path):
    export_run(run_dir, tmp_path / "sg", fmt="sharegpt", test=0.0)
    rows = json.loads((tmp_path / "sg" / "train.json").read_text())
    original = load_trajectories(run_dir)[0][0]
    assert {t["from"] for t in rows[0]["conversations"]} == {"human", "gpt", "function_call", "observation"}
    messages, tools = from_sharegpt(rows[0])
    assert messages == original.messages and tools == original.tools
    assert to_sharegpt(messages, tools) == rows[0]
    # Some copies of APIGen-MT-5k store arguments as JSON strings.
    stringly = json.loads(json.dumps(rows[0]))
    for turn in stringly["conversations"]:
        if turn["from"] == "function_call":
            call = json.loads(turn["value"])
            turn["value"] = json.dumps({"name": call["name"], "arguments": json.dumps(call["arguments"])})
    assert from_sharegpt(stringly)[0] == original.messages


@pytest.mark.parametrize(
    "conversations, fragment",
    [
        ([{"from": "observation", "value": "x"}], "no function_call before"),
        ([{"from": "function_call", "value": "{not json"}], "not JSON"),
        ([{"from": "robot", "value": "x"}], "unknown 'from'"),
    ],
)
def test_sharegpt_bad_rows_are_reported(conversations, fragment):
    with pytest.raises(ShareGPTError, match=fragment):
        from_sharegpt({"conversations": conversations, "system": "", "tools": "[]"}, row_id="r1")


def test_truncated_run_exports_what_is_complete(run_dir: Path, tmp_path: Path):
    with (run_dir / "trajectories.jsonl").open("a") as fh:
        fh.write('{"id": "cut-off", "messages": [{"role": "us')
    result = export_run(run_dir, tmp_path / "jl", fmt="jsonl", test=0.0)
    assert result.splits == {"train": 12}
    assert any("incomplete last line" in note for note in result.skipped)
    assert "incomplete last line" in (tmp_path / "jl" / "README.md").read_text()


def test_hub_push_builds_upload_folder_without_network(run_dir: Path, tmp_path: Path, monkeypatch):
    from datasets import load_dataset
    from huggingface_hub import HfApi

    export_run(run_dir, tmp_path / "hf", fmt="hf", test=0.25, seed=3)
    files = stage_upload(tmp_path / "hf", tmp_path / "stage", fmt="hf")
    names = sorted(str(p.relative_to(tmp_path / "stage")) for p in files)
    assert "README.md" in names and any(n.startswith("data/train-") for n in names)
    reloaded = load_dataset(
        "parquet", data_files=str(tmp_path / "stage" / "data" / "train-*.parquet"), split="train"
    )
    assert isinstance(reloaded[0]["messages"][0], dict)

    calls = []
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_never_printed")
    monkeypatch.setattr(HfApi, "create_repo", lambda self, *a, **k: calls.append(("create", a, k)))

    def fake_upload(self, **kwargs):
        calls.append(
            ("upload", sorted(p.name for p in Path(kwargs["folder_path"]).rglob("*") if p.is_file()))
        )
        for path in Path(kwargs["folder_path"]).rglob("*"):
            if path.is_file():
                assert "hf_secret_value_never_printed" not in path.read_bytes().decode("utf-8", "ignore")

    monkeypatch.setattr(HfApi, "upload_folder", fake_upload)
    url = push_export(tmp_path / "hf", "org/name", fmt="hf", private=True)
    assert url.endswith("datasets/org/name")
    assert calls[0][2]["private"] is True and "README.md" in calls[1][1]


@pytest.mark.parametrize("fmt", ["hf", "sharegpt", "jsonl"])
def test_export_facts_reach_the_model_card_and_the_card_points_at_the_data(
    run_dir: Path, tmp_path: Path, fmt: str
):
    import yaml

    from datagen.simulate.runner import phase2_funnel
    from training.mixture import read_dataset_card

    (run_dir / "stats.json").write_text(json.dumps({"proposed": 20, "total_accepted": 12}))
    out = tmp_path / fmt
    export_run(run_dir, out, fmt=fmt, test=0.25, seed=3)
    # What training reads from a local export for its model card: the run's funnel, not prose.
    facts = read_dataset_card(out)["export"]
    assert facts["phase2"] == json.loads(json.dumps(phase2_funnel(DatagenRun(run_dir))))
    assert facts["phase1"]["proposed"] == 20 and facts["format"] == fmt
    assert sum(split["rows"] for split in facts["splits"].values()) == 12
    header = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    for entry in header["configs"][0]["data_files"]:
        if fmt == "hf":  # the Hub copy is Parquet shards (stage_upload)
            staged = stage_upload(out, tmp_path / "stage", fmt=fmt)
            assert any(p.match(entry["path"]) for p in staged), entry
        else:
            assert list(out.glob(entry["path"])), f"{entry} names no file of the {fmt} export"


def test_missing_run_dir_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="trajectories.jsonl"):
        export_run(tmp_path, tmp_path / "out")
