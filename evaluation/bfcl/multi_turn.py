"""Multi-turn BFCL: execute calls on the official backend classes and check state and responses.

The backends (file system, messaging, trading, travel, vehicle, ticket, math, twitter) are the
classes shipped in the installed `bfcl-eval` package; we import and instantiate them, and call
only their public methods, by name, with literal arguments read through :mod:`ast`. Model text is
never evaluated.

Scoring, per entry: the model's turns are re-executed on fresh backends beside the ground truth;
after every turn whose ground truth is non-empty, (1) the model must have made at least one call
in that turn, (2) every backend's public attributes must equal the ground truth's, and (3) every
ground-truth call's result must appear among the results of the model's calls so far (as a
multiset). An entry passes only if every turn passes; a run cut short (fewer turns than the
ground truth, e.g. after the 20-step cap) fails.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import json
from typing import Any

from evaluation.bfcl.ast_checker import Verdict
from evaluation.bfcl.data import Entry, use_private_project_root
from evaluation.bfcl.handlers import Call, DecodeError, calls_from_strings, get_decoder
from evaluation.bfcl.handlers.execution import is_empty

__all__ = ["Call", "Backends", "check_entry", "decode_step", "parse_call_string", "step_has_call"]

BACKEND_PACKAGE = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"
BACKEND_MODULES = {
    "GorillaFileSystem": "gorilla_file_system",
    "MathAPI": "math_api",
    "MessageAPI": "message_api",
    "TwitterAPI": "posting_api",
    "TicketAPI": "ticket_api",
    "TradingBot": "trading_bot",
    "TravelAPI": "travel_booking",
    "VehicleControlAPI": "vehicle_control",
    "MemoryAPI_kv": "memory_kv",
    "MemoryAPI_rec_sum": "memory_rec_sum",
}
STATELESS = {"MathAPI"}
# Their modules import bfcl_eval.utils, which writes folders under BFCL's project root.
NEEDS_PROJECT_ROOT = {"MemoryAPI_kv", "MemoryAPI_rec_sum"}
STEP_LIMIT = 20  # model steps per turn before the entry is force-terminated


def parse_call_string(text: str) -> Call:
    """A ground-truth call string such as ``mv(source='a', destination='b')`` (literals only)."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
        if not isinstance(node, ast.Call):
            raise ValueError("not a call")
        name = ast.unparse(node.func)
        args = tuple(ast.literal_eval(arg) for arg in node.args)
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"expected a call with literal arguments, found {text!r}: {exc}") from exc
    return Call(name, kwargs, args)


def decode_step(raw: Any, fmt: str, tools: list[dict] | None = None, lenient: bool = False) -> list[Call]:
    """The calls in one model step, as the format's BFCL handler decodes them for execution
    (``decode_execute``, then its execution strings read back); DecodeError when the step does
    not decode, an empty list when BFCL counts it as no call."""
    return calls_from_strings(get_decoder(fmt, lenient).decode_execute(raw))


def step_has_call(raw: Any, fmt: str, lenient: bool = False) -> bool:
    """Whether a step decodes to a call (without reading its calls back: memory answers, warnings)."""
    try:
        return not is_empty(get_decoder(fmt, lenient).decode_execute(raw))
    except DecodeError:
        return False


def _stringify(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, dict):
        try:
            return json.dumps(result)
        except (TypeError, ValueError):
            return str(result)
    return str(result)


class Backends:
    """The backend instances of one entry, loaded with its initial configuration."""

    def __init__(self, entry: Entry) -> None:
        long_context = "long_context" in entry.category
        self.instances: dict[str, Any] = {}
        self.methods: dict[str, Any] = {}
        for class_name in entry.involved_classes:
            if class_name not in BACKEND_MODULES:
                raise ValueError(
                    f"unknown BFCL backend {class_name!r}; expected one of {sorted(BACKEND_MODULES)}"
                )
            if class_name in NEEDS_PROJECT_ROOT:
                use_private_project_root()
            module = importlib.import_module(f"{BACKEND_PACKAGE}.{BACKEND_MODULES[class_name]}")
            instance = getattr(module, class_name)()
            if class_name not in STATELESS:
                config = copy.deepcopy(entry.initial_config.get(class_name, {}))
                instance._load_scenario(config, long_context=long_context)
            self.instances[class_name] = instance
            for name, method in inspect.getmembers(instance, predicate=inspect.ismethod):
                if not name.startswith("_"):
                    self.methods[name] = method

    def execute(self, calls: list[Call]) -> list[str]:
        """Run calls in order; each result (or the error it raised) as a string."""
        results = []
        for call in calls:
            if call.error:  # BFCL's eval of the call's string would raise
                results.append(f"Error during execution: {call.error}")
                continue
            method = self.methods.get(call.name)
            if method is None:
                results.append(f"Error during execution: name '{call.name}' is not defined")
                continue
            try:
                results.append(_stringify(method(*call.args, **call.kwargs)))
            except Exception as exc:  # a backend's error is the call's observable result
                results.append(f"Error during execution: {exc}")
        return results

    def only_instance(self) -> Any:
        """The single backend of an entry that has one (memory entries); ValueError otherwise."""
        if len(self.instances) != 1:
            raise ValueError(f"expected one backend, found {sorted(self.instances)}")
        return next(iter(self.instances.values()))

    def public_state(self, class_name: str) -> dict[str, Any]:
        return {k: v for k, v in vars(self.instances[class_name]).items() if not k.startswith("_")}


def _state_difference(model: Backends, gold: Backends) -> str:
    for class_name, gold_instance in gold.instances.items():
        model_instance = model.instances[class_name]
        for attr, expected in vars(gold_instance).items():
            if attr.startswith("_"):
                continue
            if getattr(model_instance, attr) != expected:
                return f"{class_name}.{attr} differs from the ground truth"
    return ""


def _missing_results(gold_results: list[str], model_results: list[str]) -> list[str]:
    pool = list(model_results)
    missing = []
    for item in gold_results:
        if item in pool:
            pool.remove(item)
        else:
            missing.append(item)
    return missing


def check_entry(
    entry: Entry, result: Any, ground_truth: list[list[str]], fmt: str, lenient: bool = False
) -> Verdict:
    """Score one multi-turn result (turns of steps of raw model outputs) against its ground truth."""
    if not isinstance(result, list):
        return Verdict(False, "multi_turn:inference_error", "result is not a list of turns")
    if len(result) != len(ground_truth):
        return Verdict(
            False,
            "multi_turn:force_terminated",
            f"{len(result)} turns in the result, {len(ground_truth)} in the ground truth",
        )
    model, gold = Backends(entry), Backends(entry)
    model_results_so_far: list[str] = []
    tools = entry.functions
    for turn, (steps, gold_calls) in enumerate(zip(result, ground_truth, strict=False)):
        decoded_steps = []
        for raw in steps if isinstance(steps, list) else []:
            try:
                calls = decode_step(raw, fmt, tools, lenient)
            except DecodeError:
                continue
            if calls:
                decoded_steps.append(calls)
        for calls in decoded_steps:
            model_results_so_far.extend(model.execute(calls))
        gold_results = gold.execute([parse_call_string(text) for text in gold_calls])
        if not gold_calls:
            continue
        if not decoded_steps:
            return Verdict(False, "multi_turn:empty_turn_model_response", f"no function call in turn {turn}")
        difference = _state_difference(model, gold)
        if difference:
            return Verdict(False, "multi_turn:instance_state_mismatch", f"turn {turn}: {difference}")
        missing = _missing_results(gold_results, model_results_so_far)
        if missing:
            return Verdict(
                False,
                "multi_turn:execution_response_mismatch",
                f"turn {turn}: ground-truth results missing from the model's: {missing[:3]}",
            )
    return PASS_VERDICT


PASS_VERDICT = Verdict(True)
