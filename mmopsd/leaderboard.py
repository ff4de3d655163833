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

from mmopsd.suites import EnvScore, average

NOTE = (
    "Scores are success rates, or BALROG's progression (achievements unlocked / 22) for "
    "Crafter, ± one standard error over episodes. A row marked *+ privileged* is the same "
    "model acting with its environment's privileged information in its context (the "
    "teacher of self-distillation): the gap between it and the model's own row is the "
    "headroom self-distillation can close."
)


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
    _write(path, render(rows))
    return plot(rows, path.with_suffix(".png"))


def render(rows: dict[str, Any]) -> str:
    """The Markdown table of all rows."""
    columns: list[str] = []
    for row in rows.values():
        columns += [s["name"] for s in row["scores"] if s["name"] not in columns]
    head = "| model | " + " | ".join(columns) + " | average |"
    lines = [head, "|" + "---|" * (len(columns) + 2)]
    for label, row in rows.items():
        by_name = {s["name"]: s for s in row["scores"]}
        cells = [
            f"{by_name[c]['score']:.2f} ± {by_name[c]['stderr']:.2f}" if c in by_name else ""
            for c in columns
        ]
        mean, err = average([EnvScore(**s) for s in row["scores"]])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | **{mean:.3f} ± {err:.3f}** |")
    notes = [f"- {label}: {row['note']}" for label, row in rows.items() if row.get("note")]
    return "\n".join([*lines, "", NOTE, *(["", *notes] if notes else [])]) + "\n"


def plot(rows: dict[str, Any], path: Path) -> Path:
    """Grouped bars: one group per environment, one bar per row, error bars of one s.e."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns: list[str] = []
    for row in rows.values():
        columns += [s["name"] for s in row["scores"] if s["name"] not in columns]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(columns) * max(1, len(rows))), 4))
    width = 0.8 / max(1, len(rows))
    for k, (label, row) in enumerate(rows.items()):
        by_name = {s["name"]: s for s in row["scores"]}
        xs = [i + k * width for i, c in enumerate(columns) if c in by_name]
        ys = [by_name[c]["score"] for c in columns if c in by_name]
        es = [by_name[c]["stderr"] for c in columns if c in by_name]
        ax.bar(xs, ys, width, yerr=es, label=label, capsize=2)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(columns))], columns, rotation=60)
    ax.set(ylim=(0, 1.05), ylabel="success / progression")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _write(path: Path, text: str) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
