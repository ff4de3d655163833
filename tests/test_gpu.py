"""What only a CUDA GPU can show, without vLLM: bf16 scoring, sampling and a training run on
the GPU (skipped elsewhere; ``benchmarks/gpu_check.sh`` runs them on a GPU machine)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import mmopsd.losses as L
from mmopsd.config import from_dict
from mmopsd.testing import tiny_text_policy, tiny_vl_policy
from mmopsd.types import Encoded, user

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _on_gpu(policy, dtype):
    policy.model.to("cuda", dtype)
    return policy


def test_bf16_scores_follow_float32_within_bf16_precision():
    ref = _on_gpu(tiny_text_policy(), torch.float32)
    bf16 = _on_gpu(tiny_text_policy(), torch.bfloat16)
    prompt = ref.encode([user("Which door?")], assistant_prefix="I open the")
    response = [10, 11, 12, ref.eos_id]
    with torch.no_grad():
        a = ref.score([prompt], [response]).logits.float().log_softmax(-1)
        b = bf16.score([prompt], [response]).logits.float().log_softmax(-1)
    assert (a - b).abs().max() < 0.1  # bf16 keeps 8 bits of mantissa


def test_bf16_generation_on_the_gpu_returns_exact_ids_cut_at_eos():
    policy = _on_gpu(tiny_text_policy(), torch.bfloat16)
    prompts = [policy.encode([user(f"task {i}")]) for i in range(4)]
    for ids in policy.generate(prompts, max_new_tokens=8):
        assert len(ids) <= 8 and (policy.eos_id not in ids[:-1])


def test_chunked_loss_on_the_gpu_equals_the_plain_one():
    torch.manual_seed(0)
    s = torch.randn(2, 5, 300, device="cuda", requires_grad=True)
    t = torch.randn(2, 5, 300, device="cuda")
    mask = torch.ones(2, 5, device="cuda")
    chunked = L.get("forward_kl")(s, t, mask, chunk_size=3)
    plain = L.get("forward_kl")(s, t, mask, chunk_size=10_000)
    torch.testing.assert_close(chunked, plain, rtol=1e-5, atol=1e-6)


def test_a_vision_language_step_in_bf16_on_the_gpu():
    from PIL import Image

    policy = _on_gpu(tiny_vl_policy("qwen2_vl"), torch.bfloat16)
    image = Image.new("RGB", (64, 64), "red")
    prompt = policy.encode([user("What colour?", image)])
    loss = policy.score([prompt], [[10, 11, policy.eos_id]]).logits.float().logsumexp(-1).mean()
    loss.backward()
    grads = [p.grad for p in policy.model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert isinstance(prompt, Encoded)


def test_a_training_run_on_the_gpu_in_bf16(tmp_path):
    from mmopsd import train

    config = from_dict({"model": {"name": "tiny", "device": "cuda", "dtype": "bfloat16"}, "rollout": {"max_new_tokens": 2}, "optimizer": {"steps": 2, "batch_size": 4, "micro_batch_size": 4}, "evaluation": {"every": 0, "episodes": 4}, "run": {"out_dir": str(tmp_path / "run")}})  # fmt: skip
    summary = train(config, policy=_on_gpu(tiny_text_policy(), torch.bfloat16), progress=False)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert summary.steps == 2 and len(train) == 2
    assert all(math.isfinite(r["grad_norm"]) and math.isfinite(r["loss"]) for r in train)
