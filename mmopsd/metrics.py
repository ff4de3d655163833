"""Run outputs: metrics as JSONL (one record per event) and a PNG of the learning curve."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

from mmopsd.errors import MmopsdError, MmopsdWarning


class MetricsLog:
    """Append-only JSONL metrics file.

    Args:
        path: the ``metrics.jsonl`` file.
        enabled: False makes :meth:`write` do nothing (the ranks of a data-parallel run
            other than rank 0).
    """

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (flushed at once)."""
        if not self.enabled:
            return
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, default=_plain) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """All records. A torn last line (a write cut short) is skipped with a warning; a bad
        line elsewhere is an error that names it."""
        if not self.path.is_file():
            return []
        lines = [line for line in self.path.read_text(errors="replace").splitlines() if line]
        records = []
        for n, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                if n < len(lines):
                    raise MmopsdError(f"{self.path} line {n} is not JSON: {err}") from err
                warnings.warn(f"{self.path}: skipping a torn last line", MmopsdWarning, 2)
        return records

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after ``step`` (a resumed run redoes them)."""
        keep = [r for r in self.read() if r.get("step", 0) <= step]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
        os.replace(tmp, self.path)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def plot_curve(records: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Training loss and held-out success against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue")
    ax1.set(xlabel="step", ylabel="distillation loss", title="training loss")
    ax1.grid(alpha=0.3)
    for key, label, colour in (
        ("student_success", "student (held-out)", "tab:green"),
        ("teacher_success", "teacher with privileged info", "tab:orange"),
    ):
        pts = [(r["step"], r[key]) for r in evals if key in r and not math.isnan(r[key])]
        if pts:
            ax2.plot(*zip(*pts), marker="o", label=label, color=colour)
    ax2.plot(
        [r["step"] for r in train],
        [r["rollout_success"] for r in train],
        alpha=0.4,
        color="tab:gray",
        label="training rollouts",
    )
    ax2.set(xlabel="step", ylabel="success rate", ylim=(-0.02, 1.02), title="success")
    ax2.grid(alpha=0.3)
    ax2.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
