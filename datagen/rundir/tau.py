"""The run directories of ``eval tau`` and ``eval tau-score``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from datagen.rundir.base import RunDir
from datagen.rundir.reading import read_json


@dataclass(frozen=True)
class TauRun(RunDir):
    """``eval tau --out DIR``: every trial with its trajectory, per-task figures, the summary, the
    curve; with ``--repeats N`` one TauRun per repeat inside DIR."""

    kind: ClassVar[str] = "tau"

    @property
    def old_settings(self) -> Path:
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

    def held_records(self) -> list[str]:
        return [self.results.name] if self.results.exists() else []

    def read_summary(self) -> dict[str, Any] | None:
        return read_json(self.summary)

    @classmethod
    def find(cls, root: Path) -> Iterator[TauRun]:
        """Every τ run under ``root`` with a summary."""
        for path in sorted(root.rglob(cls(Path()).summary.name)):
            yield cls(path.parent)

    # The names this class had before every kind shared one settings file, kept for their callers.
    recipe = RunDir.settings

    def read_recipe(self) -> dict[str, Any] | None:
        return self.read_settings()


@dataclass(frozen=True)
class TauScoreRun:
    """``eval tau-score FILE... --out DIR``: each re-scored simulation beside its recorded reward, and
    the figures per file (re-scored from scratch on every call: no settings, no resume)."""

    root: Path

    @property
    def scores(self) -> Path:
        return self.root / "tau_scores.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "tau_score_summary.json"
