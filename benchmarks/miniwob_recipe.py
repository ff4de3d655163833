"""The MiniWoB++ recipe search's table: every run under ``runs/miniwob-recipe`` (finished or
stopped), its settings and its held-out results at each evaluation.

    bash benchmarks/miniwob_recipe.sh        # the runs (hours; resumable)
    python benchmarks/miniwob_recipe.py      # results/miniwob_recipe.{md,json}

Per evaluation: the student's mean success over the trained tasks (pooled held-out seeds),
the teacher's with privileged information, the student's share of the teacher's, the mean
over the tasks never trained on (``ood``) and KeyDoor (``retain``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path("runs/miniwob-recipe")
RESULTS = Path(__file__).parent / "results"


def read_run(run: Path) -> dict[str, Any]:
    """A run's settings (from its variant's name) and its evaluation records."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r.get("kind") == "eval"]
    return {"name": run.name, "finished": (run / "summary.json").is_file(),
            "evals": [_row(r) for r in evals]}  # fmt: skip


def _row(record: dict[str, Any]) -> dict[str, Any]:
    student = record["student"]["success"]
    teacher = (record.get("teacher") or {}).get("success")
    ood = record.get("ood") or {}
    retain = record.get("retain") or {}
    return {
        "step": record["step"],
        "student": student,
        "teacher": teacher,
        "share": student / teacher if teacher else None,
        "per_task": {k: v["success"] for k, v in record["student"].get("per_task", {}).items()},
        "ood": sum(v["success"] for v in ood.values()) / len(ood) if ood else None,
        "retain": sum(v["success"] for v in retain.values()) / len(retain) if retain else None,
    }


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def table(runs: list[dict[str, Any]]) -> str:
    """The markdown table: one line per run and evaluation."""
    lines = [
        "| run | step | student (trained tasks) | teacher | student / teacher | ood mean | retain |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        name = run["name"] + ("" if run["finished"] else " (stopped)")
        for row in run["evals"]:
            lines.append(
                f"| {name} | {row['step']} | {_fmt(row['student'])} | {_fmt(row['teacher'])} "
                f"| {_fmt(row['share'])} | {_fmt(row['ood'])} | {_fmt(row['retain'])} |"
            )
    note = (
        "\nHeld-out greedy episodes (16 per task) of `mmopsd/configs/miniwob_opsd.yaml` with "
        "each variant's overrides (`benchmarks/miniwob_recipe.sh`); SmolLM2-135M-Instruct on "
        "2 CPU cores, seed 0. `ood` (click-dialog-2, focus-text-2, identify-shape, "
        "click-option) and `retain` (KeyDoor) are evaluated before and after training only. "
        "Curves: `miniwob_recipe_<variant>_curve.png`.\n"
    )
    return "\n".join(lines) + "\n" + note


def main() -> int:
    runs = [read_run(r) for r in sorted(ROOT.glob("*")) if (r / "metrics.jsonl").is_file()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "miniwob_recipe.json").write_text(json.dumps(runs, indent=1))
    (RESULTS / "miniwob_recipe.md").write_text(table(runs))
    print(table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
