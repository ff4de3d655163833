"""``SeedSplits``: ``train``, ``validation`` and ``test`` episodes from seed streams that
never overlap (:mod:`mmopsd.envs.seeds`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs
from mmopsd.envs.seeds import SPLITS, check_split, interleaved_seed

__all__ = ["SPLITS", "SeedSplits"]


class SeedSplits(gym.Wrapper, RecordConstructorArgs):
    """Seed ``s`` plays the wrapped environment's seed ``2s`` in ``train``, ``2s + 1`` in
    ``test`` and ``2**41 + s`` in ``validation``: no two splits share an episode, for any seed
    below ``2**40``.

    Args:
        env: the environment to wrap.
        split: ``train``, ``validation`` or ``test``.
    """

    def __init__(self, env: gym.Env, split: str = "train") -> None:
        check_split(split)
        RecordConstructorArgs.__init__(self, split=split)
        gym.Wrapper.__init__(self, env)
        self.split = split

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset with this split's seed."""
        if seed is not None:
            seed = interleaved_seed(seed, self.split)
        return self.env.reset(seed=seed, options=options)
