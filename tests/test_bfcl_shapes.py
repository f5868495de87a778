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
while it loads: decoding never touches it).
"""

from __future__ import annotations

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
from evaluation.bfcl.shapes import PROSE, SHAPES, render  # noqa: E402

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


@pytest.mark.parametrize("fmt", [f for f in FORMATS if len(STRICT[f].handlers) > 1])
def test_every_handler_of_a_family_decodes_alike(fmt):
    from evaluation.bfcl.decode import is_checker_shape
    from evaluation.bfcl.official import load_handler

    decoder = STRICT[fmt]
    reference = load_handler(decoder.handlers[0], decoder.is_fc_model)
    entry, answer = _items("parallel_multiple", 1)[0]
    calls = synthetic._gold_calls(answer)

    def outcome(handler, method, raw):
        """What BFCL's runner makes of the method's result: a failure and an output that is not
        in the checker's shape score alike, so they count as one outcome."""
        try:
            args = (raw, "python", False) if method == "decode_ast" else (raw, False)
            output = getattr(handler, method)(*args)
        except Exception:  # the official code's failure is an outcome too
            return "no call"
        return repr(output) if method == "decode_execute" or is_checker_shape(output) else "no call"

    for spec in decoder.handlers[1:]:
        other = load_handler(spec, decoder.is_fc_model)  # provider SDKs not installed are stood in for
        for shape in SHAPES:
            raw = render(shape, calls)
            for method in ("decode_ast", "decode_execute"):
                assert outcome(other, method, raw) == outcome(reference, method, raw), (spec, shape, method)
