"""Where a self-distillation run's time goes, per training step and per evaluation.

Runs a short real training run (SmolLM2-135M on CPU) for each case and splits its wall time
into generation, environment steps (browser included; environment creation counts here),
providers (building the teacher's contexts), teacher scoring, student forward, student
backward, optimizer, and what is left (tokenizing, the loss, bookkeeping). Time inside an
evaluation is reported apart from the training steps. Each second is counted once, under the
innermost category running. It also reports tokens per episode and prompt lengths.

    python benchmarks/step_profile.py --label before   # writes results/step_profile_before.json
    python benchmarks/step_profile.py --label after --cases click-button

Cases: ``keydoor`` (the demo's setup, one turn), ``click-button`` (MiniWoB++ in Chromium,
hint provider) and ``babyai-gotolocal`` (multi-turn, the bot's next action as privileged
information).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from unittest import mock

import torch

RESULTS = Path(__file__).parent / "results"


def recipe_fields(name: str) -> dict[str, Any]:
    """A packaged config's sections but those the profile sets (its budget, evaluations
    apart from the held-out one, its output)."""
    from mmopsd.config import load_data

    with resources.as_file(resources.files("mmopsd.configs") / name) as path:
        data = load_data(path)
    data.pop("run", None)
    data["evaluation"] = {"episodes": 2}
    data["optimizer"].pop("steps", None)
    return data


CASES: dict[str, dict[str, Any]] = {
    "keydoor": {
        "tasks": [
            {
                "env": "mmopsd/KeyDoor-v0",
                "env_kwargs": {"n_doors": 2, "n_rooms": 1},
                "provider": "hint",
                "provider_kwargs": {"template": " Hint: {hint}"},
            }
        ],
        "rollout": {"max_new_tokens": 4, "max_turns": 1},
        "optimizer": {"batch_size": 16, "micro_batch_size": 16},
        "evaluation": {"episodes": 32},
    },
    "click-button": {
        "tasks": [{"env": "mmopsd/MiniWoB-click-button-v0", "provider": "hint"}],
        "rollout": {"max_new_tokens": 16, "max_turns": 1},
        "optimizer": {"batch_size": 8, "micro_batch_size": 8},
        "evaluation": {"episodes": 16},
    },
    # mmopsd/configs/miniwob_opsd.yaml's training (its eight tasks), with small evaluations
    "miniwob-mixture": recipe_fields("miniwob_opsd.yaml"),
    "babyai-gotolocal": {
        "tasks": [
            {
                "env": "mmopsd/BabyAI-GoToLocal-v0",
                "provider": "reference",
                "provider_kwargs": {"kind": "next_action"},
                "history": 2,
            }
        ],
        "rollout": {"max_new_tokens": 4, "max_turns": 8},
        "optimizer": {"batch_size": 4, "micro_batch_size": 4},
        "evaluation": {"episodes": 8},
    },
}
CATEGORIES = (
    "generation",
    "environment",
    "providers",
    "teacher scoring",
    "student forward",
    "student backward",
    "optimizer",
    "other",
)


class Clock:
    """Exclusive time per (phase, category): a category's time stops while a nested one runs."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.stack: list[str] = []
        self.phase = "train"
        self.mark = time.perf_counter()
        self.rollouts: dict[str, list[Any]] = defaultdict(list)

    def _switch(self) -> None:
        now = time.perf_counter()
        top = self.stack[-1] if self.stack else "other"
        self.seconds[(self.phase, top)] += now - self.mark
        self.mark = now

    @contextmanager
    def inside(self, category: str) -> Iterator[None]:
        """Count the time of the block under ``category``."""
        self._switch()
        self.stack.append(category)
        try:
            yield
        finally:
            self._switch()
            self.stack.pop()

    @contextmanager
    def during(self, phase: str) -> Iterator[None]:
        """Count everything in the block under ``phase`` (train or eval)."""
        self._switch()
        before, self.phase = self.phase, phase
        try:
            yield
        finally:
            self._switch()
            self.phase = before

    def wrap(self, fn: Callable, category: str | Callable[..., str]) -> Callable:
        """``fn`` with its time counted under ``category`` (or ``category(*args)``)."""

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            name = category(*args, **kwargs) if callable(category) else category
            with self.inside(name):
                return fn(*args, **kwargs)

        return timed


def _timed_envs(clock: Clock, make: Callable) -> Callable:
    """``make_envs`` whose environments count reset, step and close as environment time."""

    def made(*args: Any, **kwargs: Any) -> list:
        with clock.inside("environment"):
            envs = make(*args, **kwargs)
        for env in envs:
            for name in ("reset", "step", "close"):
                setattr(env, name, clock.wrap(getattr(env, name), "environment"))
        return envs

    return made


def _recorded(clock: Clock, fn: Callable) -> Callable:
    """``rollout`` that keeps its trajectories for the token counts."""

    def played(*args: Any, **kwargs: Any) -> Any:
        trajs = fn(*args, **kwargs)
        clock.rollouts[clock.phase].extend(trajs)
        return trajs

    return played


def _patches(clock: Clock) -> list:
    """Every patch the profile needs."""
    import mmopsd.evaluation.core as core
    import mmopsd.rollout as rollout_module
    import mmopsd.training.components as components
    import mmopsd.training.loop as loop
    import mmopsd.training.mixture as mixture
    import mmopsd.training.step as step
    import mmopsd.training.views as views
    from mmopsd.engines.hf import HFEngine
    from mmopsd.policies.base import Policy

    ROLLOUTS = "_rollouts" if hasattr(step, "_rollouts") else "rollout"  # a step's episodes

    def scoring(*args: Any, **kwargs: Any) -> str:
        return "student forward" if torch.is_grad_enabled() else "teacher scoring"

    def built(*args: Any, **kwargs: Any) -> Any:
        c = real_build(*args, **kwargs)
        c.optimizer.step = clock.wrap(c.optimizer.step, "optimizer")
        return c

    def evaluating(*args: Any, **kwargs: Any) -> Any:
        with clock.during("eval"):
            return real_eval(*args, **kwargs)

    real_build, real_eval = loop.build, loop.run_eval
    return [
        mock.patch.object(HFEngine, "generate", clock.wrap(HFEngine.generate, "generation")),
        mock.patch.object(Policy, "score", clock.wrap(Policy.score, scoring)),
        mock.patch.object(
            torch.autograd, "backward", clock.wrap(torch.autograd.backward, "student backward")
        ),
        mock.patch.object(step, "teacher_views", clock.wrap(views.teacher_views, "providers")),
        *(
            mock.patch.object(m, "make_envs", _timed_envs(clock, m.make_envs))
            for m in (components, mixture)  # where training makes its environments
            if hasattr(m, "make_envs")
        ),
        mock.patch.object(
            rollout_module, "make_envs", _timed_envs(clock, rollout_module.make_envs)
        ),
        mock.patch.object(step, ROLLOUTS, _recorded(clock, getattr(step, ROLLOUTS))),
        *_eval_patches(clock, core),
        mock.patch.object(loop, "build", built),
        mock.patch.object(loop, "run_eval", evaluating),
    ]


def _eval_patches(clock: Clock, core: Any) -> list:
    """The evaluation's environments and episodes: made and played per environment before
    batched evaluation (``core.make_envs``, ``core.rollout``), through a stable and
    ``play`` since."""
    if hasattr(core, "rollout"):  # the code before batched evaluation
        return [
            mock.patch.object(core, "make_envs", _timed_envs(clock, core.make_envs)),
            mock.patch.object(core, "rollout", _recorded(clock, core.rollout)),
        ]
    import mmopsd.evaluation.stable as stable

    made = _timed_envs(clock, stable.make_envs)
    return [
        mock.patch.object(stable, "make_envs", made),
        mock.patch.object(core, "play", _recorded(clock, core.play)),
    ]


def profile(case: str, steps: int, dtype: str = "auto") -> dict[str, Any]:
    """Train ``steps`` steps of ``case`` (one evaluation before and one after) and split
    the time."""
    from mmopsd.config import from_dict, merge
    from mmopsd.training.loop import train

    clock = Clock()
    with tempfile.TemporaryDirectory() as out, ExitStack() as stack:
        for patch in _patches(clock):
            stack.enter_context(patch)
        base = {
            "model": {"name": "smollm2-135m", "dtype": dtype},
            "method": {"loss": "forward_kl"},
            "teacher": {"update": "frozen"},
            "optimizer": {"lr": 2e-5, "steps": steps},
            "evaluation": {"every": 0},
            "run": {"save_every": 0, "out_dir": out, "seed": 0},
        }
        config = from_dict(merge(base, CASES[case]))
        began = time.perf_counter()
        clock.mark = began
        summary = train(config, progress=False)
        clock._switch()
        wall = time.perf_counter() - began
    return _report(case, steps, clock, wall, summary)


def _report(case: str, steps: int, clock: Clock, wall: float, summary: Any) -> dict[str, Any]:
    """The profile as plain data."""
    config = CASES[case]
    split = {
        phase: {cat: round(clock.seconds.get((phase, cat), 0.0), 2) for cat in CATEGORIES}
        for phase in ("train", "eval")
    }
    train_eps = steps * config["optimizer"]["batch_size"]
    out: dict[str, Any] = {
        "case": case,
        "env": config["tasks"][0]["env"] if len(config["tasks"]) == 1 else "mixture",
        "steps": steps,
        "wall_seconds": round(wall, 1),
        "train_seconds_per_step": round(sum(split["train"].values()) / steps, 2),
        "train_episodes": train_eps,
        "eval_seconds": round(sum(split["eval"].values()), 1),
        "eval_episodes": len(clock.rollouts["eval"]),
        "seconds": split,
        "held_out_before": summary.before.success,
        "held_out_after": summary.after.success,
    }
    for phase in ("train", "eval"):
        trajs = clock.rollouts[phase]
        turns = [t for tr in trajs for t in tr.turns]
        if trajs:
            out[f"{phase}_tokens_per_episode"] = round(
                sum(len(t.response_ids) for t in turns) / len(trajs), 1
            )
            out[f"{phase}_turns_per_episode"] = round(len(turns) / len(trajs), 2)
            lengths = [len(t.prompt) for t in turns]
            out[f"{phase}_prompt_tokens"] = {
                "median": statistics.median(lengths),
                "max": max(lengths),
            }
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per case and phase, seconds per category."""
    head = "| case | phase | episodes | " + " | ".join(CATEGORIES) + " | total |"
    lines = [head, "|" + "---|" * (len(CATEGORIES) + 4)]
    for r in rows:
        for phase, eps in (("train", r["train_episodes"]), ("eval", r["eval_episodes"])):
            cells = r["seconds"][phase]
            total = sum(cells.values())
            lines.append(
                f"| {r['case']} | {phase} | {eps} | "
                + " | ".join(f"{cells[c]:.1f}" for c in CATEGORIES)
                + f" | {total:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="after", help="result file suffix (before, after)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--steps", type=int, default=1, help="training steps per case")
    parser.add_argument("--dtype", default="auto", help="the policy's precision (config dtype)")
    args = parser.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    for case in args.cases.split(","):
        print(f"profiling {case} ...", file=sys.stderr, flush=True)
        rows.append(profile(case, args.steps, args.dtype))
        print(json.dumps(rows[-1], indent=2), flush=True)
    RESULTS.mkdir(exist_ok=True)
    record = {
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "dtype": args.dtype,
        "rows": rows,
    }
    path = RESULTS / f"step_profile_{args.label}.json"
    path.write_text(json.dumps(record, indent=2))
    (RESULTS / f"step_profile_{args.label}.md").write_text(_table(rows) + "\n")
    print(_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
