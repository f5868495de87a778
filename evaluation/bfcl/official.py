"""Call the official BFCL checker in-process, on the same result rows we score (agreement, speed).

Used only by the agreement test and the speed benchmark. The official checker modules import
``bfcl_eval.constants.model_config``, which imports every model handler and with them a dozen
provider SDKs (openai, anthropic, cohere, mistral, google-genai, qwen-agent, ...). The checker only
reads one flag from it (``underscore_to_dot``: whether a model's function names had their dots
replaced), so we register a small stand-in module that answers the flag
from the model name (names ending in ``-fc`` replace dots), then import the real checker code.
Light dependencies of the official decoders (tree-sitter, tenacity) are in
requirements/data-light.txt. The official FC handlers' decode (``json.loads`` of each call's
arguments) lives in handler classes we cannot import; it is written out in ``_fc_decode``.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any

from evaluation.bfcl.data import use_private_project_root


@dataclass
class _StandInConfig:
    underscore_to_dot: bool


class _StandInMapping(dict):
    def __missing__(self, name: str) -> _StandInConfig:
        return _StandInConfig(underscore_to_dot=name.endswith("-fc"))


def _ensure_model_config() -> None:
    name = "bfcl_eval.constants.model_config"
    if name in sys.modules:
        return
    # Always the stand-in: the real module imports every provider SDK (seconds, or an ImportError)
    # and only knows registered model names.
    stand_in = types.ModuleType(name)
    stand_in.MODEL_CONFIG_MAPPING = _StandInMapping()
    sys.modules[name] = stand_in


def load() -> types.SimpleNamespace:
    """The official functions we call; imports bfcl_eval with its files kept out of site-packages."""
    use_private_project_root()
    _ensure_model_config()
    from bfcl_eval import utils as bfcl_utils
    from bfcl_eval.constants.enums import Language, ReturnFormat
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import is_empty_execute_response
    from bfcl_eval.model_handler import utils as handler_utils

    return types.SimpleNamespace(
        utils=bfcl_utils,
        Language=Language,
        ReturnFormat=ReturnFormat,
        ast_checker=ast_checker,
        multi_turn_checker=multi_turn_checker,
        is_empty_execute_response=is_empty_execute_response,
        handler_utils=handler_utils,
    )


def _fc_decode(raw: Any) -> list[dict]:
    import json

    return [{next(iter(item)): json.loads(item[next(iter(item))])} for item in raw]


def _fc_execute(raw: Any, official) -> list[str]:
    return official.handler_utils.convert_to_function_call(raw)


_ENTRY_CACHE: dict[str, tuple[list[dict], list[dict]]] = {}


class OfficialScorer:
    """Per-item verdicts of the official checker for one model name (one run)."""

    def __init__(self, fmt: str, run_name: str) -> None:
        self.off = load()
        self.fmt = fmt
        # "-fc" tells the stand-in config that function names had dots replaced.
        self.model_name = f"{run_name}-fc" if fmt == "json" else run_name

    def _decode_ast(self, raw: Any, category: str) -> Any:
        if self.fmt == "json":
            return _fc_decode(raw)
        lang = {"simple_java": "JAVA", "simple_javascript": "JAVASCRIPT"}.get(category, "PYTHON")
        return self.off.handler_utils.default_decode_ast_prompting(raw, self.off.ReturnFormat[lang])

    def _decode_execute(self, raw: Any) -> list[str]:
        if self.fmt == "json":
            return _fc_execute(raw, self.off)
        return self.off.handler_utils.default_decode_execute_prompting(raw)

    def entries(self, category: str) -> tuple[list[dict], list[dict]]:
        """The official loaders' prompt and answer entries (cached: they re-read files under a lock)."""
        if category not in _ENTRY_CACHE:
            prompts = self.off.utils.load_dataset_entry(
                category, include_prereq=False, include_language_specific_hint=False
            )
            answers = [] if "relevance" in category else self.off.utils.load_ground_truth_entry(category)
            _ENTRY_CACHE[category] = (prompts, answers)
        return _ENTRY_CACHE[category]

    def verdict(self, category: str, prompt: dict, raw: Any, answer: dict | None) -> bool:
        if "relevance" in category:
            try:
                decoded = self._decode_ast(raw, "python")
                called = not self.off.utils.is_empty_output(decoded)
            except Exception:
                called = False
            return not called if "irrelevance" in category else called
        if category.startswith("multi_turn"):
            return self._multi_turn_verdict(category, prompt, raw, answer["ground_truth"])
        if category.startswith("memory"):
            return self._agentic_verdict(category, prompt, raw, answer["ground_truth"])
        try:
            decoded = self._decode_ast(raw, category)
        except Exception:
            return False
        if not self.off.utils.is_function_calling_format_output(decoded):
            return False
        language = {"simple_java": "JAVA", "simple_javascript": "JAVASCRIPT"}.get(category, "PYTHON")
        result = self.off.ast_checker(
            prompt["function"],
            decoded,
            answer["ground_truth"],
            self.off.Language[language],
            category,
            self.model_name,
        )
        return bool(result["valid"])

    def _agentic_verdict(self, category: str, prompt: dict, raw: Any, possible_answers: list) -> bool:
        from bfcl_eval.eval_checker.eval_runner import _evaluate_single_agentic_entry

        # The official runner asks the model's handler to decode each step; ours decodes the same way.
        handler = types.SimpleNamespace(
            decode_execute=lambda result, has_tool_call_tag: self._decode_execute(result)
        )
        result = _evaluate_single_agentic_entry(
            handler, prompt["id"], raw, possible_answers, dict(prompt), self.model_name, category
        )
        return bool(result["valid"])

    def _multi_turn_verdict(self, category: str, prompt: dict, raw: Any, ground_truth: list) -> bool:
        if not isinstance(raw, list) or len(raw) != len(ground_truth):
            return False
        decoded_turns = []
        for steps in raw:
            decoded_steps = []
            for step in steps:
                try:
                    decoded = self._decode_execute(step)
                except Exception:
                    continue
                if self.off.is_empty_execute_response(decoded):
                    continue
                decoded_steps.append(decoded)
            decoded_turns.append(decoded_steps)
        result = self.off.multi_turn_checker(decoded_turns, ground_truth, prompt, category, self.model_name)
        return bool(result["valid"])
