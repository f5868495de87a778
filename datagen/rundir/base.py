"""What every kind of run directory shares: its saved settings and the one guard a command passes
before it writes into it.

The settings of a run (the resolved recipe, or an evaluation's flags and versions) are saved under
one name in every kind of run, :attr:`RunDir.settings` (``settings.json``): JSON, credentials
redacted, written atomically, marked with the kind of run so that no kind is taken for another.
Runs made before that name existed keep theirs (:attr:`RunDir.old_settings`): they are read as
before, and the next session of such a run writes the new name only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from apigen_rules.errors import UsageError
from apigen_rules.jsonl import write_json_atomic
from datagen.rundir.guard import check_resume

log = logging.getLogger(__name__)

# The key that names the kind of run inside its settings file (never part of the settings).
KIND_KEY = "run_kind"


def load_settings(path: Path) -> dict[str, Any]:
    """The settings saved in ``path``: JSON as written here, or YAML that a person or an older
    version wrote (a datagen run's ``config.yaml``). One :class:`ValueError` line when unreadable."""
    from apigen_rules.yamlsafe import load_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: expected the run's settings, found an unreadable file ({exc})") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        try:
            data = load_yaml(text, str(path))  # JSON first: YAML 1.1 reads `1e-05` as a string
        except ValueError as exc:
            raise ValueError(
                f"{path}: expected the run's settings as JSON, found {exc}; fix or delete it"
            ) from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected the run's settings as a mapping, found {type(data).__name__}; fix or delete it"
        )
    data.pop(KIND_KEY, None)
    return data


def _kind_in(path: Path) -> str | None:
    """The kind of run a settings file names, or None (unmarked or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    kind = data.get(KIND_KEY) if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None


@dataclass(frozen=True)
class RunDir:
    """A run directory of one kind (a subclass): the settings file every kind shares, and the one
    guard (:meth:`open_for_writing`) through which a command starts or continues a run."""

    root: Path

    #: The kind's name in its settings file.
    kind: ClassVar[str] = "run"
    #: The settings keys that decide what the run makes, or None for every key but RESUMABLE_KEYS.
    deciding_keys: ClassVar[tuple[str, ...] | None] = None

    @property
    def settings(self) -> Path:
        """The settings of the run's latest session (credentials redacted)."""
        return self.root / "settings.json"

    @property
    def old_settings(self) -> Path | None:
        """Where runs of this kind made before :attr:`settings` existed saved theirs (read, never written)."""
        return None

    def held_records(self) -> list[str]:
        """The record files already present (a run that holds any is continued, never overwritten)."""
        return []

    def settings_file(self) -> Path | None:
        """The file holding this run's settings: :attr:`settings` unless another kind of run wrote it,
        else :attr:`old_settings`; None when the run has none."""
        if self.settings.is_file() and _kind_in(self.settings) in (None, self.kind):
            return self.settings
        old = self.old_settings
        return old if old is not None and old.is_file() else None

    def read_settings(self) -> dict[str, Any] | None:
        """The saved settings, or None when there are none or they cannot be read (logged)."""
        path = self.settings_file()
        if path is None:
            return None
        try:
            return load_settings(path)
        except ValueError as exc:
            log.warning("%s; ignored", exc)
            return None

    def check_open(self, settings: dict[str, Any], *, resume: bool) -> None:
        """Refuses (one line) to write this run into :attr:`root` when the folder holds another kind
        of run, or holds records and ``resume`` is off, or holds records made with settings that
        differ from ``settings`` in what the run makes (:func:`check_resume`). A run that holds only
        its settings (it stopped at start-up) takes new ones."""
        if self.settings.is_file() and _kind_in(self.settings) not in (None, self.kind):
            raise UsageError(
                f"{self.root}: expected a folder for a {self.kind} run, found a "
                f"{_kind_in(self.settings)} run's {self.settings.name}; choose another --out"
            )
        held = self.held_records()
        if held and not resume:
            shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
            raise FileExistsError(
                f"{self.root} already holds a run ({shown}); pass --resume to continue it or choose another --out"
            )
        saved_file = self.settings_file()
        saved = self.read_settings()
        if held and saved is not None and saved_file is not None:
            check_resume(saved, settings, self.root, saved_file, deciding=self.deciding_keys)

    def write_settings(self, settings: dict[str, Any]) -> None:
        """Saves ``settings`` (credentials redacted, atomically) as this session's."""
        from apigen_rules.redact import redact_config

        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.settings, {KIND_KEY: self.kind, **redact_config(settings)})

    def open_for_writing(self, settings: dict[str, Any], *, resume: bool) -> None:
        """The one way a command starts or continues a run here: :meth:`check_open`, then
        :meth:`write_settings`."""
        self.check_open(settings, resume=resume)
        self.write_settings(settings)
