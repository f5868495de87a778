"""`load_dataset(DIR)` on an export never answers from a stale cache: datasets 5.2 keys a local folder
with a card by the folder's name and the card's configs, so the card's config carries a fingerprint of
the data files (`datagen.export.card.data_fingerprint`). Re-exporting into one folder, or exporting into
another folder of the same name, reads the new rows through the real `datasets` and its real cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from exportrun import write_run

from datagen.export import export_run


def _rows(folder: Path, cache: Path) -> dict[str, list[str]]:
    from datasets import load_dataset

    loaded = load_dataset(str(folder), cache_dir=str(cache))
    return {split: sorted(part["id"]) for split, part in loaded.items()}


@pytest.mark.parametrize("fmt", ["hf", "jsonl"])
def test_a_reexport_and_a_folder_of_the_same_name_are_read_fresh(tmp_path: Path, fmt: str):
    cache = tmp_path / "cache"
    first, second, other = (
        write_run(tmp_path / name, count) for name, count in (("r1", 3), ("r2", 7), ("r3", 5))
    )
    out = tmp_path / "a" / "dataset"
    export_run(first, out, fmt=fmt, test=0.0)
    assert _rows(out, cache) == {"train": [f"bp{i}-0" for i in range(3)]}
    export_run(second, out, fmt=fmt, test=0.0)
    assert _rows(out, cache) == {"train": sorted(f"bp{i}-0" for i in range(7))}
    elsewhere = tmp_path / "b" / "dataset"
    export_run(other, elsewhere, fmt=fmt, test=0.0)
    assert _rows(elsewhere, cache) == {"train": [f"bp{i}-0" for i in range(5)]}
    assert _rows(out, cache) == {"train": sorted(f"bp{i}-0" for i in range(7))}


def test_the_same_rows_give_the_same_fingerprint_and_other_rows_another(tmp_path: Path):
    import json

    run = write_run(tmp_path / "run", 4)
    facts = []
    for name in ("one", "two"):
        export_run(run, tmp_path / name, fmt="jsonl", test=0.0)
        facts.append(json.loads((tmp_path / name / "export.json").read_text())["data_sha256"])
    export_run(write_run(tmp_path / "run5", 5), tmp_path / "three", fmt="jsonl", test=0.0)
    facts.append(json.loads((tmp_path / "three" / "export.json").read_text())["data_sha256"])
    assert facts[0] == facts[1] != facts[2]
    assert f"data files sha256 {facts[2]}" in (tmp_path / "three" / "README.md").read_text()
