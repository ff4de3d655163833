"""Rollout tokens per second on a GPU: the ``vllm`` engine against ``hf`` (``generate``) with
the packaged SmolLM2 at batch 64, plus the mean |log p_vLLM - log p_HF| of the sampled tokens
(the trainer's ``engine_mismatch``). Needs a CUDA GPU and vllm; nothing is downloaded.

    python benchmarks/vllm_rollout_speed.py   # writes benchmarks/results/vllm_rollout_speed.json

Not yet run by us (no GPU was available); no result of it is committed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from served_rollout_speed import prompts

from mmopsd.engines.colocated import VLLMEngine
from mmopsd.engines.hf import HFEngine
from mmopsd.policies import load_policy, packaged_model_path


def rate(engine, batch: list, max_new_tokens: int, reps: int) -> tuple[dict, list]:
    """Median tokens/s over ``reps`` sampled generations of ``batch``; the last outputs."""
    engine.generate(batch, max_new_tokens=max_new_tokens)  # warm-up
    times, tokens = [], []
    for _ in range(reps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = engine.generate(batch, max_new_tokens=max_new_tokens)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        tokens.append(sum(len(g.ids) for g in out))
    seconds = statistics.median(times)
    row = {
        "seconds": round(seconds, 3),
        "tokens_per_s": round(statistics.median(tokens) / seconds, 1),
    }
    return row, out


@torch.no_grad()
def mismatch(policy, batch: list, generations: list) -> float:
    """Mean |log p_engine - log p_trainer| over the sampled tokens that have engine log-probs."""
    gaps = []
    for prompt, gen in zip(batch, generations):
        if not gen.logprobs:
            continue
        scored = policy.score([prompt], [gen.ids])
        logits = scored.logits[0].float()
        trainer = logits.log_softmax(-1).gather(-1, scored.ids[0, :, None]).squeeze(-1)
        gaps.append((trainer - torch.tensor(gen.logprobs, device=trainer.device)).abs())
    return float(torch.cat(gaps).mean()) if gaps else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "vllm_rollout_speed.json"
    )
    args = ap.parse_args()
    policy = load_policy(args.model, dtype=args.dtype, device="cuda")
    batch = prompts(policy, args.batch)
    engine = VLLMEngine(str(packaged_model_path(args.model)), policy.eos_id, dtype=args.dtype)
    engine.sync(policy.model)
    results = []
    for name, eng in (("hf", HFEngine(policy)), ("vllm", engine)):
        row, out = rate(eng, batch, args.max_new_tokens, args.reps)
        row = {"engine": name, "batch": args.batch, **row}
        if name == "vllm":
            row["mismatch"] = round(mismatch(policy, batch, out), 5)
        print(row, flush=True)
        results.append(row)
    record = {
        "model": args.model,
        "dtype": args.dtype,
        "gpu": torch.cuda.get_device_name(),
        "max_new_tokens": args.max_new_tokens,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
