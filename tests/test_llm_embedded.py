"""The embedded model directory, its chat template, and prompt preparation per tool-call format."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datagen.llm import ModelSpec
from datagen.llm.embedded import COMPLETE_MARKER, TEMPLATE_FILE, read_tool_format, verify_model_dir
from datagen.llm.formats import get_format
from datagen.llm.prompting import LocalPrompter, inline_messages, structured_messages

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather <now> & later.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
HISTORY = [
    {"role": "system", "content": "You help with weather."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "a1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "a1", "content": {"temperature_c": 21}},
    {"role": "assistant", "content": "It is 21 C."},
]


@pytest.fixture(scope="module")
def tokenizer(embedded_model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model)


def test_model_dir_is_complete_and_speaks_hermes(embedded_model: Path) -> None:
    assert verify_model_dir(embedded_model) is None
    assert read_tool_format(embedded_model) == "hermes"
    config = json.loads((embedded_model / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["model_type"] == "llama"
    assert (embedded_model / "model.safetensors").stat().st_size > 200_000_000
    assert (embedded_model / "chat_template.jinja").read_text() == TEMPLATE_FILE.read_text()
    assert ModelSpec(model=str(embedded_model)).resolved_tool_format() == "hermes"


def test_truncated_or_edited_files_are_detected(embedded_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(embedded_model, copy)
    assert verify_model_dir(copy) is None
    weights = copy / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size - 10)
    assert "model.safetensors" in verify_model_dir(copy, full_hash=False)
    shutil.copy(embedded_model / "model.safetensors", weights)
    config = copy / "config.json"
    config.write_text(config.read_text().replace("silu", "gelu"))
    assert verify_model_dir(copy, full_hash=False) is None  # same size: only the hash sees it
    assert "sha256" in verify_model_dir(copy)
    (copy / COMPLETE_MARKER).unlink()
    assert "missing" in verify_model_dir(copy)


def test_template_renders_tools_calls_and_tool_turns(tokenizer) -> None:
    prompt = tokenizer.apply_chat_template(HISTORY, tools=TOOLS, tokenize=False)
    assert prompt.startswith("<|im_start|>system\nYou help with weather.\n\n# Tools")
    assert '"description": "Weather <now> & later."' in prompt
    assert (
        'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>'
        in prompt
    )
    assert '<|im_start|>tool\n<tool_response>\n{"temperature_c": 21}\n</tool_response><|im_end|>' in prompt


def test_generation_markers_cover_exactly_the_assistant_turns(tokenizer) -> None:
    encoded = tokenizer.apply_chat_template(
        HISTORY, tools=TOOLS, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    masked = [
        token for token, keep in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if keep
    ]
    text = tokenizer.decode(masked)
    assert text.startswith("Checking.\n<tool_call>") and text.endswith("It is 21 C.<|im_end|>")
    assert "Weather in Paris?" not in text and "tool_response" not in text


def test_inline_hermes_prompt_equals_the_template_rendering(tokenizer, embedded_model: Path) -> None:
    """Two copies of the Hermes tool prompt (template and tools block) must agree."""
    templated = LocalPrompter(tokenizer, str(embedded_model), get_format("hermes")).render_text(
        HISTORY, TOOLS
    )
    inline = tokenizer.apply_chat_template(
        inline_messages(HISTORY, TOOLS, get_format("hermes")), tokenize=False, add_generation_prompt=True
    )
    assert templated == inline


@pytest.mark.parametrize("name", ["xlam", "llama3", "python"])
def test_prompt_mode_formats_put_tools_and_calls_in_the_text(
    tokenizer, embedded_model: Path, name: str
) -> None:
    fmt = get_format(name)
    prompt = LocalPrompter(tokenizer, str(embedded_model), fmt).render_text(HISTORY, TOOLS)
    assert fmt.render_tools(TOOLS) in prompt
    assert fmt.render_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}], "Checking.") in prompt
    assert "<tool_call>" not in prompt and "<tools>" not in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_structured_messages_link_tool_results_to_calls() -> None:
    history = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}],
        },
        {"role": "tool", "content": "ra"},
        {"role": "tool", "content": "rb"},
    ]
    prepared = structured_messages(history)
    ids = [call["id"] for call in prepared[0]["tool_calls"]]
    assert [m["tool_call_id"] for m in prepared[1:]] == ids
    assert prepared[0]["tool_calls"][1]["function"]["arguments"] == '{"x": 1}'


def test_openai_format_is_refused_for_local_backends(tokenizer, embedded_model: Path) -> None:
    with pytest.raises(ValueError, match="backend: openai"):
        LocalPrompter(tokenizer, str(embedded_model), get_format("openai"))


def test_model_spec_rejects_unknown_keys() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ModelSpec.model_validate({"model": "embedded", "temprature": 0.5})


def test_models_path_command_prints_without_heavy_imports() -> None:
    code = (
        "import sys; from datagen.commands.models import main; main(['path']); "
        "assert 'torch' not in sys.modules and 'vllm' not in sys.modules"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip().endswith("smollm2-135m-instruct")


@pytest.mark.slow
def test_prepare_rebuilds_a_corrupt_cache_and_is_idempotent(
    embedded_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datagen.llm.embedded import embedded_model_dir, prepare_embedded_model

    monkeypatch.setenv("APIGEN_MT_CACHE", str(tmp_path))
    target = embedded_model_dir()
    shutil.copytree(embedded_model, target)
    config = target / "config.json"
    original = config.read_text()
    config.write_text(original.replace("silu", "gelu"))

    assert prepare_embedded_model() == target
    assert config.read_text() == original
    assert verify_model_dir(target) is None
    built = (target / COMPLETE_MARKER).stat().st_mtime_ns
    prepare_embedded_model()
    assert (target / COMPLETE_MARKER).stat().st_mtime_ns == built
    assert not [
        p for p in tmp_path.joinpath("models").iterdir() if p.name.startswith(".smollm2") and p.is_dir()
    ]
