"""Self-distillation against SFT on the teacher's outputs and GRPO, on one-room KeyDoor.

    python examples/compare_methods.py [--methods opsd,sft_teacher,grpo] [--seeds 0,1]
        [--steps 40] [--out runs/compare-example]

Every method is a preset on the demo config; every run consumes the same number of
environment episodes and is evaluated on the same held-out, out-of-distribution
(``combination`` split) and retained (another hidden rule) episodes. Same as
``mmopsd compare --config mmopsd/configs/keydoor_demo.yaml --methods ...``; a killed
comparison resumes where it stopped. Try ``--steps 2`` for a quick look.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from mmopsd.compare import arms_for_methods, run_compare
from mmopsd.config import load_data, merge
from mmopsd.evaluation.report import compare_table as table

ap = argparse.ArgumentParser()
ap.add_argument("--methods", default="opsd,sft_teacher,grpo")
ap.add_argument("--seeds", default="0,1")
ap.add_argument("--steps", type=int, default=40)
ap.add_argument("--out", type=Path, default=Path("runs/compare-example"))
args = ap.parse_args()

one_room = {"n_doors": 2, "n_rooms": 1}
overrides = {
    "method": {"group_size": 4},  # GRPO compares the episodes of a group (same seed)
    "optimizer": {"steps": args.steps},
    "evaluation": {
        "every": max(1, args.steps // 4),
        "ood": [{"name": "combination", "env_kwargs": {**one_room, "split_by": "combination"}}],
        "retain": [{"name": "other-rule", "env_kwargs": {**one_room, "rule_seed": 7}}],
    },
    "run": {"save_every": args.steps, "keep_checkpoints": 1},
}
with resources.as_file(resources.files("mmopsd.configs") / "keydoor_demo.yaml") as path:
    base = merge(load_data(path), overrides)
arms = arms_for_methods(base, args.methods.split(","))
summary = run_compare(arms, [int(s) for s in args.seeds.split(",")], args.out)
print(table(summary))
print(f"table, curve and every run in {args.out}/")
