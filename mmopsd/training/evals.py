"""Evaluation during a run: held-out student success, the teacher with privileged information
(computed once while both teacher and provider are static), and the config's ``ood`` and
``retain`` tasks before training and after the last step."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from mmopsd.agents.prompting import prompt_for
from mmopsd.config import TaskConfig, TrainConfig
from mmopsd.evaluation.cache import fingerprint
from mmopsd.evaluation.core import EvalPlan, evaluate_all, pooled
from mmopsd.evaluation.episodes import EpisodeRecorder
from mmopsd.evaluation.tasks import extra_tasks
from mmopsd.training.components import Components

SEED_OFFSET = 10_000_000  # evaluation seeds never meet training seeds


def run_eval(step: int, c: Components, config: TrainConfig, *, teacher: bool) -> dict[str, Any]:
    """The evaluation record at ``step`` (0: before training), with the ``seconds`` it took.

    The initial model's results (held-out, ``ood``, ``retain``) and a static teacher's come
    from the run's evaluation cache when an earlier run (or the same run, before a restart)
    computed them with the same model, settings, seeds and code.
    """
    start = time.perf_counter()
    settings = _settings(c, config)
    c.policy.model.eval()
    # An engine that holds the student's weights (vLLM) evaluates faster; a served model
    # this run does not update cannot evaluate the student.
    engine = c.engine if c.engine.follows_weights else None
    record: dict[str, Any] = {"kind": "eval", "step": step}
    cached = step == 0 and c.eval_cache.path is not None  # only a kept result needs a key
    student_weights = fingerprint(c.policy.model) if cached else None
    with c.parallel.gathered(c.policy.model):  # FSDP2: whole weights while generating
        recorder = _recorder(c, config, step)
        student = lambda: _held_out(c, config, c.policy, None, engine, recorder)  # noqa: E731
        if step == 0:
            result = c.eval_cache.get("student", {**settings, "weights": student_weights}, student)
        else:
            result = student()
        record.update(student_success=result["success"], student=result)
        if recorder is not None and recorder.episodes:
            recorder.write({"success": result["success"]})
            record["episodes"] = str(recorder.path.relative_to(config.run.out_dir))
        static = c.teacher.static and c.provider.static
        if teacher and (c.teacher_eval is None or not static):
            c.teacher_eval = _teacher_eval(c, config, settings, static)
    if teacher and c.teacher_eval is not None:
        record.update(teacher_success=c.teacher_eval["success"], teacher=dict(c.teacher_eval))
    if step in (
        0,
        config.optimizer.steps,
    ):  # out-of-distribution and retained tasks: before and after
        for kind in ("ood", "retain"):
            if config.evaluation.ood if kind == "ood" else config.evaluation.retain:
                compute = lambda kind=kind: _extra_evals(c, config, kind)  # noqa: E731
                history = [t.history for t in config.tasks]
                parts = {"tasks": extra_tasks(config, kind), "history": history}
                record[kind] = (
                    c.eval_cache.get(kind, {**parts, "weights": student_weights}, compute)
                    if step == 0
                    else compute()
                )
    if c.eval_cache.path is not None:
        record["eval_cache"] = c.eval_cache.record()
    record["seconds"] = time.perf_counter() - start
    return record


def _settings(c: Components, config: TrainConfig) -> dict[str, Any]:
    """What a held-out evaluation's result depends on, apart from the weights."""
    e, r = config.evaluation, config.rollout
    return {
        "tasks": [_played(t) for t in config.tasks],
        "split": e.split,
        "episodes": e.episodes,
        "max_turns": r.max_turns,
        "max_new_tokens": r.max_new_tokens,
        "engine": r.engine,
        "engine_kwargs": r.engine_kwargs,
        "specs": [repr(c.specs[t.name]) for t in config.tasks],
        "seed_offset": SEED_OFFSET,
        "compute_dtype": str(c.policy.compute_dtype),  # mixed precision plays other episodes
    }


def _played(task: TaskConfig) -> dict[str, Any]:
    """A task as evaluation sees it: its draw weight changes nothing there."""
    return {k: v for k, v in dataclasses.asdict(task).items() if k != "weight"}


def _held_out(
    c: Components,
    config: TrainConfig,
    policy: Any,
    providers: dict[str, Any] | None,
    engine: Any,
    recorder: EpisodeRecorder | None = None,
) -> dict[str, Any]:
    """The held-out result of ``policy`` (with each task's provider: the teacher's view):
    the tasks are played together and pooled, each task's success in ``per_task`` where
    there are several."""
    plans = [
        EvalPlan(
            t.env,
            c.specs[t.name],
            config.evaluation.episodes,
            dict(t.env_kwargs),
            config.evaluation.split,
            config.rollout.max_turns,
            config.rollout.max_new_tokens,
            providers[t.name] if providers else None,
        )
        for t in c.tasks
    ]
    results = evaluate_all(
        policy,
        plans,
        batch_size=config.evaluation.batch_size,
        seed_offset=SEED_OFFSET,
        parallel=c.parallel,
        engine=engine,
        on_episode=None if recorder is None else lambda _, i, t: recorder.add(i, t),
    )
    return pooled({t.name: r for t, r in zip(c.tasks, results)}).to_dict()


def _recorder(c: Components, config: TrainConfig, step: int) -> EpisodeRecorder | None:
    """The keeper of this evaluation's student episodes (``evaluation.keep_episodes``, or
    trackers to show some), on the process that writes the run directory."""
    if not (config.evaluation.keep_episodes or config.run.report_to) or not c.parallel.main:
        return None
    view = c.providers[c.tasks[0].name] if len(c.tasks) == 1 else None
    path = Path(config.run.out_dir) / "episodes" / f"step-{step}.jsonl"
    return EpisodeRecorder(path, f"student after step {step}", teacher_view=view)


def _teacher_eval(
    c: Components, config: TrainConfig, settings: dict[str, Any], static: bool
) -> dict[str, Any]:
    """The teacher's held-out result with privileged information (from the cache when both
    teacher and provider are static)."""
    with c.teacher.active() as tp:
        compute = lambda: _held_out(c, config, tp, c.providers, None)  # noqa: E731
        if not static:
            return compute()
        parts = {
            **settings,
            "weights": fingerprint(tp.model),
        }
        return c.eval_cache.get("teacher", parts, compute)


def _extra_evals(c: Components, config: TrainConfig, kind: str) -> dict[str, Any]:
    """The student's results on the config's ``ood`` or ``retain`` tasks, played together
    (one batched generation per turn across their environments)."""
    tasks = extra_tasks(config, kind)
    plans = [
        EvalPlan(
            task.env,
            prompt_for(task.env, config.tasks[0].history),
            task.episodes,
            dict(task.env_kwargs),
            task.split,
            task.max_turns,
            task.max_new_tokens,
        )
        for task in tasks
    ]
    with c.parallel.gathered(c.policy.model):
        results = evaluate_all(
            c.policy,
            plans,
            batch_size=config.evaluation.batch_size,
            seed_offset=SEED_OFFSET,
            parallel=c.parallel,
        )
    return {task.name: result.to_dict() for task, result in zip(tasks, results)}
