"""Turn-level training: turn weights, the curriculum and RL routing on hand-computed cases;
micro-batching; multi-turn training; errors that lose no trajectory."""

from __future__ import annotations

import json

import pytest
import torch
from mmopsd.privileged.base import MissingPrivilegedKey

from mmopsd import losses
from mmopsd.config import TrainConfig, from_dict, merge
from mmopsd.errors import MmopsdError
from mmopsd.methods.curriculum import TemporalCurriculum
from mmopsd.methods.terms import Divergence, PolicyGradient
from mmopsd.methods.turn_plan import plan_turns, route
from mmopsd.testing import tiny_text_policy
from mmopsd.training import loop as trainer_mod
from mmopsd.training.distill import Objective, distill_backward
from mmopsd.training.teachers import build_teacher
from mmopsd.types import Encoded, Trajectory, Turn, user


def _traj(n_turns, *, success=False, reward=0.0, group="g", tid="t"):
    turns = [Turn(messages=[], prompt=Encoded([1, 2]), response_ids=[5, 6]) for _ in range(n_turns)]
    turns[-1].reward = reward
    return Trajectory(tid, group, turns, success)


def _scales(samples, attr="distill"):
    return {
        (s.trajectory, s.index): round(getattr(s, attr), 6) for s in samples if getattr(s, attr)
    }


def test_uniform_turns_average_per_turn_then_per_trajectory():
    samples = plan_turns([_traj(2), _traj(1)])
    assert _scales(samples) == {(0, 0): 0.25, (0, 1): 0.25, (1, 0): 0.5}


def test_discount_weights():
    samples = plan_turns([_traj(3)], turn_weighting="discount", weighting_kwargs={"gamma": 0.5})
    assert _scales(samples) == {
        (0, 0): round(1 / 1.75, 6),
        (0, 1): round(0.5 / 1.75, 6),
        (0, 2): round(0.25 / 1.75, 6),
    }


def test_sod_weights_from_divergences():
    # d = (1.0, 0.5, 2.0), eps 0: ratios 2 (capped at 1+delta = 1.5), then 2 * 0.25 = 0.5.
    div = {(0, 0): 1.0, (0, 1): 0.5, (0, 2): 2.0}
    samples = plan_turns(
        [_traj(3)],
        turn_weighting="sod",
        weighting_kwargs={"eps": 0.0, "delta": 0.5},
        divergences=div,
    )
    assert _scales(samples) == {
        (0, 0): round(1 / 3, 6),
        (0, 1): round(1.5 / 3, 6),
        (0, 2): round(0.5 / 3, 6),
    }
    with pytest.raises(ValueError, match="sod turn weighting needs per-turn divergences"):
        plan_turns([_traj(3)], turn_weighting="sod")


def test_curriculum_distils_only_the_first_k_turns():
    curriculum = TemporalCurriculum(every=2, start=1)
    assert _scales(plan_turns([_traj(3)], step=0, curriculum=curriculum)) == {(0, 0): 1.0}
    assert _scales(plan_turns([_traj(3)], step=1, curriculum=curriculum)) == {(0, 0): 1.0}
    assert _scales(plan_turns([_traj(3)], step=2, curriculum=curriculum)) == {
        (0, 0): 0.5,
        (0, 1): 0.5,
    }
    assert len(plan_turns([_traj(3)], step=9, curriculum=curriculum)) == 3


def test_rl_routing_sends_successes_to_rl_and_failures_to_distillation():
    win = _traj(1, success=True, reward=1.0, tid="a")
    loss = _traj(2, success=False, reward=0.0, tid="b")
    assert route([win, loss], "route") == [(0.0, 1.0), (1.0, 0.0)]
    assert route([win, loss], "add") == [(1.0, 1.0), (1.0, 1.0)]
    assert route([win, loss], "none") == [(1.0, 0.0), (1.0, 0.0)]
    samples = plan_turns([win, loss], rl="route", rl_coef=2.0)
    # GRPO in a group of two with rewards 1 and 0: advantages +1 and -1 (std 0.5).
    assert _scales(samples) == {(1, 0): 0.25, (1, 1): 0.25}  # distillation on the failure only
    assert _scales(samples, "rl") == {(0, 0): pytest.approx(1.0, abs=1e-5)}  # 2 * (+1) * 1/1 / 2
    added = plan_turns([win, loss], rl="add", rl_coef=1.0, advantage="rloo")
    assert _scales(added, "rl") == {(0, 0): 0.5, (1, 0): -0.25, (1, 1): -0.25}
    with pytest.raises(ValueError, match="rl mode must be one of none, add, route"):
        route([win], "both")


def _samples_for_backward(policy):
    prompts = [policy.encode([user(t)]) for t in ("a b", "c", "d e f")]
    trajs = [
        Trajectory(
            "x", "g", [Turn([], prompts[0], [40, 41, 42]), Turn([], prompts[1], [43])], True, None
        ),
        Trajectory("y", "g", [Turn([], prompts[2], [44, 45])], False, None),
    ]
    trajs[0].turns[-1].reward = 1.0
    return plan_turns(trajs, rl="add", turn_weighting="discount")


def test_micro_batches_give_the_full_batch_gradient_and_the_hand_formula():
    # Claims of sameness are checked in float64: float32 sums differ between CPU kernels
    # (AVX-512, AVX2, default) by ~1e-7, float64 ones by ~1e-16, far inside rtol=1e-9.
    policy = tiny_text_policy()
    policy.model.double()
    teacher = build_teacher("frozen", policy)
    samples = _samples_for_backward(policy)
    teacher_prompts = [policy.encode([user("hint " + str(i))]) for i in range(3)]
    spec = Objective(terms=(Divergence("forward_kl"), PolicyGradient()))
    grads = []
    for micro in (1, 3):
        policy.model.zero_grad()
        distill_backward(policy, teacher, samples, teacher_prompts, spec, micro_batch_size=micro)
        grads.append(torch.cat([p.grad.flatten() for p in policy.model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-12)
    # The same objective written out turn by turn.
    policy.model.zero_grad()
    total = 0.0
    for s, tp in zip(samples, teacher_prompts):
        r = [s.turn.response_ids]
        with torch.no_grad():
            t_logits = policy.score([tp], r).logits
        scored = policy.score([s.turn.prompt], r)
        mask = scored.mask
        total = total + s.distill * losses.get("forward_kl")(scored.logits, t_logits, mask)
        logp = scored.logits.log_softmax(-1).gather(-1, scored.ids[..., None]).squeeze(-1)
        total = total + s.rl * -(logp * mask).sum() / mask.sum()
    total.backward()
    reference = torch.cat([p.grad.flatten() for p in policy.model.parameters()])
    torch.testing.assert_close(grads[1], reference, rtol=1e-9, atol=1e-12)


def _config(tmp_path, **kw) -> TrainConfig:
    base = {
        "model": {"name": "tiny"},
        "tasks": [{"env": "mmopsd/KeyDoor-v0", "env_kwargs": {"n_rooms": 2}}],
        "rollout": {"max_new_tokens": 3, "max_turns": 4},
        "optimizer": {"steps": 2, "batch_size": 4, "micro_batch_size": 4, "lr": 1e-3},
        "evaluation": {"every": 0, "episodes": 4},
        "run": {"save_every": 0, "out_dir": str(tmp_path / "run")},
    }
    return from_dict(merge(base, kw))


@pytest.mark.parametrize(
    "extra",
    [
        {
            "tasks": [{"env": "mmopsd/KeyDoor-v0", "env_kwargs": {"n_rooms": 2}, "history": 1}],
            "method": {"turn_weighting": "discount", "turn_weighting_kwargs": {"gamma": 0.8}},
        },
        {"method": {"turn_weighting": "sod", "curriculum_every": 1}},
        {"method": {"rl": "route", "group_size": 2}},
        {
            "method": {"rl": "add", "rl_advantage": "rloo", "group_size": 4},
            "rollout": {"save": True},
        },
    ],
)
def test_multi_turn_training_runs(tmp_path, extra):
    config = _config(tmp_path, **extra)
    trainer_mod.train(config, policy=tiny_text_policy(), progress=False)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert len(train) == 2 and all(r["mean_turns"] >= 1 for r in train)
    assert all(r["loss"] == r["loss"] and r["rl_loss"] == r["rl_loss"] for r in train)  # finite
    if extra.get("rollout", {}).get("save"):
        rows = (tmp_path / "run" / "rollouts" / "step-1.jsonl").read_text().splitlines()
        assert len(rows) == 4 and json.loads(rows[0])["turns"][0]["response_ids"]


def test_missing_privileged_key_names_it_and_keeps_the_trajectories(tmp_path):
    config = _config(
        tmp_path,
        tasks=[
            {
                "env": "mmopsd/KeyDoor-v0",
                "env_kwargs": {"n_rooms": 2},
                "provider": "hint",
                "provider_kwargs": {"key": "plan"},
            }
        ],
        evaluation={"teacher": False},
    )
    with pytest.raises(
        MissingPrivilegedKey, match="provider 'hint' needs info\\['privileged'\\]\\['plan'\\]"
    ) as err:
        trainer_mod.train(config, policy=tiny_text_policy(), progress=False)
    saved = tmp_path / "run" / "rollouts" / "failed-step-1.jsonl"
    assert str(saved) in str(err.value)
    rows = [json.loads(x) for x in saved.read_text().splitlines()]
    assert len(rows) == 4 and all(r["turns"] for r in rows)
    assert isinstance(err.value, MmopsdError)


def test_group_size_must_divide_the_batch():
    with pytest.raises(MmopsdError, match="multiple of method.group_size"):
        from_dict({"method": {"group_size": 4}, "optimizer": {"batch_size": 6}})
