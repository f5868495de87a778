"""The dataset card (licence, teacher models and their terms, toolkit build, date, split rule) and
the Hub push through `DatasetDict.push_to_hub` (the Hub faked at the HfApi boundary)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from exportrun import write_run
from fakehub import FakeHub

from datagen.export import export_run
from datagen.rundir import DatagenRun

ROOT = Path(__file__).resolve().parents[1]


def _header(card: Path) -> dict[str, Any]:
    return yaml.safe_load(card.read_text(encoding="utf-8").split("---")[1])


def _run(tmp_path: Path, recipe: str, models: dict[str, str] | None = None) -> Path:
    run = write_run(tmp_path / "run", models=models)
    (run / "config.yaml").write_text(recipe)
    return run


def test_a_recipe_licence_reaches_the_card(tmp_path: Path):
    from datagen.recipe.datagen import load_datagen_recipe

    recipe = "name: r\nenv: bank\nlicense: cc-by-4.0\n"
    (tmp_path / "recipe.yaml").write_text(recipe)
    assert load_datagen_recipe(tmp_path / "recipe.yaml").license == "cc-by-4.0"  # the recipe schema takes it
    export_run(_run(tmp_path, recipe), tmp_path / "out", fmt="jsonl")
    header = _header(tmp_path / "out" / "README.md")
    assert header["license"] == "cc-by-4.0" and "license_name" not in header
    assert not (tmp_path / "out" / "LICENSE.md").exists()
    export_run(_run(tmp_path, recipe), tmp_path / "flag", fmt="jsonl", license="mit")
    assert _header(tmp_path / "flag" / "README.md")["license"] == "mit"  # the flag wins


def test_licence_other_names_its_terms(tmp_path: Path):
    recipe = "name: r\nenv: bank\nlicense: other\nlicense_name: acme-data\nlicense_link: https://acme.example/terms\n"
    export_run(_run(tmp_path, recipe), tmp_path / "out", fmt="jsonl")
    header = _header(tmp_path / "out" / "README.md")
    assert (header["license"], header["license_name"], header["license_link"]) == (
        "other",
        "acme-data",
        "https://acme.example/terms",
    )


def test_no_licence_chosen_is_said_in_a_license_file_with_the_teachers_terms(tmp_path: Path):
    export_run(_run(tmp_path, "name: r\nenv: bank\n"), tmp_path / "out", fmt="jsonl")
    header = _header(tmp_path / "out" / "README.md")
    assert (header["license"], header["license_name"], header["license_link"]) == (
        "other",
        "unspecified",
        "LICENSE.md",
    )
    text = (tmp_path / "out" / "LICENSE.md").read_text()
    assert (
        "No licence was chosen" in text
        and "HuggingFaceTB/SmolLM2-135M-Instruct" in text
        and "apache-2.0" in text
    )


def test_licence_other_with_a_name_but_no_link_is_refused_before_writing(tmp_path: Path):
    run = _run(tmp_path, "name: r\nenv: bank\nlicense: other\nlicense_name: acme-data\n")
    with pytest.raises(ValueError, match="license_link is missing.*--license-link"):
        export_run(run, tmp_path / "out", fmt="jsonl")
    assert not (tmp_path / "out").exists()


def test_teachers_and_their_licence_terms_are_read_from_model_cards(tmp_path: Path):
    local = tmp_path / "models" / "llama-70b"
    local.mkdir(parents=True)
    (local / "README.md").write_text(
        "---\nlicense: llama3.3\nlicense_name: llama3.3\nlicense_link: https://www.llama.com/llama3_3/license/\n---\n# card\n"
    )
    models = {"agent": "embedded", "user": str(local), "judge": "acme/not-in-the-cache-model"}
    export_run(
        _run(tmp_path, "name: r\nenv: bank\nlicense: cc-by-4.0\n", models), tmp_path / "out", fmt="jsonl"
    )
    facts = json.loads((tmp_path / "out" / "export.json").read_text())
    by_role = {t["role"]: t for t in facts["teachers"]}
    assert by_role["agent"]["hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert by_role["agent"]["license"] == "apache-2.0"
    assert by_role["user"]["license"] == "llama3.3"
    assert by_role["user"]["license_link"] == "https://www.llama.com/llama3_3/license/"
    assert (
        by_role["judge"]["license"] is None
        and "https://huggingface.co/acme/not-in-the-cache-model" in by_role["judge"]["source"]
    )
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| user | `" in card and "llama3.3 (llama3.3), https://www.llama.com/llama3_3/license/" in card
    assert "| judge | `acme/not-in-the-cache-model` | acme/not-in-the-cache-model | not found |" in card


def test_the_card_gives_the_toolkit_build_the_date_and_the_split_rule(tmp_path: Path):
    export_run(
        _run(tmp_path, "name: r\nenv: bank\n"), tmp_path / "out", fmt="hf", seed=5, test=0.25, validation=0.1
    )
    facts = json.loads((tmp_path / "out" / "export.json").read_text())
    assert facts["toolkit"]["version"] == metadata.version("apigen-mt")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert facts["toolkit"]["commit"] == head
    created = datetime.fromisoformat(facts["created"])
    assert abs((datetime.now(UTC) - created).total_seconds()) < 600
    assert (
        facts["split"]["seed"] == 5 and facts["split"]["test"] == 0.25 and facts["split"]["validation"] == 0.1
    )
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"git commit `{head}`" in card and facts["created"] in card
    assert "Splits (seed 5, validation 0.1, test 0.25): split by group of blueprints" in card


def test_export_facts_reach_the_model_card(tmp_path: Path):
    from datagen.simulate.runner import phase2_funnel
    from training.mixture import read_dataset_card

    run = _run(tmp_path, "name: r\nenv: bank\n")
    (run / "stats.json").write_text(json.dumps({"proposed": 20, "total_accepted": 12}))
    export_run(run, tmp_path / "out", fmt="hf", test=0.25, seed=3)
    facts = read_dataset_card(tmp_path / "out")["export"]  # what training reads for its model card
    assert facts["phase2"] == json.loads(json.dumps(phase2_funnel(DatagenRun(run))))
    assert facts["phase1"]["proposed"] == 20 and facts["format"] == "hf"
    assert sum(split["rows"] for split in facts["splits"].values()) == 12


def test_embedded_model_hub_id_is_the_same_in_data_and_model_cards():
    from datagen.export.provenance import EMBEDDED_HUB_ID, EMBEDDED_MODEL
    from training.model_card import EMBEDDED_HUB_ID as MODEL_CARD_ID
    from training.sft import EMBEDDED_MODEL as SFT_EMBEDDED

    assert (EMBEDDED_HUB_ID, EMBEDDED_MODEL) == (MODEL_CARD_ID, SFT_EMBEDDED)


def test_hf_push_goes_through_push_to_hub_and_the_pushed_repo_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from datasets import load_dataset

    from datagen.export.hub import push_export

    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_never_written")
    export_run(_run(tmp_path, "name: r\nenv: bank\n"), tmp_path / "out", fmt="hf", test=0.25, seed=3)
    url = push_export(tmp_path / "out", "org/name", fmt="hf", private=True)
    assert url == "https://huggingface.co/datasets/org/name"
    assert hub.created[0] == {"repo_id": "org/name", "repo_type": "dataset", "private": True}
    files = hub.files("org/name")
    assert {"README.md", "export.json", "LICENSE.md"} <= set(files)
    assert "data/train-00000-of-00001.parquet" in files and "data/test-00000-of-00001.parquet" in files
    card = (hub.repo("org/name") / "README.md").read_text()
    header = _header(hub.repo("org/name") / "README.md")
    assert "dataset_info" in header and header["license_name"] == "unspecified"  # push_to_hub kept our card
    assert "## Licence and teacher models" in card
    local, pushed = load_dataset(str(tmp_path / "out")), load_dataset(str(hub.repo("org/name")))
    assert {s: part.to_list() for s, part in pushed.items()} == {
        s: part.to_list() for s, part in local.items()
    }
    for name in files:
        assert b"hf_secret_value_never_written" not in (hub.repo("org/name") / name).read_bytes()


@pytest.mark.parametrize("fmt", ["sharegpt", "jsonl"])
def test_file_exports_push_as_one_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str):
    from datasets import load_dataset

    from datagen.export.hub import push_export

    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    export_run(
        _run(tmp_path, "name: r\nenv: bank\nlicense: mit\n"), tmp_path / "out", fmt=fmt, test=0.25, seed=3
    )
    push_export(tmp_path / "out", "org/name", fmt=fmt)
    suffix = "json" if fmt == "sharegpt" else "jsonl"
    assert hub.files("org/name") == sorted(["README.md", "export.json", f"test.{suffix}", f"train.{suffix}"])
    assert len(hub.commits) == 1
    assert sum(len(part) for part in load_dataset(str(hub.repo("org/name"))).values()) == 12
