"""The Hugging Face Hub, faked at the client boundary (the Hub cannot be reached from tests).

``HfApi``'s network methods that an upload uses (create_repo, repo_info, preupload_lfs_files,
create_commit, list_repo_tree, hf_hub_download) and the ``HfFileSystem`` that ``push_to_hub`` reads the repo's card through are
replaced by a folder per repo. Everything above them (``datasets``' ``push_to_hub``, our upload
code) runs unchanged, so a test can open the "pushed" repo folder with ``load_dataset``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fsspec import AbstractFileSystem


class FakeHub:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sha = "0" * 40
        self.created: list[dict[str, Any]] = []
        self.commits: list[str] = []
        self._staged: dict[tuple[str, str], bytes] = {}

    def repo(self, repo_id: str) -> Path:
        return self.root / repo_id

    def files(self, repo_id: str) -> list[str]:
        base = self.repo(repo_id)
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
        import datasets.dataset_dict
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

        hub = self

        def create_repo(api, repo_id, *, repo_type=None, private=None, exist_ok=False, **kwargs):
            hub.created.append({"repo_id": repo_id, "repo_type": repo_type, "private": private})
            hub.repo(repo_id).mkdir(parents=True, exist_ok=True)
            return SimpleNamespace(repo_id=repo_id, url=f"https://huggingface.co/datasets/{repo_id}")

        def repo_info(api, repo_id, *, repo_type=None, revision=None, **kwargs):
            assert hub.repo(repo_id).is_dir(), f"repo {repo_id} was never created"
            return SimpleNamespace(id=repo_id, sha=hub.sha)

        def preupload_lfs_files(api, repo_id, additions, **kwargs):
            for op in additions:  # datasets deletes its temporary shard right after this call
                with op.as_file() as handle:
                    hub._staged[(repo_id, op.path_in_repo)] = handle.read()
                op._is_uploaded = True

        def list_repo_tree(api, repo_id, **kwargs):  # how datasets < 5 lists the repo
            from huggingface_hub.hf_api import RepoFile

            base = hub.repo(repo_id)
            return [
                RepoFile(path=name, size=(base / name).stat().st_size, oid="0") for name in hub.files(repo_id)
            ]

        def hf_hub_download(api, repo_id, filename, **kwargs):  # how datasets < 5 reads the card
            path = hub.repo(repo_id) / filename
            if not path.is_file():
                raise FileNotFoundError(filename)
            return str(path)

        def create_commit(api, repo_id, operations, *, commit_message, **kwargs):
            for op in operations:
                target = hub.repo(repo_id) / op.path_in_repo
                if isinstance(op, CommitOperationAdd):
                    data = hub._staged.pop((repo_id, op.path_in_repo), None)
                    if data is None:
                        with op.as_file() as handle:
                            data = handle.read()
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                elif isinstance(op, CommitOperationDelete):
                    target.unlink()
            hub.commits.append(commit_message)
            return SimpleNamespace(commit_url="", oid=hub.sha, pr_url=None)

        for name, fake in {
            "create_repo": create_repo,
            "repo_info": repo_info,
            "preupload_lfs_files": preupload_lfs_files,
            "create_commit": create_commit,
            "list_repo_tree": list_repo_tree,
            "hf_hub_download": hf_hub_download,
        }.items():
            monkeypatch.setattr(HfApi, name, fake)
        # datasets >= 5 reads the repo's card through HfFileSystem instead.
        monkeypatch.setattr(
            datasets.dataset_dict, "HfFileSystem", lambda **kwargs: _RepoFiles(hub), raising=False
        )
        return self


class _RepoFiles(AbstractFileSystem):
    """``HfFileSystem`` paths (``datasets/<org>/<name>@<revision>/<path>``) read from the fake repos."""

    cachable = False

    def __init__(self, hub: FakeHub) -> None:
        super().__init__()
        self.hub = hub

    def _local(self, path: str) -> tuple[str, Path]:
        prefix, _, rest = path.partition("@")
        _, _, inside = rest.partition("/")
        repo_id = prefix.removeprefix("datasets/")
        return f"{prefix}@{rest.split('/', 1)[0]}", self.hub.repo(repo_id) / inside

    def glob(self, path: str, **kwargs: Any) -> list[str]:
        head, local = self._local(path)
        base = self.hub.repo(head.split("@")[0].removeprefix("datasets/"))
        found = [p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()]
        pattern = local.relative_to(base).as_posix()
        return [f"{head}/{name}" for name in found if fnmatch.fnmatch(name, pattern)]

    def _open(self, path: str, mode: str = "rb", **kwargs: Any):
        _, local = self._local(path)
        if not local.is_file():
            raise FileNotFoundError(path)
        return local.open(mode)
