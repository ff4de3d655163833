"""Play every MiniWoB++ expert on held-out seeds in real Chromium: wins out of N per task.

    python benchmarks/miniwob_experts.py                 # every task with an expert, 20 seeds
    python benchmarks/miniwob_experts.py --tasks click-button,enter-text --seeds 5

Writes ``results/miniwob_experts.{json,md}`` (tasks run earlier are kept) and, with
``--verbose``, each failed episode's utterance and actions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def play(task: str, seeds: int, verbose: bool = False) -> dict[str, Any]:
    """The expert of ``task`` on test seeds ``0 .. seeds - 1``."""
    from mmopsd.envs.miniwob import make_miniwob

    from mmopsd.rollout import skip_images

    env = make_miniwob(task, split="test", max_steps=30)
    skip_images(env)
    wins, steps, began = 0, [], time.perf_counter()
    try:
        for seed in range(seeds):
            obs, info = env.reset(seed=seed)
            taken = []
            for _ in range(30):
                action = info["privileged"].get("next_action")
                if action is None or "expert_plan" not in info["privileged"]:
                    break
                taken.append(action)
                obs, _, terminated, truncated, info = env.step(action)
                if terminated or truncated:
                    break
            won = bool(info.get("success"))
            wins += won
            steps.append(len(taken))
            if verbose and not won:
                print(f"  {task} seed {seed}: {obs['text'].splitlines()[0]} -> {taken}",
                      file=sys.stderr)  # fmt: skip
    finally:
        env.close()
    seconds = time.perf_counter() - began
    return {"wins": wins, "seeds": seeds, "mean_steps": sum(steps) / seeds, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    from mmopsd.envs.miniwob_experts import EXPERTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", help="comma-separated (default: every task with an expert)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",") if args.tasks else sorted(EXPERTS)
    path = RESULTS / "miniwob_experts.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    for task in tasks:
        record[task] = play(task, args.seeds, args.verbose)
        print(task, record[task], file=sys.stderr, flush=True)
        path.write_text(json.dumps(record, indent=2, sort_keys=True))
    lines = ["| task | expert wins | mean actions |", "|---|---|---|"]
    for task, r in sorted(record.items()):
        lines.append(f"| {task} | {r['wins']}/{r['seeds']} | {r['mean_steps']:.1f} |")
    (RESULTS / "miniwob_experts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
