"""The MiniWoB++ recipe search's table: every run under ``runs/miniwob-recipe`` (finished or
stopped) and every run the committed table already holds, its settings and its held-out
results at each evaluation.

    bash benchmarks/miniwob_recipe.sh        # the runs (hours; resumable)
    python benchmarks/miniwob_recipe.py      # results/miniwob_recipe.{md,json}

Per evaluation: the student's mean success over the trained tasks (pooled held-out seeds),
the teacher's with privileged information, the student's share of the teacher's, the mean
over the tasks never trained on (``ood``) and KeyDoor (``retain``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path("runs/miniwob-recipe")
RESULTS = Path(__file__).parent / "results"
SCRIPT = Path(__file__).parent / "miniwob_recipe.sh"
# The step every variant was evaluated at: the shorter variants ran this many steps only.
COMMON_STEP = 16


# What each run ran on, where the code moved under the search (the variants themselves are in
# miniwob_recipe.sh).
CODE = {
    "base": "float32; before click_text",
    "weak3": "bf16-mixed; before click_text",
}
DEFAULT_CODE = "bf16-mixed; click_text"
# What else shared the machine while a run's steps were timed.
SHARED = {"lambda0.5": "its last three steps shared the machine with the test suite (76-163 s "
                       "a step instead of about 25)",
          "lambda0.25": "its steps from 20 on ran short of memory (the heap given back every "
                        "turn, 40 browsers open) and beside short tests: 40-55 s a step"}  # fmt: skip


def read_run(run: Path) -> dict[str, Any]:
    """A run's settings (from its variant's name) and its evaluation records."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r.get("kind") == "eval"]
    steps = [r["seconds"] for r in records if r.get("kind") != "eval" and "loss" in r]
    return {"name": run.name, "finished": (run / "summary.json").is_file(),
            "minutes": sum(steps) / 60 if steps else None,  # training steps, not evaluations
            "code": CODE.get(run.name, DEFAULT_CODE),
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


def kept() -> dict[str, dict[str, Any]]:
    """The runs of the committed table, by name: a run whose directory is not on this
    machine keeps its row (a run found under ``ROOT`` replaces it)."""
    path = RESULTS / "miniwob_recipe.json"
    return {r["name"]: r for r in json.loads(path.read_text())} if path.is_file() else {}


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def table(runs: list[dict[str, Any]]) -> str:
    """The markdown table: one line per run and evaluation."""
    lines = [
        "| run | precision; grammar | minutes of steps | step | student (trained tasks) | teacher "
        "| student / teacher | ood mean | retain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        name = run["name"] + ("" if run["finished"] else " (stopped)")
        minutes = "—" if run["minutes"] is None else f"{run['minutes']:.1f}"
        for row in run["evals"]:
            lines.append(
                f"| {name} | {run['code']} | {minutes} | {row['step']} | {_fmt(row['student'])} "
                f"| {_fmt(row['teacher'])} | {_fmt(row['share'])} | {_fmt(row['ood'])} "
                f"| {_fmt(row['retain'])} |"
            )
    lines += ["", *per_task(runs), "", *at_common_step(runs)]
    note = (
        "\nHeld-out greedy episodes (16 per task) of `mmopsd/configs/miniwob_opsd.yaml` with "
        "each variant's overrides (`benchmarks/miniwob_recipe.sh`); SmolLM2-135M-Instruct on "
        "2 CPU cores, seed 0. Minutes of steps: the training steps' wall time (rollouts, scoring, updates), without the evaluations (a resumed run counts each step once). `ood` (click-dialog-2, focus-text-2, identify-shape, "
        "click-option) and `retain` (KeyDoor) are evaluated before and after training only. "
        "Curves: `miniwob_recipe_<variant>_curve.png`.\n"
    )
    shared = [
        f"- {name}: {what}." for name, what in SHARED.items() if name in {r["name"] for r in runs}
    ]
    return "\n".join(lines) + "\n" + note + "\n".join(["", *shared]) + ("\n" if shared else "")


def per_task(runs: list[dict[str, Any]]) -> list[str]:
    """Markdown: each run's last evaluation, task by task."""
    tasks = list(dict.fromkeys(t for run in runs for row in run["evals"] for t in row["per_task"]))
    short = [t.removeprefix("MiniWoB-").removesuffix("-v0") for t in tasks]
    lines = ["| run | step | " + " | ".join(short) + " |", "|---|---|" + "---|" * len(tasks)]
    for run in runs:
        if run["evals"]:
            last = run["evals"][-1]
            cells = " | ".join(_fmt(last["per_task"].get(t)) for t in tasks)
            lines.append(f"| {run['name']} | {last['step']} | {cells} |")
    return lines


def overrides() -> dict[str, str]:
    """Each variant's ``--set`` overrides, read from ``miniwob_recipe.sh``'s VARIANTS."""
    found = re.findall(r'^\s*\[([\w.-]+)\]="([^"]*)"', SCRIPT.read_text(), flags=re.M)
    return {name: flags.replace("--set ", "").strip() for name, flags in found}


def at_common_step(runs: list[dict[str, Any]]) -> list[str]:
    """Markdown: every run at ``COMMON_STEP``, best first, with its overrides."""
    flags = overrides()
    rows = [
        (run["name"], row)
        for run in runs
        for row in run["evals"]
        if row["step"] == COMMON_STEP and row["student"] is not None
    ]
    lines = [
        f"Every variant at step {COMMON_STEP} ({COMMON_STEP * 8} training episodes), best "
        "first (the learning rate is constant, so a longer run's step "
        f"{COMMON_STEP} is where a {COMMON_STEP}-step run ends):",
        "",
        "| run | overrides of miniwob_opsd.yaml | student (trained tasks) | student / teacher |",
        "|---|---|---|---|",
    ]
    for name, row in sorted(rows, key=lambda r: -r[1]["student"]):
        setting = flags.get(name, "")
        if len(setting) > 60:
            setting = setting[:57] + "..."
        lines.append(
            f"| {name} | `{setting or '—'}` | {_fmt(row['student'])} | {_fmt(row['share'])} |"
        )
    return lines


def main() -> int:
    here = {r.name: read_run(r) for r in sorted(ROOT.glob("*")) if (r / "metrics.jsonl").is_file()}
    runs = list({**kept(), **here}.values())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "miniwob_recipe.json").write_text(json.dumps(runs, indent=1))
    (RESULTS / "miniwob_recipe.md").write_text(table(runs))
    print(table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
