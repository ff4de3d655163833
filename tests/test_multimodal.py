"""The VLM path end to end on every multimodal environment with tiny random Qwen-VL models:
rollout with images, a provider's teacher context, loss, optimizer step; gradients reach the
language model and (unless frozen) the vision tower."""

from __future__ import annotations

import json

import gymnasium as gym
import mmopsd.envs  # noqa: F401
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from mmopsd.config import from_dict, merge
from mmopsd.policies.vision import vision_parameters
from mmopsd.testing import tiny_vl_policy
from mmopsd.training import loop as trainer

SMALL = {
    "mmopsd/ZoomQA-v0": ({"size": 224, "box_size": 32, "clutter": 10}, "image_crop", {}),
    "mmopsd/Sokoban-v0": ({"size": 5, "tile": 24}, "future_frames", {"k": 1}),
    "mmopsd/GUIClick-v0": ({"width": 640, "height": 480}, "image_crop", {"mode": "replace"}),
    "mmopsd/GUIForm-v0": ({"width": 448, "height": 336}, "reference", {"kind": "next_action"}),
}


def _train(tmp_path, env_id, kind="qwen2_5_vl", **extra):
    env_kwargs, provider, provider_kwargs = SMALL[env_id]
    base = {
        "model": {"name": "tiny"},
        "tasks": [{"env": env_id, "env_kwargs": env_kwargs, "provider": provider,
                   "provider_kwargs": provider_kwargs}],
        "rollout": {"max_new_tokens": 4, "max_turns": 2},
        "optimizer": {"steps": 1, "batch_size": 2, "micro_batch_size": 2, "lr": 1e-2},
        "evaluation": {"every": 0, "episodes": 1, "teacher": False},
        "run": {"save_every": 0, "out_dir": str(tmp_path / "run")},
    }  # fmt: skip
    config = from_dict(merge(base, extra))
    policy = tiny_vl_policy(kind)
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    trainer.train(config, policy=policy, progress=False)
    record = next(
        json.loads(x)
        for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        if '"train"' in x
    )
    changed = {n for n, p in policy.model.named_parameters() if not torch.equal(p, before[n])}
    vision = {n for n, _ in vision_parameters(policy.model)}
    return record, changed, vision


@pytest.mark.parametrize("env_id", sorted(SMALL))
def test_each_multimodal_env_trains_a_tiny_qwen25_vl(tmp_path, env_id):
    record, changed, vision = _train(tmp_path, env_id)
    assert torch.isfinite(torch.tensor(record["loss"])) and record["loss"] > 0
    assert record["grad_norm"] > 0
    assert changed - vision, "the language model must receive gradients"
    assert changed & vision, "the vision tower must receive gradients when it is trainable"


@pytest.mark.parametrize("kind", ["qwen2_vl", "qwen3_vl"])
def test_other_qwen_families_train_on_zoomqa(tmp_path, kind):
    record, changed, vision = _train(tmp_path, "mmopsd/ZoomQA-v0", kind=kind)
    assert record["loss"] > 0 and changed - vision and changed & vision


def test_frozen_vision_tower_gets_no_update(tmp_path):
    _, changed, vision = _train(tmp_path, "mmopsd/GUIClick-v0", model={"freeze_vision": True})
    assert changed and not changed & vision


@pytest.mark.parametrize("env_id", sorted(SMALL))
def test_multimodal_envs_pass_check_env_and_solve_with_their_expert(env_id):
    env = gym.make(env_id, **SMALL[env_id][0])
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs["image"].dtype.name == "uint8" and obs["text"]
    if env_id == "mmopsd/ZoomQA-v0":
        *_, out = env.step(f"It is {info['privileged']['answer']}.")
        assert out["success"]
        return
    for _ in range(40):
        obs, _, terminated, truncated, info = env.step(info["privileged"]["next_action"])
        if terminated or truncated:
            break
    assert info["success"], f"{env_id}: the expert's next actions must solve the task"


def test_evaluation_reports_the_grounding_rate_on_gui_clicks():
    from mmopsd.agents.prompting import PromptSpec

    from mmopsd.evaluation import summarise
    from mmopsd.rollout import Sampling, rollout
    from mmopsd.testing import ScriptedPolicy, tiny_text_policy

    env = gym.make("mmopsd/GUIClick-v0")
    _, info = env.reset(seed=0)
    answer = info["privileged"]["next_action"]
    policy = ScriptedPolicy(tiny_text_policy(), lambda prompt: answer)
    spec = PromptSpec()

    class TextOnly(gym.ObservationWrapper):  # the tiny text policy reads only the task text
        def observation(self, obs):
            return obs["text"]

    trajs = rollout(
        policy,
        [TextOnly(gym.make("mmopsd/GUIClick-v0")) for _ in range(2)],
        [0, 1],
        spec,
        Sampling(),
    )
    result = summarise(trajs)
    assert result.grounding == 0.5 and result.success == 0.5  # same layout only for seed 0


def test_vlm_turns_keep_exact_ids_and_images_across_turns():
    from mmopsd.agents.prompting import prompt_for

    from mmopsd.rollout import Sampling, make_envs, rollout

    policy = tiny_vl_policy("qwen2_5_vl")
    envs = make_envs("mmopsd/Sokoban-v0", 2, size=5, tile=24)
    spec = prompt_for("mmopsd/Sokoban-v0")
    trajs = rollout(policy, envs, [0, 1], spec, Sampling(max_new_tokens=4), max_turns=3)
    assert any(len(t.turns) == 3 for t in trajs), "a random policy should not solve Sokoban at once"
    for traj in trajs:
        for prev, turn in zip(traj.turns, traj.turns[1:]):
            n = len(prev.prompt_ids) + len(prev.response_ids)
            assert turn.prompt_ids[:n] == prev.prompt_ids + prev.response_ids
        for turn in traj.turns:
            again = policy.encode(turn.messages, assistant_prefix=spec.assistant_prefix)
            assert again.ids == turn.prompt_ids
            assert torch.equal(again.mm["image_grid_thw"], turn.prompt.mm["image_grid_thw"])
            assert len(turn.prompt.mm["image_grid_thw"]) == sum(
                len(m.images) for m in turn.messages
            )
