"""The methods against which self-distillation is compared: presets, sft_teacher's loss,
GRPO's clipped objective, advantages and KL penalty, each against a hand computation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from mmopsd.config import from_dict, merge
from mmopsd.errors import ConfigError
from mmopsd.methods import PRESETS, build_method, resolve
from mmopsd.methods.terms import CrossEntropy, Divergence, KLPenalty, PolicyGradient
from mmopsd.methods.turn_plan import plan_turns
from mmopsd.testing import tiny_text_policy
from mmopsd.training import loop as trainer_mod
from mmopsd.training.distill import Objective, distill_backward, old_logprobs
from mmopsd.training.teachers import build_teacher
from mmopsd.types import Trajectory, Turn, user

# Claims of sameness are checked in float64 (the same objective written two ways).


def _policy():
    policy = tiny_text_policy()
    policy.model.double()
    return policy


def _grad(policy):
    return torch.cat([p.grad.flatten() for p in policy.model.parameters()])


def _logp(policy, prompt, ids):
    scored = policy.score([prompt], [ids])
    logp = scored.logits.log_softmax(-1).gather(-1, scored.ids[..., None]).squeeze(-1)
    return logp, scored.mask


# ------------------------------------------------------------------------------ presets
def _resolved(data):
    return resolve(from_dict(data))


def _field(config, key):
    where, name = key.split(".") if "." in key else ("method", key)
    return getattr(getattr(config, where), name)


@pytest.mark.parametrize(
    "method", ["opsd", "opsd_grpo", "sft_teacher", "grpo", "dagger", "bc_expert"]
)
def test_presets_expand_to_their_documented_fields(method, tmp_path):
    config = _resolved(
        {"method": {"name": method, "group_size": 4}, "run": {"out_dir": str(tmp_path)}}
    )
    for key, allowed in PRESETS[method].items():
        assert _field(config, key) == allowed[0], key
    again = from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))  # config.yaml reloads
    assert again == config and resolve(again) == config


def test_expected_preset_values():
    grpo = _resolved({"method": {"name": "grpo", "group_size": 4}, "optimizer": {"batch_size": 8}})
    m = grpo.method
    assert (m.actor, m.rl, m.distill_coef, grpo.teacher.update) == ("student", "add", 0.0, "frozen")  # fmt: skip
    sft = _resolved({"method": {"name": "sft_teacher", "success_only": True}}).method
    assert (sft.actor, sft.loss, sft.rl, sft.success_only) == ("teacher", "sft", "none", True)
    route = _resolved({"method": {"name": "opsd_grpo", "rl": "route", "group_size": 2}})
    assert route.method.rl == "route"
    gkd = _resolved({"method": {"name": "gkd", "teacher_share": 0.5}}).method
    assert (gkd.actor, gkd.teacher_share) == ("student", 0.5)


def test_a_config_contradicting_its_method_is_named():
    with pytest.raises(ConfigError, match="method grpo sets method.distill_coef: 0.0, but the"):
        _resolved({"method": {"name": "grpo", "distill_coef": 0.5}})
    with pytest.raises(
        ConfigError, match="method.name must be one of bc_expert, custom, dagger, gkd"
    ):
        _resolved({"method": {"name": "ppo"}})
    with pytest.raises(ConfigError, match="method grpo compares episodes .* group_size 1"):
        build_method(from_dict({"method": {"name": "grpo"}}))
    with pytest.raises(ConfigError, match="method opsd_grpo compares episodes"):
        build_method(
            from_dict(
                {"method": {"name": "opsd_grpo", "group_size": 1}, "optimizer": {"batch_size": 3}}
            )
        )
    with pytest.raises(ConfigError, match="method gkd mixes .* teacher_share in"):
        build_method(from_dict({"method": {"name": "gkd"}}))
    with pytest.raises(ConfigError, match="method opsd sets method.teacher_share: 0.0"):
        _resolved({"method": {"name": "opsd", "teacher_share": 0.5}})
    with pytest.raises(ConfigError, match="method grpo sets teacher.update: 'frozen'"):
        _resolved({"method": {"name": "grpo", "group_size": 2}, "teacher": {"update": "ema"}})
    with pytest.raises(ConfigError, match="kl_coef needs teacher.update: frozen"):
        from_dict({"method": {"kl_coef": 0.1}, "teacher": {"update": "ema"}})


def test_the_check_step_refuses_a_bad_method_before_any_model_loads(tmp_path):
    from mmopsd.parallel import Parallel
    from mmopsd.training.components import check

    config = from_dict({"method": {"name": "grpo"}, "run": {"out_dir": str(tmp_path)}})
    with pytest.raises(ConfigError, match="group_size 1"):
        check(config, Parallel())


# ------------------------------------------------------------------------- sft_teacher
def test_sft_loss_is_cross_entropy_on_the_teachers_ids_under_the_student_prompt():
    policy = _policy()
    teacher = build_teacher("frozen", policy)
    student_prompts = [policy.encode([user(t)]) for t in ("a b", "c d e")]
    teacher_ids = [[40, 41, 42], [43, 44]]  # what the teacher sampled with its privileged view
    trajs = [
        Trajectory("x", "g1", [Turn([], student_prompts[0], teacher_ids[0])], True),
        Trajectory("y", "g2", [Turn([], student_prompts[1], teacher_ids[1])], False),
    ]
    spec = Objective(terms=(CrossEntropy(),))
    samples = plan_turns(trajs)
    policy.model.zero_grad()
    stats = distill_backward(policy, teacher, samples, [None, None], spec, micro_batch_size=2)
    got = _grad(policy)
    policy.model.zero_grad()
    total = 0.0
    for prompt, ids in zip(student_prompts, teacher_ids):
        logp, mask = _logp(policy, prompt, ids)
        total = total + -(logp * mask).sum() / mask.sum() / 2  # mean over 2 trajectories
    total.backward()
    torch.testing.assert_close(got, _grad(policy), rtol=1e-9, atol=1e-12)
    assert stats["loss"] == pytest.approx(total.item(), rel=1e-9)
    # rejection sampling keeps the won trajectory only
    kept = plan_turns(trajs, success_only=True)
    assert [(s.trajectory, s.distill) for s in kept] == [(0, 1.0)]


# -------------------------------------------------------------------------------- grpo
def _grpo_batch(policy):
    prompts = [policy.encode([user(t)]) for t in ("a", "b c", "d", "e f g")]
    ids = [[40, 41], [42], [43, 44, 45], [46]]
    rewards = [1.0, 0.0, 0.0, 0.0]
    trajs = []
    for i, (p, r, rew) in enumerate(zip(prompts, ids, rewards)):
        turn = Turn([], p, r)
        turn.reward = rew
        trajs.append(Trajectory(f"t{i}", "g" if i < 2 else "h", [turn], rew > 0))
    return trajs


def test_grpo_advantages_match_the_hand_formula():
    policy = _policy()
    trajs = _grpo_batch(policy)
    samples = plan_turns(trajs, rl="add", distill_coef=0.0, rl_coef=1.0)
    # group g: rewards (1, 0): mean 0.5, population std 0.5 -> advantages +1 and -1 (eps 1e-6);
    # group h: all 0 -> advantage 0, no sample. Each turn's scale is A / N with N = 4.
    a = 0.5 / (0.5 + 1e-6)
    assert [(s.trajectory, s.distill) for s in samples] == [(0, 0.0), (1, 0.0)]
    assert [s.rl for s in samples] == pytest.approx([a / 4, -a / 4], rel=1e-12)
    kept = plan_turns(trajs, rl="add", distill_coef=0.0, keep_all=True)  # for the KL penalty
    assert [s.share for s in kept] == [0.25] * 4


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_grpo_clipped_objective_and_kl_match_the_hand_formula(shift):
    """Old log-probs = current - shift per token: ratio exp(shift), clipped at 1 + eps for
    a positive advantage and left as is (max) for a negative one."""
    policy = _policy()
    teacher = build_teacher("frozen", policy)  # the initial model, for the KL penalty
    trajs = _grpo_batch(policy)
    samples = plan_turns(trajs, rl="add", distill_coef=0.0, keep_all=True)
    olds = old_logprobs(policy, samples, micro_batch_size=3)
    samples = [
        type(s)(s.turn, s.trajectory, s.index, s.distill, s.rl, s.share, [v - shift for v in o])
        for s, o in zip(samples, olds)
    ]
    with torch.no_grad():  # the student moves away from the initial model
        for p in policy.model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    eps, kl_coef = 0.2, 0.3
    spec = Objective(
        terms=(Divergence("forward_kl"), PolicyGradient(clip_eps=eps), KLPenalty(coef=kl_coef))
    )
    policy.model.zero_grad()
    stats = distill_backward(
        policy, teacher, samples, [None] * len(samples), spec, micro_batch_size=3
    )
    got = _grad(policy)
    policy.model.zero_grad()
    total, kl_total = 0.0, 0.0
    for s in samples:
        logp, mask = _logp(policy, s.turn.prompt, s.turn.response_ids)
        old = torch.tensor(s.old_logprobs, dtype=torch.float64)[None]
        ratio = (logp - old).exp()
        clipped = ratio.clamp(1 - eps, 1 + eps)
        n = mask.sum()
        a = s.rl
        surrogate = torch.minimum(ratio * a, clipped * a)  # PPO: min(r A, clip(r) A)
        total = total + -(surrogate * mask).sum() / n
        with torch.no_grad():
            ref, _ = _logp(teacher.policy, s.turn.prompt, s.turn.response_ids)
        k3 = (ref - logp).exp() - (ref - logp) - 1
        kl_total = kl_total + kl_coef * s.share * (k3 * mask).sum() / n
    (total + kl_total).backward()
    torch.testing.assert_close(got, _grad(policy), rtol=1e-9, atol=1e-12)
    assert stats["rl_loss"] == pytest.approx(total.item(), rel=1e-9)
    assert stats["kl"] == pytest.approx(kl_total.item(), rel=1e-9) and stats["kl"] > 0
    if shift:
        assert math.exp(shift) > 1 + eps  # the positive-advantage turn was clipped


# ---------------------------------------------------------------------------- training
def _train(tmp_path, **fields):
    base = {
        "model": {"name": "tiny"},
        "tasks": [{"env": "mmopsd/KeyDoor-v0"}],
        "rollout": {"max_new_tokens": 3},
        "optimizer": {"steps": 2, "batch_size": 4, "micro_batch_size": 4, "lr": 1e-3},
        "evaluation": {"every": 0, "episodes": 4},
        "run": {"save_every": 2, "out_dir": str(tmp_path / "run"), "seed": 0},
    }
    config = from_dict(merge(base, fields))
    trainer_mod.train(config, policy=tiny_text_policy(), progress=False)
    out = Path(config.run.out_dir)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "train"], yaml.safe_load((out / "config.yaml").read_text())  # fmt: skip


def test_sft_teacher_and_grpo_train(tmp_path):
    train, saved = _train(
        tmp_path / "sft", method={"name": "sft_teacher"}, rollout={"temperature": 0}
    )
    m = saved["method"]  # config.yaml records the method's fields
    assert m["name"] == "sft_teacher" and m["actor"] == "teacher" and m["loss"] == "sft"
    assert all(r["actor"] == "teacher" and r["loss"] > 0 for r in train)
    train, saved = _train(
        tmp_path / "grpo", method={"name": "grpo", "group_size": 2, "ppo_epochs": 2, "kl_coef": 0.1}
    )
    assert saved["method"]["distill_coef"] == 0.0 and saved["method"]["rl"] == "add"
    assert all(r["loss"] == 0.0 and r["kl"] >= 0.0 for r in train)
