"""Turn by turn against nested and shared scoring, on the turns of one real training step.

Plays one step of the throughput benchmark's training run (``throughput.RUNS``), keeps the
turns that ``distill_backward`` received, then times ``distill_backward`` on them, alternated
``--repeats`` times: turn by turn, nested (``nest=True``), nested with shared beginnings fed
once, and shared alone. Same process, same samples; the gradients agree (``tests/test_nesting.py``).

    python benchmarks/distill_nesting.py babyai-gotolocal --micro-batch-size 4
    python benchmarks/distill_nesting.py click-button --micro-batch-size 8

Prints seconds per variant and repetition. Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))


def capture(case: str) -> dict[str, Any]:
    """The arguments of the first ``distill_backward`` of a one-step run of ``case``."""
    import throughput

    import mmopsd.training.step as step

    seen: dict[str, Any] = {}
    original = step.distill_backward

    def spy(student, teacher, samples, prompts, loss, **kwargs):  # type: ignore[no-untyped-def]
        seen.setdefault("args", (student, teacher, samples, prompts, loss))
        return original(student, teacher, samples, prompts, loss, **kwargs)

    step.distill_backward = spy
    throughput.RUNS[case].update(steps=1, eval_every=0)
    throughput.measure_run(case)
    step.distill_backward = original
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=["babyai-gotolocal", "click-button"])
    parser.add_argument("--micro-batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from mmopsd.policies import spans
    from mmopsd.training.distill import distill_backward

    student, teacher, samples, prompts, loss = capture(args.case)["args"]
    student.model.train()
    variants = {"turn by turn": (False, False), "nested": (True, False),
                "nested+shared": (True, True), "shared": (False, True)}  # fmt: skip
    shared = spans.MIN_SHARED
    for rep in range(args.repeats):
        row = []
        for name, (nest, share) in variants.items():
            spans.MIN_SHARED = shared if share else 10**9
            student.model.zero_grad()
            began = time.perf_counter()
            distill_backward(student, teacher, samples, prompts, loss,
                             micro_batch_size=args.micro_batch_size, nest=nest)  # fmt: skip
            row.append(f"{name} {time.perf_counter() - began:.1f} s")
        print(f"[{rep + 1}] " + ", ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
