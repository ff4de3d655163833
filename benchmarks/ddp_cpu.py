"""Data-parallel training on CPU, for the record: 2 gloo processes (``ddp`` and ``fsdp``)
against 1 process on the same episodes, with the packaged SmolLM2-135M.

Rollouts are greedy (``temperature: 0``), so every run plays the same episodes; the script
reports the step time (median over steps, from ``metrics.jsonl``) and how far the 2-process
weights after the last step are from the 1-process weights (float32: the two runs sum the same
terms in another order). On a 2-core machine each process gets one core, so no speed-up is
expected here: the speed-up belongs to GPUs.

    python benchmarks/ddp_cpu.py   # writes benchmarks/results/ddp_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file

from mmopsd.engines.local_server import free_port


def run(out: Path, mode: str, procs: int, sets: list[str], demo: Path) -> dict:
    """Train once; the step seconds and the final checkpoint's weights."""
    args = ["-m", "mmopsd", "train", "--config", str(demo), "--quiet"]
    args += [
        x for kv in [*sets, f"run.out_dir={out}", f"run.parallel={mode}"] for x in ("--set", kv)
    ]
    if procs == 1:
        command = [sys.executable, *args]
    else:
        launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(procs)]
        launcher += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
        command = [sys.executable, *launcher, *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // procs))}
    subprocess.run(command, check=True, env=env)
    records = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    steps = [r["seconds"] for r in records if r["kind"] == "train"]
    last = max(int(p.name.split("-")[1]) for p in (out / "checkpoints").iterdir())
    weights = load_file(str(out / "checkpoints" / f"step-{last}" / "model.safetensors"))
    return {"seconds": steps, "weights": weights}


def difference(a: dict, b: dict) -> dict:
    """The largest absolute and relative weight differences."""
    abs_diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    rel = max(float(((a[k] - b[k]).abs() / b[k].abs().clamp_min(1e-6)).max()) for k in a)
    return {"max_abs": abs_diff, "max_rel": rel}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ddp_cpu.json")
    args = ap.parse_args()
    sets = [
        f"optimizer.steps={args.steps}", f"optimizer.batch_size={args.batch}", "optimizer.micro_batch_size=4",
        "rollout.temperature=0", "evaluation.every=0", "evaluation.episodes=2", "evaluation.teacher=false",
        f"run.save_every={args.steps}",
    ]  # fmt: skip
    rows = []
    config = resources.files("mmopsd.configs") / "keydoor_demo.yaml"
    with resources.as_file(config) as demo, tempfile.TemporaryDirectory() as tmp:
        one = run(Path(tmp) / "one", "none", 1, sets, demo)
        rows.append({"processes": 1, "parallel": "none", "step_seconds": one["seconds"]})
        for mode in ("ddp", "fsdp"):
            two = run(Path(tmp) / mode, mode, 2, sets, demo)
            rows.append({
                "processes": 2, "parallel": mode, "step_seconds": two["seconds"],
                "weights_vs_one_process": difference(two["weights"], one["weights"]),
            })  # fmt: skip
    for row in rows:
        row["median_step_seconds"] = round(statistics.median(row["step_seconds"]), 2)
        print(row)
    record = {
        "model": "smollm2-135m",
        "config": "keydoor_demo.yaml with " + ", ".join(sets),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
