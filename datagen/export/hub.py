"""Pushing an export to the Hugging Face Hub.

The token comes from where huggingface_hub looks (``HF_TOKEN``, the cached login); this module never
reads, prints or writes it. ``stage_upload`` builds exactly the folder that is uploaded, so tests can
check it without network; ``push_export`` then makes one ``upload_folder`` call.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from datagen.export.card import FACTS_FILE


def stage_upload(export_dir: Path, staging: Path, *, fmt: str) -> list[Path]:
    """Writes the files to upload into ``staging``: Parquet shards per split (hf) or the export files."""
    staging.mkdir(parents=True, exist_ok=True)
    if fmt == "hf":
        from datasets import load_from_disk

        dataset = load_from_disk(str(export_dir))
        (staging / "data").mkdir(exist_ok=True)
        for split, part in dataset.items():
            part.to_parquet(str(staging / "data" / f"{split}-00000-of-00001.parquet"))
    else:
        for path in sorted(export_dir.glob("*.json*")):
            shutil.copy2(path, staging / path.name)
    for name in ("README.md", FACTS_FILE):
        if (export_dir / name).exists():
            shutil.copy2(export_dir / name, staging / name)
    return sorted(p for p in staging.rglob("*") if p.is_file())


def push_export(export_dir: Path, repo_id: str, *, fmt: str, private: bool = False) -> str:
    import tempfile

    from huggingface_hub import HfApi

    api = HfApi()
    with tempfile.TemporaryDirectory(prefix="apigen-mt-push-") as tmp:
        stage_upload(export_dir, Path(tmp), fmt=fmt)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id, repo_type="dataset", folder_path=tmp, commit_message="apigen-mt export"
        )
    return f"https://huggingface.co/datasets/{repo_id}"
