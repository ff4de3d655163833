"""ALFWorld offline: generated games, alfworld's engine and planner, rollouts with a tiny model."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

pytest.importorskip("alfworld")

from mmopsd.agents.prompting import prompt_for
from mmopsd.envs.alfworld_games import (
    TASK_TYPES,
    UNSEEN_TARGETS,
    draw_game,
    generated_game,
)

from mmopsd.rollout import Sampling, make_envs, rollout
from mmopsd.testing import tiny_text_policy


def test_generated_games_are_checked_by_the_planner_and_cover_the_task_types(tmp_path):
    seen = set()
    for seed in range(12):
        path = generated_game(tmp_path, "train", seed, TASK_TYPES)
        game = json.loads(path.read_text())
        assert game["solvable"] and "(:goal" in game["pddl_problem"]
        plan = json.loads((path.parent / "checked").read_text())["expert_plan"]
        assert plan[-1].startswith("move ")
        seen.add(draw_game("train", seed).task_type)
    assert len(seen) >= 3


def test_splits_differ_and_unseen_targets_stay_out_of_training():
    train = [draw_game("train", s) for s in range(200)]
    assert not {g.target for g in train} & set(UNSEEN_TARGETS)
    assert {draw_game("valid_unseen", s).target for s in range(50)} <= set(UNSEEN_TARGETS)
    assert [draw_game("valid_seen", s) for s in range(5)] != train[:5]


def test_expert_plan_wins_through_the_gymnasium_env(alfworld_data):
    env = gym.make("mmopsd/ALFWorld-v0", split="valid_seen", task_types=["pick_and_place_simple"])
    obs, info = env.reset(seed=11)
    assert "Your task is to: put" in obs and "Welcome" not in obs
    assert info["task_type"] == "pick_and_place_simple"
    plan = info["privileged"]["plan"]
    assert info["privileged"]["next_action"] == plan[0] in info["admissible_commands"]
    for action in plan:
        obs, reward, terminated, truncated, info = env.step(action)
        assert not info["invalid"] and not truncated
    assert terminated and reward == 1.0 and info["won"] and info["success"]


def test_inadmissible_command_gets_alfworld_feedback(alfworld_data):
    env = gym.make("mmopsd/ALFWorld-v0", max_steps=2)
    env.reset(seed=0)
    obs, _, terminated, truncated, info = env.step("fly to the moon")
    assert obs == "Nothing happens." and info["invalid"] and not terminated and not truncated
    *_, truncated, _ = env.step("fly to the moon")
    assert truncated


def test_unknown_split_and_missing_official_games_are_clear_errors(alfworld_data):
    with pytest.raises(ValueError, match="unknown ALFWorld split 'dev'"):
        gym.make("mmopsd/ALFWorld-v0", split="dev")
    with pytest.raises(FileNotFoundError, match="alfworld-download"):
        gym.make("mmopsd/ALFWorld-v0", source="official")


def test_two_turn_rollout_with_a_tiny_model(alfworld_data):
    policy = tiny_text_policy()
    envs = make_envs("mmopsd/ALFWorld-v0", 2, split="train")
    spec = prompt_for("mmopsd/ALFWorld-v0")
    trajs = rollout(policy, envs, [0, 1], spec, Sampling(max_new_tokens=8), max_turns=2)
    for traj in trajs:
        assert len(traj.turns) == 2 and traj.turns[-1].truncated
        first, second = traj.turns
        assert "Admissible actions:" in first.messages[-1].text
        assert second.prompt_ids[: len(first.prompt_ids)] == first.prompt_ids
        assert first.privileged["next_action"] and second.privileged["expert_plan"]


def test_official_layout_is_collected_by_alfredtwenv(tmp_path, monkeypatch):
    # alfworld-download's layout: json_2.1.1/<split>/<task>/<trial>/{traj_data.json,game.tw-pddl}
    from mmopsd.envs.alfworld_games import write_game

    for split, seed in (("train", 0), ("valid_seen", 1)):
        spec = draw_game(split, seed, ("pick_and_place_simple",))
        write_game(spec, tmp_path / "json_2.1.1" / split / f"{spec.task_type}-x-{seed}" / "trial_1")
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))
    env = gym.make("mmopsd/ALFWorld-v0", split="valid_seen", source="auto")
    assert env.unwrapped.source == "official"
    _, info = env.reset(seed=5)
    assert "json_2.1.1/valid_seen" in info["game_file"]
    for action in info["privileged"]["plan"]:
        *_, info = env.step(action)
    assert info["won"]


def test_evaluation_reports_success_per_task_type(alfworld_data):
    from mmopsd.evaluation import evaluate
    from mmopsd.testing import ScriptedPolicy

    policy = ScriptedPolicy(tiny_text_policy(), lambda prompt: " look")
    result = evaluate(
        policy,
        "mmopsd/ALFWorld-v0",
        prompt_for("mmopsd/ALFWorld-v0"),
        episodes=2,
        split="valid_seen",
        max_turns=2,
        max_new_tokens=8,
    )
    assert result.episodes == 2 and result.mean_turns == 2.0 and result.success == 0.0
    assert result.invalid_rate == 0.0  # "Next action: look" parses to the admissible "look"
    assert sum(r["episodes"] for r in result.per_task.values()) == 2
    assert result.tokens_per_episode > 0 and "| all | 2 | 0.000" in result.table()
