"""Mixed rollouts (``teacher_share``, GKD's λ): the teacher plays a share of each step's
episodes, and every episode is scored as the student's would be."""

from __future__ import annotations

import json
from unittest import mock

import pytest
import torch

from mmopsd.config import from_dict, merge
from mmopsd.errors import ConfigError
from mmopsd.methods import build_method
from mmopsd.methods.turn_plan import plan_turns
from mmopsd.testing import tiny_text_policy
from mmopsd.training import step as step_module
from mmopsd.training.components import build
from mmopsd.training.distill import distill_backward
from mmopsd.training.step import train_step
from mmopsd.training.views import expand_views, teacher_views


def _config(tmp_path, **kw):
    base = {
        "model": {"name": "tiny"},
        "tasks": [{"env": "mmopsd/KeyDoor-v0"}],
        "rollout": {"max_new_tokens": 3},
        "optimizer": {"steps": 1, "batch_size": 4, "micro_batch_size": 4, "lr": 1e-3},
        "evaluation": {"every": 0, "episodes": 2, "cache": ""},
        "run": {"save_every": 0, "out_dir": str(tmp_path / "run"), "seed": 0},
    }
    return from_dict(merge(base, kw))


def teacher_episodes(episodes, config):
    """How many of ``episodes`` the config's method has the teacher play."""
    return build_method(config).players(episodes).count("teacher")


def test_the_share_counts_whole_groups(tmp_path):
    assert (
        teacher_episodes(
            8, _config(tmp_path, method={"teacher_share": 0.25}, optimizer={"batch_size": 8})
        )
        == 2
    )
    assert teacher_episodes(8, _config(tmp_path, method={"group_size": 4, "teacher_share": 0.25}, optimizer={"batch_size": 8})) == 0  # fmt: skip
    assert teacher_episodes(8, _config(tmp_path, method={"group_size": 2, "teacher_share": 0.5}, optimizer={"batch_size": 8})) == 4  # fmt: skip
    assert teacher_episodes(4, _config(tmp_path)) == 0
    assert teacher_episodes(4, _config(tmp_path, method={"actor": "teacher"})) == 4


def test_a_share_outside_zero_one_or_with_the_teacher_acting_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="teacher_share must lie in"):
        _config(tmp_path, method={"teacher_share": 1.5})
    with pytest.raises(ConfigError, match="every episode is the teacher's already"):
        _config(tmp_path, method={"teacher_share": 0.5, "actor": "teacher"})


def test_half_the_episodes_are_the_teachers_and_all_are_scored_alike(tmp_path):
    config = _config(tmp_path, method={"teacher_share": 0.5})
    c = build(config, tiny_text_policy())
    start = {n: p.detach().clone() for n, p in c.policy.model.named_parameters()}
    played, grads = [], {}
    real_play = step_module.play

    def spy(policy, jobs, stable, **kw):
        out = real_play(policy, jobs, stable, **kw)
        played.append((all(j.provider is not None for j in jobs), policy is c.policy, out))
        return out

    def capture():
        for n, p in c.policy.model.named_parameters():
            grads[n] = p.grad.detach().clone()

    with (
        mock.patch.object(step_module, "play", spy),
        mock.patch.object(c.optimizer, "step", capture),
    ):
        record = train_step(1, c, config)
    assert record["teacher_episodes"] == 2
    (teacher_side, by_student_t, teacher_trajs), (student_side, by_student_s, student_trajs) = (
        played
    )
    assert teacher_side and not by_student_t and len(teacher_trajs) == 2
    assert not student_side and by_student_s and len(student_trajs) == 2
    assert all(t.trajectory_id.startswith("s1-teacher") for t in teacher_trajs)

    # By hand: the same four episodes, scored from the initial weights as if the student had
    # played them all, give the same gradient.
    with torch.no_grad():
        for n, p in c.policy.model.named_parameters():
            p.copy_(start[n])
            p.grad = None
    trajs = teacher_trajs + student_trajs
    samples = plan_turns(trajs, step=0, turn_weighting="uniform", weighting_kwargs={},
                         curriculum=None, rl="none", rl_coef=1.0, advantage="grpo",
                         distill_coef=1.0, success_only=False, keep_all=False)  # fmt: skip
    keys = [(s.trajectory, s.index) for s in samples if s.distill]
    views = teacher_views(c.policy, c.provider, trajs, keys, failed_path=tmp_path / "f.jsonl")
    samples, prompts = expand_views(samples, views)
    distill_backward(c.policy, c.teacher, samples, prompts, c.objective, micro_batch_size=4)
    for n, p in c.policy.model.named_parameters():
        assert torch.allclose(p.grad, grads[n], atol=1e-6, rtol=1e-5), n
    assert any(g.abs().sum() > 0 for g in grads.values())
    assert json.dumps(record["teacher_episodes"]) == "2"
