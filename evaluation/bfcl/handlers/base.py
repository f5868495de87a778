"""What every BFCL decoder shares: its error type, its output shapes and its description."""

from __future__ import annotations

import functools
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Decoded = list[Any]  # BFCL's decode_ast output; the checker shape is [{name: {param: value}}, ...]


class DecodeError(ValueError):
    """The raw result holds no function call in the expected format (BFCL: decode_ast raised)."""


# What BFCL's decode code raises on malformed output (a subscript of a non-dict, json.loads of
# something that is not JSON, an int too long to print...). BFCL's runner catches any of them
# around decode_ast / decode_execute and fails the item; our decoders raise DecodeError instead.
DECODE_FAILURES = (
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    ValueError,
    ArithmeticError,
    RecursionError,
    MemoryError,
)


def failures_are_decode_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the failures BFCL's own decode code would raise into DecodeError."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except DecodeError:
            raise
        except DECODE_FAILURES as exc:
            raise DecodeError(f"{type(exc).__name__}: {short(exc)}") from exc

    return wrapper


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 120
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 8
_SHORT.maxlevel = 4


def short(value: Any) -> str:
    """A bounded, never-raising display of any value (model text can be huge or unprintable)."""
    if isinstance(value, BaseException):
        value = str(value) if not isinstance(value, RecursionError) else "nested too deeply"
        return value[:200]
    try:
        return _SHORT.repr(value)
    except (ValueError, RecursionError, MemoryError, TypeError):
        return f"<{type(value).__name__} that cannot be shown>"


@dataclass(frozen=True)
class Decoder:
    """One BFCL handler family's decoding of stored results.

    ``decode_ast(result, language)`` is what the family's ``decode_ast`` returns (any shape; the
    scorer checks for the checker shape, as BFCL does); ``decode_execute(result)`` the execution
    strings its ``decode_execute`` returns. Both raise only DecodeError.
    """

    name: str
    summary: str
    handlers: tuple[str, ...]  # BFCL handler classes ("module:Class") whose decode this is
    decode_ast: Callable[[Any, str], Decoded]
    decode_execute: Callable[[Any], list[str]]
    strict: bool = True
    is_fc_model: bool = (
        True  # what BFCL's handler sees as is_fc_model (only the FC API handlers branch on it)
    )

    @property
    def handler_names(self) -> list[str]:
        return [h.split(":")[1] for h in self.handlers]
