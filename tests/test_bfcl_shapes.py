"""Every decoder gives BFCL's own verdict on every output shape, item by item.

For each of our decoders (evaluation/bfcl/handlers) and each shape real models produce, well-formed
or not (evaluation/bfcl/shapes.py: JSON lists side by side, code fences, one object per line,
<tool_call> tags without their newlines or cut off, FC arguments as dicts, prose and reasoning
around calls, trailing commas, single quotes, nested lists, ...), the answer keys' calls (correct,
and with one wrong-typed value) are rendered in that shape and scored by us and by BFCL: the
decoder's BFCL handler class, imported from the installed bfcl-eval, through the official runner's
per-item functions (evaluation/bfcl/official.py). Single-turn AST, relevance, multi-turn and memory
categories alike. Zero mismatches allowed.

Handlers of one family are checked to decode alike, each run on every shape (a provider SDK a
handler module imports but that is not installed, `mistralai` for MistralHandler, is stood in for
while it loads: decoding never touches it). Every model of BFCL's registry is checked against its
own handler class, in its registered mode, on every shape of five categories' items and multi-turn
steps; and every decoder against its handler on random near-miss outputs (hypothesis).
"""

from __future__ import annotations

import functools
import importlib.util

import pytest

pytestmark = [
    # BFCL's Llama-3.1 handler eval()s our shapes; Python warns about some of them (`[..][..]`).
    pytest.mark.filterwarnings("ignore::SyntaxWarning"),
    pytest.mark.skipif(
        any(
            importlib.util.find_spec(m) is None
            for m in (
                "bfcl_eval",
                "tree_sitter_java",
                "tree_sitter_javascript",
                "tenacity",
                "openai",
                "overrides",
            )
        ),
        reason="needs bfcl-eval, the official checker's light deps and the handlers' (openai, overrides)",
    ),
]

from evaluation.bfcl import data, scoring, synthetic  # noqa: E402
from evaluation.bfcl.handlers import FORMATS, STRICT  # noqa: E402
from evaluation.bfcl.shapes import CANONICAL, PROSE, SHAPES, render  # noqa: E402

AST_CATEGORIES = [c for c in data.NON_LIVE + data.LIVE if "relevance" not in c]
RELEVANCE_CATEGORIES = [c for c in data.NON_LIVE + data.LIVE if "relevance" in c]
ITEMS_PER_CATEGORY = 2
VARIANTS = ("gold", "wrong_type")


def _items(category: str, count: int) -> list[tuple[data.Entry, object]]:
    entries, answers = data.load_entries(category), data.load_answers(category)
    stride = max(1, len(entries) // count)
    return list(zip(entries, answers, strict=False))[::stride][:count]


def _named(calls, underscore: bool):
    return [(name.replace(".", "_") if underscore else name, args) for name, args in calls]


def _single_turn_cases(category: str, underscore: bool):
    """(entry, answer, variant, calls) for a category's sampled items."""
    language = data.language_of(category)
    for entry, answer in _items(category, ITEMS_PER_CATEGORY):
        if "relevance" in category:
            yield entry, answer, "call", _named(synthetic._relevance_calls(entry), underscore)
            continue
        for variant in VARIANTS:
            calls = synthetic._mutate(variant, synthetic._gold_calls(answer))
            if language != "python":
                docs = {f["name"]: f for f in entry.functions}
                calls = [
                    (n, synthetic._source_args(a, docs.get(n, {"parameters": {"properties": {}}}), language))
                    for n, a in calls
                ]
            yield entry, answer, variant, _named(calls, underscore)


def _multi_turn_row(entry, answer, shape: str, underscore: bool):
    docs = {f["name"]: f for f in entry.functions}
    docs.update({f["name"]: f for held in entry.missed_functions.values() for f in held})
    turns = []
    for gold_turn in answer:
        calls = _named(synthetic._turn_calls(gold_turn, docs), underscore)
        turns.append(([render(shape, calls)] if calls else []) + [PROSE])
    return turns


def _memory_row(entry, answer, shape: str, underscore: bool):
    reader = next(f["name"] for f in entry.functions if "retrieve" in f["name"])
    message = repr({"answer": answer[0], "context": "from my memory"})
    return [[render(shape, _named([(reader, {})], underscore)), message]]


def _mismatches(fmt: str) -> tuple[list[tuple], int, list]:
    from evaluation.bfcl.official import OfficialScorer

    underscore = fmt == "json"
    mismatches, compared, crashes = [], 0, []
    for shape in SHAPES:
        official = OfficialScorer(fmt, f"shapes-{fmt}-{shape}")
        cases = []
        for category in AST_CATEGORIES + RELEVANCE_CATEGORIES:
            for entry, answer, variant, calls in _single_turn_cases(category, underscore):
                cases.append((category, entry, answer, variant, render(shape, calls)))
        for entry, answer in _items("multi_turn_base", ITEMS_PER_CATEGORY):
            cases.append(
                ("multi_turn_base", entry, answer, "gold", _multi_turn_row(entry, answer, shape, underscore))
            )
        for entry, answer in _items("memory_kv", ITEMS_PER_CATEGORY):
            cases.append(("memory_kv", entry, answer, "gold", _memory_row(entry, answer, shape, underscore)))
        for category, entry, answer, variant, raw in cases:
            prompts, answers = official.entries(category)
            index = next(k for k, p in enumerate(prompts) if p["id"] == entry.id)
            theirs = official.verdict(category, prompts[index], raw, answers[index] if answers else None)
            ours = scoring.score_item(entry, raw, answer, fmt, underscore)
            compared += 1
            if ours.valid != theirs:
                mismatches.append(
                    (shape, category, entry.id, variant, ours.valid, theirs, ours.error_type, ours.error)
                )
        crashes += [(shape, *c) for c in official.crashes]
    return mismatches, compared, crashes


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_shape_gets_bfcls_verdict(fmt):
    mismatches, compared, crashes = _mismatches(fmt)
    assert compared > 1000
    assert not mismatches, (
        f"{len(mismatches)} of {compared} verdicts differ from BFCL's, e.g. {mismatches[:4]}"
    )
    # Where BFCL's own code raised (its run would stop), we must have failed the item too (checked above).
    print(f"{fmt}: {compared} verdicts agree; BFCL raised on {len(crashes)}")


def test_shapes_exercise_both_verdicts():
    """The matrix is not vacuous: for each decoder some shapes pass and some fail."""
    entry, answer = _items("simple_python", 1)[0]
    calls = synthetic._gold_calls(answer)
    for fmt, decoder in STRICT.items():
        underscore = fmt == "json"
        named = _named(calls, underscore)
        verdicts = {
            s: scoring.score_item(entry, render(s, named), answer, fmt, underscore).valid for s in SHAPES
        }
        assert any(verdicts.values()) and not all(verdicts.values()), (fmt, decoder.summary)


# ---------------------------------------------------------------- one family, one decoding


def _outcome(decode, method: str, raw) -> str:
    """What BFCL's runner makes of a decode: a failure, an output not in the checker's shape and an
    empty execution list all score as "no call"; anything else by its value."""
    from evaluation.bfcl.decode import is_checker_shape
    from evaluation.bfcl.handlers.execution import is_empty

    try:
        output = decode(raw)
    except Exception:  # the official code's failure is an outcome too
        return "no call"
    if method == "decode_execute":
        return "no call" if type(output) is list and is_empty(output) else repr(output)
    return repr(output) if is_checker_shape(output) else "no call"


def _bfcl_decode(handler, method: str, language: str = "PYTHON"):
    from evaluation.bfcl.official import load

    if method == "decode_execute":
        return lambda raw: handler.decode_execute(raw, has_tool_call_tag=False)
    return_format = load().ReturnFormat[language]
    return lambda raw: handler.decode_ast(raw, return_format, False)


def _our_decode(decoder, method: str, language: str = "PYTHON"):
    if method == "decode_execute":
        return decoder.decode_execute
    return lambda raw: decoder.decode_ast(raw, language.lower())


@pytest.mark.parametrize("fmt", [f for f in FORMATS if len(STRICT[f].handlers) > 1])
def test_every_handler_of_a_family_decodes_alike(fmt):
    from evaluation.bfcl.official import load_handler

    decoder = STRICT[fmt]
    reference = load_handler(decoder.handlers[0], decoder.is_fc_model)
    entry, answer = _items("parallel_multiple", 1)[0]
    calls = synthetic._gold_calls(answer)
    for spec in decoder.handlers[1:]:
        other = load_handler(spec, decoder.is_fc_model)  # provider SDKs not installed are stood in for
        for shape in SHAPES:
            raw = render(shape, calls)
            for method in ("decode_ast", "decode_execute"):
                decoded = _outcome(_bfcl_decode(other, method), method, raw)
                assert decoded == _outcome(_bfcl_decode(reference, method), method, raw), (
                    spec,
                    shape,
                    method,
                )


# ---------------------------------------------------------------- every model in BFCL's registry

# Items whose gold calls are rendered in every shape: each language, parallel calls, a no-call item.
REGISTRY_CATEGORIES = (
    "simple_python",
    "simple_java",
    "simple_javascript",
    "parallel_multiple",
    "live_multiple",
)


def _registry_names() -> list[str]:
    from evaluation.bfcl.registry import bfcl_registry

    return sorted(bfcl_registry()) if data.is_available() else []


@functools.cache
def _sample_outputs() -> list[tuple[str, object]]:
    """(language, raw) for single-turn items and (None, raw) for multi-turn steps, in every shape."""
    outputs: list[tuple[str, object]] = []
    for category in REGISTRY_CATEGORIES:
        language = data.language_of(category).upper()
        for _entry, _answer, variant, calls in _single_turn_cases(category, underscore=False):
            if variant == "gold":
                outputs += [(language, render(shape, calls)) for shape in SHAPES]
    entry, answer = _items("multi_turn_base", 1)[0]
    for shape in SHAPES:
        outputs += [(None, step) for turn in _multi_turn_row(entry, answer, shape, False) for step in turn]
    return outputs


_OUTCOMES: dict[tuple[str, bool], list[str]] = {}


def _bfcl_outcomes(spec: str, is_fc_model: bool) -> list[str]:
    """BFCL's handler class's outcome on every sampled output (cached per class and mode)."""
    from evaluation.bfcl.official import load_handler

    if (spec, is_fc_model) not in _OUTCOMES:
        handler = load_handler(spec, is_fc_model)
        _OUTCOMES[spec, is_fc_model] = [
            _outcome(_bfcl_decode(handler, "decode_ast", lang), "decode_ast", raw)
            if lang
            else _outcome(_bfcl_decode(handler, "decode_execute"), "decode_execute", raw)
            for lang, raw in _sample_outputs()
        ]
    return _OUTCOMES[spec, is_fc_model]


@pytest.mark.parametrize("name", _registry_names())
def test_every_registered_model_decodes_as_its_bfcl_handler(name):
    """Each model BFCL registers is read by one of our decoders exactly as its own handler class (in
    its registered mode) reads it — or, should a later bfcl-eval add a family we lack, refused."""
    from evaluation.bfcl.registry import bfcl_registry, effective_mode, handler_classes, model_decoder

    model = bfcl_registry()[name]
    fmt = model_decoder(model)
    assert fmt is not None, f"{name}: BFCL's {model.handler} has no decoder here"
    mode = effective_mode(model.handler, model.is_fc_model)
    theirs = _bfcl_outcomes(handler_classes()[model.handler].spec, mode)
    decoder = STRICT[fmt]
    ours = [
        _outcome(_our_decode(decoder, "decode_ast", lang), "decode_ast", raw)
        if lang
        else _outcome(_our_decode(decoder, "decode_execute"), "decode_execute", raw)
        for lang, raw in _sample_outputs()
    ]
    differ = [(i, o, t) for i, (o, t) in enumerate(zip(ours, theirs, strict=True)) if o != t]
    assert not differ, (
        f"{name} ({model.handler}, decoded as {fmt}): {len(differ)} outcomes differ, e.g. {differ[:3]}"
    )
    assert any(t != "no call" for t in theirs) and any(t == "no call" for t in theirs)


# ---------------------------------------------------------------- random text, every family

# Pieces of every family's syntax (no `*`, `**` or `<<`: BFCL eval()s some outputs, and those could
# make it compute for hours).
_PIECES = [
    "[", "]", "{", "}", "(", ")", ":", ",", ";", "\n", " ", "'", '"', "`", "```", "```json", "```python",
    '"name"', '"arguments"', '"parameters"', '"tool_name"', "f", "g.h", "=", "x", "1", "-2.5", "true",
    "null", "None", "<tool_call>", "</tool_call>", "<think>", "</think>", "<TOOLCALL>", "</TOOLCALL>",
    "```tool_code\n", "\n```", "<|tool_call_start|>", "<|tool_call_end|>", "<|thought_start|>",
    "<|thought_end|>", "<start_function_call>", "<end_function_call>", "call:", "<escape>", "<function_call>",
    "<|python_tag|>", "f(x=1)", '{"name": "f", "arguments": {"x": 1}}', "python", "json", "1e3", "nan",
]  # fmt: skip


def _near_misses(fmt: str):
    """Rendered calls of random names and values in the format's own shape or any other, with random
    pieces of syntax put in (most of what a model writes is almost right), or token soups."""
    from hypothesis import strategies as st

    values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-1000, 1000)
        | st.floats(allow_nan=False)
        | st.text(max_size=6),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
        ),
        max_leaves=8,
    )
    calls = st.lists(
        st.tuples(
            st.sampled_from(["f", "g.h", "a_b"]),
            st.dictionaries(st.sampled_from(["x", "y"]), values, max_size=2),
        ),
        min_size=1,
        max_size=3,
    )
    text_shapes = sorted(name for name in SHAPES if isinstance(render(name, [("f", {"x": 1})]), str))
    own = [CANONICAL[fmt]] if CANONICAL[fmt] in text_shapes else text_shapes

    @st.composite
    def near_miss(draw):
        raw = render(draw(st.sampled_from(own) | st.sampled_from(text_shapes)), draw(calls))
        for _ in range(draw(st.integers(0, 2))):
            at = draw(st.integers(0, len(raw)))
            cut = draw(st.integers(0, 3))
            raw = raw[:at] + draw(st.sampled_from(_PIECES)) + raw[at + cut :]
        return raw

    soup = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)
    return near_miss() | soup


@pytest.mark.parametrize("fmt", FORMATS)
def test_random_text_gets_bfcls_outcome(fmt):
    """Beyond the rendered shapes: near-miss outputs and token soups of every family's syntax decode
    as BFCL decodes them."""
    from hypothesis import HealthCheck, given, settings

    from evaluation.bfcl.official import load_handler

    decoder = STRICT[fmt]
    handler = load_handler(decoder.handlers[0], decoder.is_fc_model)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(raw=_near_misses(fmt))
    def check(raw):
        for method in ("decode_ast", "decode_execute"):
            ours = _outcome(_our_decode(decoder, method), method, raw)
            assert ours == _outcome(_bfcl_decode(handler, method), method, raw), (method, raw)

    check()
