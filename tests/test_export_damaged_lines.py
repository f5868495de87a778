"""`apigen-mt export` goes on past damaged lines of trajectories.jsonl and names each in the card."""

from __future__ import annotations

import json
from pathlib import Path

from test_runio import DAMAGED, _damage, _trajectory

from datagen.export import export_run
from datagen.rundir import DatagenRun


def test_export_goes_on_past_damaged_lines(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    path = DatagenRun(run).trajectories
    path.write_text("".join(json.dumps(_trajectory(i, True)) + "\n" for i in range(4)))
    _damage(path)
    result = export_run(run, tmp_path / "out", fmt="jsonl", test=0.0)
    assert result.splits == {"train": 4}
    notes = [note for note in result.skipped if note.startswith(f"{path.name}:")]
    assert len(notes) == len(DAMAGED) + 1  # every damaged line, the wrong-schema one included
    assert any("expected a Trajectory record" in note for note in notes)
