"""``SuccessInfo``: ``info["success"]`` at the end of an episode, as mmopsd's metrics read it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs

SuccessFn = Callable[[float, bool, dict[str, Any]], bool]


def positive_reward(reward: float, terminated: bool, info: dict[str, Any]) -> bool:
    """Success = the episode terminated with a positive reward (BabyAI, MiniWoB, FrozenLake)."""
    return terminated and reward > 0


class SuccessInfo(gym.Wrapper, RecordConstructorArgs):
    """Set ``info["success"]`` (and ``info["won"]``) on every step from ``fn(reward,
    terminated, info)``; the benchmark's own reward and ending are left as they are.

    Args:
        env: the environment to wrap.
        fn: reward, terminated, info -> success (default: terminated with a positive reward).
    """

    def __init__(self, env: gym.Env, fn: SuccessFn = positive_reward) -> None:
        RecordConstructorArgs.__init__(self, fn=fn)
        gym.Wrapper.__init__(self, env)
        self.fn = fn

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step and judge success."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        won = bool(self.fn(float(reward), bool(terminated), info))
        return obs, reward, terminated, truncated, {**info, "success": won, "won": won}
