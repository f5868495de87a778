"""The BFCL AST checker and decoders on hand-made cases, one rule at a time (no BFCL data needed)."""

from __future__ import annotations

import pytest

from evaluation.bfcl.ast_checker import check, normalise
from evaluation.bfcl.decode import DecodeError, contains_call, decode_ast, decode_json, decode_python
from evaluation.bfcl.handlers.literals import TooLarge
from evaluation.bfcl.langtypes import java_value, js_value

WEATHER = {
    "name": "weather.get",
    "parameters": {
        "type": "dict",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "scale": {"type": "float"},
            "units": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "point": {"type": "tuple", "items": {"type": "float"}},
            "filters": {"type": "dict"},
        },
        "required": ["city"],
    },
}
ANSWER = [
    {
        "weather.get": {
            "city": ["San Francisco", "SF"],
            "days": [3, ""],
            "scale": [2.0, ""],
            "units": ["", "metric"],
            "tags": [["rain", "wind"], ""],
            "point": [[1.5, 2.5], ""],
            "filters": [{"kind": ["storm"], "min": [1, ""]}, ""],
        }
    }
]


def verdict(call_args: dict, name: str = "weather.get", category: str = "simple_python", **kw):
    return check([WEATHER], [{name: call_args}], ANSWER, category, **kw)


def test_exact_answer_passes():
    assert verdict({"city": "San Francisco", "days": 3}).valid


def test_function_name_must_match_and_dots_become_underscores_for_fc():
    assert verdict({"city": "SF"}, name="weather_get").error_type == "simple_function_checker:wrong_func_name"
    assert verdict({"city": "SF"}, name="weather_get", underscore_names=True).valid
    assert not verdict({"city": "SF"}, underscore_names=True).valid


def test_required_parameter_missing_fails():
    assert verdict({"days": 3}).error_type == "simple_function_checker:missing_required"


def test_unknown_parameter_fails():
    assert verdict({"city": "SF", "colour": "red"}).error_type == "simple_function_checker:unexpected_param"


def test_int_accepted_for_float_but_not_the_reverse():
    assert verdict({"city": "SF", "scale": 2}).valid
    assert verdict({"city": "SF", "days": 3.0}).error_type == "type_error:simple"


def test_bool_is_not_an_integer():
    assert not verdict({"city": "SF", "days": True}).valid


def test_strings_are_normalised():
    assert verdict({"city": "san-francisco"}).valid
    assert verdict({"city": "S.F."}).valid
    assert verdict({"city": "Los Angeles"}).error_type == "value_error:string"


def test_empty_string_option_means_optional():
    assert verdict({"city": "SF", "units": "metric"}).valid
    # "days" lists "" so it may be omitted; an answer-key parameter without "" may not.
    strict = [{"weather.get": {"city": ["SF"], "days": [3]}}]
    assert check([WEATHER], [{"weather.get": {"city": "SF"}}], strict, "simple_python").error_type == (
        "simple_function_checker:missing_optional"
    )


def test_lists_compare_in_order_with_normalised_items():
    assert verdict({"city": "SF", "tags": ["RAIN", "wind"]}).valid
    assert verdict({"city": "SF", "tags": ["wind", "rain"]}).error_type == "value_error:list/tuple"
    # Item types are checked against the list-valued options; BFCL lets a "" option skip that
    # check, so a wrong item type is then caught by the value comparison instead.
    assert verdict({"city": "SF", "tags": ["rain", 3]}).error_type == "value_error:list/tuple"
    strict = [{"weather.get": {"city": ["SF"], "tags": [["rain", "wind"]]}}]
    wrong_items = [{"weather.get": {"city": "SF", "tags": ["rain", 3]}}]
    assert check([WEATHER], wrong_items, strict, "simple_python").error_type == "type_error:nested"


def test_tuples_compare_as_lists():
    assert verdict({"city": "SF", "point": (1.5, 2.5)}).valid


def test_dict_values_checked_key_by_key():
    assert verdict({"city": "SF", "filters": {"kind": "Storm"}}).valid
    assert (
        verdict({"city": "SF", "filters": {"kind": "storm", "extra": 1}}).error_type == "value_error:dict_key"
    )
    assert verdict({"city": "SF", "filters": {"min": 1}}).error_type == "value_error:dict_key"


def test_simple_expects_exactly_one_call():
    two = [{"weather.get": {"city": "SF"}}, {"weather.get": {"city": "SF"}}]
    assert check([WEATHER], two, ANSWER, "simple_python").error_type == "simple_function_checker:wrong_count"


def test_parallel_matches_greedily_in_answer_order():
    answers = [{"weather.get": {"city": ["SF"], "days": [3, ""]}}, {"weather.get": {"city": ["SF"]}}]
    # Output 0 matches both answers; greedy assignment gives it to answer 0, and output 1 to answer 1.
    outputs = [{"weather.get": {"city": "SF"}}, {"weather.get": {"city": "SF", "days": 3}}]
    # Answer 0 takes output 0 (days optional); answer 1 then needs output 1, which has an extra
    # "days" not in answer 1's key -> no match. BFCL does not backtrack.
    assert check([WEATHER], outputs, answers, "parallel").error_type == (
        "parallel_function_checker_no_order:cannot_find_match"
    )
    assert check([WEATHER], list(reversed(outputs)), answers, "parallel").valid
    assert (
        check([WEATHER], outputs[:1], answers, "parallel").error_type
        == "parallel_function_checker_no_order:wrong_count"
    )


def test_java_values_are_source_text_converted_by_declared_type():
    doc = {
        "name": "Calc.add",
        "parameters": {
            "type": "dict",
            "properties": {
                "count": {"type": "long"},
                "ratio": {"type": "float"},
                "ids": {"type": "ArrayList", "items": {"type": "integer"}},
            },
            "required": ["count"],
        },
    }
    answer = [{"Calc.add": {"count": [5], "ratio": [0.5, ""], "ids": [[1, 2], ""]}}]
    ok = {"Calc.add": {"count": "5L", "ratio": "0.5f", "ids": "new ArrayList<>(Arrays.asList(1, 2))"}}
    assert check([doc], [ok], answer, "simple_java", language="java").valid
    assert not check([doc], [{"Calc.add": {"count": "5"}}], answer, "simple_java", language="java").valid
    assert (
        check([doc], [{"Calc.add": {"count": 5}}], answer, "simple_java", language="java").error_type
        == "type_error:java"
    )


def test_java_and_js_converters():
    assert java_value("new int[]{1, 2}", "Array", "integer") == [1, 2]
    assert java_value('new HashMap<String, String>() {{ put("k", "v"); }}', "HashMap") == {"k": "v"}
    assert java_value("true", "boolean") is True
    assert java_value("12", "long") == "12"
    assert js_value("7n", "Bigint") == 7
    assert js_value("[1, 'a', true]", "array") == [1, "a", True]
    assert js_value("{'a': 1, 'b': [2, 3]}", "dict") == {"a": 1, "b": [2, 3]}


def test_normalise_drops_spaces_and_punctuation():
    assert normalise("April 1, 2024") == normalise("april 1 2024") == "april12024"


def test_python_decoder_reads_literals_only():
    assert decode_python("[f(a=1, b='x'), g.h(c=[1, 2], d={'k': (1, 2)})]") == [
        {"f": {"a": 1, "b": "x"}},
        {"g.h": {"c": [1, 2], "d": {"k": (1, 2)}}},
    ]
    assert decode_python("f(x=2**10, y=-3)") == [{"f": {"x": 1024, "y": -3}}]
    # A call inside an argument is kept as its source text, never run.
    assert decode_python("f(x=__import__('os').system('true'))") == [
        {"f": {"x": "__import__('os').system('true')"}}
    ]
    with pytest.raises(DecodeError):
        decode_python("f(x=np.pi)")
    with pytest.raises(DecodeError):
        decode_python("I cannot help with that.")
    with pytest.raises(DecodeError):
        decode_python("f(x=lambda: 1)")
    # BFCL computes 2**100000 and then never matches it; we stand in a value that matches nothing.
    (call,) = decode_python("f(x=2**100000)")
    assert isinstance(call["f"]["x"], TooLarge)


def test_json_decoder_reads_fc_layout():
    assert decode_json([{"f": '{"a": 1}'}]) == [{"f": {"a": 1}}]
    with pytest.raises(DecodeError):
        decode_json("plain text")


def test_relevance_means_a_decodable_call():
    assert contains_call("[f(a=1)]", "python")
    assert not contains_call("[]", "python")
    assert not contains_call("There is no suitable function.", "python")
    assert contains_call([{"f": "{}"}], "json")
    assert not contains_call("text", "json")


def test_java_call_syntax_decoder():
    assert decode_ast('[Calc.add(count="5L", ids=new int[]{1, 2})]', "python", "java") == [
        {"Calc.add": {"count": "5L", "ids": "new int[]{1,2}"}}
    ]
