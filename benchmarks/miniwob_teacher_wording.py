"""How the expert's next action is worded decides whether a small teacher uses it.

The teacher (SmolLM2-135M with the ``reference`` provider, ``kind: next_action``) plays the
eight click tasks of ``mmopsd/configs/miniwob_opsd.yaml``, 4 held-out greedy episodes each,
one turn, once per wording of the privileged line:

    python benchmarks/miniwob_teacher_wording.py     # results/miniwob_teacher_wording.md

A self-distillation run can teach no more than its teacher knows: with a wording the teacher
ignores, the student is pulled toward the teacher's own mistakes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
TASKS = ("click-test", "click-test-2", "click-button", "click-link", "focus-text",
         "click-dialog", "click-widget", "click-tab")  # fmt: skip
TEMPLATES = (
    "The expert's next action: {value}",  # the provider's default
    "Reply with exactly: {value}",
    "The correct action is {value}. Reply with {value}",
    "The correct action is {value}. Reply with {value} and nothing else.",
    "The correct action is {value}.\nAction: {value}\nReply with that action.",
)
EPISODES = 4


def main() -> int:
    from mmopsd.agents.prompting import prompt_for
    from mmopsd.privileged.base import build_provider

    from mmopsd.evaluation.core import EvalPlan, evaluate_all
    from mmopsd.evaluation.suites import Tolerant
    from mmopsd.policies.loading import load_policy

    policy = load_policy("smollm2-135m")
    rows = []
    for template in TEMPLATES:
        began = time.perf_counter()
        provider = Tolerant(build_provider("reference", kind="next_action", template=template))
        plans = [
            EvalPlan(
                f"mmopsd/MiniWoB-{t}-v0",
                prompt_for(f"mmopsd/MiniWoB-{t}-v0"),
                EPISODES,
                {},
                "test",
                1,
                12,
                provider,
            )
            for t in TASKS
        ]
        results = evaluate_all(policy, plans)
        rows.append(
            {
                "template": template,
                "mean": sum(r.success for r in results) / len(results),
                "invalid": sum(r.invalid_rate for r in results) / len(results),
                "per_task": {t: r.success for t, r in zip(TASKS, results)},
                "seconds": round(time.perf_counter() - began, 1),
            }
        )
        print(rows[-1], flush=True)
    (RESULTS / "miniwob_teacher_wording.json").write_text(json.dumps(rows, indent=1))
    (RESULTS / "miniwob_teacher_wording.md").write_text(table(rows))
    return 0


def table(rows: list[dict]) -> str:
    """The markdown table, one line per wording."""
    head = "| wording of the privileged line | mean success | invalid | " + " | ".join(TASKS)
    lines = [head + " |", "|---|---|---|" + "---|" * len(TASKS)]
    for r in rows:
        cells = " | ".join(f"{r['per_task'][t]:.2f}" for t in TASKS)
        shown = r["template"].replace("\n", "⏎")
        lines.append(f"| `{shown}` | {r['mean']:.3f} | {r['invalid']:.2f} | {cells} |")
    note = (
        f"\nSmolLM2-135M-Instruct as the teacher, {EPISODES} held-out greedy episodes per task "
        "(seeds 0-3 of the test split), one turn, 12 new tokens, the MiniWoB++ prompt of "
        "`agents/prompting.py`; `python benchmarks/miniwob_teacher_wording.py`.\n"
    )
    return "\n".join(lines) + "\n" + note


if __name__ == "__main__":
    raise SystemExit(main())
