"""Synthetic result files built from the answer keys: correct outputs and systematically wrong ones.

Used by the agreement test (ours vs the official checker on the same files) and by the speed
benchmark. Each variant is one "run": a result file per category, every item present once.

Variants: ``gold`` (first acceptable value of every parameter), ``wrong_type``, ``missing_param``,
``swapped`` (calls in reverse order, or two argument values exchanged), ``extra_call``,
``no_call`` (plain text), ``shouting`` (strings upper-cased and padded, which normalisation
forgives), ``int_for_float`` (integral floats written as ints, which Python typing forgives).
For multi-turn: ``gold``, ``missing_param``, ``no_call``, ``extra_call``, ``truncated``.
For memory (the answer is the last step without a call): ``gold`` (a memory lookup, then the
first possible answer in BFCL's answer format), ``padded`` (that answer upper-cased and wrapped in
punctuation, which normalisation forgives), ``wrong`` ("I do not know"), ``glued`` (the answer
run into a longer word, which whole-word matching refuses), ``call_only`` (no answer step),
``answer_then_call`` (a call after the answer: the answer still counts), ``empty_last`` (an empty
message after the answer: it counts as no answer), ``two_turns`` (not one turn),
``last_option`` (the last possible answer), ``spaced`` (the answer's punctuation written as
spaces, which passes only where no word is split).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from evaluation.bfcl import data, shapes
from evaluation.bfcl.multi_turn import parse_call_string

AST_VARIANTS = [
    "gold",
    "wrong_type",
    "missing_param",
    "swapped",
    "extra_call",
    "no_call",
    "shouting",
    "int_for_float",
]
MULTI_TURN_VARIANTS = ["gold", "missing_param", "no_call", "extra_call", "truncated"]
MEMORY_VARIANTS = [
    "gold",
    "padded",
    "wrong",
    "glued",
    "call_only",
    "answer_then_call",
    "empty_last",
    "two_turns",
    "last_option",
    "spaced",
]
NO_CALL_TEXT = "I am sorry, none of the available functions can answer this question."


def _concrete(value: Any) -> Any:
    """An answer-key value made concrete: nested dicts hold option lists, take their first option."""
    if isinstance(value, dict):
        out = {}
        for key, options in value.items():
            if isinstance(options, list) and options and options[0] != "":
                out[key] = _concrete(options[0])
        return out
    if isinstance(value, list):
        return [_concrete(v) if isinstance(v, dict) else v for v in value]
    return value


def _first_option(options: list) -> tuple[bool, Any]:
    """(present, value): the answer key's first acceptable value; absent when "" comes first."""
    if not options or options[0] == "":
        return False, None
    return True, _concrete(copy.deepcopy(options[0]))


def _gold_calls(answer: list[dict]) -> list[tuple[str, dict]]:
    calls = []
    for item in answer:
        name, options_by_param = next(iter(item.items()))
        args = {}
        for param, options in options_by_param.items():
            present, value = _first_option(options)
            if present:
                args[param] = value
        calls.append((name, args))
    return calls


def _java_text(value: Any, schema: dict) -> str:
    declared = schema.get("type", "any")
    if isinstance(value, bool):
        return "true" if value else "false"
    if declared == "long" and isinstance(value, int):
        return f"{value}L"
    if declared == "float" and isinstance(value, (int, float)):
        return f"{float(value)}f"
    if isinstance(value, list):
        items = ", ".join(
            json.dumps(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
            for v in value
        )
        if declared == "ArrayList":
            return f"new ArrayList<>(Arrays.asList({items}))"
        return f"new {schema.get('items', {}).get('type', 'Object')}[]{{{items}}}"
    if isinstance(value, dict):
        puts = " ".join(f'put("{k}", {json.dumps(v)});' for k, v in value.items())
        return f"new HashMap<String, Object>() {{{{ {puts} }}}}"
    return str(value)


def _js_text(value: Any, schema: dict) -> str:
    declared = schema.get("type", "any")
    if isinstance(value, bool):
        return "true" if value else "false"
    if declared == "Bigint" and isinstance(value, int):
        return f"{value}n"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _source_args(args: dict, function: dict, language: str) -> dict:
    schema = function["parameters"]["properties"]
    render = _java_text if language == "java" else _js_text
    return {k: render(v, schema.get(k, {})) for k, v in args.items()}


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return "not a list"
    if isinstance(value, dict):
        return [value]
    return None


def _shout(value: Any) -> Any:
    if isinstance(value, str):
        return "  " + value.upper().replace(" ", " - ") + "."
    if isinstance(value, list):
        return [_shout(v) for v in value]
    return value


def _int_for_float(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_int_for_float(v) for v in value]
    return value


def _mutate(variant: str, calls: list[tuple[str, dict]]) -> list[tuple[str, dict]] | None:
    """The variant's calls; None means "answer in plain text"."""
    calls = copy.deepcopy(calls)
    if variant == "no_call":
        return None
    if variant == "extra_call":
        return calls + calls[:1]
    if not calls:
        return calls
    name, args = calls[0]
    keys = list(args)
    if variant == "wrong_type" and keys:
        args[keys[0]] = _wrong_type(args[keys[0]])
    elif variant == "missing_param" and keys:
        del args[keys[0]]
    elif variant == "swapped":
        if len(calls) > 1:
            calls.reverse()
        elif len(keys) > 1:
            args[keys[0]], args[keys[1]] = args[keys[1]], args[keys[0]]
    elif variant == "shouting":
        calls = [(n, {k: _shout(v) for k, v in a.items()}) for n, a in calls]
    elif variant == "int_for_float":
        calls = [(n, {k: _int_for_float(v) for k, v in a.items()}) for n, a in calls]
    return calls


def render(calls: list[tuple[str, dict]] | None, fmt: str, underscore_names: bool = False) -> Any:
    """Calls as a model of the format writes them (evaluation/bfcl/shapes.py), or the no-call text."""
    if calls is None:
        return NO_CALL_TEXT
    if underscore_names:
        calls = [(n.replace(".", "_"), a) for n, a in calls]
    return shapes.render(shapes.CANONICAL[fmt], calls)


def _relevance_calls(entry: data.Entry) -> list[tuple[str, dict]]:
    function = entry.functions[0] if entry.functions else {"name": "search", "parameters": {"required": []}}
    return [(function["name"], {p: "x" for p in function.get("parameters", {}).get("required", [])})]


def _items(category: str, stride: int) -> list[tuple[data.Entry, Any]]:
    return list(zip(data.load_entries(category), data.load_answers(category), strict=False))[::stride]


def ast_results(
    category: str, variant: str, fmt: str, underscore_names: bool = False, stride: int = 1
) -> list[dict]:
    """One result file's rows for a single-turn category (every `stride`-th item)."""
    rows = []
    language = data.language_of(category)
    for entry, answer in _items(category, stride):
        if "relevance" in category:
            # For irrelevance the right answer is no call: "gold" is text, "no_call" makes a call.
            flip = "irrelevance" in category and variant in ("gold", "no_call")
            calls = _mutate("gold" if variant == "no_call" else variant, _relevance_calls(entry))
            if flip:
                calls = None if variant == "gold" else calls
        else:
            calls = _mutate(variant, _gold_calls(answer))
        if calls is not None and language != "python":
            docs = {f["name"]: f for f in entry.functions}
            calls = [
                (n, _source_args(a, docs.get(n, {"parameters": {"properties": {}}}), language))
                for n, a in calls
            ]
        rows.append({"id": entry.id, "result": render(calls, fmt, underscore_names)})
    return rows


def _turn_calls(gold_turn: list[str], docs: dict[str, dict]) -> list[tuple[str, dict]]:
    """Ground-truth calls with positional arguments named from the function doc."""
    calls = []
    for text in gold_turn:
        call = parse_call_string(text)
        names = list(docs.get(call.name, {}).get("parameters", {}).get("properties", {}))
        kwargs = dict(zip(names, call.args, strict=False))
        kwargs.update(call.kwargs)
        calls.append((call.name, kwargs))
    return calls


def multi_turn_results(category: str, variant: str, fmt: str, stride: int = 1) -> list[dict]:
    """Result rows for a multi-turn category: per turn, one step with the calls, then a text step."""
    rows = []
    for entry, answer in _items(category, stride):
        turns = []
        docs = {f["name"]: f for f in entry.functions}
        docs.update({f["name"]: f for held in entry.missed_functions.values() for f in held})
        for index, gold_turn in enumerate(answer):
            calls = _turn_calls(gold_turn, docs)
            if index == 0 and variant in ("missing_param", "no_call", "extra_call"):
                calls = _mutate(variant, calls) or []
            steps = [render(calls, fmt)] if calls else []
            turns.append(steps + [NO_CALL_TEXT])
        if variant == "truncated":
            turns = turns[:-1]
        rows.append({"id": entry.id, "result": turns})
    return rows


def _memory_steps(variant: str, answers: list[str], lookup: Any) -> list[Any]:
    answer = answers[0]
    said = {
        "padded": f"**{answer.upper()}**.",
        "wrong": "I do not know",
        "glued": f"{answer}xyz",
        "last_option": answers[-1],
        "spaced": re.sub(r"[,./\-_*^()]", " ", answer),
    }.get(variant, answer)
    message = repr({"answer": said, "context": "from my memory"})
    steps = {
        "call_only": [lookup],
        "answer_then_call": [lookup, message, lookup],
        "empty_last": [lookup, message, ""],
    }.get(variant, [lookup, message])
    return [steps, [message]] if variant == "two_turns" else [steps]


def memory_results(category: str, variant: str, fmt: str, stride: int = 1) -> list[dict]:
    """Result rows for a memory category: one turn of steps ending (or not) in an answer message."""
    rows = []
    for entry, answer in _items(category, stride):
        reader = next(f["name"] for f in entry.functions if "retrieve" in f["name"])
        lookup = render([(reader, {})], fmt)
        rows.append({"id": entry.id, "result": _memory_steps(variant, answer, lookup)})
    return rows


def results_for(
    category: str, variant: str, fmt: str, underscore_names: bool = False, stride: int = 1
) -> list[dict]:
    if category in data.MULTI_TURN:
        return multi_turn_results(category, variant, fmt, stride)
    if category in data.MEMORY:
        return memory_results(category, variant, fmt, stride)
    return ast_results(category, variant, fmt, underscore_names, stride)
