"""BFCL's model registry and handler classes, read from the installed ``bfcl-eval`` with :mod:`ast`.

The registry (``constants/model_config.py``: ``MODEL_CONFIG_MAPPING``) names each model's handler
class and two flags: ``is_fc_model`` and ``underscore_to_dot`` (the model was given function names
with dots replaced by underscores, and is checked against those). Importing the registry would
import every provider SDK, so it is parsed instead; a model BFCL adds is found without a change
here. A model's decoding is the ``decode_ast`` its handler class defines or inherits; which of our
decoders follows it is what each decoder declares (:mod:`evaluation.bfcl.handlers`), in the mode
the registry gives when the handler's decoding reads ``self.is_fc_model``.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from evaluation.bfcl import data
from evaluation.bfcl.handlers import STRICT


@dataclass(frozen=True)
class RegisteredModel:
    """One entry of BFCL's model registry (``MODEL_CONFIG_MAPPING``)."""

    name: str
    handler: str
    is_fc_model: bool
    underscore_to_dot: bool

    @property
    def folder(self) -> str:
        """BFCL's result folder for the model: its registry key with ``/`` written as ``_``."""
        return self.name.replace("/", "_")


@dataclass(frozen=True)
class HandlerClass:
    """A BFCL handler class as its source declares it."""

    name: str
    module: str  # "bfcl_eval.model_handler.local_inference.glm"
    base: str | None
    defines_decode: bool  # defines decode_ast itself
    reads_mode: bool  # its decode_ast branches on self.is_fc_model
    sets_mode: bool | None = None  # what its __init__ sets self.is_fc_model to, whatever the registry says

    @property
    def spec(self) -> str:
        return f"{self.module}:{self.name}"


def package_dir() -> Path:
    spec = importlib.util.find_spec(data.PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise data.BfclDataMissing(
            f"{data.DISTRIBUTION} is not installed; install it to read its model registry"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _constant(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


@cache
def bfcl_registry() -> dict[str, RegisteredModel]:
    """BFCL's registry key -> its handler class and flags, as the installed package declares them."""
    tree = ast.parse((package_dir() / "constants" / "model_config.py").read_text(encoding="utf-8"))
    defaults = {"is_fc_model": True, "underscore_to_dot": False}
    for node in tree.body:  # the ModelConfig dataclass's own defaults
        if isinstance(node, ast.ClassDef) and node.name == "ModelConfig":
            for field in node.body:
                if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) and field.value:
                    defaults[field.target.id] = _constant(field.value)
    models: dict[str, RegisteredModel] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)):
            continue
        for key, value in zip(node.value.keys, node.value.values, strict=False):
            if not (isinstance(key, ast.Constant) and isinstance(value, ast.Call)):
                continue
            fields = {kw.arg: kw.value for kw in value.keywords}
            handler = fields.get("model_handler")
            if not isinstance(handler, ast.Name):
                continue
            flags = {k: _constant(fields[k]) if k in fields else defaults[k] for k in defaults}
            models[key.value] = RegisteredModel(
                key.value, handler.id, bool(flags["is_fc_model"]), bool(flags["underscore_to_dot"])
            )
    return models


def _reads_mode(function: ast.FunctionDef) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "is_fc_model" for n in ast.walk(function))


def _sets_mode(init: ast.FunctionDef | None) -> bool | None:
    """The constant ``self.is_fc_model = ...`` that an ``__init__`` assigns (after BaseHandler's)."""
    for node in ast.walk(init) if init else ():
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and any(isinstance(t, ast.Attribute) and t.attr == "is_fc_model" for t in node.targets)
        ):
            return bool(node.value.value)
    return None


def _method(node: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    return next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == name), None)


@cache
def handler_classes() -> dict[str, HandlerClass]:
    """Every class under ``model_handler/`` by name, with its base and how it decodes."""
    root = package_dir()
    classes: dict[str, HandlerClass] = {}
    for path in sorted((root / "model_handler").rglob("*.py")):
        module = ".".join((data.PACKAGE, *path.relative_to(root).with_suffix("").parts))
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                base = next((b.id for b in node.bases if isinstance(b, ast.Name)), None)
                decode = _method(node, "decode_ast")
                classes[node.name] = HandlerClass(
                    node.name,
                    module,
                    base,
                    decode is not None,
                    decode is not None and _reads_mode(decode),
                    _sets_mode(_method(node, "__init__")),
                )
    return classes


def ancestry(handler: str) -> list[HandlerClass]:
    """The handler class, then its base, and so on up to BaseHandler (the classes BFCL defines)."""
    classes = handler_classes()
    chain: list[HandlerClass] = []
    current: str | None = handler
    while current in classes and all(c.name != current for c in chain):
        chain.append(classes[current])
        current = classes[current].base
    return chain


def decode_owner(handler: str) -> str | None:
    """The class in the handler's ancestry that defines the decode_ast it uses."""
    return next((c.name for c in ancestry(handler) if c.defines_decode), None)


def effective_mode(handler: str, is_fc_model: bool) -> bool:
    """The ``is_fc_model`` a handler decodes with: the registry's, unless an ``__init__`` in its
    ancestry sets it (the most derived one wins, as it runs last)."""
    return next((c.sets_mode for c in ancestry(handler) if c.sets_mode is not None), is_fc_model)


def decoder_for_handler(handler: str, is_fc_model: bool) -> str | None:
    """Our decoder for a BFCL handler class in the given mode; None when we have none for it."""
    owner = decode_owner(handler)
    if owner is None:
        return None
    reads_mode = handler_classes()[owner].reads_mode
    mode = effective_mode(handler, is_fc_model)
    for decoder in STRICT.values():
        if owner in decoder.handler_names and (not reads_mode or decoder.is_fc_model == mode):
            return decoder.name
    return None


def model_decoder(model: RegisteredModel) -> str | None:
    return decoder_for_handler(model.handler, model.is_fc_model)


def model_from_folders(names: list[str], where: str) -> RegisteredModel | None:
    """The BFCL model whose result-folder name is one of ``names`` (folders under ``where``);
    ValueError if several are."""
    by_folder: dict[str, RegisteredModel] = {}
    for model in bfcl_registry().values():
        by_folder.setdefault(model.folder, model)
    found = {by_folder[n].name: by_folder[n] for n in names if n in by_folder}
    if len(found) > 1:
        raise ValueError(
            f"result folders of several BFCL models under {where} ({', '.join(sorted(found))}); "
            "expected one model's results — score each model's folder separately"
        )
    return next(iter(found.values()), None)
