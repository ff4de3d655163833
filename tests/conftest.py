"""Shared fixtures: tiny models only, nothing downloaded."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# alfworld writes into ~/.cache/alfworld on import unless ALFWORLD_DATA is set.
os.environ.setdefault("ALFWORLD_DATA", tempfile.mkdtemp(prefix="mmopsd-alfworld-"))
# trackio keeps its database and media in ~/.cache/huggingface/trackio unless TRACKIO_DIR is
# set (read once, on import).
os.environ["TRACKIO_DIR"] = tempfile.mkdtemp(prefix="mmopsd-trackio-")


@pytest.fixture
def alfworld_data() -> Path:
    """The ALFWorld data directory of this test session (official games are never there)."""
    return Path(os.environ["ALFWORLD_DATA"])


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty mmopsd cache for the test."""
    monkeypatch.setenv("MMOPSD_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
