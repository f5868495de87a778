"""Chat templates for training: loss on exactly the assistant spans, calls the runtime can read back.

Labels come from TRL's own dataset preparation (an ``SFTTrainer`` over a tiny random model), so the
test checks what training really sees. Every template is rendered with the embedded model's
tokenizer (templates are plain Jinja); Llama's header tokens are added as special tokens, as they are
in a real Llama tokenizer, so token and text boundaries coincide.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from datagen.llm.embedded import FORMAT_MARKER, TEMPLATE_FILE, read_tool_format
from datagen.llm.formats import get_format
from training.chat_templates import SHIPPED_TEMPLATES, resolve_template, write_format_marker
from training.convert import from_messages
from training.mixture import conversation_features, expand_per_turn

DATA = Path(__file__).parent / "data" / "training_conversations.json"
END_OF_TURN = {"hermes": "<|im_end|>", "xlam": "<|im_end|>", "llama3": "<|eot_id|>"}
LLAMA_SPECIAL = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


@pytest.fixture(scope="module")
def tokenizer(embedded_model: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(embedded_model))
    tok.add_special_tokens({"additional_special_tokens": LLAMA_SPECIAL})
    return tok


@pytest.fixture(scope="module")
def conversations() -> list[dict[str, Any]]:
    rows = json.loads(DATA.read_text())
    return [{**from_messages(row), "source": str(DATA), "id": row["id"]} for row in rows]


def trainer_labels(tokenizer: Any, template: str, dataset: Any) -> list[dict[str, list[int]]]:
    """input_ids/labels of every example as TRL's SFTTrainer prepares them with assistant-only loss."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.add_special_tokens({"additional_special_tokens": LLAMA_SPECIAL})
    tokenizer.chat_template = template
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
    )
    args = SFTConfig(
        output_dir="/tmp/unused-training-templates",
        assistant_only_loss=True,
        max_length=None,
        report_to="none",
        use_cpu=True,
        dataset_num_proc=None,
    )
    trainer = SFTTrainer(
        model=LlamaForCausalLM(config), args=args, train_dataset=dataset, processing_class=tokenizer
    )
    return [{"input_ids": row["input_ids"], "labels": row["labels"]} for row in trainer.train_dataset]


def labelled_spans(labels: list[int]) -> list[list[int]]:
    spans, current = [], []
    for label in labels:
        if label != -100:
            current.append(label)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])


EMPTY_THINK = "<think>\n\n</think>\n\n"


def expected_span(message: dict[str, Any], tool_format: str, think: bool = False) -> str:
    """The assistant text the runtime's format renders for this message, plus the end-of-turn token;
    ``think``: after Qwen3's empty reasoning block."""
    calls = [
        {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
        for c in message["tool_calls"] or []
    ]
    content = message["content"] or ""
    body = get_format(tool_format).render_calls(calls, content) if calls else content
    return (EMPTY_THINK if think else "") + body + END_OF_TURN[tool_format]


def expected_spans(template: str, messages: list[dict[str, Any]]) -> list[str]:
    """Every assistant span; for qwen3 the last message, if an assistant's, opens with the empty
    reasoning block (Qwen3 renders it there and nowhere else in history without reasoning)."""
    tool_format = SHIPPED_TEMPLATES[template].tool_format
    return [
        expected_span(m, tool_format, think=template == "qwen3" and k == len(messages) - 1)
        for k, m in enumerate(messages)
        if m["role"] == "assistant"
    ]


@pytest.mark.parametrize("name", sorted(SHIPPED_TEMPLATES))
def test_only_assistant_spans_carry_labels(
    name: str, tokenizer: Any, conversations: list[dict[str, Any]]
) -> None:
    from datasets import Dataset

    spec = SHIPPED_TEMPLATES[name]
    dataset = Dataset.from_list(conversations, features=conversation_features())
    prepared = trainer_labels(tokenizer, spec.read(), dataset)
    for example, conversation in zip(prepared, conversations, strict=True):
        spans = [tokenizer.decode(span) for span in labelled_spans(example["labels"])]
        assert spans == expected_spans(name, conversation["messages"])
        # Labels are the input ids themselves wherever they are set (nothing shifted or replaced).
        assert all(
            lab in (-100, tok) for tok, lab in zip(example["input_ids"], example["labels"], strict=True)
        )


@pytest.mark.parametrize("name", sorted(SHIPPED_TEMPLATES))
def test_runtime_parses_the_calls_a_template_renders(name: str, conversations: list[dict[str, Any]]) -> None:
    spec = SHIPPED_TEMPLATES[name]
    fmt = get_format(spec.tool_format)
    tools = json.loads(conversations[0]["tools"]) + json.loads(conversations[1]["tools"])
    for conversation in conversations:
        for message in conversation["messages"]:
            if message["role"] != "assistant" or not message["tool_calls"]:
                continue
            text = expected_span(message, spec.tool_format).removesuffix(END_OF_TURN[spec.tool_format])
            parsed = fmt.parse(text, tools)
            assert parsed.error is None
            assert parsed.calls == [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in message["tool_calls"]
            ]


@pytest.mark.parametrize("name", ["qwen2.5", "qwen3"])
def test_per_turn_examples_put_the_loss_on_their_last_turn_only(
    name: str, tokenizer: Any, conversations: list[dict[str, Any]]
) -> None:
    from datasets import Dataset

    spec = SHIPPED_TEMPLATES[name]
    dataset = expand_per_turn(Dataset.from_list(conversations, features=conversation_features()))
    assert len(dataset) == sum(m["role"] == "assistant" for c in conversations for m in c["messages"])
    prepared = trainer_labels(tokenizer, spec.read(), dataset)
    for example, source in zip(prepared, dataset, strict=True):
        spans = [tokenizer.decode(span) for span in labelled_spans(example["labels"])]
        # Each completion is its example's last message: Qwen3 opens it with the reasoning block.
        assert spans == [expected_span(source["completion"][0], spec.tool_format, think=name == "qwen3")]


def test_qwen3_renders_reasoning_where_qwen3_does(
    tokenizer: Any, conversations: list[dict[str, Any]]
) -> None:
    """Reasoning after the last user message is kept, history before it is not; enable_thinking=false
    pre-fills the empty block in the generation prompt, as Qwen3's own template does."""
    template = SHIPPED_TEMPLATES["qwen3"].read()
    messages = [dict(m) for m in conversations[0]["messages"]]
    messages = messages[: max(k for k, m in enumerate(messages) if m["role"] == "assistant") + 1]
    last_user = max(k for k, m in enumerate(messages) if m["role"] == "user")
    assistants = [k for k, m in enumerate(messages) if m["role"] == "assistant"]
    before, after = [k for k in assistants if k < last_user], [k for k in assistants if k > last_user]
    assert before and after
    for k in before + after:
        messages[k] = {**messages[k], "reasoning_content": f"plan {k}"}
    text = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
    assert all(f"<think>\nplan {k}\n</think>" in text for k in after)
    assert not any(f"plan {k}" in text for k in before)
    prompt = messages[: last_user + 1]
    plain = tokenizer.apply_chat_template(
        prompt, chat_template=template, tokenize=False, add_generation_prompt=True
    )
    off = tokenizer.apply_chat_template(
        prompt, chat_template=template, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert plain.endswith("<|im_start|>assistant\n") and off == plain + EMPTY_THINK


def test_smollm2_template_is_the_runtime_template() -> None:
    assert SHIPPED_TEMPLATES["smollm2"].read() == TEMPLATE_FILE.read_text()


def test_format_marker_is_the_file_the_runtime_reads(tmp_path: Path) -> None:
    for spec in SHIPPED_TEMPLATES.values():
        marker = write_format_marker(tmp_path, spec)
        assert marker.name == FORMAT_MARKER
        assert read_tool_format(tmp_path) == spec.tool_format
        get_format(spec.tool_format)  # a format the runtime knows


def test_custom_templates_need_generation_markers_and_a_format(tmp_path: Path) -> None:
    plain = tmp_path / "plain.jinja"
    plain.write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    with pytest.raises(ValueError, match="tool_format"):
        resolve_template(str(plain))
    with pytest.raises(ValueError, match="generation"):
        resolve_template(str(plain), tool_format="hermes")
    marked = tmp_path / "marked.jinja"
    marked.write_text(
        "{% for m in messages %}{%- generation -%}{{ m.content }}{%- endgeneration -%}{% endfor %}"
    )
    assert resolve_template(str(marked), tool_format="hermes").tool_format == "hermes"
    with pytest.raises(ValueError, match="renders tool calls"):
        resolve_template("llama3", tool_format="hermes")
    with pytest.raises(ValueError, match="one of"):
        resolve_template("no-such-template")


def labelled_positions(labels: list[int]) -> list[list[int]]:
    """The positions of each labelled span, in order."""
    spans: list[list[int]] = []
    for position, label in enumerate(labels):
        if label == -100:
            continue
        if spans and spans[-1][-1] == position - 1:
            spans[-1].append(position)
        else:
            spans.append([position])
    return spans


@pytest.mark.parametrize("name", sorted(set(SHIPPED_TEMPLATES) - {"qwen3"}))
def test_one_sequence_per_dialogue_trains_the_same_turns_as_one_example_per_turn(
    name: str, tokenizer: Any, conversations: list[dict[str, Any]]
) -> None:
    """With assistant-only loss, a dialogue as one sequence labels every assistant turn with exactly
    the context its per-turn example has (same ids before it, same labelled ids): the same targets
    at 1/k of the prompt tokens, which is what ``per_turn_examples: false`` relies on. (Qwen3 drops
    history's reasoning, so there the two differ and per-turn examples are the faithful choice.)"""
    from datasets import Dataset

    template = SHIPPED_TEMPLATES[name].read()
    whole = trainer_labels(
        tokenizer, template, Dataset.from_list(conversations, features=conversation_features())
    )
    turns = trainer_labels(
        tokenizer,
        template,
        expand_per_turn(Dataset.from_list(conversations, features=conversation_features())),
    )
    index = 0
    for dialogue in whole:
        spans = labelled_positions(dialogue["labels"])
        assert len(spans) >= 2
        for span in spans:
            example = turns[index]
            index += 1
            assert labelled_positions(example["labels"]) == [span]
            end = span[-1] + 1
            assert example["input_ids"][:end] == dialogue["input_ids"][:end]
            assert example["labels"][:end] == [
                label if position in span else -100 for position, label in enumerate(dialogue["labels"][:end])
            ]
    assert index == len(turns)
