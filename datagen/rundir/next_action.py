"""The run directory of ``eval next-action``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from apigen_rules.jsonl import write_json_atomic
from datagen.rundir.base import RunDir
from datagen.rundir.reading import read_json


@dataclass(frozen=True)
class NextActionRun(RunDir):
    """``eval next-action --out DIR``: one row per evaluated assistant turn, the summary, the settings.
    Its record and summary names differ from a τ run's, so neither kind of run is taken for the other."""

    kind: ClassVar[str] = "next-action"

    @property
    def old_settings(self) -> Path:
        return self.root / "next_action_config.json"

    @property
    def turns(self) -> Path:
        return self.root / "turns.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "next_action_summary.json"

    def held_records(self) -> list[str]:
        return [self.turns.name] if self.turns.exists() else []

    def read_summary(self) -> dict[str, Any] | None:
        return read_json(self.summary)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.summary, summary)

    @classmethod
    def find(cls, root: Path) -> Iterator[NextActionRun]:
        """Every next-action run under ``root`` with a summary."""
        for path in sorted(root.rglob(cls(Path()).summary.name)):
            yield cls(path.parent)

    # The names this class had before every kind shared one settings file, kept for their callers.
    recipe = RunDir.settings

    def read_recipe(self) -> dict[str, Any] | None:
        return self.read_settings()

    def write_recipe(self, resolved: dict[str, Any]) -> None:
        self.write_settings(resolved)
