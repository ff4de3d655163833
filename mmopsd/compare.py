"""``mmopsd compare``: several methods (presets on one config, or several configs) over
several seeds, on the same evaluation episodes and the same budget of environment episodes.

Runs go one after another, each in ``out/<arm>/seed-<s>``; every run resumes from its own
checkpoints and a finished run is not redone (a run whose metrics hold its final summary
counts as finished, checkpoints or not), so a killed comparison continues where it stopped.
The runs share one evaluation cache, ``out/eval_cache.json``: the initial model and a frozen
teacher are evaluated once for the whole comparison, not once per run.
The result is ``out/compare.md`` (per arm held-out, out-of-distribution and retained success
pooled over the seeds' evaluation episodes with 95% Wilson intervals, each seed's value beside it,
and each run's minutes; a mixture's trained tasks one by one; per pair of arms the probability
that one beats the other),
``out/compare.png`` (held-out success against environment episodes consumed, one line per
arm) and ``out/compare.json``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmopsd.config import from_dict, migrate
from mmopsd.errors import ConfigError
from mmopsd.evaluation.report import compare_table, plot_compare
from mmopsd.evaluation.stats import pooled_difference, pooled_rate, probability_of_improvement
from mmopsd.training.metrics import MetricsLog

TIMED = ("train", "eval")  # the records whose seconds make up a run's wall time


@dataclass(frozen=True)
class Arm:
    """One compared configuration: a name and its config fields (seed and out_dir apart)."""

    name: str
    data: dict[str, Any]


def arms_for_methods(base: dict[str, Any], methods: list[str]) -> list[Arm]:
    """One arm per method on the ``base`` config; each method's own fields replace the base
    config's (``sft_teacher`` trains with ``loss: sft`` whatever loss the base names; ``opsd``
    turns a base's RL term off)."""
    from mmopsd.methods import PRESETS

    if not methods:
        raise ConfigError("--methods needs at least one method, e.g. opsd,sft_teacher,grpo")
    if len(set(methods)) != len(methods):
        raise ConfigError(f"--methods lists a method twice: {methods}")
    unknown = [m for m in methods if m not in PRESETS]
    if unknown:
        raise ConfigError(f"unknown method {unknown[0]!r}; methods: {', '.join(PRESETS)}")
    return [Arm(m, _with_method(base, m)) for m in methods]


def _with_method(data: dict[str, Any], method: str, keep: Collection[str] = ()) -> dict:
    """``data`` with ``method`` as its method, without the fields that method fixes (but
    those whose paths are in ``keep``)."""
    from mmopsd.methods import PRESETS

    out = copy.deepcopy(data)
    for key in PRESETS[method]:
        path = key if "." in key else f"method.{key}"
        where, name = path.split(".")
        if path not in keep and isinstance(out.get(where), dict):
            out[where].pop(name, None)
    out.setdefault("method", {})["name"] = method
    return out


def arm_of(base: dict[str, Any], spec: list[str]) -> Arm:
    """The arm ``spec`` names: ``[NAME, KEY=VALUE, ...]``, the ``base`` config with these
    overrides set (``method.teacher_share=0.5``, ``method.loss_kwargs.top_k=20``). A
    ``method.name=`` among them picks a method whose own fields replace the base's, as in
    :func:`arms_for_methods`."""
    from mmopsd.config import apply_overrides
    from mmopsd.methods import PRESETS

    if not spec or "=" in spec[0]:
        raise ConfigError(
            f"--arm needs a name first, then KEY=VALUE overrides, e.g. --arm opsd-mixed "
            f"method.name=gkd method.teacher_share=0.5; got {' '.join(spec)!r}"
        )
    name, overrides = spec[0], spec[1:]
    data = apply_overrides(copy.deepcopy(base), overrides)
    method = data.get("method", {}).get("name")
    if method in PRESETS and method != base.get("method", {}).get("name"):
        given = {".".join(item.partition("=")[0].strip().split(".")[:2]) for item in overrides}
        data = _with_method(data, method, keep=given)
    return Arm(name, data)


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
        (
            arm,
            seed,
            from_dict(_run_data(arm, seed, out)),
        )
        for arm in arms
        for seed in seeds
    ]
    budgets = {(c.optimizer.batch_size, c.optimizer.steps) for _, _, c in runs}
    if len(budgets) != 1:
        raise ConfigError(
            "the compared runs consume different numbers of environment episodes "
            f"(optimizer.batch_size, optimizer.steps): {sorted(budgets)}; give them the same budget"
        )
    for n, (arm, seed, config) in enumerate(runs, 1):
        where = f"[{n}/{len(runs)}] {arm.name}, seed {seed}"
        if has_final_summary(Path(config.run.out_dir), config.optimizer.steps):
            if progress:
                print(
                    f"{where}: finished ({config.run.out_dir} holds its final summary)", flush=True
                )
            continue
        if progress:
            print(f"{where} -> {config.run.out_dir}", flush=True)
        train(config, progress=progress)
    summary = summarise(arms, seeds, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "compare.md").write_text(compare_table(summary))
    plot_compare(summary, out / "compare.png")
    return summary


def _run_data(arm: Arm, seed: int, out: Path) -> dict[str, Any]:
    """The config of ``arm``'s run on ``seed``: its own directory and seed, the comparison's
    shared evaluation cache (unless the arm names another)."""
    data = copy.deepcopy(arm.data)
    run_dir = _run_dir(out, arm, seed)
    data.setdefault("evaluation", {}).setdefault("cache", _shared_cache(out, run_dir))
    data.setdefault("run", {}).update(seed=seed, out_dir=str(run_dir))
    return data


def has_final_summary(run: Path, steps: int) -> bool:
    """Whether a run directory's metrics end the run: a summary at its last step and its
    config. Such a run counts as finished without its checkpoints, so a comparison whose
    finished runs were kept as metrics alone (a few kB each, not gigabytes of weights)
    continues with the runs it lacks."""
    log = run / "metrics.jsonl"
    if not (log.is_file() and (run / "config.yaml").is_file()):
        return False
    records = MetricsLog(log).read()
    return any(r.get("kind") == "summary" and r.get("step") == steps for r in records)


def _run_dir(out: Path, arm: Arm, seed: int) -> Path:
    return out / arm.name / f"seed-{seed}"


def _shared_cache(out: Path, run: Path) -> str:
    """The runs' one evaluation cache, ``out/eval_cache.json``, as a run's ``eval_cache``:
    relative to the run's directory, so that configs and metrics name no machine's path."""
    return os.path.relpath(out / "eval_cache.json", run)


def summarise(arms: list[Arm], seeds: list[int], out: Path) -> dict[str, Any]:
    """Per arm each seed's numbers, then the pooled numbers and the pairwise probabilities
    of improvement (:func:`finalise`)."""
    result: dict[str, Any] = {"seeds": seeds, "arms": {}}
    for arm in arms:
        runs = [_run_numbers(_run_dir(out, arm, s)) for s in seeds]
        result["arms"][arm.name] = {"runs": runs, "episodes_per_step": runs[0]["episodes_per_step"]}
    return finalise(result)


def finalise(summary: dict[str, Any]) -> dict[str, Any]:
    """Fill in, from the runs' numbers alone, each arm's ``final`` (every quantity pooled over
    seeds with an interval inside its range) and ``improvement`` (P(row > column) on
    held-out success with its bootstrap interval). A summary written by an earlier version
    is re-rendered this way where its runs hold episode counts."""
    for arm in summary["arms"].values():
        arm["final"] = _pooled(arm["runs"])
    names = list(summary["arms"])
    summary["improvement"] = {
        x: {y: _improvement(summary["arms"][x], summary["arms"][y]) for y in names if y != x}
        for x in names
    }
    return summary


def _pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every quantity of the runs pooled over seeds; a retained task's change as the
    difference of its pooled rates after and before training."""
    keys = sorted({k for r in runs for k in r["final"]})
    out: dict[str, Any] = {}
    for key in (k for k in keys if not k.startswith("retain change ")):
        have = [r for r in runs if key in r["final"]]
        out[key] = pooled_rate([r["final"][key] for r in have], [r["episodes"][key] for r in have])
    for key in (k for k in keys if k.startswith("retain change ")):
        task = key.removeprefix("retain change ")
        have = [r for r in runs if key in r["final"]]
        after = [r["final"][f"retain {task}"] for r in have]
        before = [a - r["final"][key] for a, r in zip(after, have)]
        n = [r["episodes"][f"retain {task}"] for r in have]
        out[key] = pooled_difference(pooled_rate(after, n), pooled_rate(before, n))
    return out


def _improvement(x: dict[str, Any], y: dict[str, Any]) -> dict[str, float]:
    return probability_of_improvement(
        [r["final"]["held_out"] for r in x["runs"]],
        [r["final"]["held_out"] for r in y["runs"]],
        [r["episodes"]["held_out"] for r in x["runs"]],
        [r["episodes"]["held_out"] for r in y["runs"]],
    )


def _run_numbers(run: Path) -> dict[str, Any]:
    """Held-out success before and after (and per task of a mixture), OOD and retained
    success (with the episodes each rests on), the held-out curve and the run's minutes."""
    records = MetricsLog(run / "metrics.jsonl").read()
    evals = [r for r in records if r.get("kind") == "eval"]
    if not evals:
        raise ConfigError(f"{run} holds no evaluation; its run did not finish")
    config = from_dict(migrate(_yaml(run / "config.yaml")))  # a run from before the sections too
    first, last = evals[0], evals[-1]
    final = {"held_out": last["student_success"], "held_out_before": first["student_success"]}
    episodes = {
        "held_out": last["student"]["episodes"],
        "held_out_before": first["student"]["episodes"],
    }
    teacher = last.get("teacher") or first.get("teacher")
    if teacher is not None:
        final["teacher"], episodes["teacher"] = teacher["success"], teacher["episodes"]
    for name, res in last["student"].get("per_task", {}).items():  # a mixture's tasks
        final[f"task {name}"], episodes[f"task {name}"] = res["success"], int(res["episodes"])
    for name, res in last.get("ood", {}).items():
        final[f"ood {name}"], episodes[f"ood {name}"] = res["success"], res["episodes"]
    for name, res in last.get("retain", {}).items():
        final[f"retain {name}"], episodes[f"retain {name}"] = res["success"], res["episodes"]
        before = first.get("retain", {}).get(name, {}).get("success")
        if before is not None:
            final[f"retain change {name}"] = res["success"] - before
    return {
        "dir": str(run),
        "final": final,
        "episodes": episodes,
        "curve": [(r["step"], r["student_success"]) for r in evals],
        "episodes_per_step": config.optimizer.batch_size,
        "minutes": _minutes(records),
    }


def _minutes(records: list[dict[str, Any]]) -> float | None:
    """A run's wall time in minutes: its training steps and evaluations, each counted once
    (the last record of a step that a resumed run played again). None where the metrics
    predate timed evaluations."""
    last = {(r.get("kind"), r.get("step")): r for r in records if r.get("kind") in TIMED}
    if not last or any("seconds" not in r for r in last.values()):
        return None
    return sum(r["seconds"] for r in last.values()) / 60


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())
