"""A fake Hugging Face hub cache for the weights tests: files laid out as huggingface_hub writes them,
read with HF_HUB_OFFLINE=1 so nothing touches the network."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from satforge.core import weights
from satforge.core.contract import sha256_file


def fake_hub_cache(root: Path, repo: str, revision: str, files: dict[str, Path]) -> Path:
    """A hub cache laid out as huggingface_hub writes it: blobs, a snapshot per commit, refs/BRANCH."""
    commit = revision if weights._COMMIT_HASH.fullmatch(revision) else "0123456789abcdef0123456789abcdef01234567"
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (folder / "blobs").mkdir(exist_ok=True)
    for name, source in files.items():
        blob = folder / "blobs" / sha256_file(source)
        blob.write_bytes(source.read_bytes())
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).symlink_to(os.path.relpath(blob, (snapshot / name).parent))
    if commit != revision:
        (folder / "refs").mkdir(exist_ok=True)
        (folder / "refs" / revision).write_text(commit)
    return root


def offline_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HF_HUB_OFFLINE=1 and HF_HUB_CACHE on an empty folder (constants too: huggingface_hub reads
    them at import, and another test may have imported it already). Test modules wrap it in their
    ``offline_hub`` fixture."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache
