"""``PrivilegedInfo``: ``info["privileged"]`` from a function of the unwrapped environment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs


class PrivilegedInfo(gym.Wrapper, RecordConstructorArgs):
    """Add what only the teacher may see (an expert's plan, a target box, a map) to ``info``.

    ``fn(env)`` runs on the unwrapped environment after every reset and step; its dict is
    merged into ``info["privileged"]``. It never touches the observation.

    Args:
        env: the environment to wrap.
        fn: unwrapped env -> dict of privileged entries (an empty dict when there is none).
    """

    def __init__(self, env: gym.Env, fn: Callable[[gym.Env], dict[str, Any]]) -> None:
        RecordConstructorArgs.__init__(self, fn=fn)
        gym.Wrapper.__init__(self, env)
        self.fn = fn

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset, then add the privileged entries of the new state."""
        obs, info = self.env.reset(**kwargs)
        return obs, self._with_privileged(info)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step, then add the privileged entries of the new state."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._with_privileged(info)

    def _with_privileged(self, info: dict[str, Any]) -> dict[str, Any]:
        extra = self.fn(self.env.unwrapped)
        if not isinstance(extra, dict):
            raise TypeError(f"the privileged function must return a dict, got {type(extra)}")
        return {**info, "privileged": {**info.get("privileged", {}), **extra}}
