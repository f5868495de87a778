"""Tool-call formats: render/parse round trips and a corpus of malformed model outputs."""

from __future__ import annotations

import pytest

from datagen.llm.formats import FORMAT_NAMES, get_format, validate_calls
from datagen.llm.types import ToolCall

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "send_message",
            "description": "Send a text message.",
            "parameters": {
                "type": "object",
                "properties": {
                    "to": {"type": "string"},
                    "text": {"type": "string"},
                    "urgent": {"type": "boolean"},
                },
                "required": ["to", "text"],
            },
        },
    },
]
TEXT_FORMATS = [name for name in FORMAT_NAMES if name != "openai"]
CALLS: list[ToolCall] = [
    {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}},
    {
        "name": "send_message",
        "arguments": {"to": "Ann", "text": 'She said "it\'s fine" \\ ok', "urgent": True},
    },
]


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_rendered_calls_parse_back_to_the_same_calls(name: str) -> None:
    fmt = get_format(name)
    parsed = fmt.parse(fmt.render_calls(CALLS), TOOLS)
    assert parsed.error is None
    assert parsed.calls == CALLS
    assert parsed.content == ""


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_a_leading_reasoning_block_is_not_part_of_the_answer(name: str) -> None:
    """Reasoning models (Qwen3) think first; a call drafted while thinking is not a call."""
    fmt = get_format(name)
    drafted = fmt.render_calls([{"name": "send_message", "arguments": {"to": "Bo", "text": "draft"}}])
    parsed = fmt.parse(f"<think>\nMaybe {drafted}? No.\n</think>\n\n{fmt.render_calls(CALLS)}", TOOLS)
    assert (parsed.calls, parsed.content, parsed.error) == (CALLS, "", None)
    assert fmt.parse("<think>\n\n</think>\n\nIt is sunny.", TOOLS).content == "It is sunny."
    unfinished = fmt.parse(f"<think>\nstill deciding {drafted}", TOOLS)
    assert unfinished.calls == [] and unfinished.error.kind == "truncated"


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_calls_after_prose_keep_the_prose_as_content(name: str) -> None:
    fmt = get_format(name)
    parsed = fmt.parse(fmt.render_calls(CALLS[:1], "Let me look that up."), TOOLS)
    assert parsed.error is None
    assert parsed.calls == CALLS[:1]
    assert parsed.content == "Let me look that up."


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_plain_answer_has_no_calls_and_no_error(name: str) -> None:
    parsed = get_format(name).parse("It is sunny in Paris [source: radio].", TOOLS)
    assert parsed == ("It is sunny in Paris [source: radio].", [], None)


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_truncated_output_is_a_truncated_error(name: str) -> None:
    fmt = get_format(name)
    full = fmt.render_calls(CALLS[:1])
    parsed = fmt.parse(full[: full.index("Paris") + 3], TOOLS)
    assert parsed.error is not None
    assert parsed.error.kind == "truncated"
    assert parsed.calls == []


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_unknown_tool_is_reported_with_the_offered_names(name: str) -> None:
    fmt = get_format(name)
    parsed = fmt.parse(fmt.render_calls([{"name": "delete_account", "arguments": {}}]), TOOLS)
    assert parsed.error is not None
    assert parsed.error.kind == "unknown_tool"
    assert "get_weather" in parsed.error.message
    assert parsed.calls == [{"name": "delete_account", "arguments": {}}]


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_wrong_argument_type_is_reported(name: str) -> None:
    fmt = get_format(name)
    parsed = fmt.parse(
        fmt.render_calls([{"name": "get_weather", "arguments": {"city": "Rome", "days": "three"}}]), TOOLS
    )
    assert parsed.error is not None
    assert parsed.error.kind == "bad_arguments"
    assert "days" in parsed.error.message


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_missing_required_argument_is_reported(name: str) -> None:
    fmt = get_format(name)
    parsed = fmt.parse(fmt.render_calls([{"name": "send_message", "arguments": {"to": "Ann"}}]), TOOLS)
    assert parsed.error is not None and parsed.error.kind == "bad_arguments"
    assert "text" in parsed.error.message


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        (
            "hermes",
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": Paris}}\n</tool_call>',
            "invalid_json",
        ),
        ("hermes", '<tool_call>\n{"arguments": {"city": "Paris"}}\n</tool_call>', "bad_structure"),
        (
            "hermes",
            '<tool_call>\n{"name": "get_weather", "arguments": "not json"}\n</tool_call>',
            "invalid_json",
        ),
        ("hermes", '<tool_call>{"name": "get_weather", "arguments": ["Paris"]}</tool_call>', "bad_structure"),
        ("xlam", '[{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": ]', "invalid_json"),
        ("xlam", '[{"name": "get_weather", "arguments": {"city": "Par', "truncated"),
        ("llama3", '{"name": "get_weather", "parameters": {"city": "Paris"', "truncated"),
        ("python", '[get_weather(city="Paris", days=int("3"))]', "invalid_syntax"),
        ("python", '[get_weather("Paris")]', "bad_structure"),
        ("python", "[get_weather(city='Paris', days=", "truncated"),
        ("python", "[get_weather(city=__import__('os').system('echo hi'))]", "invalid_syntax"),
    ],
)
def test_malformed_outputs_become_parse_errors(name: str, text: str, kind: str) -> None:
    parsed = get_format(name).parse(text, TOOLS)
    assert parsed.error is not None, parsed
    assert parsed.error.kind == kind
    assert parsed.error.message


def test_hermes_reads_several_blocks_and_stringified_arguments() -> None:
    text = (
        'I will do both.\n<tool_call>\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}\n</tool_call>\n'
        '<tool_call>{"name": "send_message", "arguments": {"to": "Bo", "text": "a </b> \\"quoted\\" tag"}}</tool_call>'
    )
    parsed = get_format("hermes").parse(text, TOOLS)
    assert parsed.error is None
    assert parsed.calls == [
        {"name": "get_weather", "arguments": {"city": "Oslo"}},
        {"name": "send_message", "arguments": {"to": "Bo", "text": 'a </b> "quoted" tag'}},
    ]
    assert parsed.content == "I will do both."


def test_hermes_unclosed_block_with_complete_json_is_still_read() -> None:
    parsed = get_format("hermes").parse(
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}', TOOLS
    )
    assert parsed.error is None
    assert parsed.calls == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]


def test_xlam_reads_a_fenced_list_and_prose_around_a_list() -> None:
    fenced = '```json\n[{"name": "get_weather", "arguments": {"city": "Oslo"}}]\n```'
    assert get_format("xlam").parse(fenced, TOOLS).calls == [
        {"name": "get_weather", "arguments": {"city": "Oslo"}}
    ]
    prose = 'Sure! [{"name": "get_weather", "arguments": {"city": "Oslo"}}] Anything else?'
    parsed = get_format("xlam").parse(prose, TOOLS)
    assert parsed.calls == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    assert parsed.content == "Sure!\nAnything else?"


def test_llama3_reads_python_tag_and_semicolon_separated_calls() -> None:
    text = '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}; {"name": "get_weather", "parameters": {"city": "Rome"}}'
    parsed = get_format("llama3").parse(text, TOOLS)
    assert parsed.error is None
    assert [call["arguments"]["city"] for call in parsed.calls] == ["Oslo", "Rome"]
    assert parsed.content == ""


def test_python_reads_nested_literals_json_words_and_dotted_names() -> None:
    text = 'Calling now: [math.fact(n=5), get_weather(city="it\'s \\"x\\"", days=2, extra={\'a\': [1, 2.5, None]}, flag=true)] done'
    parsed = get_format("python").parse(text, None)
    assert parsed.error is None
    assert parsed.calls == [
        {"name": "math.fact", "arguments": {"n": 5}},
        {
            "name": "get_weather",
            "arguments": {"city": 'it\'s "x"', "days": 2, "extra": {"a": [1, 2.5, None]}, "flag": True},
        },
    ]
    assert parsed.content == "Calling now: done"


def test_python_never_evaluates_code() -> None:
    parsed = get_format("python").parse("[get_weather(city=open('/etc/passwd').read())]", TOOLS)
    assert parsed.error is not None and parsed.error.kind == "invalid_syntax"
    assert parsed.calls == []


def test_deeply_nested_output_is_an_error_not_a_crash() -> None:
    for name in TEXT_FORMATS:
        parsed = get_format(name).parse("[" * 100_000, TOOLS)
        assert parsed.calls == []


def test_openai_native_calls_are_decoded_and_validated() -> None:
    fmt = get_format("openai")
    raw = [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    ]
    assert fmt.parse_native(None, raw, TOOLS) == (
        "",
        [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
        None,
    )
    bad = [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": 7}'}}]
    assert fmt.parse_native("", bad, TOOLS).error.kind == "bad_arguments"
    cut = [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Os'}}]
    assert fmt.parse_native("", cut, TOOLS).error.kind == "truncated"


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_tools_block_lists_every_tool(name: str) -> None:
    block = get_format(name).render_tools(TOOLS)
    assert '"get_weather"' in block and '"send_message"' in block
    assert "\\u003c" not in block


def test_validation_skips_tools_whose_schema_is_not_valid_json_schema() -> None:
    tools = [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "dict", "properties": {}}}}
    ]
    assert validate_calls([{"name": "f", "arguments": {"x": 1}}], tools) is None


def test_unknown_format_name_says_which_exist() -> None:
    with pytest.raises(ValueError, match="hermes"):
        get_format("chatml")
