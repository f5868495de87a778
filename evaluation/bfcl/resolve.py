"""Which decoder reads a folder of result files, which function-name rule it is checked under,
and a loud warning when it reads too little.

The format comes, in order, from: ``--result-format``; the run's own settings (``BfclRun.settings``,
written when we generated the run); BFCL's model name in the folder path (BFCL names each model's
result folder after its registry key, ``/`` written as ``_``: ``Salesforce_xLAM-2-1b-fc-r``), mapped
through the registry of the installed ``bfcl-eval`` (:mod:`evaluation.bfcl.registry`); else the
rows themselves (the format in which most sampled outputs hold a call). A folder naming a BFCL
model whose handler we have no decoder for is refused (:class:`NoDecoder`) unless a format is
given: sniffing would score it wrong without a word.

Whether dots in function names were replaced by underscores (``underscore_to_dot``) comes, in
order, from ``--underscore-to-dot`` / ``--no-underscore-to-dot``; the run's metadata; BFCL's
registry entry for the model the folder names, whatever chose the decoder; else on for ``json``
(the FC APIs' rule).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datagen.rundir import BfclRun
from evaluation.bfcl import data, registry
from evaluation.bfcl.decode import has_call
from evaluation.bfcl.handlers import FORMATS, STRICT, DecodeError
from evaluation.bfcl.registry import RegisteredModel, decode_owner, model_decoder
from evaluation.bfcl.scoring import NO_CALL_CATEGORIES, CategoryScore

SNIFF_ROWS_PER_CATEGORY = 25
# Formats that decode the same rows alike: the first named wins a tie (xLAM before Hammer, ...).
_TIE_ORDER = FORMATS


class NoDecoder(ValueError):
    """The folder names a BFCL model whose handler family has no decoder here, and no format was given."""


@dataclass(frozen=True)
class Resolution:
    """The decoder chosen for a run and why."""

    format: str
    underscore_names: bool
    source: str  # "--result-format", "run metadata", "folder name", "rows"
    reason: str
    lenient: bool = False
    underscore_source: str = ""  # where underscore_names came from

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
            "underscore_source": self.underscore_source,
        }


# ---------------------------------------------------------------- resolution


def _folder_names(result_dir: Path, files: list[Path]) -> list[str]:
    names = [result_dir.resolve().name]
    for path in files:
        names += list(path.parent.relative_to(result_dir).parts)
    return list(dict.fromkeys(names))


def model_from_folders(result_dir: Path, files: list[Path]) -> RegisteredModel | None:
    """The BFCL model whose result-folder name appears in the path; ValueError if several do."""
    return registry.model_from_folders(_folder_names(result_dir, files), str(result_dir))


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


def _refusal(model: RegisteredModel, rows_by_category: dict[str, list[dict]]) -> NoDecoder:
    outputs = _outputs(rows_by_category, SNIFF_ROWS_PER_CATEGORY)
    counts = count_calls(outputs)
    ranked = sorted((f for f in FORMATS if counts[f]), key=lambda f: (-counts[f], FORMATS.index(f)))
    tries = ", ".join(f"{f} ({counts[f]} of {len(outputs)} sampled outputs hold a call)" for f in ranked[:4])
    module = (
        registry.handler_classes()[model.handler].module
        if model.handler in registry.handler_classes()
        else "?"
    )
    return NoDecoder(
        f"folder {model.folder} is BFCL's {model.name}, decoded by BFCL's {model.handler} ({module}), "
        f"which has no decoder here; expected --result-format FORMAT to score it anyway — "
        + (
            f"formats that read these rows: {tries}"
            if tries
            else f"no format reads a call in them ({', '.join(FORMATS)})"
        )
    )


def _format_choice(
    model: RegisteredModel | None,
    rows_by_category: dict[str, list[dict]],
    fmt: str | None,
    metadata: dict[str, Any],
    metadata_path: Path | None,
    result_dir: Path,
) -> tuple[str, str, str]:
    """(format, source, reason)."""
    registered = model_decoder(model) if model else None
    if fmt:
        note = ""
        if model and registered != fmt:
            note = f" (BFCL decodes {model.name} as {registered or 'nothing we have'})"
        return fmt, "--result-format", "chosen with --result-format" + note
    if metadata.get("format"):
        where = metadata_path or BfclRun(result_dir).settings.name
        return (
            metadata["format"],
            "run metadata",
            f"the run's metadata ({where}) says the results were written as {metadata['format']}",
        )
    if model and registered:
        mode = "FC" if model.is_fc_model else "prompt"
        return (
            registered,
            "folder name",
            (
                f"folder {model.folder} is BFCL's {model.name} ({mode} mode), decoded by BFCL's "
                f"{decode_owner(model.handler)}"
            ),
        )
    if model:
        raise _refusal(model, rows_by_category)
    sniffed, reason = sniff_format(rows_by_category)
    return sniffed, "rows", f"read from the rows: {reason}"


def _underscore_choice(
    model: RegisteredModel | None, fmt: str, metadata: dict[str, Any], override: bool | None
) -> tuple[bool, str]:
    """(underscore_names, where it came from)."""
    if override is not None:
        return override, "--underscore-to-dot" if override else "--no-underscore-to-dot"
    if "underscore_names" in metadata:
        return bool(metadata["underscore_names"]), "run metadata"
    if model:
        return (
            model.underscore_to_dot,
            f"BFCL's registry ({model.name}: underscore_to_dot={model.underscore_to_dot})",
        )
    return fmt == "json", f"the {fmt} format's default (on only for json, the FC APIs' rule)"


def resolve(
    result_dir: Path,
    files: list[Path],
    rows_by_category: dict[str, list[dict]],
    fmt: str | None = None,
    metadata: dict[str, Any] | None = None,
    metadata_path: Path | None = None,
    lenient: bool = False,
    underscore_to_dot: bool | None = None,
) -> Resolution:
    """The decoder for a run (--result-format, else run metadata, else BFCL's model folder, else the
    rows) and its function-name rule (module docstring); NoDecoder for a registered model we cannot
    decode when no format is given."""
    metadata = metadata or {}
    model = model_from_folders(result_dir, files) if data.is_available() else None
    fmt, source, reason = _format_choice(model, rows_by_category, fmt, metadata, metadata_path, result_dir)
    if fmt not in STRICT:
        raise ValueError(
            f"unknown BFCL result format {fmt!r} ({source}); expected one of: {', '.join(FORMATS)}"
        )
    underscore, underscore_source = _underscore_choice(model, fmt, metadata, underscore_to_dot)
    return Resolution(fmt, underscore, source, reason, lenient, underscore_source)


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
