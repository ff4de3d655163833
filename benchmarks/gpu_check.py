"""The GPU check's measurements (run by ``gpu_check.sh``): one JSON with

- a bf16 training step (frozen teacher + student, forward KL, AdamW) of a model shaped like
  SmolLM2-135M built from config with random weights, and of a tiny Qwen2-VL;
- Hugging Face generation tokens/s at batch 1, 16 and 64;
- the distillation / SFT step-time ratio;
- one distillation step through ``ddp`` and through ``fsdp`` (FSDP2) over NCCL, one process.

``--dry`` runs the same code on the CPU with tiny sizes and gloo in seconds: what CI runs so
that the script cannot rot between GPU machines.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

import mmopsd.losses as L
from mmopsd.parallel import Parallel
from mmopsd.policies.text import TextPolicy
from mmopsd.testing import tiny_tokenizer, tiny_vl_policy
from mmopsd.training.teachers import build_teacher
from mmopsd.types import Encoded, user

SMOLLM2 = dict(  # SmolLM2-135M's shape
    hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
    num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True,
)  # fmt: skip
TINY = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True,
)  # fmt: skip


class OneProcess(Parallel):
    """A data-parallel place that wraps the student even alone, so that one process
    exercises DDP or FSDP2 and their collectives (``Parallel`` skips them for one rank)."""

    @property
    def active(self) -> bool:  # type: ignore[override]
        return True

    def prepare(self, policy: TextPolicy) -> None:
        """Wrap the student as the trainer does (DDP wrapper, or FSDP2 shards in place)."""
        policy.forward_model = self.wrap(policy.model)


def student(shape: dict, device: str, dtype: torch.dtype) -> TextPolicy:
    """A random model of ``shape`` with the tiny tokenizer (ids beyond it are valid)."""
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(**shape, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)  # fmt: skip
    return TextPolicy(LlamaForCausalLM(config).to(device, dtype), tok)


def batch(vocab: int, n: int, prompt: int, response: int, hint: int):
    """Student prompts, teacher prompts (the same plus ``hint`` privileged tokens), responses."""
    ids = lambda k: torch.randint(100, vocab, (k,)).tolist()  # noqa: E731
    students = [Encoded(ids(prompt)) for _ in range(n)]
    teachers = [Encoded(s.ids + ids(hint)) for s in students]
    return students, teachers, [ids(response) for _ in range(n)]


def timed(fn: Callable[[], Any], reps: int) -> float:
    """Median seconds of ``fn`` after one warm-up (synchronised on the GPU)."""
    fn()
    times = []
    for _ in range(reps):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def steps(
    policy: TextPolicy, sizes: dict, wrap: Callable[[TextPolicy], None] | None = None
) -> dict[str, Callable[[], float]]:
    """A distillation step and an SFT step on the same tokens; each returns its loss.
    ``wrap`` prepares the student for data parallelism after the teacher is built and before
    the optimizer, in the trainer's order."""
    teacher = build_teacher("frozen", policy)
    if wrap is not None:
        wrap(policy)
    vocab = policy.model.config.vocab_size
    s_prompts, t_prompts, responses = batch(vocab, **sizes)
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=1e-5)
    loss_fn = L.get("forward_kl")
    policy.model.train()

    def distill() -> float:
        t = teacher.score(t_prompts, responses)
        s = policy.score(s_prompts, responses)
        loss = loss_fn(s.logits, t.logits, s.mask)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    def sft() -> float:
        s = policy.score(s_prompts, responses)
        loss = F.cross_entropy(s.logits.flatten(0, 1).float(), s.ids.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return {"distill": distill, "sft": sft}


def training_step(shape: dict, sizes: dict, device: str, dtype: torch.dtype, reps: int) -> dict:
    """A bf16 distillation step: its loss, whether it is finite, its time; and the
    distillation / SFT time ratio on the same tokens."""
    policy = student(shape, device, dtype)
    fns = steps(policy, sizes)
    loss = fns["distill"]()
    distill, sft = timed(fns["distill"], reps), timed(fns["sft"], reps)
    return {"loss": loss, "finite": bool(torch.isfinite(torch.tensor(loss))),
            "distill_seconds": distill, "sft_seconds": sft, "distill_sft_ratio": distill / sft,
            "parameters": sum(p.numel() for p in policy.model.parameters())}  # fmt: skip


def vision_step(device: str, dtype: torch.dtype) -> dict:
    """A tiny Qwen2-VL's distillation step with an image, in ``dtype``."""
    from PIL import Image

    policy = tiny_vl_policy("qwen2_vl")
    policy.model.to(device, dtype)
    image = Image.new("RGB", (64, 64), "red")
    prompt = policy.encode([user("What colour is it?", image)])
    hinted = policy.encode([user("What colour is it? Hint: red.", image)])
    response = [10, 11, policy.eos_id]
    with torch.no_grad():
        t = policy.score([hinted], [response])
    policy.model.train()
    s = policy.score([prompt], [response])
    loss = L.get("forward_kl")(s.logits, t.logits, s.mask)
    loss.backward()
    grads = [p.grad for p in policy.model.parameters() if p.grad is not None]
    return {"loss": loss.item(), "finite": all(bool(torch.isfinite(g).all()) for g in grads)}


def generation(shape: dict, device: str, dtype: torch.dtype, batches: list[int], new: int) -> dict:
    """Sampled tokens per second at each batch size (random weights: few stop early)."""
    policy = student(shape, device, dtype)
    out = {}
    for b in batches:
        prompts = [policy.encode([user(f"task {i}: which door?")]) for i in range(b)]
        policy.generate(prompts, max_new_tokens=4)  # warm-up
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        ids = policy.generate(prompts, max_new_tokens=new)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        tokens = sum(len(x) for x in ids)
        out[str(b)] = {"tokens": tokens, "seconds": seconds, "tokens_per_second": tokens / seconds}
    return out


def parallel_steps(shape: dict, sizes: dict, device: str, dtype: torch.dtype) -> dict:
    """One distillation step through DDP and through FSDP2, one process over NCCL (gloo on
    the CPU): the wrapping, the gradient synchronisation and the optimizer step."""
    import torch.distributed as dist

    from mmopsd.engines.local_server import free_port

    backend = "nccl" if device == "cuda" else "gloo"
    out = {}
    for mode in ("ddp", "fsdp"):
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{free_port()}",
                                rank=0, world_size=1)  # fmt: skip
        try:
            policy = student(shape, device, dtype)
            par = OneProcess(mode, 0, 1)
            fns = steps(policy, sizes, par.prepare)
            start = time.perf_counter()
            loss = fns["distill"]()
            out[mode] = {"loss": loss, "seconds": time.perf_counter() - start,
                         "backend": dist.get_backend()}  # fmt: skip
        finally:
            dist.destroy_process_group()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry", action="store_true", help="CPU, tiny sizes, gloo (seconds)")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "gpu_check.json"
    )
    ap.add_argument("--tests", type=json.loads, default=None, help="pytest's counts (JSON)")
    args = ap.parse_args()
    if not args.dry and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run with --dry for the CPU rehearsal")
    device, dtype = ("cpu", torch.float32) if args.dry else ("cuda", torch.bfloat16)
    shape = TINY if args.dry else SMOLLM2
    sizes = dict(n=2, prompt=16, response=8, hint=4) if args.dry else dict(n=8, prompt=192, response=64, hint=16)  # fmt: skip
    result = {
        "meta": {
            "dry": args.dry,
            "device": torch.cuda.get_device_name() if not args.dry else "cpu",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "dtype": str(dtype),
        },
        "gpu_tests": args.tests,
        "training_step": training_step(shape, sizes, device, dtype, reps=2 if args.dry else 5),
        "vision_step": vision_step(device, dtype),
        "generation": generation(
            shape, device, dtype, [1, 2] if args.dry else [1, 16, 64], new=4 if args.dry else 64
        ),
        "parallel": parallel_steps(shape, sizes, device, dtype),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
