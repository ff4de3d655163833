"""SmolLM2 in ALFWorld with the planner expert's plan as privileged information.

Games are generated offline (or taken from $ALFWORLD_DATA when it holds the official ones).
The student sees the room, the task and the admissible actions; the teacher also sees the
expert's plan from the current state. Same as ``mmopsd demo alfworld``; extra ``key=value``
arguments override config fields (e.g. ``optimizer.steps=4 evaluation.episodes=8``).
"""

from __future__ import annotations

import sys
from importlib import resources

from mmopsd import load_config, train

with resources.as_file(resources.files("mmopsd.configs") / "alfworld_expert_plan.yaml") as path:
    config = load_config(path, sys.argv[1:])
summary = train(config)
print(summary.table())
