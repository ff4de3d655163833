"""The table of benchmarks/miniwob_multistep_teacher.sh: success per task and form of
privileged information on validation seeds, pooled with a Wilson interval, and the expert
agreement (turns whose action is the expert's next one)."""

from __future__ import annotations

import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "miniwob_multistep_teacher"
FORMS = ["student", "answer", "target_words", "plan_words"]


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _trained() -> list[str]:
    import yaml

    config = yaml.safe_load((ROOT / "mmopsd" / "configs" / "miniwob_multistep.yaml").read_text())
    return [t["env"] for t in config["tasks"]]


MODELS = {
    "base": "the packaged SmolLM2-135M-Instruct",
    "warm": "SmolLM2-135M-Instruct after the comparison's behaviour-cloning warm-up "
    "(`bc_expert`, benchmarks/miniwob_multistep_compare.sh), which answers in the action format",
}


def model_table(label: str, trained: list[str]) -> list[str]:
    """The rows of one model's teacher: a task per row, a form per column, pooled last."""
    found = {f: {p.stem: json.loads(p.read_text()) for p in sorted((OUT / label / f).glob("*.json"))}
             for f in FORMS}  # fmt: skip
    tasks = sorted({t for by_task in found.values() for t in by_task})
    lines = [
        f"## {label}: {MODELS.get(label, label)}",
        "",
        "| task | " + " | ".join(FORMS) + " |",
        "|---|" + "---|" * len(FORMS),
    ]
    for task in tasks:
        cells = []
        for form in FORMS:
            r = found[form].get(task)
            if r is None:
                cells.append("—")
                continue
            agree = r.get("expert_agreement")
            agree_text = "—" if agree is None else f"{agree:.2f}"
            cells.append(f"{r['success']:.2f} ({agree_text}; {r['invalid_rate']:.2f})")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    pooled = []
    for form in FORMS:
        rs = list(found[form].values())
        n = sum(r["episodes"] for r in rs)
        wins = round(sum(r["success"] * r["episodes"] for r in rs))
        low, high = wilson(wins, n)
        pooled.append(f"**{wins / max(1, n):.3f}** [{low:.2f}, {high:.2f}], n={n}" if n else "—")
    lines += [f"| all ({len(tasks)} tasks) | " + " | ".join(pooled) + " |", ""]
    done, total = sum(len(v) for v in found.values()), len(FORMS) * len(trained)
    if done < total:
        lines += [
            f"Measured so far: {done} of {total} task-form cells (— not yet run; the same "
            "command continues). Pooled numbers cover only the cells shown, so forms with "
            "different cells are not yet comparable.",
            "",
        ]
    return lines


def main() -> None:
    lines = [
        "# Multi-step MiniWoB++: what each privileged information gives the teacher",
        "",
        "Greedy, on 2 CPU cores, validation seeds 0-7 (never the test seeds), "
        "`bash benchmarks/miniwob_multistep_teacher.sh` (`MODEL=... LABEL=...` for another "
        "model). `student`: no privileged information; `answer`: the expert's next action; "
        "`target_words`: the element to act on in words (kind, text, page region; no number, "
        "no call); `plan_words`: the expert's remaining plan as subgoals in words. Each cell: "
        "success (expert agreement; invalid-action rate) over the episodes shown in the last "
        "row (8 per task, up to 8 turns).",
        "",
    ]
    trained = _trained()
    for label in sorted(p.name for p in OUT.iterdir() if p.is_dir()):
        lines += model_table(label, trained)
    (OUT.parent / "miniwob_multistep_teacher.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
