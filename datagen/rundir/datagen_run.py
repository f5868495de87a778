"""``runs/<name>/``: the run directory of Phase 1 and Phase 2 of one datagen recipe."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from apigen_rules.jsonl import write_json_atomic
from datagen.rundir.base import RunDir
from datagen.rundir.guard import LATER_SECTIONS
from datagen.rundir.reading import read_json


@dataclass(frozen=True)
class DatagenRun(RunDir):
    """``runs/<name>/``: Phase 1 and Phase 2 of one recipe (written by ``blueprints``, ``simulate``
    and ``generate``). Its settings are the resolved recipe of the latest session; a resume may
    change only what does not change the output (RESUMABLE_KEYS)."""

    kind: ClassVar[str] = "datagen"

    @property
    def old_settings(self) -> Path:
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
        return [p.name for p in self.phase1_records() + self.phase2_records() if p.exists()]

    def is_run(self) -> bool:
        return self.settings_file() is not None or any(
            p.exists() for p in (self.blueprints, self.trajectories, self.phase2_stats)
        )

    def read_phase1_stats(self) -> dict[str, Any]:
        return read_json(self.phase1_stats) or {}

    def read_phase2_stats(self) -> dict[str, Any]:
        return read_json(self.phase2_stats) or {}

    def write_settings(self, settings: dict[str, Any]) -> None:
        """Saves the resolved recipe (see :meth:`RunDir.write_settings`); a later section
        (``simulate:``) left out now keeps the saved one."""
        data = dict(settings)
        saved = self.read_settings() or {}
        for section in LATER_SECTIONS:
            if data.get(section) is None and saved.get(section) is not None:
                data[section] = saved[section]
        super().write_settings(data)

    # The names this class had before every kind shared one settings file, kept for their callers.
    recipe = RunDir.settings

    def read_recipe(self) -> dict[str, Any]:
        return self.read_settings() or {}

    def check_recipe(self, resolved: dict[str, Any]) -> None:
        """Refuses a recipe that changes what this run makes once it holds records; a datagen run is
        always continued (``simulate`` adds Phase 2 to a Phase 1 run)."""
        self.check_open(resolved, resume=True)

    def save_recipe(self, resolved: dict[str, Any]) -> None:
        """:meth:`check_recipe`, then the recipe saved as this session's."""
        self.open_for_writing(resolved, resume=True)

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


def save_recipe(path: Path, resolved: dict[str, Any]) -> None:
    """Saves the resolved recipe of the datagen run whose settings file is ``path``
    (:meth:`DatagenRun.save_recipe`)."""
    DatagenRun(path.parent).save_recipe(resolved)
