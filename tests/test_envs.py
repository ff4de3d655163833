"""Environments: the gymnasium checker over the whole registry, KeyDoor's rules."""

from __future__ import annotations

import gymnasium as gym
import mmopsd.envs
import pytest
from gymnasium.utils.env_checker import check_env
from mmopsd.envs.keydoor import KeyDoorEnv

from mmopsd.rollout import make_envs


@pytest.mark.parametrize("env_id", sorted(mmopsd.envs.REGISTERED))
def test_every_registered_env_passes_check_env(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)


def test_keydoor_rule_hint_and_rewards():
    env = KeyDoorEnv()
    obs, info = env.reset(seed=3)
    answer = info["privileged"]["answer"]
    assert info["privileged"]["hint"] == f"open the {answer} door."
    assert answer not in obs.split("Which")[0].split("key")[0]  # the key is not the answer
    assert env.rule[info["key"]] == answer and info["key"] not in info["doors"]
    wrong = next(d for d in info["doors"] if d != answer)
    assert env.step(f"I open the {answer} door.")[1] == 1.0
    env.reset(seed=3)
    _, reward, terminated, truncated, out = env.step(f"open the {wrong} door")
    assert (reward, terminated, truncated, out["success"]) == (0.0, True, False, False)


def test_keydoor_invalid_action_gets_feedback_not_a_crash():
    env = KeyDoorEnv()
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("dance")
    assert reward == 0.0 and terminated and info["invalid"]
    assert "names none of the doors" in info["feedback"]


def test_splits_are_disjoint_streams_and_combinations():
    train = KeyDoorEnv(split="train")
    test = KeyDoorEnv(split="test")
    a = [train.reset(seed=s)[0] for s in range(20)]
    b = [test.reset(seed=s)[0] for s in range(20)]
    assert a != b
    combo = {}
    for split in ("train", "test"):
        env = KeyDoorEnv(
            colours=["red", "blue", "green", "yellow", "purple", "orange"],
            split=split,
            split_by="combination",
        )
        combo[split] = {
            (i["key"], tuple(sorted(i["doors"])))
            for i in (env.reset(seed=s)[1] for s in range(300))
        }
    assert combo["train"] and combo["test"] and not combo["train"] & combo["test"]


def test_unknown_env_id_lists_known_ones():
    with pytest.raises(gym.error.NameNotFound, match="mmopsd/KeyDoor-v0"):
        make_envs("mmopsd/NoSuchEnv-v0", 1)
