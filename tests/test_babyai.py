"""BabyAI through mmopsd's wrappers: the view in words, six text actions, the bot's plan."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("minigrid", reason="the babyai extra (minigrid, Python >= 3.11) is missing")

import mmopsd.envs  # noqa: F401
from mmopsd.envs.babyai import ACTIONS, describe_view


def test_the_bot_through_our_wrappers_wins_go_to_local():
    env = gym.make("mmopsd/BabyAI-GoToLocal-v0", disable_env_checker=True)
    wins = 0
    for seed in range(100):
        _, info = env.reset(seed=seed)
        while True:
            _, _, terminated, truncated, info = env.step(info["privileged"]["next_action"])
            if terminated or truncated:
                wins += info["success"]
                break
    assert wins >= 95


@pytest.mark.parametrize("level", ["GoTo", "Pickup", "Open", "PutNextLocal", "SynthSeq"])
def test_every_level_gives_text_the_six_actions_and_the_bots_plan(level):
    env = gym.make(f"mmopsd/BabyAI-{level}-v0", disable_env_checker=True)
    obs, info = env.reset(seed=0)
    assert obs.startswith("Mission: ") and "\nYou see:\n" in obs
    assert info["admissible_commands"] == list(ACTIONS)
    assert info["privileged"]["next_action"] in ACTIONS
    assert info["privileged"]["expert_plan"] and "None" not in info["privileged"]["expert_plan"]
    assert info["privileged"]["expert_plan"] not in obs


def test_view_description_by_hand():
    grid = np.zeros((7, 7, 3), np.int64)
    grid[:, :, 0] = 1  # empty
    grid[3, 6, 0] = 10  # the agent
    grid[1, 3] = (6, 0, 0)  # a red ball: 2 left, 3 forward
    grid[3, 5] = (4, 2, 2)  # a locked blue door right ahead
    grid[3, 0, 0] = grid[3, 1, 0] = 2  # walls ahead: the nearest is 5 forward
    grid[6, 6, 0] = 2  # a wall 3 steps right
    lines = describe_view(grid)
    assert lines == [
        "a red ball 2 steps left and 3 steps forward",
        "a locked blue door 1 step forward",
        "a wall 5 steps forward",
        "a wall 3 steps right",
        "Right in front of you: a locked blue door.",
    ]


def test_invalid_text_plays_the_noop_and_is_marked():
    env = gym.make("mmopsd/BabyAI-GoToLocal-v0", disable_env_checker=True)
    env.reset(seed=0)
    before = env.unwrapped.step_count
    obs, reward, terminated, _, info = env.step("dance")
    assert info["invalid"] and not terminated and reward == 0.0
    assert obs.startswith("'dance' is not a valid action.")
    assert env.unwrapped.step_count == before + 1  # costs a step: minigrid's cap applies
    assert info["privileged"]["next_action"] in ACTIONS


def test_image_observation_is_the_agents_view():
    env = gym.make("mmopsd/BabyAI-GoToLocal-v0", image=True, tile_size=8, disable_env_checker=True)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (56, 56, 3) and obs["text"].startswith("Mission:")
    assert env.observation_space.contains(obs)


def test_splits_give_different_episodes():
    train = gym.make("mmopsd/BabyAI-GoToLocal-v0", disable_env_checker=True)
    test = gym.make("mmopsd/BabyAI-GoToLocal-v0", split="test", disable_env_checker=True)
    same = sum(train.reset(seed=s)[0] == test.reset(seed=s)[0] for s in range(20))
    assert same < 5


def test_evaluation_measures_agreement_with_the_bots_next_action():
    from mmopsd.agents.prompting import prompt_for

    from mmopsd.evaluation import summarise
    from mmopsd.rollout import Sampling, rollout
    from mmopsd.testing import ScriptedPolicy, tiny_text_policy

    env_id, seeds, turns = "mmopsd/BabyAI-GoToObj-v0", [0, 1, 2], 4
    policy = ScriptedPolicy(tiny_text_policy(), lambda prompt: "go forward")
    envs = [gym.make(env_id, disable_env_checker=True) for _ in seeds]
    result = summarise(
        rollout(policy, envs, seeds, prompt_for(env_id), Sampling(), max_turns=turns)
    )

    same = total = 0  # the same episodes replayed on the environment alone
    env = gym.make(env_id, disable_env_checker=True)
    for seed in seeds:
        _, info = env.reset(seed=seed)
        for _ in range(turns):
            total += 1
            same += info["privileged"]["next_action"] == "go forward"
            _, _, terminated, truncated, info = env.step("go forward")
            if terminated or truncated:
                break
    assert 0 < same < total, "the seeds must mix agreeing and disagreeing turns"
    assert result.expert_agreement == pytest.approx(same / total)
    assert "Expert agreement" in result.table()
