"""A leaderboard file: one row per model (or checkpoint), one column per environment.

``update`` adds or replaces a row. The rows live in ``FILE.json`` beside the Markdown table
``FILE.md``, which is rewritten from them together with a bar chart ``FILE.png``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmopsd.evaluation.report import leaderboard_table, plot_leaderboard
from mmopsd.evaluation.scores import EnvScore


def update(path: Path, label: str, scores: Sequence[EnvScore], *, note: str = "") -> Path:
    """Add or replace row ``label``; rewrite the table and the chart. Returns the PNG path."""
    path = Path(path)
    store = path.with_suffix(".json")
    rows: dict[str, Any] = json.loads(store.read_text()) if store.is_file() else {}
    rows[label] = {
        "scores": [s.to_dict() for s in scores],
        "note": note,
    }
    _write(store, json.dumps(rows, indent=2))
    _write(path, leaderboard_table(rows))
    return plot_leaderboard(rows, path.with_suffix(".png"))


def _write(path: Path, text: str) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
