"""Rollout tokens per second: Hugging Face ``generate`` in process (``hf``) against the same
model behind ``transformers serve`` through the ``openai`` engine, at batch 1 and 16.

The prompts are the first KeyDoor prompts; decoding is greedy with a fixed length cap, and a
rate counts the response tokens both engines return (end-of-sequence included). The server
runs on the same CPU cores, so this measures the engine's overhead and batching, not a GPU.

    python benchmarks/served_rollout_speed.py   # writes benchmarks/results/served_rollout_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from mmopsd.agents.prompting import prompt_for

from mmopsd.engines.local_server import transformers_serve
from mmopsd.policies import load_policy, packaged_model_path
from mmopsd.policies.served import load_served_policy
from mmopsd.rollout import make_envs

ENV = "mmopsd/KeyDoor-v0"


def prompts(policy, n: int) -> list:
    """The first prompts of ``n`` KeyDoor episodes."""
    spec = prompt_for(ENV)
    out = []
    for seed, env in enumerate(make_envs(ENV, n, split="test")):
        obs, info = env.reset(seed=seed)
        out.append(policy.encode(spec.messages(obs, info), assistant_prefix=spec.assistant_prefix))
    return out


def rate(policy, batch: list, max_new_tokens: int, reps: int) -> dict:
    """Median tokens/s over ``reps`` greedy generations of ``batch``."""
    policy.generate(batch, max_new_tokens=max_new_tokens, greedy=True)  # warm-up
    times, tokens = [], []
    for _ in range(reps):
        start = time.perf_counter()
        out = policy.generate(batch, max_new_tokens=max_new_tokens, greedy=True)
        times.append(time.perf_counter() - start)
        tokens.append(sum(len(ids) for ids in out))
    seconds = statistics.median(times)
    return {
        "tokens": statistics.median(tokens),
        "seconds": round(seconds, 3),
        "tokens_per_s": round(statistics.median(tokens) / seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "served_rollout_speed.json"
    )
    args = ap.parse_args()
    torch.manual_seed(0)
    local = load_policy(args.model, dtype="float32")
    model_dir = packaged_model_path(args.model)
    sizes = [int(b) for b in args.batches.split(",")]
    all_prompts = prompts(local, max(sizes))
    results = []
    with transformers_serve(model_dir) as url:
        served = load_served_policy(url, str(model_dir))
        for b in sizes:
            for name, policy in (("hf", local), ("openai (transformers serve)", served)):
                row = {
                    "engine": name,
                    "batch": b,
                    **rate(policy, all_prompts[:b], args.max_new_tokens, args.reps),
                }
                print(row, flush=True)
                results.append(row)
    record = {
        "model": args.model,
        "max_new_tokens": args.max_new_tokens,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
