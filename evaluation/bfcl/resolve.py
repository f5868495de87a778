"""Which decoder reads a folder of result files, and a loud warning when it reads too little.

The format comes, in order, from: ``--result-format``; the run's own metadata (``run_metadata.json``,
written when we generated the run); BFCL's model name in the folder path (BFCL names each model's
result folder after its registry key, ``/`` written as ``_``: ``Salesforce_xLAM-2-1b-fc-r``), mapped
through the registry of the installed ``bfcl-eval``; else the rows themselves (the format in which
most sampled outputs hold a call). The registry is read from the package's
``constants/model_config.py`` and its handler classes from ``model_handler/`` with :mod:`ast` —
importing them would import every provider SDK — so a model BFCL adds is found without a change
here. A model's decoder is the one written after the handler class that defines its
``decode_ast`` (its own, or the one it inherits).
"""

from __future__ import annotations

import ast
import importlib.util
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from datagen.rundir import BfclRun
from evaluation.bfcl import data
from evaluation.bfcl.decode import has_call
from evaluation.bfcl.handlers import FORMATS, STRICT, DecodeError
from evaluation.bfcl.scoring import NO_CALL_CATEGORIES, CategoryScore

SNIFF_ROWS_PER_CATEGORY = 25
# Formats that decode the same rows alike: the first named wins a tie (xLAM before Hammer, ...).
_TIE_ORDER = FORMATS


@dataclass(frozen=True)
class RegisteredModel:
    """One entry of BFCL's model registry (``MODEL_CONFIG_MAPPING``)."""

    name: str
    handler: str
    is_fc_model: bool
    underscore_to_dot: bool

    @property
    def folder(self) -> str:
        return self.name.replace("/", "_")


@dataclass(frozen=True)
class Resolution:
    """The decoder chosen for a run and why."""

    format: str
    underscore_names: bool
    source: str  # "--result-format", "run metadata", "folder name", "rows"
    reason: str
    lenient: bool = False

    def describe(self) -> str:
        mode = "lenient (the runtime's forgiving parsers)" if self.lenient else "strict (BFCL's decoding)"
        return f"decoder {self.format}, {mode}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "strict": not self.lenient,
            "source": self.source,
            "reason": self.reason,
            "underscore_names": self.underscore_names,
        }


# ---------------------------------------------------------------- BFCL's registry, read with ast


def _package_dir() -> Path:
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
    tree = ast.parse((_package_dir() / "constants" / "model_config.py").read_text(encoding="utf-8"))
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


@cache
def handler_classes() -> dict[str, tuple[str | None, bool]]:
    """BFCL handler class -> (its base class, whether it defines decode_ast itself)."""
    classes: dict[str, tuple[str | None, bool]] = {}
    for path in sorted((_package_dir() / "model_handler").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                base = next((b.id for b in node.bases if isinstance(b, ast.Name)), None)
                defines = any(isinstance(f, ast.FunctionDef) and f.name == "decode_ast" for f in node.body)
                classes[node.name] = (base, defines)
    return classes


def decode_owner(handler: str) -> str | None:
    """The class in the handler's ancestry that defines the decode_ast it uses."""
    classes = handler_classes()
    seen: set[str] = set()
    current: str | None = handler
    while current in classes and current not in seen:
        seen.add(current)
        base, defines = classes[current]
        if defines:
            return current
        current = base
    return None


def decoder_for_handler(handler: str, is_fc_model: bool) -> str | None:
    """Our decoder for a BFCL handler class in the given mode; None when we have none for it."""
    owner = decode_owner(handler)
    for decoder in STRICT.values():
        if owner in decoder.handler_names:
            # The API handlers decode FC results as JSON and prompt-mode text as Python calls.
            return "python" if decoder.name == "json" and not is_fc_model else decoder.name
    return None


# ---------------------------------------------------------------- resolution


def _folder_names(result_dir: Path, files: list[Path]) -> list[str]:
    names = [result_dir.resolve().name]
    for path in files:
        names += list(path.parent.relative_to(result_dir).parts)
    return list(dict.fromkeys(names))


def model_from_folders(result_dir: Path, files: list[Path]) -> RegisteredModel | None:
    """The BFCL model whose result-folder name appears in the path; ValueError if several do."""
    by_folder: dict[str, RegisteredModel] = {}
    for model in bfcl_registry().values():
        by_folder.setdefault(model.folder, model)
    found = {by_folder[n].name: by_folder[n] for n in _folder_names(result_dir, files) if n in by_folder}
    if len(found) > 1:
        raise ValueError(
            f"result folders of several BFCL models under {result_dir} ({', '.join(sorted(found))}); "
            "expected one model's results — score each model's folder separately"
        )
    return next(iter(found.values()), None)


def _holds_call(decoder_name: str, raw: Any, language: str) -> bool:
    try:
        return has_call(STRICT[decoder_name].decode_ast(raw, language))
    except DecodeError:
        return False


def _outputs(rows_by_category: dict[str, list[dict]], per_category: int) -> list[tuple[Any, str]]:
    """(raw output, language) samples: single-turn results, and the steps of multi-step ones."""
    samples: list[tuple[Any, str]] = []
    for category, rows in rows_by_category.items():
        stride = max(1, len(rows) // per_category)
        picked = [row.get("result") for row in rows[::stride][:per_category]]
        if category in data.MULTI_TURN or category in data.MEMORY:
            for raw in picked:
                for turn in raw if isinstance(raw, list) else []:
                    samples += [(step, "python") for step in (turn if isinstance(turn, list) else [])]
        else:
            samples += [(raw, data.language_of(category)) for raw in picked]
    return samples


def count_calls(outputs: list[tuple[Any, str]], formats: tuple[str, ...] = FORMATS) -> Counter:
    """How many outputs hold a call, per format."""
    return Counter({fmt: sum(_holds_call(fmt, raw, lang) for raw, lang in outputs) for fmt in formats})


def sniff_format(rows_by_category: dict[str, list[dict]]) -> tuple[str, str]:
    """(format, reason): the format in which most sampled outputs hold a call."""
    outputs = _outputs(rows_by_category, SNIFF_ROWS_PER_CATEGORY)
    counts = count_calls(outputs)
    best = max(_TIE_ORDER, key=lambda f: (counts[f], -_TIE_ORDER.index(f)))
    if counts[best] == 0:
        return "python", (
            f"none of {len(outputs)} sampled outputs holds a call in any format ({', '.join(FORMATS)}); "
            "read as python (prompt mode)"
        )
    runners_up = ", ".join(
        f"{f} {counts[f]}" for f in sorted(counts, key=lambda f: -counts[f]) if f != best and counts[f]
    )
    return best, (
        f"{counts[best]} of {len(outputs)} sampled outputs hold a call as {best}"
        + (f" (next: {runners_up})" if runners_up else "")
    )


def resolve(
    result_dir: Path,
    files: list[Path],
    rows_by_category: dict[str, list[dict]],
    fmt: str | None = None,
    metadata: dict[str, Any] | None = None,
    metadata_path: Path | None = None,
    lenient: bool = False,
) -> Resolution:
    """The decoder for a run: --result-format, else run metadata, else BFCL's model folder, else the rows."""
    metadata = metadata or {}
    model = model_from_folders(result_dir, files) if data.is_available() else None
    if fmt:
        source, reason = "--result-format", "chosen with --result-format"
    elif metadata.get("format"):
        fmt, source = metadata["format"], "run metadata"
        reason = f"the run's metadata ({metadata_path or BfclRun(result_dir).metadata.name}) says the results were written as {fmt}"
    else:
        fmt = decoder_for_handler(model.handler, model.is_fc_model) if model else None
        if fmt and model:
            source = "folder name"
            mode = "FC" if model.is_fc_model else "prompt"
            reason = (
                f"folder {model.folder} is BFCL's {model.name} ({mode} mode), decoded by BFCL's "
                f"{decode_owner(model.handler)}"
            )
        else:
            fmt, reason = sniff_format(rows_by_category)
            source, reason = "rows", f"read from the rows: {reason}"
            if model:
                reason = f"BFCL's {model.name} uses {model.handler}, which has no decoder here; {reason}"
    if fmt not in STRICT:
        raise ValueError(
            f"unknown BFCL result format {fmt!r} ({source}); expected one of: {', '.join(FORMATS)}"
        )
    if "underscore_names" in metadata and source == "run metadata":
        underscore = bool(metadata["underscore_names"])
    elif model and source == "folder name":
        underscore = model.underscore_to_dot
    else:
        underscore = fmt == "json"
    return Resolution(fmt, underscore, source, reason, lenient)


def decode_warning(score: CategoryScore, rows_by_id: dict[str, dict], fmt: str) -> str | None:
    """A warning when more than half of a category's results hold no call in the format, naming
    the format that would decode them (in categories where "no call" is often right, only when
    another format decodes at least a tenth of the items)."""
    undecoded, scored = score.undecoded_ids, score.scored_from_rows
    if not scored or len(undecoded) * 2 <= scored:
        return None
    items = [_outputs({score.category: [rows_by_id[i]]}, 1) for i in undecoded if i in rows_by_id]
    counts = Counter(
        {
            other: sum(any(_holds_call(other, raw, lang) for raw, lang in outputs) for outputs in items)
            for other in FORMATS
            if other != fmt
        }
    )
    best = max(counts, key=lambda f: (counts[f], -_TIE_ORDER.index(f)))
    if score.category in NO_CALL_CATEGORIES and counts[best] * 10 < scored:
        return None
    message = f"{score.category}: {len(undecoded)} of {scored} results hold no call as {fmt}"
    if counts[best]:
        return message + (
            f"; {counts[best]} of them hold a call as {best} — if the model writes calls that way, "
            f"score again with --result-format {best}"
        )
    return message + "; no other format reads a call in them either (does the model answer in prose?)"
