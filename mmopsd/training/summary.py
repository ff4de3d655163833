"""What a run ends with: the before/after numbers, as a table and as ``summary.json``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmopsd.evaluation.core import EvalResult
from mmopsd.evaluation.report import run_table


@dataclass
class RunSummary:
    """Before/after numbers of a run."""

    steps: int
    before: EvalResult
    after: EvalResult
    teacher: EvalResult | None
    seconds: float
    out_dir: Path

    def table(self) -> str:
        """A Markdown table of held-out success."""
        return run_table(self.before, self.after, self.teacher)

    def record(self) -> dict[str, Any]:
        """The plain numbers written to ``summary.json`` and the metrics."""
        return {
            "student_success_before": self.before.success,
            "student_success_after": self.after.success,
            "teacher_success": self.teacher.success if self.teacher else None,
            "episodes": self.after.episodes,
            "seconds": round(self.seconds, 1),
        }


def summarise_run(
    steps: int, before: dict[str, Any], after: dict[str, Any], seconds: float, out: Path
) -> RunSummary:
    """The summary of a run from its first and last evaluation records."""
    teacher = after.get("teacher") or before.get("teacher")
    return RunSummary(
        steps=steps,
        before=EvalResult(**before["student"]),
        after=EvalResult(**after["student"]),
        teacher=EvalResult(**teacher) if teacher else None,
        seconds=seconds,
        out_dir=out,
    )
