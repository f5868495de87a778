"""BFCL's AST check: is a decoded call list one of the answer key's acceptable calls?

The rules, each reproducing the official checker's behaviour (the agreement test holds us to it):

* Function name: must equal the answer's; with ``underscore_names`` (FC models whose API cannot
  carry dots) the expected name has its dots turned into underscores.
* Parameters: every required one present; none that is undeclared or absent from the answer key;
  every answer-key parameter present unless ``""`` is among its acceptable values.
* Types are strict (``bool`` is not ``int``); Python accepts an ``int`` where ``float`` is declared,
  not the reverse; ``tuple`` values are compared as lists. Java and JavaScript values arrive as
  source-text strings and are converted by the declared type first (:mod:`langtypes`). A value of
  the answer key's own type when that differs from the declared one is a "variable" and compared
  as is. Arrays have their items' type checked one level deep.
* Values: one of the acceptable options. Strings are compared after dropping spaces and ``,./-_*^``,
  lower-casing and turning ``'`` into ``"``; the same inside lists and dicts. Lists of dicts are
  matched position by position.
* Counts and order: simple expects exactly one call; multiple one call of the expected function;
  parallel categories the same number of calls as the answer, matched greedily: each answer
  call, in answer order, takes the first still-unmatched output call that passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from evaluation.bfcl.handlers.base import short
from evaluation.bfcl.langtypes import JAVA_TYPES, JS_TYPES, UnsupportedType, java_value, js_value

PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
_ITEM_CHECKED = {"python": ("array", "tuple"), "java": ("Array", "ArrayList", "array")}
_ITEM_CHECKED["javascript"] = _ITEM_CHECKED["java"]
_STRIPPED = re.compile(r"[ ,./\-_*^]")


@dataclass(frozen=True)
class Verdict:
    valid: bool
    error_type: str = ""
    error: str = ""


PASS = Verdict(True)


def normalise(text: str) -> str:
    return _STRIPPED.sub("", text).lower().replace("'", '"')


def _normalised(value: Any) -> Any:
    return normalise(value) if isinstance(value, str) else value


def _answer_type(options: list) -> type | None:
    """The type of the first non-optional acceptable value."""
    for option in options:
        if option != "":
            return type(option)
    return None


def _check_type(param: str, value: Any, options: list, declared: str, expected: type, item_type: type | None):
    """(verdict, is_variable) for one value against its declared type."""
    answer_type = _answer_type(options)
    if type(value) is expected:
        is_variable = answer_type is not None and answer_type is not expected
        if item_type is None:
            return PASS, is_variable
        for option in options:
            if isinstance(option, list) and not all(
                _check_type(param, item, option, str(item_type), item_type, None)[0].valid for item in value
            ):
                continue
            return PASS, is_variable
        return (
            Verdict(
                False,
                "type_error:nested",
                f"{short(param)}: items of {short(value)} are not all {item_type.__name__}",
            ),
            False,
        )
    if answer_type is not None and type(value) is answer_type:
        return PASS, True
    return (
        Verdict(
            False,
            "type_error:simple",
            f"{short(param)}: expected type {declared}, got {type(value).__name__} ({short(value)})",
        ),
        False,
    )


def _check_string(param: str, value: str, options: list) -> Verdict:
    if normalise(value) in [normalise(o) for o in options if isinstance(o, str)]:
        return PASS
    return Verdict(False, "value_error:string", f"{short(param)}: {short(value)} is not one of {options}")


def _check_list(param: str, value: list, options: list) -> Verdict:
    candidate = [_normalised(item) for item in value]
    # Each option is iterated as BFCL does: "" (optional) becomes the empty list.
    acceptable = [[_normalised(item) for item in option] for option in options if _iterable(option)]
    if candidate in acceptable:
        return PASS
    return Verdict(False, "value_error:list/tuple", f"{short(param)}: {short(value)} is not one of {options}")


def _iterable(value: Any) -> bool:
    return isinstance(value, (list, tuple, str, dict))


def _check_dict(param: str, value: dict, options: list) -> Verdict:
    verdict = Verdict(False, "dict_checker:unclear", f"{short(param)}: no acceptable dict")
    for option in options:
        if option == "":
            continue
        verdict = _dict_matches(value, option)
        if verdict.valid:
            return PASS
    return verdict


def _dict_matches(value: dict, option: dict) -> Verdict:
    for key, item in value.items():
        if key not in option:
            return Verdict(False, "value_error:dict_key", f"unexpected dict key {short(key)}")
        if _normalised(item) not in [_normalised(o) for o in option[key]]:
            return Verdict(
                False,
                "value_error:dict_value",
                f"dict key {short(key)}: {short(item)} not one of {option[key]}",
            )
    for key, acceptable in option.items():
        if key not in value and "" not in acceptable:
            return Verdict(False, "value_error:dict_key", f"missing dict key {short(key)}")
    return PASS


def _check_list_of_dicts(param: str, value: list, options: list) -> Verdict:
    verdict = Verdict(False, "list_dict_checker:unclear", f"{short(param)}: no acceptable list of dicts")
    for option in options:
        if len(value) != len(option):
            verdict = Verdict(False, "value_error:list_dict_count", f"{short(param)}: wrong number of dicts")
            continue
        for index, item in enumerate(value):
            verdict = _check_dict(param, item, [option[index]])
            if not verdict.valid:
                break
        else:
            return PASS
    return verdict


def _convert_source_value(language: str, value: Any, schema: dict, param: str):
    """(converted value, declared type, item type) for Java/JS; a Verdict when not a string."""
    declared = schema["type"]
    table = JAVA_TYPES if language == "java" else JS_TYPES
    expected = table[declared]
    if not isinstance(value, str):
        return Verdict(
            False,
            f"type_error:{'java' if language == 'java' else 'js'}",
            f"{short(param)}: expected a source-text string, got {type(value).__name__} ({short(value)})",
        )
    convert = java_value if language == "java" else js_value
    try:
        if declared in _ITEM_CHECKED[language]:
            nested = schema["items"]["type"]
            return convert(value, declared, nested), expected, table[nested]
        return convert(value, declared), expected, None
    except (ValueError, RecursionError) as exc:  # e.g. an integer literal of more than 4,300 digits
        return Verdict(
            False, f"type_error:{language}", f"{short(param)}: {short(value)} cannot be read ({short(exc)})"
        )


def check_call(
    function: dict | None, call: dict, answer: dict, language: str, underscore_names: bool
) -> Verdict:
    """One decoded call ``{name: params}`` against one answer ``{name: {param: [options]}}``."""
    options_by_param = next(iter(answer.values()))
    if function is None:
        return Verdict(
            False, "checker:unknown_function", f"answer function {next(iter(answer))!r} has no doc"
        )
    name = function["name"]
    if underscore_names and "." in name:
        name = name.replace(".", "_")
    if name not in call:
        return Verdict(False, "simple_function_checker:wrong_func_name", f"function {short(name)} not called")
    params = call[name]
    schema = function["parameters"]["properties"]
    for required in function["parameters"]["required"]:
        if required not in params:
            return Verdict(
                False, "simple_function_checker:missing_required", f"missing required parameter {required!r}"
            )
    for param, value in params.items():
        if param not in schema or param not in options_by_param:
            return Verdict(
                False, "simple_function_checker:unexpected_param", f"unexpected parameter {short(param)}"
            )
        verdict = _check_param(param, value, schema[param], options_by_param[param], language)
        if not verdict.valid:
            return verdict
    for param, options in options_by_param.items():
        if param not in params and "" not in options:
            return Verdict(
                False,
                "simple_function_checker:missing_optional",
                f"parameter {short(param)} not provided and not optional",
            )
    return PASS


def _check_param(param: str, value: Any, schema: dict, options: list, language: str) -> Verdict:
    declared = schema["type"]
    item_type = None
    try:
        if language == "python":
            expected = PYTHON_TYPES[declared]
            if declared in _ITEM_CHECKED["python"]:
                item_type = PYTHON_TYPES[schema["items"]["type"]]
        else:
            converted = _convert_source_value(language, value, schema, param)
            if isinstance(converted, Verdict):
                return converted
            value, expected, item_type = converted
    except (KeyError, UnsupportedType) as exc:
        return Verdict(
            False, "checker:unsupported_type", f"{short(param)}: type {declared!r} cannot be checked ({exc})"
        )
    if declared == "tuple" and type(value) is tuple:
        value = list(value)
    if language == "python" and declared == "float" and type(value) is int:
        value = float(value)
    verdict, is_variable = _check_type(param, value, options, declared, expected, item_type)
    if not verdict.valid:
        return verdict
    if not is_variable:
        if expected is dict:
            return _check_dict(param, value, options)
        if expected is list and item_type is dict:
            return _check_list_of_dicts(param, value, options)
        if expected is str:
            return _check_string(param, value, options)
        if expected is list:
            return _check_list(param, value, options)
    if value not in options:
        return Verdict(False, "value_error:others", f"{short(param)}: {short(value)} is not one of {options}")
    return PASS


def _find_function(functions: list[dict], name: str) -> dict | None:
    return next((f for f in functions if f["name"] == name), None)


def _check_parallel(functions, output, answers, language, underscore_names) -> Verdict:
    if len(output) != len(answers):
        return Verdict(
            False,
            "parallel_function_checker_no_order:wrong_count",
            f"expected {len(answers)} calls, got {len(output)}",
        )
    matched: set[int] = set()
    for answer_index, answer in enumerate(answers):
        function = _find_function(functions, next(iter(answer)))
        for index, call in enumerate(output):
            if index in matched:
                continue
            if check_call(function, call, answer, language, underscore_names).valid:
                matched.add(index)
                break
        else:
            return Verdict(
                False,
                "parallel_function_checker_no_order:cannot_find_match",
                f"no output call matches answer call {answer_index} ({next(iter(answer))})",
            )
    return PASS


def check(
    functions: list[dict],
    output: list[dict],
    answers: list[dict],
    category: str,
    language: str = "python",
    underscore_names: bool = False,
) -> Verdict:
    """Check a decoded output against an item's answer key, by the category's counting rule."""
    if "parallel" in category:
        return _check_parallel(functions, output, answers, language, underscore_names)
    if "multiple" in category:
        if len(output) != len(answers):
            return Verdict(
                False,
                "multiple_function_checker:wrong_count",
                f"expected {len(answers)} call, got {len(output)}",
            )
        function = _find_function(functions, next(iter(answers[0])))
        return check_call(function, output[0], answers[0], language, underscore_names)
    if len(output) != 1:
        return Verdict(False, "simple_function_checker:wrong_count", f"expected 1 call, got {len(output)}")
    return check_call(functions[0], output[0], answers[0], language, underscore_names)
