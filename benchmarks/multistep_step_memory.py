"""Memory and speed of a training step on the multi-step MiniWoB++ mixture.

Each case builds `mmopsd/configs/miniwob_multistep.yaml`'s run (sixteen tasks, up to 8 turns,
8 episodes a step) with one method and one setting of `model.activation_checkpointing`, in a
process of its own, and runs training steps with no evaluation. Before each step the process's
peak-RSS counter is reset (`/proc/self/clear_refs`), so a step's peak is its own. "Heap" is
this process's resident memory (the model, optimizer, activations); the browsers are
processes of their own and are not counted. A case whose process passes `--limit` GiB is
killed there and reported as over it (on this machine the kernel killed a plain opsd step at
22.9 GiB). Episodes per hour are training episodes per hour of wall time on this machine.

    python benchmarks/multistep_step_memory.py   # benchmarks/results/multistep_step_memory.{json,md}
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONFIG = ROOT / "mmopsd" / "configs" / "miniwob_multistep.yaml"
GIB = 2**30
# (method, activation checkpointing): the student plays opsd's episodes (invalid replies run
# to the turn cap: the longest sequences); the expert plays bc_expert's.
CASES = {
    "opsd": ("opsd", False),
    "opsd+checkpointing": ("opsd", True),
    "bc_expert+checkpointing": ("bc_expert", True),
}


def _status(field: str) -> int:
    """A /proc/self/status memory field, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


# A step's phases (mmopsd.training.step): playing the episodes, planning the turns (with the
# teacher's contexts and, for some methods, its divergences), the backward passes.
PHASES = {"_rollouts": "rollouts", "_plan": "plan", "_update": "update"}


def _peak_of(fn: Any, name: str, peaks: dict[str, float]) -> Any:
    """``fn`` with the process's peak resident memory during each call kept in ``peaks``."""

    def measured(*args: Any, **kwargs: Any) -> Any:
        Path("/proc/self/clear_refs").write_text("5")
        try:
            return fn(*args, **kwargs)
        finally:
            peaks[name] = max(peaks.get(name, 0.0), _status("VmHWM"))

    return measured


def _case(name: str, steps: int, out: str, queue: mp.Queue) -> None:
    import torch
    from mmopsd.envs.processes import owned_by_run

    import mmopsd.training.step as step_module
    from mmopsd.config import apply_overrides, from_dict, load_data
    from mmopsd.training.loop import build, train_step

    torch.set_num_threads(2)
    method, checkpointing = CASES[name]
    data = apply_overrides(
        load_data(CONFIG),
        [
            f"method.name={method}",
            f"model.activation_checkpointing={str(checkpointing).lower()}",
            f"run.out_dir={out}",
        ],
    )
    config = from_dict(data)
    phases: dict[str, float] = {}
    for phase in PHASES:
        setattr(step_module, phase, _peak_of(getattr(step_module, phase), PHASES[phase], phases))
    with owned_by_run():
        c = build(config)
        try:
            for step in range(1, steps + 1):
                start_rss = _status("VmRSS")
                Path("/proc/self/clear_refs").write_text("5")  # reset the peak counter
                began = time.perf_counter()
                phases.clear()
                record = train_step(step, c, config)
                queue.put(
                    {
                        "step": step,
                        "phase_peak_gib": {k: round(v / GIB, 2) for k, v in phases.items()},
                        "seconds": round(time.perf_counter() - began, 1),
                        "peak_gib": round(max([*phases.values(), _status("VmHWM")]) / GIB, 2),
                        "start_gib": round(start_rss / GIB, 2),
                        "turns": record["distilled_turns"],
                        "mean_turns": record["mean_turns"],
                        "response_tokens": record["response_tokens"],
                    }
                )
        finally:
            c.envs.close()


def measure(name: str, steps: int, limit_gib: float) -> dict[str, Any]:
    """One case in a fresh process, watched from here: a case whose process passes
    ``limit_gib`` is killed with every process it started (a process deep in a backward pass
    cannot stop itself in time) and reported as over it."""
    import tempfile

    import psutil

    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    row: dict[str, Any] = {"case": name, "steps": []}
    with tempfile.TemporaryDirectory() as out:
        proc = ctx.Process(target=_case, args=(name, steps, out, queue))
        proc.start()
        child = psutil.Process(proc.pid)
        try:
            while proc.is_alive():
                try:
                    if child.memory_info().rss > limit_gib * GIB:
                        for p in [*child.children(recursive=True), child]:
                            p.kill()
                        row["over_gib"] = limit_gib
                except psutil.NoSuchProcess:
                    pass
                proc.join(0.05)
        finally:  # stopped from outside: the case ends its browsers and goes too
            if proc.is_alive():
                proc.terminate()
                proc.join()
        while not queue.empty():
            row["steps"].append(queue.get())
    if proc.exitcode and "over_gib" not in row:
        row["error"] = f"process ended with code {proc.exitcode}"
    return row


def summary(row: dict[str, Any], batch: int) -> dict[str, Any]:
    """A case's peak over its steps and its training episodes per hour (the first step, which
    starts the browsers, left out of the speed when there are more)."""
    steps = row.get("steps", [])
    if "over_gib" in row or not steps:
        return row
    timed = steps[1:] or steps
    seconds = statistics.mean(s["seconds"] for s in timed)
    return {
        **row,
        "peak_gib": max(s["peak_gib"] for s in steps),
        "seconds_per_step": round(seconds, 1),
        "episodes_per_hour": round(batch * 3600 / seconds, 1),
    }


def table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The markdown results."""
    lines = [
        "# A training step on the multi-step MiniWoB++ mixture: memory and speed",
        "",
        f"`python benchmarks/multistep_step_memory.py` on {meta['machine']}: "
        f"`mmopsd/configs/miniwob_multistep.yaml` (SmolLM2-135M, 8 episodes a step, up to 8 "
        f"turns, the config's seed 0), steps per case: {meta['steps']}, each case in its own "
        "process, no "
        "evaluation. Peak: the step's highest resident memory of the training process "
        "(browsers are processes of their own). Episodes per hour: training episodes per "
        "hour of wall time on this machine (the first step, which starts the browsers, left "
        "out where a case ran more).",
        "",
        "| case | peak heap per step (GiB) | seconds per step | training episodes per hour "
        "| turns trained per step |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['error']} | | | |")
            continue
        if "over_gib" in r:
            lines.append(f"| {r['case']} | over {r['over_gib']:g} (stopped) | | | |")
            continue
        turns = "/".join(str(s["turns"]) for s in r["steps"])
        lines.append(
            f"| {r['case']} | {r['peak_gib']:.2f} | {r['seconds_per_step']:.0f} | "
            f"{r['episodes_per_hour']:.0f} | {turns} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--steps", type=int, default=3, help="training steps per case")
    parser.add_argument("--limit", type=float, default=16.0, help="GiB a case may reach")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # through measure's cleanup
    import yaml

    batch = yaml.safe_load(CONFIG.read_text())["optimizer"]["batch_size"]
    rows = []
    for name in args.cases.split(","):
        print(f"== {name}", flush=True)
        rows.append(summary(measure(name, args.steps, args.limit), batch))
        print(json.dumps(rows[-1]), flush=True)
    meta = {
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()})",
        "steps": args.steps,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "multistep_step_memory.json").write_text(
        json.dumps({"meta": meta, "cases": rows}, indent=1) + "\n"
    )
    (RESULTS / "multistep_step_memory.md").write_text(table(rows, meta))
    print(table(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
