"""``SeedSplits``: ``train`` and ``test`` episodes from seed streams that never overlap."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs

SPLITS = ("train", "test")


class SeedSplits(gym.Wrapper, RecordConstructorArgs):
    """Seed ``s`` plays the wrapped environment's seed ``2s`` in ``train`` and ``2s + 1`` in
    ``test``: the two splits never share an episode, for any seeds.

    Args:
        env: the environment to wrap.
        split: ``train`` or ``test``.
    """

    def __init__(self, env: gym.Env, split: str = "train") -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        RecordConstructorArgs.__init__(self, split=split)
        gym.Wrapper.__init__(self, env)
        self.split = split

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset with this split's seed."""
        if seed is not None:
            if seed < 0:
                raise ValueError(f"seeds must be >= 0, got {seed}")
            seed = 2 * seed + (self.split == "test")
        return self.env.reset(seed=seed, options=options)
