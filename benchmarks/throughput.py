"""Episodes per CPU hour: evaluation, training runs and the ``all`` leaderboard row.

SmolLM2-135M on the CPU, greedy evaluation, each figure the median of ``--repeats`` runs
(the measures interleaved, so a slow minute of the machine is spread over all of them):

- **evaluation**: the base student on held-out seeds of MiniWoB++ click-button (the ``gui``
  suite's settings: 4 turns, 16 new tokens) and BabyAI GoToLocal (the ``embodied`` suite's:
  10 turns, 4 new tokens, the whole history in the prompt), environment creation included;
- **training**: a short self-distillation run as a user starts it (evaluations of the student
  and of the teacher with privileged information before, midway and after included, the
  model load not): click-button with 8 one-turn episodes a step and the hint provider,
  GoToLocal with 4 episodes a step of up to 8 turns, the bot's next action as privileged
  information and the last 2 exchanges in the prompt; training episodes divided by the run's
  wall time;
- **leaderboard** (``--leaderboard``): ``mmopsd eval --suite all`` of the base student, one
  row, in minutes (with the suite's first 12 MiniWoB++ tasks, as the target was set).

    python benchmarks/throughput.py --label before
    python benchmarks/throughput.py --label after --leaderboard
    python benchmarks/throughput.py --table        # results/throughput.md from both files

``--code DIR`` imports mmopsd from another checkout (e.g. a worktree of the commit before the
changes) and ``--append`` adds to the runs already in the result file, so that
``benchmarks/throughput_ab.sh`` can alternate the two codes one run at a time, each in a
fresh process: a machine whose speed drifts then slows both sides alike.

Do not run anything else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
MODEL = "smollm2-135m"
EVALS = {
    "click-button": dict(env="mmopsd/MiniWoB-click-button-v0", episodes=32, max_turns=4,
                         max_new_tokens=16),
    "babyai-gotolocal": dict(env="mmopsd/BabyAI-GoToLocal-v0", episodes=16, max_turns=10,
                             max_new_tokens=4),
}  # fmt: skip
RUNS = {
    "click-button": {
        "tasks": [{"env": "mmopsd/MiniWoB-click-button-v0", "provider": "hint"}],
        "rollout": {"max_new_tokens": 16, "max_turns": 1},
        "optimizer": {"steps": 4, "batch_size": 8, "micro_batch_size": 8},
        "evaluation": {"every": 2, "episodes": 16},
    },
    "babyai-gotolocal": {
        "tasks": [{"env": "mmopsd/BabyAI-GoToLocal-v0", "provider": "reference",
                   "provider_kwargs": {"kind": "next_action"}, "history": 2}],
        "rollout": {"max_new_tokens": 4, "max_turns": 8},
        "optimizer": {"steps": 2, "batch_size": 4, "micro_batch_size": 4},
        "evaluation": {"every": 1, "episodes": 8},
    },
}  # fmt: skip


# Both sides play the same episodes: the MiniWoB++ instruction of today, pinned (the code
# before the speed-ups had another, and a prompt decides how many turns an episode lasts).
# Equal successes, turns and tokens per episode on both sides show the same work was done.
MINIWOB_INSTRUCTION = (
    "Reply with one action: click_element(N) clicks the element numbered [N] in the list "
    'above, click(X, Y) clicks a point, type("TEXT") types into the focused field and '
    'press("KEY") presses a key.'
)


def _pin_prompts() -> None:
    import dataclasses

    from mmopsd.agents.prompting import PROMPTS

    for env_id in [k for k in PROMPTS if k.startswith("mmopsd/MiniWoB")]:
        spec = PROMPTS.get(env_id)
        PROMPTS._items[env_id] = dataclasses.replace(spec, instruction=MINIWOB_INSTRUCTION)


def _policy() -> Any:
    """A freshly loaded model; every measure starts its own browsers (an idle pool left by
    the measure before is emptied first)."""
    from mmopsd.policies.loading import load_policy

    try:
        from mmopsd.envs.browsers import POOL
    except ImportError:  # code from before the pool
        pass
    else:
        POOL.close()
    _pin_prompts()
    return load_policy(MODEL)


def measure_eval(name: str) -> dict[str, Any]:
    """Held-out episodes of the base student on one task; episodes per hour."""
    from mmopsd.evaluation.suites import run_suite
    from mmopsd.evaluation.tasks import EvalTask

    policy = _policy()
    task = EvalTask(**EVALS[name])
    began = time.perf_counter()
    (score,) = run_suite(policy, [task])
    seconds = time.perf_counter() - began
    row = score.to_dict()
    return {"seconds": seconds, "episodes": task.episodes, "success": row["score"],
            "mean_turns": row["mean_turns"], "tokens_per_episode": row["tokens_per_episode"]}  # fmt: skip


def measure_run(name: str) -> dict[str, Any]:
    """A short self-distillation run; training episodes per hour of its wall time."""
    from mmopsd.config import from_dict, merge
    from mmopsd.training.loop import train

    policy = _policy()
    with tempfile.TemporaryDirectory() as out:
        base = {
            "model": {"name": MODEL},
            "method": {"loss": "forward_kl"},
            "teacher": {"update": "frozen"},
            "optimizer": {"lr": 2e-5},
            "run": {"save_every": 0, "out_dir": out, "seed": 0},
        }
        config = from_dict(merge(base, RUNS[name]))
        began = time.perf_counter()
        summary = train(config, policy=policy, progress=False)
        seconds = time.perf_counter() - began
    episodes = config.optimizer.steps * config.optimizer.batch_size
    return {
        "seconds": seconds,
        "episodes": episodes,
        "before": summary.before.success,
        "after": summary.after.success,
        "turns": [summary.before.mean_turns, summary.after.mean_turns],
    }


def measure_leaderboard() -> dict[str, Any]:
    """The ``all`` suite's row for the base student, as ``mmopsd eval --suite all`` runs it,
    with the 12 MiniWoB++ tasks its target was set on (``MINIWOB``; the ``gui`` suite has
    since grown to every task with an expert), so that every code measures the same work."""
    MINIWOB = (  # the first twelve registered tasks
        "click-button", "click-link", "click-checkboxes", "click-tab", "click-dialog",
        "focus-text", "enter-text", "enter-password", "login-user", "choose-list",
        "use-autocomplete", "email-inbox",
    )  # fmt: skip

    from mmopsd.evaluation.suites import SUITES, run_suite

    measured = {f"mmopsd/MiniWoB-{t}-v0" for t in MINIWOB}
    tasks = [t for t in SUITES.get("all") if "/MiniWoB-" not in t.env or t.env in measured]
    policy = _policy()
    began = time.perf_counter()
    scores = run_suite(policy, tasks)
    seconds = time.perf_counter() - began
    rows = [s.to_dict() for s in scores]
    episodes = sum(r["episodes"] for r in rows)
    return {
        "seconds": seconds,
        "episodes": episodes,
        "scores": {r["name"]: r["score"] for r in rows},
        # the work each side did: turns and generated tokens per episode, per task
        "turns": {r["name"]: [r["mean_turns"], r["tokens_per_episode"]] for r in rows},
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = statistics.median(r["seconds"] for r in runs)
    episodes = runs[0]["episodes"]
    return {
        "median_seconds": round(seconds, 1),
        "episodes": episodes,
        "episodes_per_hour": round(episodes * 3600 / seconds, 1),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="after", help="result file suffix: before or after")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--leaderboard", action="store_true", help="also time the all row")
    parser.add_argument("--leaderboard-repeats", type=int, default=None)
    parser.add_argument("--only", help="comma-separated measures, e.g. eval:click-button")
    parser.add_argument("--table", action="store_true", help="write throughput.md and stop")
    parser.add_argument("--code", type=Path, help="import mmopsd from this checkout")
    parser.add_argument("--append", action="store_true", help="add to the runs on file")
    args = parser.parse_args(argv)
    if args.table:
        return write_table()
    if args.code:
        use_code(args.code)
    measures = [(f"eval:{n}", measure_eval, n) for n in EVALS]
    measures += [(f"train:{n}", measure_run, n) for n in RUNS]
    if args.only:
        wanted = set(args.only.split(","))
        measures = [m for m in measures if m[0] in wanted]
    path = RESULTS / f"throughput_{args.label}.json"
    runs: dict[str, list[dict[str, Any]]] = {}
    if args.append and path.is_file():
        runs = {k: m["runs"] for k, m in json.loads(path.read_text())["measures"].items()}
    code = _commit(args.code or Path(__file__).parent.parent)
    for rep in range(args.repeats):
        for key, fn, name in measures:
            print(f"[{rep + 1}/{args.repeats}] {key}", file=sys.stderr, flush=True)
            runs.setdefault(key, []).append({**fn(name), "code": code})
            _save(path, runs)  # after every run: a stopped benchmark keeps what it measured
    if args.leaderboard:
        for rep in range(args.leaderboard_repeats or args.repeats):
            print(f"[{rep + 1}] leaderboard all", file=sys.stderr, flush=True)
            runs.setdefault("leaderboard:all", []).append({**measure_leaderboard(), "code": code})
            _save(path, runs)
    return write_table()


def _commit(root: Path) -> str:
    """The commit a checkout is at (each run records the code it timed)."""
    import subprocess

    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def use_code(root: Path) -> None:
    """Import ``mmopsd`` and its plug-in families (``mmopsd.envs``, ``mmopsd.privileged``,
    ``mmopsd.agents``, which live at the top of a checkout) from ``root``."""
    import importlib.abc
    import importlib.util

    places = {"mmopsd": root / "mmopsd"}
    places.update({f"mmopsd.{n}": root / n for n in ("envs", "privileged", "agents")})

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name not in places:
                return None
            init = places[name] / "__init__.py"
            return importlib.util.spec_from_file_location(
                name, init, submodule_search_locations=[str(places[name])]
            )

    sys.meta_path.insert(0, Finder())


def _save(path: Path, runs: dict[str, list[dict[str, Any]]]) -> None:
    """The medians so far, merged into ``path``."""
    print(json.dumps({k: v[-1] for k, v in runs.items()}), file=sys.stderr, flush=True)
    record = json.loads(path.read_text()) if path.is_file() else {}
    record.update({"machine": platform.machine(), "model": MODEL})
    record.setdefault("measures", {}).update({k: _median(v) for k, v in runs.items()})
    path.write_text(json.dumps(record, indent=2))


def write_table() -> int:
    """``throughput.md``: before, after and their ratio per measure."""
    files = {label: RESULTS / f"throughput_{label}.json" for label in ("before", "after")}
    data = {k: json.loads(p.read_text())["measures"] for k, p in files.items() if p.is_file()}
    before, after = data.get("before", {}), data.get("after", {})
    lines = [
        "| measure | before: median s (episodes/h) | after: median s (episodes/h) | speed-up |",
        "|---|---|---|---|",
    ]
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        cell = lambda m: f"{m['median_seconds']} ({m['episodes_per_hour']})" if m else "—"  # noqa: E731
        ratio = f"{b['median_seconds'] / a['median_seconds']:.2f}x" if a and b else "—"
        lines.append(f"| {key} | {cell(b)} | {cell(a)} | {ratio} |")
    (RESULTS / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
