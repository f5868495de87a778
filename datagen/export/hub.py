"""Pushing an export to the Hugging Face Hub.

The token comes from where huggingface_hub looks (``HF_TOKEN``, the cached login); this module never
reads, prints or writes it.

An ``hf`` (or ``preference``) export goes up through ``DatasetDict.push_to_hub``: the card, the facts file and any
LICENSE.md are uploaded first, so that ``push_to_hub`` adds its ``dataset_info`` to our card instead of
writing a bare one, then ``datasets`` writes and uploads the Parquet shards itself. The other formats
are plain files and go up as one commit.
"""

from __future__ import annotations

from pathlib import Path

from apigen_rules.export_files import CARD_FILE, FACTS_FILE, LICENSE_FILE
from datagen.export.formats import export_format

CARD_FILES = [CARD_FILE, FACTS_FILE, LICENSE_FILE]
COMMIT_MESSAGE = "apigen-mt export"


def _upload_files(api, repo_id: str, files: list[Path], export_dir: Path, message: str) -> None:
    from huggingface_hub import CommitOperationAdd

    operations = [
        CommitOperationAdd(path_in_repo=path.relative_to(export_dir).as_posix(), path_or_fileobj=str(path))
        for path in files
    ]
    api.create_commit(repo_id=repo_id, repo_type="dataset", operations=operations, commit_message=message)


def push_export(export_dir: Path, repo_id: str, *, fmt: str, private: bool = False) -> str:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    card_files = [export_dir / name for name in CARD_FILES if (export_dir / name).is_file()]
    if export_format(fmt).hub_layout:
        from datasets import load_dataset

        _upload_files(api, repo_id, card_files, export_dir, f"{COMMIT_MESSAGE}: card")
        dataset = load_dataset(str(export_dir))
        dataset.push_to_hub(repo_id, private=private, commit_message=f"{COMMIT_MESSAGE}: data")
    else:
        data_files = sorted(p for p in export_dir.glob("*.json*") if p.name not in CARD_FILES)
        _upload_files(api, repo_id, card_files + data_files, export_dir, COMMIT_MESSAGE)
    return f"https://huggingface.co/datasets/{repo_id}"
