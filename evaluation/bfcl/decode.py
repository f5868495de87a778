"""Turn a raw model result (as stored in a BFCL result file) into function calls.

Every format is one BFCL handler family's decoding (:mod:`evaluation.bfcl.handlers`), strict by
default; ``lenient=True`` uses the LLM runtime's forgiving parsers where the family has one.
Decoded single-turn output is whatever the family's ``decode_ast`` gives; the checker needs
BFCL's shape ``[{name: {param: value}}, ...]`` (:func:`is_checker_shape`).
"""

from __future__ import annotations

from typing import Any

from evaluation.bfcl.handlers import FORMATS, Decoded, DecodeError, get_decoder
from evaluation.bfcl.handlers.fc import decode_ast_json as decode_json
from evaluation.bfcl.handlers.prompt import decode_python, decode_source_calls

PYTHON = "python"
JSON = "json"

__all__ = [
    "FORMATS",
    "JSON",
    "PYTHON",
    "Decoded",
    "DecodeError",
    "contains_call",
    "decode_ast",
    "decode_json",
    "decode_python",
    "decode_source_calls",
    "has_call",
    "is_checker_shape",
]


def decode_ast(
    raw: Any, fmt: str, language: str = "python", tools: list[dict] | None = None, lenient: bool = False
) -> Decoded:
    """Decode one single-turn result. Raises DecodeError when it holds no decodable call."""
    return get_decoder(fmt, lenient).decode_ast(raw, language)


def is_checker_shape(decoded: Any) -> bool:
    """BFCL's ``is_function_calling_format_output``: ``[{name: {param: value}}, ...]``, exact types;
    an empty list counts."""
    if type(decoded) is not list:
        return False
    return all(
        type(item) is dict and len(item) == 1 and type(next(iter(item.values()))) is dict for item in decoded
    )


def has_call(decoded: Any) -> bool:
    """Whether a decoded output holds a function call (BFCL's ``is_empty_output``, negated)."""
    if not is_checker_shape(decoded) or len(decoded) == 0:
        return False
    return not (len(decoded) == 1 and len(decoded[0]) == 0)


def contains_call(raw: Any, fmt: str, tools: list[dict] | None = None, lenient: bool = False) -> bool:
    """BFCL's relevance rule: the result decodes (as Python-language output) to at least one call."""
    try:
        return has_call(decode_ast(raw, fmt, "python", lenient=lenient))
    except DecodeError:
        return False
