"""Peak memory and time of the chunked full-vocabulary loss against the plain one.

Each measurement runs in its own process: inputs (student and teacher logits, bfloat16, as a
bf16 model produces them) are made first, the peak-RSS counter is reset, then the loss and its
backward run. "Peak" is the highest resident memory above the inputs. The plain path runs
under an address-space limit so that a run too big for the machine fails cleanly and is
reported as such.

    python benchmarks/chunked_loss_memory.py            # writes benchmarks/results/chunked_loss_memory.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

from mmopsd.losses.chunked import DEFAULT_CHUNK

V = 151_936
LIMIT_GIB = 21


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _inputs(n_tokens: int):
    import torch

    g = torch.Generator().manual_seed(0)
    s = torch.empty(1, n_tokens, V, dtype=torch.bfloat16)
    t = torch.empty(1, n_tokens, V, dtype=torch.bfloat16)
    for i in range(0, n_tokens, 256):  # no full-size float32 temporary
        s[0, i : i + 256] = torch.randn(min(256, n_tokens - i), V, generator=g) * 2
        t[0, i : i + 256] = torch.randn(min(256, n_tokens - i), V, generator=g) * 2
    return s, t


def _plain_blockwise(n_tokens: int, block: int, q: mp.Queue) -> None:
    """The plain loss's value on all tokens, as the mean of plain calls on equal row blocks
    (token_mean over equal blocks): a value check where one plain call does not fit."""
    import torch

    import mmopsd.losses as L

    torch.set_num_threads(2)
    s, t = _inputs(n_tokens)
    mask = torch.ones(1, block)
    with torch.no_grad():
        parts = [
            L.get("forward_kl")(
                s[:, i : i + block], t[:, i : i + block], mask, chunk_size=None
            ).item()
            for i in range(0, n_tokens, block)
        ]
    q.put({"ok": True, "value": sum(parts) / len(parts), "blocks": len(parts)})


def _measure(n_tokens: int, chunk: int | None, q: mp.Queue) -> None:
    import torch

    import mmopsd.losses as L

    torch.set_num_threads(2)
    if chunk is None:
        limit = LIMIT_GIB * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        s, t = _inputs(n_tokens)
        s.requires_grad_(True)
        mask = torch.ones(1, n_tokens)
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter
        base = _rss_kib("VmRSS")
        start = time.perf_counter()
        loss = L.get("forward_kl")(s, t, mask, chunk_size=chunk)
        loss.backward()
        seconds = time.perf_counter() - start
        peak = _rss_kib("VmHWM")
        q.put(
            {
                "ok": True,
                "value": loss.item(),
                "grad_sum": float(s.grad.float().abs().sum()),
                "peak_gib": (peak - base) / 2**20,
                "seconds": seconds,
            }
        )
    except (RuntimeError, MemoryError) as err:
        q.put({"ok": False, "error": str(err).splitlines()[0][:160]})


def run(n_tokens: int, chunk: int | None, target=_measure) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(n_tokens, chunk, q))
    p.start()
    p.join()
    if not q.empty():
        return q.get()
    return {"ok": False, "error": f"process died with exit code {p.exitcode} (out of memory)"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, nargs="+", default=[1024, 2048, 8192])
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "chunked_loss_memory.json"
    )
    args = ap.parse_args()
    rows = []
    for n in args.tokens:
        chunked = run(n, args.chunk)
        plain = run(n, None)
        row = {"B*T": n, "V": V, "chunked": chunked, "plain": plain}
        if chunked["ok"] and plain["ok"]:
            row["value_abs_diff"] = abs(chunked["value"] - plain["value"])
            row["peak_ratio_chunked_over_plain"] = chunked["peak_gib"] / plain["peak_gib"]
        elif chunked["ok"]:
            blockwise = run(n, 1024, target=_plain_blockwise)
            row["plain_value_blockwise"] = blockwise
            row["value_abs_diff"] = abs(chunked["value"] - blockwise["value"])
            row["peak_ratio_chunked_over_plain"] = (
                f"< {chunked['peak_gib'] / LIMIT_GIB:.3f} (plain exceeded {LIMIT_GIB} GiB)"
            )
        rows.append(row)
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": f"{platform.machine()}, {mp.cpu_count()} cores",
        "dtype": "bfloat16 logits, float32 math",
        "loss": "forward_kl, token_mean, forward+backward",
        "chunk_size": args.chunk,
        "plain_limit_gib": LIMIT_GIB,
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
