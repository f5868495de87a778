"""How BFCL reads Java and JavaScript argument values, which models pass as source-text strings.

A Java ``long`` must be written ``5L``, a ``float`` ``2.5f``; a JavaScript ``Bigint`` ``7n``; an
array ``new int[]{1, 2}`` or ``[1, 2]``. Text that does not have the expected shape stays a
string, which then fails the type or value check. The patterns below are BFCL's (the scores must
agree with the official checker), implemented here independently.
"""

from __future__ import annotations

import re
from typing import Any

JAVA_TYPES: dict[str, type] = {
    "byte": int,
    "short": int,
    "integer": int,
    "long": int,
    "float": float,
    "double": float,
    "boolean": bool,
    "char": str,
    "String": str,
    "any": str,
    "Array": list,
    "ArrayList": list,
    "Queue": list,
    "Stack": list,
    "Set": set,
    "HashMap": dict,
    "Hashtable": dict,
}
JS_TYPES: dict[str, type] = {
    "String": str,
    "integer": int,
    "float": float,
    "Bigint": int,
    "Boolean": bool,
    "dict": dict,
    "array": list,
    "any": str,
}

_INT = re.compile(r"^-?\d+$")
_JAVA_FLOAT = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?[fF]$")
_JAVA_DOUBLE = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")
_JAVA_LONG = re.compile(r"^-?\d+[lL]$")
_JS_FLOAT = re.compile(r"^-?\d+(\.\d+)?$")
_JS_BIGINT = re.compile(r"^-?\d+n$")

_AS_LIST = re.compile(r"new\s+ArrayList<\w*>\(Arrays\.asList\((.+?)\)\)")
_ADD_BLOCK = re.compile(r"new\s+ArrayList<\w*>\(\)\s*\{\{\s*(.+?)\s*\}\}", re.DOTALL)
_ADD_CALL = re.compile(r"add\((.+?)\)")
_EMPTY_LIST = re.compile(r"new\s+ArrayList<\w*>\(\)")
_ARRAY_INIT = re.compile(r"new\s+\w+\[\]\s*\{(.*?)\}")
_MAP_INIT = re.compile(r"new\s+HashMap<.*?>\s*\(\)\s*\{\s*\{?\s*(.*?)\s*\}?\s*\}", re.DOTALL)
_MAP_PUT = re.compile(r"put\(\"(.*?)\",\s*(.*?)\)")
_EMPTY_MAP = re.compile(r"new\s+HashMap<.*?>\s*\(\)")

_JS_2D = re.compile(r"\[\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\]|\bnew\s+Array\(\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\)")
_JS_1D = re.compile(r"\[(.*?)\]|\bnew\s+Array\((.*?)\)")
_JS_INNER = re.compile(r"\[(.*?)\]")
_JS_OBJECT = re.compile(r"\{(.*?)\}")
_JS_PAIR = re.compile(r"([^:]+):\s*(.*?)(?:,\s*(?=[^,]+:)|$)")


class UnsupportedType(ValueError):
    """A declared type the checker cannot convert (BFCL raises here too)."""


# ---------------------------------------------------------------- Java


def _java_literal(text: str) -> Any:
    """A Java literal whose type is not declared: bool, quoted string, long, float, number or text."""
    if text in ("true", "false"):
        return text == "true"
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if _JAVA_LONG.match(text):
        return int(text[:-1])
    if _JAVA_FLOAT.match(text):
        return float(text[:-1])
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _java_element(text: str, nested: str | None) -> Any:
    if nested in ("char", "String"):
        return text[1:-1]
    return java_value(text, nested) if nested else _java_literal(text)


def _java_list(text: str, nested: str | None) -> Any:
    found = _AS_LIST.search(text)
    if found:
        return [_java_element(part.strip(), nested) for part in found.group(1).split(",")]
    found = _ADD_BLOCK.search(text)
    if found:
        return [_java_element(m.strip(), nested) for m in _ADD_CALL.findall(found.group(1))]
    if _EMPTY_LIST.search(text):
        return []
    return text


def _java_array(text: str, nested: str | None) -> Any:
    found = _ARRAY_INIT.search(text)
    if not found:
        return text
    parts = [part.strip() for part in found.group(1).split(",") if part.strip()]
    if nested:
        return [java_value(part, nested) for part in parts]
    return [_java_literal(part) for part in parts]


def _java_map(text: str) -> Any:
    found = _MAP_INIT.search(text)
    if found:
        body = found.group(1)
        if not body.strip():
            return {}
        return {key: _java_literal(value.strip()) for key, value in _MAP_PUT.findall(body)}
    if _EMPTY_MAP.search(text):
        return {}
    return text


def java_value(text: str, declared: str, nested: str | None = None) -> Any:
    """The value a Java source string denotes for the declared type; the text itself if malformed."""
    if declared not in JAVA_TYPES:
        raise UnsupportedType(f"unsupported Java type {declared!r}")
    if declared in ("byte", "short", "integer"):
        return int(text) if _INT.match(text) else text
    if declared == "float":
        return float(text[:-1]) if _JAVA_FLOAT.match(text) else text
    if declared == "double":
        return float(text) if _JAVA_DOUBLE.match(text) else text
    if declared == "long":
        return int(text[:-1]) if _JAVA_LONG.match(text) else text
    if declared == "boolean":
        return text == "true" if text in ("true", "false") else text
    if declared in ("char", "String", "any"):
        # BFCL's char pattern can never match, so a char stays the text as written.
        return text
    if declared == "ArrayList":
        return _java_list(text, nested)
    if declared == "Array":
        return _java_array(text, nested)
    if declared == "HashMap":
        return _java_map(text)
    raise UnsupportedType(f"conversion of Java {declared} is not supported by the BFCL checker")


# ---------------------------------------------------------------- JavaScript


def _js_literal(text: str) -> Any:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if (text.startswith('"') and text.endswith('"')) or (text.startswith("'") and text.endswith("'")):
        return text[1:-1]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _js_array(code: str, nested: str | None) -> Any:
    two_d = _JS_2D.match(code)
    if two_d:
        rows = []
        for index, inner in enumerate(_JS_INNER.findall(two_d.group(0))):
            inner = inner.strip()
            if index == 0 and inner.startswith("["):
                inner = inner[1:]
            rows.append([_js_literal(part.strip()) for part in inner.split(",")])
        return rows
    one_d = _JS_1D.match(code)
    if not one_d:
        return code
    body = one_d.group(1) if one_d.group(1) is not None else one_d.group(2)
    body = (body or "").strip()
    parts = body.split(",") if body else []
    if not nested:
        return [_js_literal(part.strip()) for part in parts]
    converted = []
    for part in parts:
        part = part.strip()
        quoted = part.startswith("'") or part.startswith('"')
        converted.append(js_value(part, nested, "String" if quoted else None))
    return converted


def _js_object(code: str) -> Any:
    if code == "{}":
        return {}
    found = _JS_OBJECT.match(code)
    if not found:
        return code
    result: dict[str, Any] = {}
    for key, value in _JS_PAIR.findall(found.group(1)):
        key, value = key.strip().strip("'\""), value.strip()
        if value.startswith("[") and value.endswith("]"):
            result[key] = _js_collection(value, "array", None)
        elif value.startswith("{") and value.endswith("}"):
            result[key] = _js_collection(value, "dict", None)
        else:
            result[key] = _js_literal(value.strip("'\""))
    return result


def _js_collection(code: str, kind: str, nested: str | None) -> Any:
    code = code.strip()
    try:
        return _js_array(code, nested) if kind == "array" else _js_object(code)
    except Exception:  # BFCL keeps the text of any collection it cannot read
        return code


def js_value(text: str, declared: str, nested: str | None = None) -> Any:
    """The value a JavaScript source string denotes for the declared type; the text if malformed."""
    if declared not in JS_TYPES:
        raise UnsupportedType(f"unsupported JavaScript type {declared!r}")
    if declared == "String":
        quoted = (text.startswith('"') and text.endswith('"')) or (
            text.startswith("'") and text.endswith("'")
        )
        return text[1:-1] if quoted else text
    if declared == "integer":
        return int(text) if _INT.match(text) else text
    if declared == "float":
        return float(text) if _JS_FLOAT.match(text) else text
    if declared == "Bigint":
        return int(text[:-1]) if _JS_BIGINT.match(text) else text
    if declared == "Boolean":
        return text == "true" if text in ("true", "false") else text
    if declared in ("dict", "array"):
        return _js_collection(text, declared, nested)
    return text  # any
