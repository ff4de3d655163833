"""The vLLM engine for real: needs a CUDA GPU and the vllm package (skipped elsewhere).

Run on a GPU machine with ``pytest -m gpu tests/test_vllm_gpu.py``.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None,
        reason="needs a CUDA GPU and vllm",
    ),
]


@pytest.fixture(scope="module")
def setup():
    from mmopsd.agents.prompting import prompt_for

    from mmopsd.engines.colocated import VLLMEngine
    from mmopsd.policies.loading import load_policy, resolve_model_path
    from mmopsd.rollout import make_envs

    policy = load_policy("smollm2-135m", dtype="float32", device="cuda")
    engine = VLLMEngine(
        str(resolve_model_path("smollm2-135m")),
        policy.eos_id,
        dtype="float32",
        gpu_memory_utilization=0.3,
        enforce_eager=True,
    )
    spec = prompt_for("mmopsd/KeyDoor-v0")
    prompts = []
    for seed, env in enumerate(make_envs("mmopsd/KeyDoor-v0", 8)):
        obs, info = env.reset(seed=seed)
        prompts.append(
            policy.encode(spec.messages(obs, info), assistant_prefix=spec.assistant_prefix)
        )
    return policy, engine, prompts


def _trainer_logprobs(policy, prompt, ids):
    with torch.no_grad():
        scored = policy.score([prompt], [ids])
    return scored.logits[0].float().log_softmax(-1).gather(-1, scored.ids[0, :, None]).squeeze(-1)


def test_greedy_vllm_matches_hf_and_its_logprobs_match_the_trainer(setup):
    policy, engine, prompts = setup
    engine.sync(policy.model)
    out = engine.generate(prompts, max_new_tokens=8, greedy=True)
    hf = policy.generate(prompts, max_new_tokens=8, greedy=True)
    assert sum(g.ids == h for g, h in zip(out, hf)) >= 7  # float32 both; a near-tie may flip
    for prompt, gen in zip(prompts, out):
        gap = torch.tensor(gen.logprobs, device="cuda") - _trainer_logprobs(policy, prompt, gen.ids)
        assert gap.abs().mean() < 1e-2


def test_sync_loads_the_students_new_weights_and_sleep_frees_memory(setup):
    policy, engine, prompts = setup
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    engine.sleep()
    engine.sync(policy.model)
    out = engine.generate(prompts, max_new_tokens=8, greedy=True)
    hf = policy.generate(prompts, max_new_tokens=8, greedy=True)
    assert sum(g.ids == h for g, h in zip(out, hf)) >= 7


def test_training_with_the_vllm_engine_logs_the_mismatch(tmp_path):
    """In its own process: vLLM's CuMem allocator serves one sleep-mode engine per process
    (vllm/v1/worker/gpu_worker.py), and this module's engine already holds it."""
    import subprocess
    import sys

    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "mmopsd", "train", "--quiet", "--set", "model.name=smollm2-135m",
        "--set", "rollout.engine=vllm", "--set", "model.device=cuda", "--set", "model.dtype=bfloat16",
        "--set", "rollout.engine_kwargs={gpu_memory_utilization: 0.3}", "--set", "optimizer.steps=2",
        "--set", "optimizer.batch_size=8", "--set", "optimizer.micro_batch_size=8", "--set", "evaluation.every=0",
        "--set", "evaluation.episodes=16", "--set", f"run.out_dir={out}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    train = [r for r in map(json.loads, lines) if r["kind"] == "train"]
    assert all(r["engine"] == "vllm" and r["engine_mismatch"] is not None for r in train)
