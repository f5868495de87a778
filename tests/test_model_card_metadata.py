"""The model card's Hub metadata: `base_model` is a Hub id (never a local path) and `library_name`
is `peft` for an adapter, `transformers` for full weights (a merged copy included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "training_sharegpt_sample.json"


def _header(text: str) -> dict[str, Any]:
    return yaml.safe_load(text.split("---")[1])


@pytest.fixture(scope="module")
def parts():
    from training.chat_templates import SHIPPED_TEMPLATES
    from training.mixture import SourceConfig, build_mixture

    _, report = build_mixture([SourceConfig(path=str(SAMPLE), layout="sharegpt")], seed=0)
    return SHIPPED_TEMPLATES["smollm2"], report


def _args(*extra: str):
    from training.sft import parse_args

    return parse_args(["--config", "recipes/sft/smollm2-135m/cpu_lora.yaml", *extra])


def test_base_model_hub_ids(tmp_path: Path):
    from training.model_card import EMBEDDED_HUB_ID, base_model_hub_id

    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert base_model_hub_id("embedded") == EMBEDDED_HUB_ID == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert base_model_hub_id("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    assert base_model_hub_id(str(snapshot)) == "Qwen/Qwen2.5-7B-Instruct"
    assert base_model_hub_id(str(tmp_path)) is None  # a local directory of unknown origin
    assert base_model_hub_id(None) is None


def test_the_embedded_model_is_named_by_its_hub_id_not_its_cache_path(parts, embedded_model: Path):
    from training.model_card import render_model_card

    spec, report = parts
    script_args, training_args, model_args = _args()
    model_args.model_name_or_path = str(embedded_model)  # what train() resolves `embedded` to
    card = render_model_card(
        script_args, training_args, model_args, spec, report, {}, None, False, base_model="embedded"
    )
    header = _header(card)
    assert header["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert header["library_name"] == "peft"
    assert str(embedded_model) not in card.split("---")[1]


def test_a_local_base_model_of_unknown_origin_gets_no_base_model_field(parts, tmp_path: Path):
    from training.model_card import render_model_card

    spec, report = parts
    script_args, training_args, model_args = _args()
    model_args.model_name_or_path = str(tmp_path)
    card = render_model_card(script_args, training_args, model_args, spec, report, {}, None, False)
    assert "base_model" not in _header(card) and f"Fine-tuned from `{tmp_path}`" in card


def test_an_adapter_is_peft_and_its_merged_copy_is_transformers(parts, tmp_path: Path):
    from training.model_card import write_model_card

    spec, report = parts
    script_args, training_args, model_args = _args()
    (tmp_path / "merged").mkdir()
    write_model_card(
        tmp_path, script_args, training_args, model_args, spec, report, {}, None, base_model="embedded"
    )
    adapter, merged = (
        _header((tmp_path / "README.md").read_text()),
        _header((tmp_path / "merged" / "README.md").read_text()),
    )
    assert (adapter["library_name"], merged["library_name"]) == ("peft", "transformers")
    assert adapter["base_model"] == merged["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_full_fine_tuning_is_transformers(parts, tmp_path: Path):
    from training.model_card import write_model_card

    spec, report = parts
    script_args, training_args, model_args = _args("--use_peft", "false", "--merge_lora", "false")
    write_model_card(
        tmp_path, script_args, training_args, model_args, spec, report, {}, None, base_model="embedded"
    )
    assert _header((tmp_path / "README.md").read_text())["library_name"] == "transformers"
