"""Rollout engines: the protocol, engine log-probs, truncated importance weights, the vLLM
engine's pure parts (vLLM itself needs a GPU: tests/test_vllm_gpu.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mmopsd import losses
from mmopsd.config import TrainConfig, from_dict, merge
from mmopsd.engines.build import build_engine
from mmopsd.engines.colocated import to_generation, trained_weights, vllm_prompt
from mmopsd.engines.hf import HFEngine
from mmopsd.errors import ConfigError
from mmopsd.methods.terms import CrossEntropy, Divergence, PolicyGradient
from mmopsd.methods.turn_plan import plan_turns
from mmopsd.testing import tiny_text_policy
from mmopsd.training import loop as trainer_mod
from mmopsd.training.distill import Objective, distill_backward
from mmopsd.training.teachers import build_teacher
from mmopsd.types import Encoded, Trajectory, Turn, user


def _double_policy():
    policy = tiny_text_policy()
    policy.model.double()
    return policy


def _trainer_logprobs(policy, prompt, ids):
    with torch.no_grad():
        scored = policy.score([prompt], [ids])
    return scored.logits[0].log_softmax(-1).gather(-1, scored.ids[0, :, None]).squeeze(-1)


def test_hf_engine_logprobs_are_the_models_own():
    policy = _double_policy()
    prompts = [policy.encode([user(t)]) for t in ("a b c", "d")]  # left padding in the batch
    engine = HFEngine(policy, logprobs=True)
    out = engine.generate(prompts, max_new_tokens=5, greedy=True)
    assert [g.ids for g in out] == policy.generate(prompts, max_new_tokens=5, greedy=True)
    for prompt, gen in zip(prompts, out):
        expected = _trainer_logprobs(policy, prompt, gen.ids)
        got = torch.tensor(gen.logprobs, dtype=torch.float64)
        # generate keeps its logits in float32, even for a float64 model
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def _samples(policy, deltas):
    """Two trajectories whose turns carry engine log-probs = trainer log-probs + delta."""
    prompts = [policy.encode([user(t)]) for t in ("a b", "c", "d e f")]
    responses = [[40, 41, 42], [43], [44, 45]]
    turns = []
    for prompt, ids, delta in zip(prompts, responses, deltas):
        engine = (
            _trainer_logprobs(policy, prompt, ids) + torch.tensor(delta, dtype=torch.float64)
        ).tolist()
        turns.append(Turn([], prompt, ids, sampled_logprobs=engine))
    trajs = [Trajectory("x", "g", turns[:2], True, None), Trajectory("y", "g", turns[2:], False)]
    trajs[0].turns[-1].reward = 1.0
    return plan_turns(trajs, rl="add", turn_weighting="discount")


DELTAS = [[0.5, -1.0, 0.2], [-3.0], [0.0, 1.5]]  # log p_engine - log S per token


@pytest.mark.parametrize("cap", [2.0, 0.0])
def test_importance_weights_match_the_hand_formula(cap):
    # float64 throughout: the comparison is of the same objective written two ways.
    policy = _double_policy()
    teacher = build_teacher("frozen", policy)
    samples = _samples(policy, DELTAS)
    teacher_prompts = [policy.encode([user("hint " + str(i))]) for i in range(3)]
    spec = Objective(terms=(Divergence("forward_kl"), PolicyGradient()), importance_cap=cap)
    policy.model.zero_grad()
    stats = distill_backward(policy, teacher, samples, teacher_prompts, spec, micro_batch_size=2)
    got = torch.cat([p.grad.flatten() for p in policy.model.parameters()])
    flat = [d for row in DELTAS for d in row]
    assert stats["engine_tokens"] == len(flat)
    assert stats["mismatch"] / stats["engine_tokens"] == pytest.approx(
        sum(abs(d) for d in flat) / len(flat), rel=1e-9
    )
    policy.model.zero_grad()
    total = 0.0
    for s, tp, delta in zip(samples, teacher_prompts, DELTAS):
        r = [s.turn.response_ids]
        with torch.no_grad():
            t_logits = policy.score([tp], r).logits
        scored = policy.score([s.turn.prompt], r)
        w = torch.tensor(delta, dtype=torch.float64).neg().exp()  # exp(log S - log p_engine)
        w = w.clamp(max=cap)[None] if cap else torch.ones_like(w)[None]
        n = scored.mask.sum()
        kl = losses.get("forward_kl")(
            scored.logits, t_logits, scored.mask, weights=w / n, reduction="sum"
        )  # sum_t w_t KL_t(T || S) / n
        total = total + s.distill * kl
        logp = scored.logits.log_softmax(-1).gather(-1, scored.ids[..., None]).squeeze(-1)
        total = total + s.rl * -(w * logp).sum() / n
    total.backward()
    reference = torch.cat([p.grad.flatten() for p in policy.model.parameters()])
    torch.testing.assert_close(got, reference, rtol=1e-9, atol=1e-12)


def test_every_registered_loss_takes_the_importance_weight():
    policy = _double_policy()
    teacher = build_teacher("frozen", policy)
    samples = _samples(policy, DELTAS)
    teacher_prompts = [policy.encode([user("hint " + str(i))]) for i in range(3)]
    for name in losses.names():
        term = CrossEntropy() if name == "sft" else Divergence(name)
        spec = Objective(terms=(term, PolicyGradient()))
        grads = []
        for cap in (0.0, 2.0):
            policy.model.zero_grad()
            spec.importance_cap = cap
            distill_backward(policy, teacher, samples, teacher_prompts, spec, micro_batch_size=3)
            grads.append(torch.cat([p.grad.flatten() for p in policy.model.parameters()]))
        assert not torch.allclose(grads[0], grads[1]), name  # the weights changed the gradient


def _config(tmp_path, **kw) -> TrainConfig:
    base = {
        "model": {"name": "tiny"},
        "tasks": [{"env": "mmopsd/KeyDoor-v0"}],
        "rollout": {"max_new_tokens": 3, "temperature": 0},
        "optimizer": {"steps": 2, "batch_size": 4, "micro_batch_size": 2, "lr": 1e-3},
        "evaluation": {"every": 0, "episodes": 4},
        "run": {"save_every": 2, "out_dir": str(tmp_path / "run"), "seed": 0},
    }
    return from_dict(merge(base, kw))


def _train_records(config):
    trainer_mod.train(config, policy=_double_policy(), progress=False)
    lines = (Path(config.run.out_dir) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "train"]


def test_training_with_engine_logprobs_logs_the_mismatch_and_keeps_the_run(tmp_path):
    """The hf engine with log-probs: the generation-time numbers equal the scoring forward
    up to float32 rounding (``generate`` keeps its logits in float32 even for a float64
    model: ~1e-7), so the mismatch is that small, every importance weight is 1 to that
    precision and the run equals the plain one to the same relative precision."""
    plain = _train_records(_config(tmp_path / "a"))
    logged = _train_records(_config(tmp_path / "b", rollout={"engine_kwargs": {"logprobs": True}}))
    assert all(r["engine_mismatch"] is None for r in plain)
    for r in logged:
        assert r["engine"] == "hf" and r["engine_mismatch"] < 1e-5
        assert r["importance_weight"] == pytest.approx(1.0, abs=1e-5)
    for a, b in zip(plain, logged):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-5)
    rollouts_cfg = _config(
        tmp_path / "c", rollout={"engine_kwargs": {"logprobs": True}, "save": True}
    )
    trainer_mod.train(rollouts_cfg, policy=_double_policy(), progress=False)
    saved = json.loads((tmp_path / "c/run/rollouts/step-1.jsonl").read_text().splitlines()[0])
    turn = saved["turns"][0]
    assert len(turn["sampled_logprobs"]) == len(turn["response_ids"])


def test_engine_config_errors_name_the_fix(tmp_path):
    policy = tiny_text_policy()
    with pytest.raises(ConfigError, match="engine must be one of hf, vllm, openai"):
        _config(tmp_path, rollout={"engine": "sglang"})
    with pytest.raises(ConfigError, match="importance_cap must be >= 0"):
        _config(tmp_path, method={"importance_cap": -1})
    with pytest.raises(ConfigError, match="'temprature', which engine 'hf' does not take"):
        build_engine("hf", policy, temprature=1)
    with pytest.raises(ConfigError, match="needs engine_kwargs base_url and model"):
        build_engine("openai", policy)
    if torch.cuda.is_available():
        pytest.skip("the no-GPU message is checked on machines without a GPU")
    with pytest.raises(ConfigError, match="engine: vllm needs"):
        build_engine("vllm", policy, student_model=str(tmp_path))


def test_a_vllm_config_fails_before_anything_is_written_on_a_cpu_machine(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("checks the message of machines without a GPU")
    config = _config(tmp_path, rollout={"engine": "vllm"})
    with pytest.raises(ConfigError, match="engine: vllm needs"):
        trainer_mod.train(config, policy=tiny_text_policy(), progress=False)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------ the vLLM engine's pure parts
def test_vllm_prompts_collapse_each_image_placeholder_run():
    pad = 9
    prompt = Encoded(ids=[1, 2, pad, pad, pad, 3, pad, pad, 4], images=["img0", "img1"])
    out = vllm_prompt(prompt, pad)
    assert out == {"prompt_token_ids": [1, 2, pad, 3, pad, 4], "multi_modal_data": {"image": ["img0", "img1"]}}  # fmt: skip
    assert vllm_prompt(Encoded(ids=[1, 2, 3]), pad) == {"prompt_token_ids": [1, 2, 3]}
    assert vllm_prompt(Encoded(ids=[1, pad]), None) == {"prompt_token_ids": [1, pad]}


def _completion(ids, logprobs, finish="length", stop=None):
    steps = [{t: SimpleNamespace(logprob=lp), 999: SimpleNamespace(logprob=-9.0)} for t, lp in zip(ids, logprobs)]  # fmt: skip
    return SimpleNamespace(token_ids=ids, logprobs=steps, finish_reason=finish, stop_reason=stop)


def test_vllm_outputs_become_generations_with_the_sampled_ids_logprobs():
    eos = 2
    gen = to_generation(_completion([5, 6, eos], [-0.1, -0.2, -0.3], "stop"), eos)
    assert gen.ids == [5, 6, eos] and gen.logprobs == [-0.1, -0.2, -0.3]
    gen = to_generation(_completion([5, 6], [-0.1, -0.2], "length"), eos)
    assert gen.ids == [5, 6] and gen.logprobs == [-0.1, -0.2]
    gen = to_generation(_completion([5], [-0.1], "stop", stop=None), eos)  # eos not returned
    assert gen.ids == [5, eos] and gen.logprobs is None
    gen = to_generation(_completion([5], [-0.1], "stop", stop="</s>"), eos)  # a stop string
    assert gen.ids == [5] and gen.logprobs == [-0.1]


def test_trained_weights_merge_lora_and_keep_plain_names():
    from mmopsd.training.lora import apply_lora

    plain = tiny_text_policy()
    names = set(plain.model.state_dict())
    policy = tiny_text_policy()
    model = apply_lora(policy.model, r=4, alpha=8, targets=["q_proj", "v_proj"])
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p)  # a trained adapter (B starts at zero)
    weights = dict(trained_weights(model))
    assert set(weights) == names
    q = "model.layers.0.self_attn.q_proj"
    base = model.get_submodule(f"base_model.model.{q}")
    delta = base.lora_B["default"].weight @ base.lora_A["default"].weight * base.scaling["default"]
    torch.testing.assert_close(weights[f"{q}.weight"], base.base_layer.weight + delta)
    # the adapter is unmerged afterwards: the base weight is the original again
    torch.testing.assert_close(base.base_layer.weight, plain.model.get_submodule(q).weight)


def test_chat_messages_carry_images_as_lossless_png_data_urls():
    import base64
    import io

    import numpy as np
    from PIL import Image

    from mmopsd.engines.chat_format import openai_messages
    from mmopsd.types import generated, system

    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    reply = generated("Action:", " click(1)", [5, 6])
    out = openai_messages([system("rules"), user("look", image, "then act"), reply])
    assert out[0] == {"role": "system", "content": "rules"}
    assert out[2] == {"role": "assistant", "content": "Action: click(1)"}
    parts = out[1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text"]
    assert parts[0]["text"] == "look" and parts[2]["text"] == "then act"
    head, encoded = parts[1]["image_url"]["url"].split(",", 1)
    assert head == "data:image/png;base64"
    back = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"))
    assert np.array_equal(back, pixels)
