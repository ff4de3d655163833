"""The training loop on a tiny model: outputs, kill-and-resume, atomic checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from mmopsd.config import TrainConfig, from_dict, merge
from mmopsd.testing import tiny_text_policy
from mmopsd.training import checkpoint
from mmopsd.training import loop as trainer_mod


def _config(tmp_path, **kw) -> TrainConfig:
    base = {
        "model": {"name": "tiny"},
        "tasks": [{"env": "mmopsd/KeyDoor-v0"}],
        "rollout": {"max_new_tokens": 3},
        "optimizer": {"steps": 4, "batch_size": 4, "micro_batch_size": 2, "lr": 1e-3},
        "evaluation": {"every": 0, "episodes": 4},
        "run": {
            "save_every": 2,
            "keep_checkpoints": 3,
            "out_dir": str(tmp_path / "run"),
            "seed": 0,
        },
    }
    return from_dict(merge(base, kw))


def test_training_writes_metrics_curve_and_checkpoints(tmp_path):
    config = _config(tmp_path, optimizer={"steps": 2})
    policy = tiny_text_policy()
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    summary = trainer_mod.train(config, policy=policy, progress=False)
    out = tmp_path / "run"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds == ["eval", "train", "train", "eval", "summary"]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records if r["kind"] == "train")
    assert (out / "curve.png").stat().st_size > 1000
    assert checkpoint.latest(out / "checkpoints").name == "step-2"
    assert summary.before.episodes == 4
    changed = any(not torch.equal(before[n], p) for n, p in policy.model.named_parameters())
    assert changed


class Killed(Exception):
    pass


def _state(policy, optimizer):
    weights = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    return weights, optimizer.state_dict()


def test_killed_run_resumes_with_same_steps_and_optimizer_state(tmp_path, monkeypatch):
    # Reference: four uninterrupted steps.
    ref_policy = tiny_text_policy()
    captured = {}
    real_build = trainer_mod.build

    def build_and_capture(config, policy=None, parallel=None):
        c = real_build(config, policy, parallel)
        captured["c"] = c
        return c

    monkeypatch.setattr(trainer_mod, "build", build_and_capture)
    trainer_mod.train(_config(tmp_path / "a"), policy=ref_policy, progress=False)
    ref_weights, ref_opt = _state(ref_policy, captured["c"].optimizer)

    # Same run killed during step 3 (after the step-2 checkpoint) ...
    real_step = trainer_mod.train_step
    steps_run = []

    def dying_step(step, c, config):
        if step == 3:
            raise Killed
        steps_run.append(step)
        return real_step(step, c, config)

    monkeypatch.setattr(trainer_mod, "train_step", dying_step)
    with pytest.raises(Killed):
        trainer_mod.train(_config(tmp_path / "b"), policy=tiny_text_policy(), progress=False)
    run = tmp_path / "b" / "run"
    assert checkpoint.latest(run / "checkpoints").name == "step-2"

    # ... and resumed in a new process-like start from a fresh model.
    def counting_step(step, c, config):
        steps_run.append(step)
        return real_step(step, c, config)

    monkeypatch.setattr(trainer_mod, "train_step", counting_step)
    resumed_policy = tiny_text_policy()
    trainer_mod.train(_config(tmp_path / "b"), policy=resumed_policy, progress=False)
    assert steps_run == [1, 2, 3, 4]
    weights, opt = _state(resumed_policy, captured["c"].optimizer)
    # Bit-exact: both runs are in this process on the same kernels, so every sum is taken in
    # the same order; a resume that differs at all has lost or changed state.
    for name, tensor in ref_weights.items():
        torch.testing.assert_close(weights[name], tensor, rtol=0, atol=0)
    assert opt["state"].keys() == ref_opt["state"].keys()
    for key, st in ref_opt["state"].items():
        assert int(opt["state"][key]["step"]) == int(st["step"]) == 4
        torch.testing.assert_close(opt["state"][key]["exp_avg"], st["exp_avg"], rtol=0, atol=0)
        torch.testing.assert_close(
            opt["state"][key]["exp_avg_sq"], st["exp_avg_sq"], rtol=0, atol=0
        )
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    policy = tiny_text_policy()
    opt = torch.optim.AdamW(policy.model.parameters(), lr=1e-3)
    root = tmp_path / "ckpt"
    checkpoint.save(root, 1, policy.model, opt)

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(root, 2, policy.model, opt)
    assert sorted(p.name for p in root.iterdir()) == ["step-1"]  # no half checkpoint left
    assert checkpoint.latest(root).name == "step-1"


def test_leftover_temporary_directory_is_ignored_on_resume(tmp_path):
    policy = tiny_text_policy()
    opt = torch.optim.AdamW(policy.model.parameters(), lr=1e-3)
    root = tmp_path / "ckpt"
    checkpoint.save(root, 1, policy.model, opt)
    (root / ".tmp-step-2-abc").mkdir()
    (root / ".tmp-step-2-abc" / "model.safetensors").write_bytes(b"half")
    assert checkpoint.latest(root).name == "step-1"


@pytest.mark.parametrize(
    "teacher, kwargs", [("live", {}), ("ema", {"rate": 0.5}), ("sync", {"every": 1})]
)
def test_other_teachers_train(tmp_path, teacher, kwargs):
    config = _config(
        tmp_path,
        teacher={"update": teacher, "update_kwargs": kwargs},
        optimizer={"steps": 1},
        evaluation={"teacher": False},
    )
    summary = trainer_mod.train(config, policy=tiny_text_policy(), progress=False)
    assert summary.steps == 1


@pytest.mark.parametrize(
    "loss, extra",
    [
        ("reverse_kl", {"top_k": 5, "tail": True}),
        ("jsd", {"beta": 0.5}),
        ("sampled_reverse_kl", {"baseline": True}),
    ],
)
def test_losses_and_weightings_plug_into_training(tmp_path, loss, extra):
    config = _config(
        tmp_path,
        method={"loss": loss, "loss_kwargs": extra, "token_weighting": "tip"},
        optimizer={"steps": 1},
        evaluation={"teacher": False},
    )
    trainer_mod.train(config, policy=tiny_text_policy(), progress=False)


def test_lora_training_with_adapter_disabled_teacher(tmp_path):
    config = _config(
        tmp_path,
        model={"lora": True, "lora_r": 4, "lora_alpha": 8, "lora_targets": ["q_proj", "v_proj"]},
        optimizer={"steps": 2},
    )
    policy = tiny_text_policy()
    trainer_mod.train(config, policy=policy, progress=False)
    trainable = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n for n in trainable)
    ckpt = checkpoint.latest(tmp_path / "run" / "checkpoints")
    from safetensors.torch import load_file

    assert set(load_file(str(ckpt / "model.safetensors"))) == set(trainable)
