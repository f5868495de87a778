"""How values are compared: "did the agent say the expected output?" and "is this argument value the
expected one?". Phase 1's outputs check, Phase 2's verdict and the τ harness on our own domains use
these functions and nothing else, so a task Phase 1 keeps is a task Phase 2 can verify.

The rule starts from τ-bench's: an expected output counts as said when it is a substring of an
assistant message after lower-casing both and removing commas from the message
(``output.lower() in message.lower().replace(",", "")``; τ²-bench's ``CommunicateEvaluator`` keeps
exactly that). Ours treats both sides the same way and reads numbers as numbers:

1. Text is case-folded (``str.casefold``: ``lower`` for ASCII, and context-free for the rest, so
   the Greek final sigma does not make a text stop containing a piece of itself).
2. A number is a run of ASCII digits, optionally with thousands separators in groups of three and
   a decimal part (``12``, ``12.50``, ``1,234.50``), with no word character or dot right before it
   and no word character or further decimals right after it (a full stop may end the sentence). It is rewritten in one form (``12.5``, ``1234.5``; ``10.00`` -> ``10``) and
   delimited, so ``12.5`` matches ``12.50`` and ``$12.50`` but not ``112.5`` or ``12.55``. A digit
   run with a leading zero (``021954189``, ``007``) is a code, not a number, and stays as written,
   as do digits inside a word (``#W1234``, ``A320``): ids compare as text.
3. Commas and the currency signs ``$ € £`` are dropped (after the numbers are read, so ``1,234``
   is one number), and runs of white space count as one space.
4. An expected output is said when its normal form is in the normal form of one message: outputs
   spanning two messages do not count (as in τ-bench, which checks message by message).

τ²-bench domains are scored by τ²'s own evaluator, whose literal rule is ``tau_output_said``
(tested against τ²'s code); our reward on those domains uses it too, so it stays comparable.

``same_value`` compares argument values with the same reading: numbers by value (a number and a
string holding it are equal: ``12.5 == "$12.50"``), strings by normal form, lists in order, objects
key by key; ``True`` is not ``1``.

``value_written`` asks the provenance question ("was this argument value written earlier, in what
the user said or a tool returned?") with the same reading, one scalar at a time: a number is written
when a text holds that number (``12.5`` in ``"$12.50"``, not in ``"112.5"``); a string when its
normal form stands in a text's normal form as a whole: no word character right before or after it,
so ``"CA"`` is in ``"state: CA,"`` but not in ``"cancel"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

# A number: not touching a word character or a dot, no leading zero unless it is the only digit
# before the point; thousands separators only in groups of three.
_NUMBER = re.compile(
    r"(?<![\w.])"
    r"(?:0|[1-9][0-9]{0,2}(?:,[0-9]{3})+|[1-9][0-9]*)"
    r"(?:\.[0-9]+)?"
    r"(?![\w]|\.[0-9])"
)
# Delimits a number in the normal form (a private-use character: not white space, not a word
# character); removed from the input first.
_MARK = "\ue000"
_DROPPED = re.compile(r"[,$€£]")
_SPACE = re.compile(r"\s+")
_CURRENCY = re.compile(r"^\s*[$€£]?\s*")


def _plain_number(text: str) -> str:
    """``"1,234.50"`` -> ``"1234.5"``; the digits as one canonical decimal."""
    value = Decimal(text.replace(",", ""))
    return format(value.normalize(), "f") if value else "0"


def normal_form(text: str) -> str:
    """``text`` as the rule compares it (module docstring): case-folded, numbers in one delimited
    form, commas and currency signs dropped, white space collapsed."""
    folded = text.replace(_MARK, "").casefold()
    marked = _NUMBER.sub(lambda m: f"{_MARK}{_plain_number(m.group(0))}{_MARK}", folded)
    return _SPACE.sub(" ", _DROPPED.sub("", marked)).strip()


def output_said(expected: str, texts: Iterable[str]) -> bool:
    """Whether one of ``texts`` (assistant messages, or the data a task is built on) says ``expected``."""
    wanted = normal_form(expected)
    return any(wanted in normal_form(text) for text in texts)


def missing_outputs(expected: Iterable[str], texts: Iterable[str]) -> list[str]:
    """The expected outputs that none of ``texts`` says, in their order."""
    normalised = [normal_form(text) for text in texts]
    return [o for o in expected if not any(normal_form(o) in said for said in normalised)]


def tau_output_said(expected: str, texts: Iterable[str]) -> bool:
    """τ-bench's literal rule, as τ²-bench's ``CommunicateEvaluator`` applies it: ``expected``
    lower-cased is a substring of one non-empty message lower-cased with its commas removed."""
    wanted = expected.lower()
    return any(text.strip() and wanted in text.lower().replace(",", "") for text in texts)


def as_number(value: Any) -> Decimal | None:
    """The number a value holds: an int or float, or a string that is one number under the rule
    (``"12.50"``, ``"$1,234.50"``, ``" 7 "``); None otherwise (booleans, codes such as ``"007"``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return Decimal(str(value)) if value == value and abs(value) != float("inf") else None
        except InvalidOperation:
            return None
    if not isinstance(value, str):
        return None
    body = _CURRENCY.sub("", value, count=1).strip()
    sign = ""
    if body.startswith("-"):
        sign, body = "-", body[1:]
    if not _NUMBER.fullmatch(body):
        return None
    return Decimal(sign + body.replace(",", ""))


def same_value(a: Any, b: Any) -> bool:
    """Whether two values (tool arguments, outputs) are the same under the rule (module docstring)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    x, y = as_number(a), as_number(b)
    if x is not None or y is not None:
        return x is not None and y is not None and x == y
    if isinstance(a, str) and isinstance(b, str):
        return normal_form(a) == normal_form(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(p, q) for p, q in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def written_forms(texts: Iterable[str]) -> list[str]:
    """``texts`` in normal form, once, for many :func:`value_written` questions."""
    return [normal_form(text) for text in texts]


def value_written(value: Any, normalised: Iterable[str]) -> bool:
    """Whether a scalar ``value`` (a string or a number) is written in one of ``normalised`` texts
    (from :func:`written_forms`), read as the module docstring says. Booleans, None, empty strings,
    lists and objects are never "written": callers decide about literals and walk structures."""
    if isinstance(value, bool) or value is None:
        return False
    number = as_number(value)
    if number is not None:
        wanted = f"{_MARK}{_plain_number(str(abs(number)))}{_MARK}"
        return any(wanted in text for text in normalised)
    if not isinstance(value, str):
        return False
    wanted = normal_form(value)
    if not wanted:
        return False
    pattern = re.compile(rf"(?<!\w){re.escape(wanted)}(?!\w)")
    return any(pattern.search(text) for text in normalised)
