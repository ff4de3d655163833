"""Shared fixtures: tiny models only, nothing downloaded."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty mmopsd cache for the test."""
    monkeypatch.setenv("MMOPSD_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
