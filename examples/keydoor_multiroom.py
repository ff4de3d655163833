"""Multi-turn self-distillation on KeyDoor: three rooms per episode, one door per room.

Every turn is a training sample whose teacher context is the student's conversation plus that
room's hint. Same as ``mmopsd demo keydoor-multiroom``; extra ``key=value`` arguments override
config fields (e.g. ``python examples/keydoor_multiroom.py optimizer.steps=5
method.turn_weighting=discount``).
"""

from __future__ import annotations

import sys
from importlib import resources

from mmopsd import load_config, train

with resources.as_file(resources.files("mmopsd.configs") / "keydoor_multiroom.yaml") as path:
    config = load_config(path, sys.argv[1:])
summary = train(config)
print(summary.table())
