"""BFCL's decoders on their own: each family's acceptance rules, bounded work, and the promise that
only DecodeError ever leaves a decoder, whatever the input (hypothesis).

Verdict-for-verdict agreement with BFCL's handlers on realistic shapes is tests/test_bfcl_shapes.py.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluation.bfcl.decode import decode_ast, has_call
from evaluation.bfcl.handlers import FORMATS, LENIENT, STRICT, DecodeError, calls_from_strings, get_decoder
from evaluation.bfcl.handlers.literals import MAX_BITS, TooLarge
from evaluation.bfcl.shapes import SHAPES, render

DECODERS = [*STRICT.values(), *LENIENT.values()]
DECODER_IDS = [f"{d.name}{'' if d.strict else '-lenient'}" for d in DECODERS]

# Inputs from the reliability audit (issue 20) and others that stress every parser.
ADVERSARIAL = [
    "f(x=(10**4000)**4000)",
    "[f(x=9**9**9)]",
    "f(x='a'*10**9)",
    "f(x=[0]*10**10)",
    "f(x=1<<10**9)",
    "f(x='%0999999999d' % 1)",
    "f(x='%*d' % (10**9, 1))",
    "f(x=10**4000*10**4001)",
    "f(x=0x" + "f" * 20000 + ")",
    "f(x=" + "9" * 5000 + ")",
    "f(a={[1]: 2})",
    "f(a={{}: 1})",
    "f(a={**b})",
    "f(x=...)",
    "f(x=-'a')",
    "f(x=not None)",
    "f(x=2.0**10000)",
    "f(x=1/0)",
    "f(x=lambda: 1)",
    "f(x=[i for i in range(10)])",
    "a." * 3000 + "f(x=1)",
    "f(x=" + "a." * 3000 + "b)",
    "[" * 5000 + "]" * 5000,
    "{" * 5000 + "}" * 5000,
    '[{"name": "f", "arguments": {"x": ' + "1" * 5000 + "}}]",
    '[{"name": "f", "arguments": ' + "[" * 3000 + "]" * 3000 + "}]",
    "<tool_call>\n" + '{"name": "f", "arguments": {"x": ' + "1" * 5000 + "}}\n</tool_call>",
    '{"name": "f", "parameters": {"x": (10**4000)**4000}}',
    '{"name": "f", "parameters": {"x": ' + "[" * 3000 + "]" * 3000 + "}}",
    '<function_call> {"name": 5, "arguments": []}',
    '[{"name": ["f"], "arguments": {}}]',
    '[{"name": {"a": 1}, "arguments": {}}]',
    '{"tool_calls": 5}',
    "\ud800",
    "f(x='\ud800')",
    "\x00",
    "",
]
STRUCTURE = [
    "[", "]", "{", "}", "(", ")", '"name"', '"arguments"', '"parameters"', ":", ",", ";", "\n", " ",
    "<tool_call>", "</tool_call>", "<function_call>", "<|python_tag|>", "```", "```json", "<think>",
    "</think>", "f", "g.h", "=", "x", "1", "-", "2.5", "'s'", '"s"', "**", "*", "%", "<<", "99999",
    "true", "null", "None", "...", "lambda", "\\u", "\\", "[1]", "new int[]{1}", "`",
]  # fmt: skip
model_like_text = st.lists(st.sampled_from(STRUCTURE), max_size=40).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
calls = st.lists(
    st.tuples(
        st.sampled_from(["f", "math.add", "a_b", ""]),
        st.dictionaries(st.sampled_from(["x", "y", "in"]), json_values, max_size=3),
    ),
    max_size=3,
)


def _only_decode_errors(decoder, raw) -> None:
    """Decode every way the scorer does: DecodeError is the one failure allowed."""
    for language in ("python", "java", "javascript"):
        with contextlib.suppress(DecodeError):
            decoder.decode_ast(raw, language)
    with contextlib.suppress(DecodeError):
        calls_from_strings(decoder.decode_execute(raw))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("decoder", DECODERS, ids=DECODER_IDS)
@pytest.mark.parametrize("raw", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_inputs_raise_only_decode_errors(decoder, raw):
    _only_decode_errors(decoder, raw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=model_like_text | st.text(max_size=60))
@pytest.mark.parametrize("decoder", DECODERS, ids=DECODER_IDS)
def test_random_text_raises_only_decode_errors(decoder, raw):
    _only_decode_errors(decoder, raw)


@settings(max_examples=100, deadline=None)
@given(raw=json_values)
@pytest.mark.parametrize("decoder", DECODERS, ids=DECODER_IDS)
def test_random_stored_values_raise_only_decode_errors(decoder, raw):
    """Result files hold any JSON value where the text or list should be."""
    _only_decode_errors(decoder, raw)


@settings(max_examples=60, deadline=None)
@given(call_list=calls, shape=st.sampled_from(sorted(SHAPES)))
@pytest.mark.parametrize("decoder", DECODERS, ids=DECODER_IDS)
def test_every_shape_of_random_calls_raises_only_decode_errors(decoder, call_list, shape):
    _only_decode_errors(decoder, render(shape, call_list))


# ---------------------------------------------------------------- bounded work (issue 20)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "text",
    ["f(x=(10**4000)**4000)", "f(x=9**9**9)", "f(x='a'*10**9)", "f(x=1<<10**9)", "f(x='%0999999999d' % 1)"],
)
def test_arithmetic_past_the_bounds_is_not_computed(text):
    """BFCL evaluates these (20 s for the first, 1 GB for the third); we stand in a value that
    matches nothing, so the call still counts as a call, as it does for BFCL."""
    ((name, args),) = (next(iter(c.items())) for c in decode_ast(text, "python"))
    assert name == "f" and isinstance(args["x"], TooLarge)
    assert has_call(decode_ast(text, "python"))
    with pytest.raises(DecodeError):  # it cannot be written back as an argument to run
        calls_from_strings(get_decoder("python").decode_execute(text))


def test_arithmetic_within_the_bounds_is_computed():
    assert decode_ast("f(x=2**16, y=(10**400)//10**399, z='ab'*3, w=-5 % 3)", "python") == [
        {"f": {"x": 65536, "y": 10, "z": "ababab", "w": 1}}
    ]
    (call,) = decode_ast(f"f(x=2**{MAX_BITS - 1})", "python")
    assert call["f"]["x"] == 2 ** (MAX_BITS - 1)


def test_a_product_too_long_to_print_fails_its_item_not_the_run():
    """An 8,001-digit int decodes (BFCL's does too), then fails the check instead of raising
    inside an error message, and cannot be run in a multi-turn step (its repr raises, as in BFCL)."""
    from evaluation.bfcl import data, scoring, synthetic

    entry, answer = data.load_entries("simple_python")[0], data.load_answers("simple_python")[0]
    ((name, gold),) = synthetic._gold_calls(answer)
    first, *rest = gold
    arguments = [f"{first}=10**4000*10**4000", *(f"{k}={gold[k]!r}" for k in rest)]
    raw = f"[{name}({', '.join(arguments)})]"
    assert scoring.score_item(entry, synthetic.render([(name, gold)], "python"), answer, "python").valid
    verdict = scoring.score_item(entry, raw, answer, "python")
    assert not verdict.valid and verdict.error_type == "value_error:others", verdict
    with pytest.raises(DecodeError):
        calls_from_strings(get_decoder("python").decode_execute(raw))


@pytest.mark.parametrize(
    "text", ["f(a={[1]: 2})", "a." * 3000 + "f(x=1)", "f(x=" + "a." * 3000 + "b)", "f(x=-'a')"]
)
def test_python_decoder_failures_are_decode_errors(text):
    with pytest.raises(DecodeError):
        decode_ast(text, "python")


# ---------------------------------------------------------------- each family's acceptance rules


ONE = [("f", {"x": 1})]
TWO = [("f", {"x": 1}), ("g", {"y": "s"})]


def _decodes(fmt: str, raw) -> bool:
    try:
        return has_call(decode_ast(raw, fmt))
    except DecodeError:
        return False


@pytest.mark.parametrize(
    ("fmt", "accepted", "refused"),
    [
        ("xlam", ["json_list", "json_object", "json_semicolons", "json_list_indented"],
         ["json_two_lists", "json_fenced", "json_per_line", "json_prose_around", "json_cut_off", "tool_call"]),
        ("hermes", ["tool_call", "tool_call_after_prose", "tool_call_reasoning"],
         ["tool_call_no_newlines", "tool_call_fenced", "tool_call_string_arguments", "json_list"]),
        ("json", ["fc_strings", "fc_one_dict_many_keys"], ["fc_dicts", "fc_bad_json", "fc_text_list", "prose"]),
        ("decoded", ["fc_dicts"], ["fc_strings", "json_list"]),
        ("llama3", ["params_object", "params_semicolons", "params_python_tag", "params_python_literal", "params_list"],
         ["params_per_line", "json_list"]),
        ("hammer", ["json_list", "json_fenced_bare"], ["json_object", "json_fenced", "json_semicolons"]),
        ("granite", ["function_call_tags"], ["json_list", "prose"]),
        ("python", ["python_list", "python_bare", "python_multiline"],
         ["python_fenced", "python_prose_around", "python_quoted", "python_two_lists", "json_list"]),
        ("phi", ["python_fenced", "python_fenced_json", "python_list"], ["python_prose_around"]),
    ],
)  # fmt: skip
def test_each_family_accepts_what_its_handler_accepts(fmt, accepted, refused):
    """A few of BFCL's rules spelled out (the shape agreement test holds all of them)."""
    for shape in accepted:
        assert _decodes(fmt, render(shape, TWO if shape != "json_object" else ONE)), (fmt, shape)
    for shape in refused:
        assert not _decodes(fmt, render(shape, TWO)), (fmt, shape)


def test_hermes_reads_only_complete_tagged_blocks():
    """A cut-off last <tool_call> drops that call; the remaining ones still decode (qwen_fc.py)."""
    assert decode_ast(render("tool_call_cut_off", TWO), "hermes") == [{"f": {"x": 1}}]


def test_fc_dict_arguments_fail_the_ast_decode_but_run_in_multi_turn():
    """BFCL's FC decode_ast json.loads each argument string (a dict fails); its decode_execute
    (convert_to_function_call) takes a dict as it is."""
    with pytest.raises(DecodeError):
        decode_ast([{"f": {"x": 1}}], "json")
    assert [c.name for c in calls_from_strings(get_decoder("json").decode_execute([{"f": {"x": 1}}]))] == [
        "f"
    ]


def test_lenient_reads_what_strict_refuses():
    for fmt, shape in (("xlam", "json_fenced"), ("hermes", "tool_call_no_newlines"), ("json", "fc_dicts")):
        raw = render(shape, TWO)
        assert not _decodes(fmt, raw)
        assert has_call(get_decoder(fmt, lenient=True).decode_ast(raw, "python"))


def test_unknown_format_and_missing_lenient_variant_name_every_choice():
    with pytest.raises(ValueError) as unknown:
        get_decoder("nope")
    assert all(name in str(unknown.value) for name in FORMATS)
    with pytest.raises(ValueError, match="no forgiving parser") as missing:
        get_decoder("granite", lenient=True)
    assert all(name in str(missing.value) for name in LENIENT)


def test_execution_strings_keep_bfcls_round_trip():
    """Values whose repr does not read back fail when run (BFCL's eval raises), not when decoded."""
    (call,) = calls_from_strings(
        get_decoder("xlam").decode_execute('[{"name": "f", "arguments": {"x": NaN}}]')
    )
    assert call.name == "f" and call.error
    (call,) = calls_from_strings(get_decoder("python").decode_execute("[f(x={'a': {'b': 1}})]"))
    assert call.error  # a dict of dicts is written as a nested call
    with pytest.raises(DecodeError):  # an empty dict has no name to write the nested call with
        get_decoder("python").decode_execute("[f(x={})]")
    (call,) = calls_from_strings(get_decoder("json").decode_execute([{"cd": json.dumps({"folder": "tmp"})}]))
    assert (call.name, call.kwargs, call.error) == ("cd", {"folder": "tmp"}, "")


@pytest.mark.skipif(importlib.util.find_spec("tree_sitter_java") is None, reason="needs tree-sitter-java")
def test_java_and_javascript_take_the_first_call():
    assert decode_ast('[A.f(x="1"); B.g(y="2")]', "python", "java") == [{"A.f": {"x": "1"}}]
    assert decode_ast('[A.f(x=B.g(y="2"))]', "python", "java") == [{"A.f": {"x": 'B.g(y="2")'}}]
    with pytest.raises(DecodeError):  # two calls in a comma list are not Java
        decode_ast('[A.f(x="1"), B.g(y="2")]', "python", "java")
    assert decode_ast("[f(x='1'); g(y=2)]", "python", "javascript") == [{"f": {"x": "1"}}]
    assert decode_ast("[int x = 1;]", "python", "java") == {}  # no call: not the checker's shape
    assert decode_ast("[var a = 1]", "python", "javascript") is None
    with pytest.raises(DecodeError):
        decode_ast("[f(x=1, x=2)]", "python", "java")
