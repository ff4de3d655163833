"""Time of one distillation update against one plain SFT step on the same tokens and model.

Distillation update = student forward+backward on (prompt, response) + teacher forward (no
grad) on (teacher prompt, the same response) + forward-KL loss. SFT step = forward+backward
with cross-entropy on the same student (prompt, response). Both compute logits only at the
response positions (``logits_to_keep``), as a good SFT implementation does. The floor of the
ratio is about 4/3: a teacher forward costs about a third of a forward+backward.

    python benchmarks/distill_step_time.py   # SmolLM2-135M, writes benchmarks/results/distill_step_time.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import mmopsd.losses as L
from mmopsd.allocator import tune_cpu_allocator
from mmopsd.policies import load_policy
from mmopsd.training.teachers import build_teacher
from mmopsd.types import Encoded


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--prompt", type=int, default=192)
    ap.add_argument("--response", type=int, default=64)
    ap.add_argument(
        "--hint", type=int, default=16, help="extra privileged tokens in the teacher prompt"
    )
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--no-tuning", action="store_true", help="leave glibc's allocator alone")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "distill_step_time.json"
    )
    args = ap.parse_args()
    torch.manual_seed(0)
    tuned = tune_cpu_allocator() if not args.no_tuning else False
    policy = load_policy(args.model, dtype="float32")
    teacher = build_teacher("frozen", policy)
    vocab = policy.model.config.vocab_size
    ids = lambda n: torch.randint(100, vocab, (n,)).tolist()  # noqa: E731
    students = [Encoded(ids(args.prompt)) for _ in range(args.batch)]
    teachers = [Encoded(s.ids + ids(args.hint)) for s in students]
    responses = [ids(args.response) for _ in range(args.batch)]
    loss_fn = L.get("forward_kl")
    policy.model.train()

    def distill_step() -> None:
        t = teacher.score(teachers, responses)  # teacher first, as mmopsd.training.distill does
        s = policy.score(students, responses)
        loss_fn(s.logits, t.logits, s.mask).backward()
        policy.model.zero_grad(set_to_none=True)

    def sft_step() -> None:
        s = policy.score(students, responses)
        F.cross_entropy(s.logits.flatten(0, 1), s.ids.flatten()).backward()
        policy.model.zero_grad(set_to_none=True)

    timings: dict[str, list[float]] = {"distill": [], "sft": []}
    for fn in (sft_step, distill_step):
        fn()  # warm-up
    for _ in range(args.reps):  # interleaved, so drift hits both alike
        for name, fn in (("sft", sft_step), ("distill", distill_step)):
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
    distill, sft = statistics.median(timings["distill"]), statistics.median(timings["sft"])
    result = {
        "meta": {
            "model": args.model,
            "device": str(policy.device),
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "batch": args.batch,
            "prompt_tokens": args.prompt,
            "response_tokens": args.response,
            "teacher_extra_tokens": args.hint,
            "allocator_tuned": tuned,
            "reps": args.reps,
        },
        "distill_seconds_median": distill,
        "sft_seconds_median": sft,
        "ratio": distill / sft,
        "all": timings,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "all"}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
