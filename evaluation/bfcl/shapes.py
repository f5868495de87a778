"""Output shapes real models produce, well-formed and not, rendered from a list of calls.

Used by the decoder agreement test (every decoder, on every shape, gives BFCL's verdict) and by
the decoders' property tests. A shape turns ``[(name, arguments)]`` into a raw result as a result
file would hold it: text for the text formats, a list for the FC layouts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from evaluation.bfcl.handlers.functiongemma import render_calls as _functiongemma

Calls = list[tuple[str, dict[str, Any]]]


def _objects(calls: Calls, key: str = "arguments") -> list[dict[str, Any]]:
    return [{"name": name, key: args} for name, args in calls]


def _json_list(calls: Calls, key: str = "arguments", **dumps: Any) -> str:
    return json.dumps(_objects(calls, key), **dumps)


def _each(calls: Calls, key: str = "arguments") -> list[str]:
    return [json.dumps(o) for o in _objects(calls, key)]


def _python(calls: Calls) -> list[str]:
    return [f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})" for name, args in calls]


def _without_last(text: str, token: str) -> str:
    at = text.rfind(token)
    return text if at < 0 else text[:at] + text[at + len(token) :]


def _minicpm(calls: Calls, thought: bool = True, fence: bool = True) -> str:
    body = "\n".join(_python(calls))
    if fence:
        body = f"```python\n{body}\n```"
    prefix = "<|thought_start|>\nI will call the function.\n<|thought_end|>\n" if thought else ""
    return f"{prefix}<|tool_call_start|>\n{body}\n<|tool_call_end|>\nDone."


def _hermes(calls: Calls) -> list[str]:
    return [f"<tool_call>\n{text}\n</tool_call>" for text in _each(calls)]


PROSE = "I am sorry, none of the available functions can answer this question."
THINK = "<think>\nThe user wants this; I will call the function.\n</think>\n\n"

SHAPES: dict[str, Callable[[Calls], Any]] = {
    # JSON objects {"name", "arguments"} in text
    "json_list": _json_list,
    "json_list_indented": lambda c: _json_list(c, indent=2),
    "json_object": lambda c: _each(c)[0] if c else "{}",
    "json_two_lists": lambda c: _json_list(c[:1]) + _json_list(c[1:] or c[:1]),
    "json_fenced": lambda c: f"```json\n{_json_list(c)}\n```",
    "json_fenced_bare": lambda c: f"```\n{_json_list(c)}\n```",
    "json_per_line": lambda c: "\n".join(_each(c)),
    "json_semicolons": lambda c: "; ".join(_each(c)),
    "json_prose_around": lambda c: f"Sure, here you go:\n{_json_list(c)}\nLet me know if you need more.",
    "json_reasoning": lambda c: THINK + _json_list(c),
    "json_trailing_comma": lambda c: _json_list(c)[:-1] + ",]",
    "json_single_quotes": lambda c: str(_objects(c)),
    "json_nested_list": lambda c: "[" + _json_list(c) + "]",
    "json_cut_off": lambda c: _json_list(c)[:-7],
    "json_string_arguments": lambda c: json.dumps([{"name": n, "arguments": json.dumps(a)} for n, a in c]),
    # Llama 3.1's {"name", "parameters"}
    "params_object": lambda c: _each(c, "parameters")[0] if c else "{}",
    "params_semicolons": lambda c: "; ".join(_each(c, "parameters")),
    "params_python_tag": lambda c: "<|python_tag|>" + "; ".join(_each(c, "parameters")),
    "params_list": lambda c: _json_list(c, "parameters"),
    "params_python_literal": lambda c: repr(_objects(c, "parameters")),
    "params_per_line": lambda c: "\n".join(_each(c, "parameters")),
    # Hermes / Qwen-FC tags
    "tool_call": lambda c: "\n".join(_hermes(c)),
    "tool_call_no_newlines": lambda c: "".join(f"<tool_call>{t}</tool_call>" for t in _each(c)),
    "tool_call_cut_off": lambda c: "\n".join(_hermes(c))[: -len("</tool_call>")],
    "tool_call_last_unclosed": lambda c: (
        "\n".join(_hermes(c)[:-1] + [f"<tool_call>\n{_each(c)[-1]}"]) if c else ""
    ),
    "tool_call_list_inside": lambda c: f"<tool_call>\n{_json_list(c)}\n</tool_call>",
    "tool_call_fenced": lambda c: "\n".join(
        f"<tool_call>\n```json\n{t}\n```\n</tool_call>" for t in _each(c)
    ),
    "tool_call_after_prose": lambda c: "Let me look that up.\n" + "\n".join(_hermes(c)),
    "tool_call_reasoning": lambda c: THINK + "\n".join(_hermes(c)),
    "tool_call_string_arguments": lambda c: "\n".join(
        f"<tool_call>\n{json.dumps({'name': n, 'arguments': json.dumps(a)})}\n</tool_call>" for n, a in c
    ),
    "tool_call_params": lambda c: "\n".join(
        f"<tool_call>\n{t}\n</tool_call>" for t in _each(c, "parameters")
    ),
    # Other families' tags
    "function_call_tags": lambda c: " ".join(f"<function_call> {t}" for t in _each(c)),
    "function_call_prose": lambda c: "I will call it. " + " ".join(f"<function_call> {t}" for t in _each(c)),
    "phi_tags": lambda c: f"<|tool_call|>{_json_list(c)}<|/tool_call|>",
    "tool_call_fenced_list": lambda c: f"<tool_call>\n```json\n{_json_list(c)}\n```\n</tool_call>",
    "glm_lines": lambda c: f"{c[0][0]}\n{json.dumps(c[0][1])}" if c else "",
    "glm_one_line": lambda c: c[0][0] if c else "",
    "functiongemma": _functiongemma,
    "functiongemma_prose": lambda c: "Sure, calling it. " + _functiongemma(c) + " Done.",
    "functiongemma_cut_off": lambda c: _functiongemma(c)[: -len("<end_function_call>")],
    "functiongemma_escape_unclosed": lambda c: _without_last(_functiongemma(c), "<escape>"),
    # Python call syntax in families' wrappers
    "toolcall_tags": lambda c: "<TOOLCALL>[" + ", ".join(_python(c)) + "]</TOOLCALL>",
    "toolcall_unclosed": lambda c: "<TOOLCALL>[" + ", ".join(_python(c)) + "]",
    "python_tool_code": lambda c: "```tool_code\n[" + ", ".join(_python(c)) + "]\n```",
    "minicpm_tool_call": _minicpm,
    "minicpm_no_thought": lambda c: _minicpm(c, thought=False),
    "minicpm_unfenced": lambda c: _minicpm(c, fence=False),
    # Python call syntax
    "python_list": lambda c: "[" + ", ".join(_python(c)) + "]",
    "python_bare": lambda c: ", ".join(_python(c)),
    "python_fenced": lambda c: "```python\n[" + ", ".join(_python(c)) + "]\n```",
    "python_fenced_json": lambda c: "```json\n[" + ", ".join(_python(c)) + "]\n```",
    "python_prose_around": lambda c: "Here it is: [" + ", ".join(_python(c)) + "]",
    "python_reasoning": lambda c: THINK + "[" + ", ".join(_python(c)) + "]",
    "python_quoted": lambda c: "'[" + ", ".join(_python(c)) + "]'",
    "python_multiline": lambda c: "[\n  " + ",\n  ".join(_python(c)) + "\n]",
    "python_trailing_comma": lambda c: "[" + ", ".join(_python(c)) + ",]",
    "python_nested_list": lambda c: "[[" + ", ".join(_python(c)) + "]]",
    "python_two_lists": lambda c: "[" + "][".join(_python(c)) + "]",
    "python_json_literals": lambda c: (
        "[" + ", ".join(_python(c)).replace("True", "true").replace("None", "null") + "]"
    ),
    # Stored FC lists
    "fc_strings": lambda c: [{n: json.dumps(a)} for n, a in c],
    "fc_dicts": lambda c: [{n: a} for n, a in c],
    "fc_one_dict": lambda c: {n: a for n, a in c[:1]},
    "cohere_list": lambda c: [{"tool_name": n, "parameters": a} for n, a in c],
    "name_arguments_list": lambda c: [{"name": n, "arguments": a} for n, a in c],
    "name_arguments_object": lambda c: {"name": c[0][0], "arguments": c[0][1]} if c else {},
    "fc_one_dict_many_keys": lambda c: [{n: json.dumps(a) for n, a in c}],
    "fc_not_a_list": lambda c: {n: json.dumps(a) for n, a in c},
    "fc_bad_json": lambda c: [{n: json.dumps(a)[:-1]} for n, a in c],
    "fc_empty_entry": lambda c: [{}],
    "fc_empty": lambda c: [],
    "fc_text_list": lambda c: [PROSE],
    # No calls at all
    "prose": lambda c: PROSE,
    "empty_text": lambda c: "",
    "empty_list_text": lambda c: "[]",
}


# How each format's models write calls when they write them well (what BFCL's handler expects).
CANONICAL = {
    "python": "python_list",
    "phi": "python_list",
    "json": "fc_strings",
    "decoded": "fc_dicts",
    "xlam": "json_list",
    "hammer": "json_list",
    "hermes": "tool_call",
    "llama3": "params_semicolons",
    "granite": "function_call_tags",
    "gemini": "fc_dicts",
    "gemini_prompt": "python_tool_code",
    "cohere": "cohere_list",
    "mining": "name_arguments_list",
    "nemotron": "toolcall_tags",
    "gorilla": "python_bare",
    "minicpm": "minicpm_tool_call",
    "bitagent": "json_list",
    "falcon": "tool_call_list_inside",
    "thinkagent": "json_reasoning",
    "glm": "glm_lines",
    "functiongemma": "functiongemma",
}


def render(shape: str, calls: Calls) -> Any:
    return SHAPES[shape](calls)
