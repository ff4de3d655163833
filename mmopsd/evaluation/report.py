"""Every Markdown table and plot mmopsd writes: a run's before/after table and learning curve,
an evaluation's table, a suite's table, a leaderboard's table and bar chart, a comparison's
table and curves. Each table goes through :func:`markdown_table`, each figure through
:func:`figure` and :func:`save`."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmopsd.evaluation.scores import EnvScore, average

if TYPE_CHECKING:
    from mmopsd.evaluation.core import EvalResult

LEADERBOARD_NOTE = (
    "Scores are success rates, or BALROG's progression (achievements unlocked / 22) for "
    "Crafter, ± one standard error over episodes. A row marked *+ privileged* is the same "
    "model acting with its environment's privileged information in its context (the "
    "teacher of self-distillation): the gap between it and the model's own row is the "
    "headroom self-distillation can close."
)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; cells are written as they are given (format numbers first)."""
    lines = [_row(header), "|" + "---|" * len(header)]
    return "\n".join(lines + [_row(row) for row in rows])


def _row(cells: Sequence[Any]) -> str:
    """One table row; an empty cell is written ``| |``."""
    return "|" + "|".join(f" {c} " if str(c) else " " for c in cells) + "|"


def interval_text(low: float, high: float) -> str:
    """A 95% interval as ``[low, high]``."""
    return f"[{low:.2f}, {high:.2f}]"


# ------------------------------------------------------------------------------- tables
def run_table(before: EvalResult, after: EvalResult, teacher: EvalResult | None) -> str:
    """A run's held-out success before and after training (and the teacher's)."""
    named = [("student before training", before), ("student after training", after)]
    if teacher is not None:
        named.append(("teacher with privileged info", teacher))
    header = [
        "policy",
        f"held-out success (n={after.episodes})",
        "95% interval",
        "avg turns",
        "invalid",
    ]
    rows = [
        [
            name,
            f"{r.success:.3f}",
            interval_text(r.ci_low, r.ci_high),
            f"{r.mean_turns:.2f}",
            f"{r.invalid_rate:.3f}",
        ]
        for name, r in named
    ]
    return markdown_table(header, rows)


def result_table(result: EvalResult, title: str = "policy") -> str:
    """An evaluation: overall, then one row per task type; grounding and expert agreement
    below when measured."""
    header = [
        title,
        "episodes",
        "success",
        "95% interval",
        "avg turns",
        "invalid rate",
        "tokens/episode",
    ]
    rows = [
        [
            "all",
            result.episodes,
            f"{result.success:.3f}",
            interval_text(result.ci_low, result.ci_high),
            f"{result.mean_turns:.2f}",
            f"{result.invalid_rate:.3f}",
            f"{result.tokens_per_episode:.1f}",
        ]
    ]
    for task, r in sorted(result.per_task.items()):
        interval = interval_text(r["ci_low"], r["ci_high"])
        rows.append([task, int(r["episodes"]), f"{r['success']:.3f}", interval, "", "", ""])
    lines = [markdown_table(header, rows)]
    if result.grounding is not None:
        lines.append(f"\nGrounding (clicks inside the target element): {result.grounding:.3f}")
    if result.expert_agreement is not None:
        lines.append(
            f"\nExpert agreement (turns whose action is the expert's next action): "
            f"{result.expert_agreement:.3f}"
        )
    return "\n".join(lines)


def suite_table(scores: Sequence[EnvScore]) -> str:
    """A suite: one row per environment, then the suite average."""
    header = [
        "environment",
        "metric",
        "score ± s.e.",
        "episodes",
        "invalid rate",
        "avg turns",
        "tokens/episode",
        "seconds",
    ]
    rows: list[list[Any]] = [
        [
            s.name,
            s.metric,
            f"{s.score:.3f} ± {s.stderr:.3f}",
            s.episodes,
            f"{s.invalid_rate:.3f}",
            f"{s.mean_turns:.2f}",
            f"{s.tokens_per_episode:.1f}",
            f"{s.seconds:.0f}",
        ]
        for s in scores
    ]
    mean, err = average(scores)
    rows.append(["**average**", "", f"**{mean:.3f} ± {err:.3f}**", "", "", "", "", ""])
    return markdown_table(header, rows)


WIDE = 24  # a leaderboard of more environments than this is written an environment a row


def leaderboard_table(rows: dict[str, Any]) -> str:
    """A leaderboard's rows (label -> ``{"scores": [...], "note": ...}``), one column per
    environment, the average last (more than ``WIDE`` environments: one row per environment
    and one column per model); the note and each row's own note below."""
    columns = _columns(rows)
    body = []
    for label, row in rows.items():
        by_name = {s["name"]: s for s in row["scores"]}
        cells = [
            f"{by_name[c]['score']:.2f} ± {by_name[c]['stderr']:.2f}" if c in by_name else ""
            for c in columns
        ]
        mean, err = average([EnvScore(**s) for s in row["scores"]])
        body.append([label, *cells, f"**{mean:.3f} ± {err:.3f}**"])
    header = ["model", *columns, "average"]
    if len(columns) > WIDE:
        header, body = ["environment", *rows], [list(c) for c in zip(header, *body)][1:]
    table = markdown_table(header, body)
    notes = [f"- {label}: {row['note']}" for label, row in rows.items() if row.get("note")]
    return "\n".join([table, "", LEADERBOARD_NOTE, *(["", *notes] if notes else [])]) + "\n"


def compare_table(summary: dict[str, Any]) -> str:
    """A comparison: a row per arm, a column per measured quantity (pooled over seeds, with
    its interval and each seed's value), then the probability that each arm beats each other
    one on held-out success."""
    arms = summary["arms"]
    every = sorted({k for a in arms.values() for k in a["final"]}, key=_column_order)
    keys = [k for k in every if not k.startswith("task ")]
    header = ["method", *(_column(k, arms) for k in keys), "minutes per run"]
    rows = [
        [name, *(_cell(arm["final"].get(k)) for k in keys), _minutes(arm["runs"])]
        for name, arm in arms.items()
    ]
    caption = (
        f"Seeds {', '.join(map(str, summary['seeds']))}. Each cell pools the evaluation "
        "episodes of every seed: their success, its 95% Wilson interval in brackets (for a "
        "retained task's change, Newcombe's interval of the difference) and each seed's value "
        "in parentheses. The interval covers the evaluation episodes' noise, not how much "
        "training varies between seeds: the per-seed values show that, and the probabilities "
        "of improvement below account for it. Column headers give seeds × episodes per seed. "
        "Every method plays the same evaluation episodes and consumes the same number of "
        "environment episodes. Minutes per run: each seed's training steps and evaluations "
        "(an evaluation another run had cached costs nothing)."
    )
    parts = [caption, "", markdown_table(header, rows)]
    ran = (k for a in arms.values() for r in a["runs"] for k in r["final"])  # config order
    tasks = list(dict.fromkeys(k for k in ran if k.startswith("task ")))
    if tasks:
        parts += ["", _task_table(arms, tasks)]
    if summary.get("improvement"):
        parts += ["", _improvement_table(summary["improvement"])]
    return "\n".join(parts) + "\n"


def _task_table(arms: dict[str, Any], tasks: list[str]) -> str:
    """Held-out success after training on each task of a mixture, pooled over seeds."""
    names = [k.removeprefix("task ").removeprefix("MiniWoB-").rsplit("-v", 1)[0] for k in tasks]
    rows = [[name, *(_rate(arm["final"].get(k)) for k in tasks)] for name, arm in arms.items()]
    caption = (
        "Held-out success after training on each trained task (pooled over seeds, 95% Wilson "
        "interval)."
    )
    return f"{caption}\n\n{markdown_table(['method', *names], rows)}"


def _rate(value: dict[str, Any] | None) -> str:
    if value is None or value["seeds"] == 0:
        return "—"
    return f"{value['mean']:.2f} [{value['low']:.2f}, {value['high']:.2f}]"


def _minutes(runs: list[dict[str, Any]]) -> str:
    """Each seed's wall time in minutes (training and evaluations); "—" where not recorded."""
    return ", ".join("—" if r.get("minutes") is None else f"{r['minutes']:.1f}" for r in runs)


def _improvement_table(improvement: dict[str, dict[str, Any]]) -> str:
    names = list(improvement)
    rows = [[x, *(_p_cell(improvement[x].get(y)) for y in names)] for x in names]
    caption = (
        "Probability of improvement on held-out success, P(row > column): the chance that a "
        "run of the row's method scores above a run of the column's (ties count a half), with "
        "its 95% stratified bootstrap interval (seeds resampled, then each seed's episodes)."
    )
    return f"{caption}\n\n{markdown_table(['P(row > column)', *names], rows)}"


def _p_cell(value: dict[str, Any] | None) -> str:
    if value is None:
        return "—"
    return f"{value['p']:.2f} [{value['low']:.2f}, {value['high']:.2f}]"


def _column(key: str, arms: dict[str, Any]) -> str:
    """A column's name with the seeds × episodes per seed it rests on."""
    cells = [a["final"][key] for a in arms.values() if key in a["final"]]
    seeds = {c["seeds"] for c in cells}
    per_seed = {c["episodes"] // max(1, c["seeds"]) for c in cells}
    if len(seeds) == 1 and len(per_seed) == 1:
        return f"{key} ({seeds.pop()} × {per_seed.pop()})"
    return key


def _column_order(key: str) -> tuple[int, str]:
    order = ("held_out_before", "held_out", "ood", "retain change", "retain", "teacher")
    return next((i for i, p in enumerate(order) if key.startswith(p)), len(order)), key


def _cell(value: dict[str, Any] | None) -> str:
    if value is None or value["seeds"] == 0:
        return "—"
    seeds = ", ".join(f"{v:.3f}" for v in value["per_seed"])
    return f"{value['mean']:.3f} [{value['low']:.2f}, {value['high']:.2f}] ({seeds})"


def _columns(rows: dict[str, Any]) -> list[str]:
    columns: list[str] = []
    for row in rows.values():
        columns += [s["name"] for s in row["scores"] if s["name"] not in columns]
    return columns


# -------------------------------------------------------------------------------- plots
@contextmanager
def figure(path: Path, *, ncols: int = 1, size: tuple[float, float] = (6.4, 4)) -> Iterator[Any]:
    """A matplotlib figure (headless) yielding its axes; on leaving it is laid out and
    written to ``path`` atomically (a reader never sees half a PNG), then closed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=size)
    try:
        yield axes
        fig.tight_layout()
        save(fig, path)
    finally:
        plt.close(fig)


def save(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` through a temporary file."""
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path


def plot_run(records: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """A run's training loss and held-out success against steps."""
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    with figure(path, ncols=2, size=(10, 3.8)) as (ax1, ax2):
        ax1.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue")
        ax1.set(xlabel="step", ylabel="distillation loss", title="training loss")
        ax1.grid(alpha=0.3)
        for key, label, colour in (
            ("student_success", "student (held-out)", "tab:green"),
            ("teacher_success", "teacher with privileged info", "tab:orange"),
        ):
            pts = [(r["step"], r[key]) for r in evals if key in r and not math.isnan(r[key])]
            if pts:
                ax2.plot(*zip(*pts), marker="o", label=label, color=colour)
        steps = [r["step"] for r in train]
        rollouts = [r["rollout_success"] for r in train]
        ax2.plot(steps, rollouts, alpha=0.4, color="tab:gray", label="training rollouts")
        ax2.set(xlabel="step", ylabel="success rate", ylim=(-0.02, 1.02), title="success")
        ax2.grid(alpha=0.3)
        ax2.legend(loc="lower right", fontsize=8)
        if title:
            ax1.figure.suptitle(title)
    return path


def plot_compare(summary: dict[str, Any], path: Path) -> Path:
    """Held-out success (mean over seeds) against environment episodes consumed."""
    with figure(path) as ax:
        for name, arm in summary["arms"].items():
            by_step: dict[int, list[float]] = {}
            for run in arm["runs"]:
                for step, success in run["curve"]:
                    by_step.setdefault(step, []).append(success)
            steps = sorted(by_step)
            xs = [s * arm["episodes_per_step"] for s in steps]
            ax.plot(xs, [statistics.mean(by_step[s]) for s in steps], marker="o", label=name)
        ax.set(
            xlabel="environment episodes consumed",
            ylabel="held-out success (mean over seeds)",
            ylim=(-0.02, 1.02),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return path


def plot_leaderboard(rows: dict[str, Any], path: Path) -> Path:
    """Grouped bars: one group per environment, one bar per row, error bars of one s.e."""
    columns = _columns(rows)
    size = (min(30, max(6, 0.55 * len(columns) * max(1, len(rows)))), 4)
    width = 0.8 / max(1, len(rows))
    with figure(path, size=size) as ax:
        for k, (label, row) in enumerate(rows.items()):
            by_name = {s["name"]: s for s in row["scores"]}
            xs = [i + k * width for i, c in enumerate(columns) if c in by_name]
            ys = [by_name[c]["score"] for c in columns if c in by_name]
            es = [by_name[c]["stderr"] for c in columns if c in by_name]
            ax.bar(xs, ys, width, yerr=es, label=label, capsize=2)
        ticks = [i + 0.4 - width / 2 for i in range(len(columns))]
        ax.set_xticks(ticks, columns, rotation=60, fontsize=6 if len(columns) > WIDE else 9)
        ax.set(ylim=(0, 1.05), ylabel="success / progression")
        ax.legend(fontsize=8)
    return path
