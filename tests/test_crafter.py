"""Crafter through mmopsd's wrappers: status text, 17 named actions, the map as privileged."""

from __future__ import annotations

import gymnasium as gym
import pytest

pytest.importorskip("crafter", reason="the crafter extra is missing: pip install 'mmopsd[crafter]'")

import mmopsd.envs  # noqa: F401
from mmopsd.envs.crafter import ACTIONS, where


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_walking_to_the_privileged_nearest_tree_collects_wood(seed):
    env = gym.make("mmopsd/Crafter-v0", disable_env_checker=True)
    _, info = env.reset(seed=seed)
    assert info["privileged"]["next_goal"] == "collect wood"
    for _ in range(100):
        *_, info = env.step(info["privileged"]["next_action"])
        if "collect_wood" in info["achievements"]:
            break
    assert "collect_wood" in info["achievements"] and info["progression"] == 1 / 22
    assert info["privileged"]["next_goal"] == "place table"


def test_status_text_actions_and_progression():
    env = gym.make("mmopsd/Crafter-v0", disable_env_checker=True)
    obs, info = env.reset(seed=0)
    assert info["admissible_commands"] == list(ACTIONS) and len(ACTIONS) == 17
    lines = obs["text"].splitlines()
    assert lines[0].startswith("You see: ") and lines[1].startswith("You face ")
    assert lines[3] == "Status: health 9, food 9, drink 9, energy 9."
    assert obs["image"].shape == (64, 64, 3) and env.observation_space.contains(obs)
    assert "nearest" not in obs["text"] and "nearest_tree" in info["privileged"]
    obs, _, _, _, out = env.step("dance")
    assert out["invalid"] and out["progression"] == 0.0  # played noop: time went on


def test_where_by_hand():
    assert where(-2, 3) == "2 steps left and 3 steps down"
    assert where(1, -1) == "1 step right and 1 step up" and where(0, 0) == "here"
