"""Float32 against mixed precision (``dtype: bf16-mixed``) for SmolLM2-135M on this CPU.

Times, alternating the two settings so that a drift of the machine slows both alike, the
median of ``--repeats`` runs of:

- a forward and backward pass of a training micro-batch (8 rows of 242 tokens);
- greedy generation of 16 tokens after 8 prompts of about 226 tokens (a MiniWoB++ page) and
  after 8 prompts of about 1,500 tokens (a long page or a long history).

It also reports how far mixed precision moves the numbers: the largest difference of
log-probabilities on the scored batch, and the share of greedy tokens that agree.

    python benchmarks/mixed_precision.py     # results/mixed_precision.json

Do not run anything else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from mmopsd.policies.loading import load_policy
from mmopsd.policies.precision import cpu_bf16_units
from mmopsd.types import Encoded

RESULTS = Path(__file__).parent / "results"


def _prompts(length: int, rows: int = 8, seed: int = 0) -> list[Encoded]:
    g = torch.Generator().manual_seed(seed + length)
    return [
        Encoded(ids=torch.randint(100, 40000, (length + i,), generator=g).tolist())
        for i in range(rows)
    ]


def _split(batch: list[Encoded]) -> tuple[list[Encoded], list[list[int]]]:
    """Each row as a prompt of 200 ids and a response of the rest."""
    return [Encoded(ids=p.ids[:200]) for p in batch], [p.ids[200:242] for p in batch]


def _train_pass(policy: Any, batch: list[Encoded]) -> float:
    """A student's forward and backward pass through :meth:`Policy.score`."""
    prompts, responses = _split(batch)
    began = time.perf_counter()
    logits = policy.score(prompts, responses).logits
    logits.float().logsumexp(-1).mean().backward()
    seconds = time.perf_counter() - began
    policy.model.zero_grad(set_to_none=True)
    return seconds


def _generate(policy: Any, prompts: list[Encoded]) -> tuple[float, list[list[int]]]:
    began = time.perf_counter()
    out = policy.sample(prompts, max_new_tokens=16, greedy=True)
    return time.perf_counter() - began, [g.ids for g in out]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    policies = {"float32": load_policy("smollm2-135m", dtype="float32"),
                "bf16-mixed": load_policy("smollm2-135m", dtype="bf16-mixed")}  # fmt: skip
    batch, short, long = _prompts(242), _prompts(226), _prompts(1500)
    times: dict[str, dict[str, list[float]]] = {k: {} for k in policies}
    outputs: dict[str, list[list[int]]] = {}
    for rep in range(args.repeats):
        for name, policy in policies.items():
            row = times[name]
            row.setdefault("forward_backward_8x242", []).append(_train_pass(policy, batch))
            for label, prompts in (("generate_8x226", short), ("generate_8x1500", long)):
                seconds, ids = _generate(policy, prompts)
                row.setdefault(label, []).append(seconds)
                outputs[f"{name}:{label}"] = [t for r in ids for t in r]
            print(f"[{rep + 1}/{args.repeats}] {name}: "
                  + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in row.items()), flush=True)  # fmt: skip
    medians = {
        n: {k: round(statistics.median(v), 2) for k, v in t.items()} for n, t in times.items()
    }
    record = {
        "machine": platform.machine(),
        "cpu_bf16_units": cpu_bf16_units(),
        "threads": torch.get_num_threads(),
        "median_seconds": medians,
        "speed_up": {
            k: round(medians["float32"][k] / medians["bf16-mixed"][k], 2)
            for k in medians["float32"]
        },
        "runs": times,
        "max_logprob_difference": _logprob_gap(policies, batch),
        "greedy_token_agreement": {
            label: _agreement(outputs[f"float32:{label}"], outputs[f"bf16-mixed:{label}"])
            for label in ("generate_8x226", "generate_8x1500")
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mixed_precision.json").write_text(json.dumps(record, indent=2))
    print(json.dumps({k: record[k] for k in record if k != "runs"}, indent=2))
    return 0


def _logprob_gap(policies: dict[str, Any], batch: list[Encoded]) -> float:
    """The largest |log p_fp32 - log p_mixed| over the scored batch's vocabulary rows."""
    prompts, responses = _split(batch)
    with torch.no_grad():
        logps = [
            policy.score(prompts, responses).logits.float().log_softmax(-1)
            for policy in policies.values()
        ]
    return round((logps[0] - logps[1]).abs().max().item(), 4)


def _agreement(a: list[int], b: list[int]) -> float:
    same = sum(x == y for x, y in zip(a, b))
    return round(same / max(1, max(len(a), len(b))), 3)


if __name__ == "__main__":
    raise SystemExit(main())
