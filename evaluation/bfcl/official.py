"""Call the official BFCL decoders and checker in-process, on the same result rows we score.

Used only by the agreement tests and the speed benchmark. The official checker modules import
``bfcl_eval.constants.model_config``, which imports every model handler and with them a dozen
provider SDKs (openai, anthropic, cohere, mistral, google-genai, qwen-agent, ...). The checker only
reads one flag from it (``underscore_to_dot``: whether a model's function names had their dots
replaced), so we register a small stand-in module that answers the flag from the model name
(names ending in ``-fc`` replace dots), then import the real checker code.

Each of our decoders names the BFCL handler classes it follows (``evaluation/bfcl/handlers``); the
official side decodes with the real class (its ``decode_ast`` / ``decode_execute``), imported
from its own module (the local-inference handlers and the OpenAI/Claude ones need only
``openai``, ``anthropic`` and ``overrides``, which are installed; a provider SDK that is not, such
as ``mistralai`` for MistralHandler, is stood in for while the module loads), and judges each item
with the official runner's per-item functions (``eval_checker/eval_runner.py``). The handler is made
without its ``__init__`` (which would build an API client): decoding reads no instance state but
``is_fc_model``. Light dependencies of the official decoders (tree-sitter, tenacity) are in
requirements/data-light.txt.
"""

from __future__ import annotations

import copy
import importlib
import re
import sys
import types
from dataclasses import dataclass
from typing import Any

from evaluation.bfcl.data import use_private_project_root
from evaluation.bfcl.handlers import get_decoder


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
    from bfcl_eval.eval_checker import eval_runner
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils import is_empty_execute_response
    from bfcl_eval.model_handler import utils as handler_utils

    return types.SimpleNamespace(
        utils=bfcl_utils,
        Language=Language,
        ReturnFormat=ReturnFormat,
        eval_runner=eval_runner,
        ast_checker=ast_checker,
        multi_turn_checker=multi_turn_checker,
        is_empty_execute_response=is_empty_execute_response,
        handler_utils=handler_utils,
    )


class _Placeholder(type):
    """A stood-in SDK name: any attribute of it (``cohere.types.ToolV2`` in an annotation) or
    subscript of it is another placeholder."""

    def __getattr__(cls, attr: str) -> type:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Placeholder(attr, (), {})

    def __getitem__(cls, item: Any) -> type:
        return cls


def _missing_module(exc: ImportError) -> str:
    """The module an import failed for: the one not found, or ``pkg.sub`` for ``from pkg import sub``
    where ``pkg`` is a namespace package without ``sub`` (``from google import genai``)."""
    if isinstance(exc, ModuleNotFoundError):
        return exc.name or ""
    match = re.match(r"cannot import name '(\w+)' from '([\w.]+)' \(unknown location\)", str(exc))
    return f"{match.group(2)}.{match.group(1)}" if match else ""


def _import_with_stand_ins(module_name: str) -> types.ModuleType:
    """Import a handler module; a provider SDK it imports but that is not installed (``mistralai``,
    ``qwen_agent``, ``google.genai``, ...) is stood in for while it loads, as model_config is above:
    the decode methods never touch it. The stand-ins are removed again afterwards."""
    stand_ins: list[str] = []
    try:
        for _ in range(12):
            try:
                return importlib.import_module(module_name)
            except ImportError as exc:
                missing = _missing_module(exc)
                if not missing or missing.startswith("bfcl_eval") or missing in stand_ins:
                    raise
                stand_in = types.ModuleType(missing)
                stand_in.__path__ = []  # a package: its submodules can be stood in for too
                stand_in.__getattr__ = lambda attr: _Placeholder(attr, (), {})  # every name a placeholder
                sys.modules[missing] = stand_in
                parent, _, child = missing.rpartition(".")
                if parent in sys.modules:  # `from parent import child` reads the attribute
                    setattr(sys.modules[parent], child, stand_in)
                stand_ins.append(missing)
        raise ImportError(f"{module_name}: too many missing modules ({', '.join(stand_ins)})")
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
            parent, _, child = name.rpartition(".")
            if parent in sys.modules and getattr(sys.modules[parent], child, None) is not None:
                delattr(sys.modules[parent], child)


def load_handler(spec: str, is_fc_model: bool, model_name: str = "agreement") -> Any:
    """An instance of a BFCL handler class (``"module:Class"``), made without its ``__init__``."""
    load()
    module_name, class_name = spec.split(":")
    handler_class = getattr(_import_with_stand_ins(module_name), class_name)
    handler = handler_class.__new__(handler_class)
    handler.model_name = handler.registry_name = model_name
    handler.is_fc_model = is_fc_model
    return handler


_ENTRY_CACHE: dict[str, tuple[list[dict], list[dict]]] = {}
_LANGUAGES = {"simple_java": "JAVA", "simple_javascript": "JAVASCRIPT"}


class OfficialScorer:
    """Per-item verdicts of BFCL's own decode + checker for one format (one run name).

    ``handler`` picks a BFCL handler class (default: the first the format names), ``underscore``
    whether the checker expects dots in function names replaced (default: for json only).
    ``crashes`` lists the items on which BFCL's code raised outside its own error handling (its
    runner would stop there); they count as failed.
    """

    def __init__(
        self, fmt: str, run_name: str, handler: str | None = None, underscore: bool | None = None
    ) -> None:
        self.off = load()
        self.fmt = fmt
        decoder = get_decoder(fmt)
        # "-fc" tells the stand-in config that function names had dots replaced.
        underscore = fmt == "json" if underscore is None else underscore
        self.model_name = f"{run_name}-fc" if underscore else run_name
        self.handler = load_handler(handler or decoder.handlers[0], decoder.is_fc_model, self.model_name)
        self.crashes: list[tuple[str, str]] = []

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
        try:
            return bool(self._result(category, prompt, raw, answer)["valid"])
        except Exception as exc:  # BFCL's own code failed on this item: its run would stop here
            self.crashes.append((prompt["id"], f"{type(exc).__name__}: {str(exc)[:200]}"))
            return False

    def _result(self, category: str, prompt: dict, raw: Any, answer: dict | None) -> dict:
        runner, name = self.off.eval_runner, self.model_name
        prompt = copy.copy(prompt)  # the runner deletes the function docs from it
        if "relevance" in category:
            return runner._evaluate_single_relevance_entry(
                self.handler, prompt["id"], raw, prompt, name, category
            )
        if category.startswith("multi_turn"):
            return runner._evaluate_single_multi_turn_entry(
                self.handler, prompt["id"], raw, answer["ground_truth"], prompt, name, category
            )
        if category.startswith("memory"):
            return runner._evaluate_single_agentic_entry(
                self.handler, prompt["id"], raw, answer["ground_truth"], prompt, name, category
            )
        language = _LANGUAGES.get(category, "PYTHON")
        return runner._evaluate_single_ast_entry(
            self.handler,
            prompt["id"],
            raw,
            answer["ground_truth"],
            prompt,
            name,
            category,
            language=self.off.Language[language],
            return_format=self.off.ReturnFormat[language],
        )
