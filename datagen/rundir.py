"""Every file of a run directory: its name, its reader and its writer.

Nothing else in the toolkit spells a run file's name (``tests/test_rundir.py`` greps for literals).
Three kinds of run share the same rules: JSONL files are append-only and fsync'd
(:class:`apigen_rules.jsonl.JsonlAppender`), summaries are rewritten atomically, and the resolved recipe
is saved beside the results with credentials redacted, so a run can be read, resumed and reproduced
from its own directory. A resume with a recipe that changes what the run makes is refused, naming
the keys (:func:`check_resume`, one rule for every kind of run).

- :class:`DatagenRun` (``runs/<name>/``, written by ``blueprints``, ``simulate`` and ``generate``)
- :class:`TauRun` (``eval tau --out DIR``; with ``--repeats N`` one TauRun per repeat inside DIR)
- :class:`TauScoreRun` (``eval tau-score FILE... --out DIR``)
- :class:`BfclRun` (``eval bfcl --out DIR``; the result files inside keep BFCL's own layout so the
  official checker can re-score them)
- :class:`NextActionRun` (``eval next-action --out DIR``)
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from apigen_rules.errors import UsageError
from apigen_rules.jsonl import JsonlAppender, read_jsonl, read_models, write_json_atomic

log = logging.getLogger(__name__)

Record = TypeVar("Record", bound=BaseModel)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON summary, or None when it is missing or unreadable (summaries are rewritten from the
    JSONL records, so a damaged one loses nothing)."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        log.warning("%s: expected a JSON summary, found unreadable content (%s); ignored", path, exc)
        return None
    return value if isinstance(value, dict) else None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The complete records of a JSONL file; every damaged line is logged with its place and skipped."""
    rows, problems = read_jsonl(path)
    for problem in problems:
        log.warning("%s", problem)
    return rows


def read_records(path: Path, model: type[Record]) -> list[Record]:
    """The records of ``path`` that are valid ``model`` instances; every other line is logged with its
    place and skipped."""
    records, problems = read_models(path, model)
    for problem in problems:
        log.warning("%s", problem)
    return records


# Recipe keys that change how a run goes, not what it makes, so a resumed run may change them:
# where and how fast jobs run, how a model server is reached, how many jobs of the same kind there
# are (done ones are kept), the dataset card's licence. Matched as the last part of a dotted key
# (`simulate.concurrency`, `models.teacher.base_urls`); `executor` covers its whole section.
RESUMABLE_KEYS = frozenset(
    {
        "concurrency",
        "executor",
        "max_concurrency",
        "timeout_s",
        "max_retries",
        "base_urls",
        "api_key_env",
        "out_dir",
        "num_tasks",
        "attempts",
        "license",
        "license_name",
        "license_link",
    }
)
# Sections a later command may add to a run that was started without them (Phase 2's `simulate:`
# after `apigen-mt blueprints`); given as null, the saved one is kept.
_LATER_SECTIONS = frozenset({"simulate"})


def recipe_changes(saved: Any, given: Any, where: str = "") -> list[str]:
    """The changes from ``saved`` to ``given`` that change what a run makes, as ``key: old -> new``
    (keys present on one side only are an older or newer version's, not a change)."""
    if isinstance(saved, dict) and isinstance(given, dict):
        changes = []
        for key in saved:
            if key not in given or key in RESUMABLE_KEYS:
                continue
            if key in _LATER_SECTIONS and not where and (saved[key] is None or given[key] is None):
                continue
            changes += recipe_changes(saved[key], given[key], f"{where}.{key}" if where else str(key))
        return changes
    if saved == given:
        return []
    return [f"{where or 'the recipe'}: {_short(saved)} -> {_short(given)}"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_resume(
    saved: dict[str, Any] | None, resolved: dict[str, Any], root: Path, saved_file: Path
) -> None:
    """Refuses (one line naming the keys) to continue the run in ``root`` with a recipe that changes
    what it makes: the domain, seed, models, proposal, name... (everything but :data:`RESUMABLE_KEYS`).
    ``saved`` is the run's saved recipe (redacted), ``resolved`` the one given now."""
    from apigen_rules.errors import UsageError
    from apigen_rules.redact import redact_config

    changes = recipe_changes(saved or {}, redact_config(resolved))
    if changes:
        shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
        raise UsageError(
            f"{root} was made with another recipe ({shown}); --resume continues a run with the recipe it "
            f"was made with (saved in {saved_file}): put those keys back, or start a new run with --out"
        )


def save_recipe(path: Path, resolved: dict[str, Any]) -> None:
    """Saves the resolved recipe of a datagen run (redacted) in ``path``; see :meth:`DatagenRun.save_recipe`."""
    DatagenRun(path.parent).save_recipe(resolved)


def check_output_folder(out: Path, *, reads: Iterable[Path] = (), flag: str = "--out") -> Path:
    """``out`` when a command may write into it, else one :class:`UsageError` line: ``out`` (or a folder
    above it) is a file or a link to nothing, or ``out`` is (inside) a folder in ``reads``, the
    command's inputs, where what it writes would mix with what it reads. Every writer's ``--out``
    comes here before any work starts."""
    for path in (out, *out.parents):
        if (path.exists() or path.is_symlink()) and not path.is_dir():
            what = "a file" if path.exists() else "a link that leads nowhere"
            found = what if path == out else f"that {path} is {what}"
            raise UsageError(
                f"{flag} {out}: expected a folder to write into, found {found}; choose another {flag} or move it away"
            )
    target = out.resolve()
    for source in reads:
        if source.is_dir() and (target == source.resolve() or source.resolve() in target.parents):
            found = "the input itself" if target == source.resolve() else "one inside it"
            raise UsageError(
                f"{flag} {out}: expected a folder outside the input {source}, found {found} (what is "
                f"written there would mix with what is read); choose a folder elsewhere"
            )
    return out


@dataclass(frozen=True)
class DatagenRun:
    """``runs/<name>/``: Phase 1 and Phase 2 of one recipe."""

    root: Path

    # The resolved recipe of the latest session (credentials redacted); a resume may change only what
    # does not change the output (RESUMABLE_KEYS).
    @property
    def recipe(self) -> Path:
        return self.root / "config.yaml"

    # Phase 1: one line per finished task, in blueprints or rejections; events for people; the funnel.
    @property
    def blueprints(self) -> Path:
        return self.root / "blueprints.jsonl"

    @property
    def rejections(self) -> Path:
        return self.root / "rejections.jsonl"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def phase1_stats(self) -> Path:
        return self.root / "stats.json"

    # Phase 2: one line per finished attempt, in trajectories, failures or duplicates.
    @property
    def trajectories(self) -> Path:
        return self.root / "trajectories.jsonl"

    @property
    def failures(self) -> Path:
        return self.root / "failures.jsonl"

    @property
    def duplicates(self) -> Path:
        return self.root / "duplicates.jsonl"

    @property
    def phase2_stats(self) -> Path:
        return self.root / "simulate_stats.json"

    def phase1_records(self) -> list[Path]:
        return [self.blueprints, self.rejections]

    def phase2_records(self) -> list[Path]:
        return [self.trajectories, self.failures, self.duplicates]

    def held_records(self) -> list[str]:
        """The record files already present (a run that holds any is resumed, never overwritten)."""
        return [p.name for p in self.phase1_records() + self.phase2_records() if p.exists()]

    def is_run(self) -> bool:
        return any(p.exists() for p in (self.recipe, self.blueprints, self.trajectories, self.phase2_stats))

    def read_phase1_stats(self) -> dict[str, Any]:
        return read_json(self.phase1_stats) or {}

    def read_phase2_stats(self) -> dict[str, Any]:
        return read_json(self.phase2_stats) or {}

    def check_recipe(self, resolved: dict[str, Any]) -> None:
        """Refuses a recipe that changes what this run makes once it holds records (:func:`check_resume`);
        before any record it may change freely (a run that stopped at start-up is started again)."""
        if self.held_records() and self.recipe.is_file():
            check_resume(self.read_recipe(), resolved, self.root, self.recipe)

    def save_recipe(self, resolved: dict[str, Any]) -> None:
        """Writes the resolved recipe (redacted), after :meth:`check_recipe`: a resumed run records the
        settings of its latest session, which differ from the first one's only in what does not
        change the output; a later section (``simulate:``) left out now keeps the saved one."""
        from apigen_rules.redact import redact_config

        self.check_recipe(resolved)
        data = redact_config(resolved)
        saved = self.read_recipe() if self.recipe.is_file() else {}
        for section in _LATER_SECTIONS:
            if data.get(section) is None and saved.get(section) is not None:
                data[section] = saved[section]
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.recipe.with_suffix(self.recipe.suffix + ".tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        tmp.replace(self.recipe)

    def read_recipe(self) -> dict[str, Any]:
        if not self.recipe.is_file():
            return {}
        from apigen_rules.yamlsafe import YamlError, load_yaml

        try:
            data = load_yaml(self.recipe.read_text(encoding="utf-8"), str(self.recipe))
        except (OSError, UnicodeDecodeError, YamlError) as exc:
            log.warning(
                "%s: expected the run's resolved recipe, found unreadable YAML (%s)", self.recipe, exc
            )
            return {}
        return data if isinstance(data, dict) else {}

    @classmethod
    def find(cls, root: Path) -> Iterator[DatagenRun]:
        """Every datagen run under ``root`` that has reached Phase 2 (it wrote its Phase 2 funnel)."""
        marker = cls(Path()).phase2_stats.name
        for path in sorted(root.rglob(marker)):
            yield cls(path.parent)

    def write_phase1_stats(self, stats: dict[str, Any]) -> None:
        write_json_atomic(self.phase1_stats, stats)

    def write_phase2_stats(self, stats: dict[str, Any]) -> None:
        write_json_atomic(self.phase2_stats, stats)


@dataclass(frozen=True)
class TauRun:
    """``eval tau --out DIR``: every trial with its trajectory, per-task figures, the summary, the curve."""

    root: Path

    @property
    def recipe(self) -> Path:
        return self.root / "config.json"

    @property
    def results(self) -> Path:
        return self.root / "results.jsonl"

    @property
    def per_task(self) -> Path:
        return self.root / "per_task.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def curve(self) -> Path:
        return self.root / "pass_k.png"

    @property
    def tau2_results(self) -> Path:
        """The run in τ²-bench's results format (its ``Results`` loader, metrics and viewer read it)."""
        return self.root / "tau2_results.json"

    @property
    def repeats_summary(self) -> Path:
        """``--repeats N``: every repeat's pass^k and the run-to-run spread."""
        return self.root / "repeats.json"

    def repeat(self, index: int) -> TauRun:
        """The run directory of repeat ``index`` (1-based) of ``eval tau --repeats N``."""
        return TauRun(self.root / f"repeat-{index}")

    def read_summary(self) -> dict[str, Any] | None:
        return read_json(self.summary)

    @classmethod
    def find(cls, root: Path) -> Iterator[TauRun]:
        """Every τ run under ``root`` with a summary."""
        for path in sorted(root.rglob(cls(Path()).summary.name)):
            yield cls(path.parent)

    def read_recipe(self) -> dict[str, Any] | None:
        return read_json(self.recipe)


@dataclass(frozen=True)
class TauScoreRun:
    """``eval tau-score FILE... --out DIR``: each re-scored simulation beside its recorded reward, and
    the figures per file."""

    root: Path

    @property
    def scores(self) -> Path:
        return self.root / "tau_scores.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "tau_score_summary.json"


@dataclass(frozen=True)
class NextActionRun:
    """``eval next-action --out DIR``: one row per evaluated assistant turn, the summary, the settings.
    Its file names differ from a τ run's, so neither kind of run is taken for the other."""

    root: Path

    @property
    def recipe(self) -> Path:
        return self.root / "next_action_config.json"

    @property
    def turns(self) -> Path:
        return self.root / "turns.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "next_action_summary.json"

    def read_summary(self) -> dict[str, Any] | None:
        return read_json(self.summary)

    def read_recipe(self) -> dict[str, Any] | None:
        return read_json(self.recipe)

    def write_recipe(self, resolved: dict[str, Any]) -> None:
        from apigen_rules.redact import redact_config

        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.recipe, redact_config(resolved))

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.summary, summary)

    @classmethod
    def find(cls, root: Path) -> Iterator[NextActionRun]:
        """Every next-action run under ``root`` with a summary."""
        for path in sorted(root.rglob(cls(Path()).summary.name)):
            yield cls(path.parent)


# BFCL's own file-name prefix for its v4 data, result and score files.
BFCL_PREFIX = "BFCL_v4"
_BFCL_RESULT = re.compile(rf"^{BFCL_PREFIX}_(\w+?)_result\.json$")


@dataclass(frozen=True)
class BfclRun:
    """``eval bfcl --out DIR``: run metadata, one folder of BFCL-layout result files per model (so
    BFCL's own ``bfcl evaluate`` can re-score them), and the score folder ``bfcl-score`` writes."""

    root: Path

    @property
    def metadata(self) -> Path:
        return self.root / "run_metadata.json"

    @property
    def score_dir(self) -> Path:
        return self.root / "score"

    def read_metadata(self) -> dict[str, Any] | None:
        return read_json(self.metadata)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        from apigen_rules.redact import redact_config

        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.metadata, redact_config(metadata))

    def result_folder(self, label: str) -> Path:
        """The folder of one model's result files, named as BFCL names model folders (``/`` -> ``_``)."""
        return self.root / label.replace("/", "_")

    @staticmethod
    def result_file(folder: Path, category: str) -> Path:
        """BFCL's result file of a category: one JSON object per line (``id``, raw ``result``)."""
        return folder / f"{BFCL_PREFIX}_{category}_result.json"

    @staticmethod
    def result_category(path: Path) -> str | None:
        """The category a result file holds, or None when the name is not a BFCL result file's."""
        match = _BFCL_RESULT.match(path.name)
        return match.group(1) if match else None

    @classmethod
    def find_result_files(cls, root: Path) -> Iterator[tuple[str, Path]]:
        """(category, path) of every BFCL result file under ``root``, in a stable order."""
        for path in sorted(root.rglob(f"{BFCL_PREFIX}_*_result.json")):
            category = cls.result_category(path)
            if category is not None:
                yield category, path

    @staticmethod
    def scores_file(score_dir: Path) -> Path:
        """The machine-readable scores in a score folder (``bfcl-score --out`` may put it anywhere)."""
        return score_dir / "scores.json"

    @staticmethod
    def verdicts_file(score_dir: Path) -> Path:
        """Every scored item with its verdict and the reason (written beside the scores file)."""
        return score_dir / "verdicts.jsonl"

    @staticmethod
    def summary_file(score_dir: Path) -> Path:
        return score_dir / "summary.md"

    @staticmethod
    def category_score_file(score_dir: Path, category: str) -> Path:
        """BFCL's per-category score file (its own layout: a summary line, then the failed items)."""
        return score_dir / f"{BFCL_PREFIX}_{category}_score.json"

    @classmethod
    def find_scores(cls, root: Path) -> Iterator[Path]:
        """Every scores file under ``root``."""
        yield from sorted(root.rglob(cls.scores_file(Path()).name))


__all__ = [
    "BFCL_PREFIX",
    "BfclRun",
    "DatagenRun",
    "JsonlAppender",
    "NextActionRun",
    "TauRun",
    "check_output_folder",
    "read_json",
    "read_records",
    "read_rows",
    "RESUMABLE_KEYS",
    "check_resume",
    "recipe_changes",
    "save_recipe",
]
