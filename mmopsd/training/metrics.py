"""A run's metrics as JSONL: one record per event (a training step, an evaluation, the
summary); :func:`mmopsd.evaluation.report.plot_run` draws them."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from mmopsd.errors import MmopsdError, MmopsdWarning
from mmopsd.tracking.base import Trackers


class MetricsLog:
    """Append-only JSONL metrics file.

    Args:
        path: the ``metrics.jsonl`` file.
        enabled: False makes :meth:`write` do nothing (the ranks of a data-parallel run
            other than rank 0).
        trackers: the run's experiment trackers (``run.report_to``); each record written
            is logged to them.
    """

    def __init__(self, path: Path, enabled: bool = True, trackers: Trackers | None = None) -> None:
        self.path = path
        self.enabled = enabled
        self.trackers = trackers or Trackers()
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (flushed at once) and log it to the run's trackers."""
        if not self.enabled:
            return
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, default=_plain) + "\n")
        self.trackers.record(json.loads(json.dumps(record, default=_plain)))

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
