"""Skill-summary self-distillation on KeyDoor with the policy as its own summariser.

Every two steps SmolLM2 summarises some of its finished attempts into one-sentence skills; the
teacher's context holds the skills most relevant to the task. Same as
``mmopsd demo keydoor-skills``; the skills are in ``runs/keydoor-skills/skills.md``.
Extra ``key=value`` arguments override config fields.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from mmopsd import load_config, train

with resources.as_file(resources.files("mmopsd.configs") / "keydoor_skills.yaml") as path:
    config = load_config(path, sys.argv[1:])
summary = train(config)
print(summary.table())
print((Path(config.run.out_dir) / "skills.md").read_text())
