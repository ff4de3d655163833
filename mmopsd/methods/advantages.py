"""Group advantages for the optional RL term: GRPO and RLOO.

A group holds rollouts of the same task and seed; a group of one gets advantage 0 (there is
nothing to compare it with).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence


def group_advantages(
    rewards: Sequence[float],
    group_ids: Sequence[str],
    *,
    kind: str = "grpo",
    eps: float = 1e-6,
) -> list[float]:
    """Per-rollout advantages within groups.

    - ``grpo``: ``(r - mean_g) / (std_g + eps)`` (population std).
    - ``rloo``: ``r - mean of the other rollouts of the group``.
    """
    if len(rewards) != len(group_ids):
        raise ValueError(f"{len(rewards)} rewards but {len(group_ids)} group ids")
    if kind not in ("grpo", "rloo"):
        raise ValueError(f"advantage kind must be 'grpo' or 'rloo', got {kind!r}")
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(group_ids):
        members[g].append(i)
    out = [0.0] * len(rewards)
    for idx in members.values():
        n = len(idx)
        if n < 2:
            continue
        values = [float(rewards[i]) for i in idx]
        total = sum(values)
        mean = total / n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
        for i, v in zip(idx, values):
            out[i] = (v - mean) / (std + eps) if kind == "grpo" else v - (total - v) / (n - 1)
    return out
