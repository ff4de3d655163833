"""``mmopsd compare``: several methods (presets on one config, or several configs) over
several seeds, on the same evaluation episodes and the same budget of environment episodes.

Runs go one after another, each in ``out/<arm>/seed-<s>``; every run resumes from its own
checkpoints and a finished run is not redone, so a killed comparison continues where it
stopped. The result is ``out/compare.md`` (mean and 95% interval over seeds of held-out,
out-of-distribution and retained success), ``out/compare.png`` (held-out success against
environment episodes consumed, one line per arm) and ``out/compare.json``.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmopsd.config import from_dict
from mmopsd.errors import ConfigError
from mmopsd.evaluation.report import compare_table, plot_compare
from mmopsd.training.metrics import MetricsLog

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (1.96 beyond).
T95 = dict(enumerate((
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
), start=1))  # fmt: skip


@dataclass(frozen=True)
class Arm:
    """One compared configuration: a name and its config fields (seed and out_dir apart)."""

    name: str
    data: dict[str, Any]


def arms_for_methods(base: dict[str, Any], methods: list[str]) -> list[Arm]:
    """One arm per method preset on the ``base`` config fields; each preset's own fields
    replace the base config's (``sft_teacher`` trains with ``loss: sft`` whatever loss the
    base names; ``opsd`` turns a base's RL term off)."""
    from mmopsd.methods import PRESETS

    if not methods:
        raise ConfigError("--methods needs at least one method, e.g. opsd,sft_teacher,grpo")
    if len(set(methods)) != len(methods):
        raise ConfigError(f"--methods lists a method twice: {methods}")
    unknown = [m for m in methods if m not in PRESETS]
    if unknown:
        raise ConfigError(f"unknown method {unknown[0]!r}; methods: {', '.join(PRESETS)}")
    arms = []
    for m in methods:
        data = {k: v for k, v in base.items() if k not in PRESETS[m]}
        arms.append(Arm(m, {**data, "method": m}))
    return arms


def run_compare(
    arms: list[Arm], seeds: list[int], out: Path, *, progress: bool = True
) -> dict[str, Any]:
    """Train every arm on every seed (resuming), then write the table, curve and JSON.

    Every run's config is built and checked before the first one trains, so a mistake in
    any arm costs nothing. Returns the summary written to ``compare.json``.
    """
    from mmopsd.training.loop import train

    if not seeds:
        raise ConfigError("--seeds needs at least one seed")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ConfigError(f"two compared arms share a name: {names}")
    runs = [
        (arm, seed, from_dict({**arm.data, "seed": seed, "out_dir": str(_run_dir(out, arm, seed))}))
        for arm in arms
        for seed in seeds
    ]
    budgets = {(c.batch_size, c.steps) for _, _, c in runs}
    if len(budgets) != 1:
        raise ConfigError(
            "the compared runs consume different numbers of environment episodes "
            f"(batch_size, steps): {sorted(budgets)}; give them the same budget"
        )
    for n, (arm, seed, config) in enumerate(runs, 1):
        if progress:
            print(f"[{n}/{len(runs)}] {arm.name}, seed {seed} -> {config.out_dir}", flush=True)
        train(config, progress=progress)
    summary = summarise(arms, seeds, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "compare.md").write_text(compare_table(summary))
    plot_compare(summary, out / "compare.png")
    return summary


def _run_dir(out: Path, arm: Arm, seed: int) -> Path:
    return out / arm.name / f"seed-{seed}"


def summarise(arms: list[Arm], seeds: list[int], out: Path) -> dict[str, Any]:
    """Per arm: each seed's numbers and their mean and 95% interval over seeds."""
    result: dict[str, Any] = {"seeds": seeds, "arms": {}}
    for arm in arms:
        runs = [_run_numbers(_run_dir(out, arm, s)) for s in seeds]
        keys = sorted({k for r in runs for k in r["final"]})
        result["arms"][arm.name] = {
            "runs": runs,
            "final": {k: interval([r["final"][k] for r in runs if k in r["final"]]) for k in keys},
            "episodes_per_step": runs[0]["episodes_per_step"],
        }
    return result


def _run_numbers(run: Path) -> dict[str, Any]:
    """Held-out, OOD and retained success before and after, and the held-out curve."""
    records = MetricsLog(run / "metrics.jsonl").read()
    evals = [r for r in records if r.get("kind") == "eval"]
    if not evals:
        raise ConfigError(f"{run} holds no evaluation; its run did not finish")
    config = _yaml(run / "config.yaml")
    first, last = evals[0], evals[-1]
    final = {"held_out": last["student_success"], "held_out_before": first["student_success"]}
    if "teacher_success" in last or "teacher_success" in first:
        final["teacher"] = last.get("teacher_success", first.get("teacher_success"))
    for name, res in last.get("ood", {}).items():
        final[f"ood {name}"] = res["success"]
    for name, res in last.get("retain", {}).items():
        before = first.get("retain", {}).get(name, {}).get("success")
        final[f"retain {name}"] = res["success"]
        if before is not None:
            final[f"retain change {name}"] = res["success"] - before
    return {
        "dir": str(run),
        "final": final,
        "curve": [(r["step"], r["student_success"]) for r in evals],
        "episodes_per_step": config["batch_size"],
    }


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def interval(values: list[float]) -> dict[str, Any]:
    """Mean and two-sided 95% Student-t interval over seeds (none for one seed)."""
    n = len(values)
    mean = sum(values) / n if n else math.nan
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    half = T95.get(n - 1, 1.96) * statistics.stdev(values) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}
