"""The run directory of ``eval bfcl`` and the score folder of ``eval bfcl-score``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from datagen.rundir.base import RunDir

# BFCL's own file-name prefix for its v4 data, result and score files.
BFCL_PREFIX = "BFCL_v4"
_BFCL_RESULT = re.compile(rf"^{BFCL_PREFIX}_(\w+?)_result\.json$")

# What decides the rows of a run: resuming with any of them changed would mix two runs in one file
# (categories and limits may grow).
GENERATION_KEYS = ("model", "backend", "mode", "max_tokens", "temperature", "result_folder")


@dataclass(frozen=True)
class BfclRun(RunDir):
    """``eval bfcl --out DIR``: the run's settings, one folder of BFCL-layout result files per model
    (so BFCL's own ``bfcl evaluate`` can re-score them), and the score folder ``bfcl-score`` writes."""

    kind: ClassVar[str] = "bfcl"
    deciding_keys: ClassVar[tuple[str, ...] | None] = GENERATION_KEYS

    @property
    def old_settings(self) -> Path:
        return self.root / "run_metadata.json"

    @property
    def score_dir(self) -> Path:
        return self.root / "score"

    def held_records(self) -> list[str]:
        return [str(path.relative_to(self.root)) for _, path in self.find_result_files(self.root)]

    def is_run(self) -> bool:
        return self.settings_file() is not None

    # The names this class had before every kind shared one settings file, kept for their callers.
    metadata = RunDir.settings

    def read_metadata(self) -> dict[str, Any] | None:
        return self.read_settings()

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        self.write_settings(metadata)

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
