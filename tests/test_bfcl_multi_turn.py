"""The multi-turn executor on the official BFCL backends: gold replays pass, broken ones fail."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("bfcl_eval") is None, reason="needs bfcl-eval (BFCL data)"
)

from evaluation.bfcl import data, synthetic  # noqa: E402
from evaluation.bfcl.multi_turn import Backends, Call, check_entry, parse_call_string  # noqa: E402

ENTRIES_PER_CATEGORY = 4


def _gold_rows(category: str, variant: str = "gold") -> list[tuple[data.Entry, list, dict]]:
    stride = len(data.load_entries(category)) // ENTRIES_PER_CATEGORY
    rows = synthetic.multi_turn_results(category, variant, "python", stride=stride)
    items = list(zip(data.load_entries(category), data.load_answers(category), strict=False))[::stride]
    return [(entry, answer, row) for (entry, answer), row in zip(items, rows, strict=False)]


@pytest.mark.parametrize("category", data.MULTI_TURN)
def test_gold_calls_replayed_through_our_executor_pass_state_and_response_checks(category):
    for entry, answer, row in _gold_rows(category):
        verdict = check_entry(entry, row["result"], answer, "python")
        assert verdict.valid, f"{entry.id}: {verdict.error_type} {verdict.error}"


@pytest.mark.parametrize("category", data.MULTI_TURN)
def test_cut_short_runs_fail(category):
    for entry, answer, row in _gold_rows(category, "truncated"):
        assert check_entry(entry, row["result"], answer, "python").error_type == "multi_turn:force_terminated"


def test_a_changed_argument_changes_the_state_and_fails():
    entry = data.load_entries("multi_turn_base")[0]
    answer = data.load_answers("multi_turn_base")[0]
    gold = synthetic.multi_turn_results("multi_turn_base", "gold", "python", stride=200)[0]["result"]
    broken = [list(turn) for turn in gold]
    broken[0][0] = broken[0][0].replace("'temp'", "'tmp'")
    assert broken != gold
    assert not check_entry(entry, broken, answer, "python").valid


def test_executor_calls_only_public_backend_methods():
    entry = data.load_entries("multi_turn_base")[0]
    backends = Backends(entry)
    out = backends.execute(
        [Call("__init__"), Call("_load_scenario", {"scenario": {}}), Call("eval", {"x": "1"}), Call("pwd")]
    )
    assert out[:3] == [
        f"Error during execution: name '{n}' is not defined" for n in ("__init__", "_load_scenario", "eval")
    ]
    assert "current_working_directory" in out[3]


def test_ground_truth_strings_are_parsed_as_literals_only():
    assert parse_call_string("mv(source='a', destination='b')") == Call(
        "mv", {"source": "a", "destination": "b"}
    )
    assert parse_call_string("sort('x.txt')").args == ("x.txt",)
    with pytest.raises(ValueError):
        parse_call_string("rm(path=__import__('os').getcwd())")


def _turn_player(answer: list[list[str]], seen_tools: list[set[str]]):
    """A scripted model that, at each user turn, makes that turn's gold calls in one step, then says it is done."""

    def respond(messages, kwargs):
        seen_tools.append({t["function"]["name"] for t in kwargs.get("tools") or []})
        turn = sum(1 for m in messages if m["role"] == "user") - 1
        if messages[-1]["role"] == "user" and answer[turn]:
            return ["[" + ", ".join(answer[turn]) + "]"]
        return ["Done."]

    return respond


def test_generation_loop_runs_gold_calls_on_the_backends_and_adds_held_out_functions_at_their_turn():
    import asyncio

    from scripted import ScriptedModel

    from evaluation.bfcl.generate import RunSettings, run_multi_turn

    # Gold written with keywords only: BFCL's runner drops positional arguments of a model's calls
    # (model_handler.utils.resolve_ast_call), so a positional gold call cannot be replayed as model output.
    entry, answer = next(
        (e, a)
        for e, a in zip(
            data.load_entries("multi_turn_miss_func"), data.load_answers("multi_turn_miss_func"), strict=True
        )
        if not any(parse_call_string(call).args for turn in a for call in turn)
    )
    ((held_turn, held_functions),) = entry.missed_functions.items()
    held_names = {f["name"] for f in held_functions}
    seen: list[set[str]] = []
    row = asyncio.run(
        run_multi_turn(ScriptedModel(_turn_player(answer, seen)), entry, RunSettings(mode="python"))
    )
    assert len(row["result"]) == len(entry.question)
    assert [len(steps) for steps in row["result"]] == [2 if calls else 1 for calls in answer]
    assert check_entry(entry, row["result"], answer, "python").valid
    # Held-out functions are offered from their turn on, never before.
    calls_before = sum(2 if calls else 1 for calls in answer[:held_turn])
    assert not any(held_names & names for names in seen[:calls_before])
    assert all(held_names <= names for names in seen[calls_before:])

    idle = asyncio.run(
        run_multi_turn(ScriptedModel(lambda m, k: ["I will not do that."]), entry, RunSettings(mode="python"))
    )
    assert not check_entry(entry, idle["result"], answer, "python").valid
