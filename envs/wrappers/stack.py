"""``wrap``: the usual stack of mmopsd's wrappers around any gymnasium environment."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
from mmopsd.envs.wrappers.observations import DescribeObservations
from mmopsd.envs.wrappers.privileged import PrivilegedInfo
from mmopsd.envs.wrappers.splits import SeedSplits
from mmopsd.envs.wrappers.success import SuccessFn, SuccessInfo, positive_reward
from mmopsd.envs.wrappers.text_actions import TextActions


def wrap(
    env: gym.Env,
    *,
    describe: Callable[[Any, gym.Env], str | dict[str, Any]],
    actions: Sequence[str] | Mapping[str, Any] | None = None,
    parser: Callable[[str], Any] | None = None,
    privileged: Callable[[gym.Env], dict[str, Any]] | None = None,
    success: SuccessFn = positive_reward,
    split: str = "train",
    image_shape: tuple[int, int, int] | None = None,
    noop: Any = None,
    max_steps: int | None = None,
) -> gym.Env:
    """Make ``env`` an environment mmopsd trains on.

    Inner to outer: :class:`SuccessInfo`, :class:`PrivilegedInfo` (if ``privileged``),
    :class:`DescribeObservations`, :class:`TextActions`, :class:`SeedSplits`. See each
    wrapper for its arguments.
    """
    env = SuccessInfo(env, success)
    if privileged is not None:
        env = PrivilegedInfo(env, privileged)
    env = DescribeObservations(env, describe, image_shape=image_shape)
    env = TextActions(env, actions, parser=parser, noop=noop, max_steps=max_steps)
    return SeedSplits(env, split)
