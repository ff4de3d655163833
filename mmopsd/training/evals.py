"""Evaluation during a run: held-out student success, the teacher with privileged information
(computed once while both teacher and provider are static), and the config's ``ood`` and
``retain`` tasks before training and after the last step."""

from __future__ import annotations

from typing import Any

from mmopsd.agents.prompting import prompt_for
from mmopsd.config import TrainConfig
from mmopsd.evaluation.core import evaluate
from mmopsd.training.components import Components

SEED_OFFSET = 10_000_000  # evaluation seeds never meet training seeds


def run_eval(step: int, c: Components, config: TrainConfig, *, teacher: bool) -> dict[str, Any]:
    """The evaluation record at ``step`` (0: before training)."""
    kw = dict(
        episodes=config.eval_episodes,
        env_kwargs=config.env_kwargs,
        split=config.eval_split,
        max_turns=config.max_turns,
        max_new_tokens=config.max_new_tokens,
        seed_offset=SEED_OFFSET,
        parallel=c.parallel,
    )
    c.policy.model.eval()
    # An engine that holds the student's weights (vLLM) evaluates faster; a served model
    # this run does not update cannot evaluate the student.
    engine = c.engine if c.engine.follows_weights else None
    record: dict[str, Any] = {"kind": "eval", "step": step}
    with c.parallel.gathered(c.policy.model):  # FSDP2: whole weights while generating
        student = evaluate(c.policy, config.env, c.spec, engine=engine, **kw)
        record.update(student_success=student.success, student=student.to_dict())
        static = c.teacher.static and c.provider.static
        if teacher and (c.teacher_eval is None or not static):
            with c.teacher.active() as tp:
                result = evaluate(tp, config.env, c.spec, provider=c.provider, **kw)
            c.teacher_eval = result.to_dict()
    if teacher and c.teacher_eval is not None:
        record.update(teacher_success=c.teacher_eval["success"], teacher=dict(c.teacher_eval))
    if step in (0, config.steps):  # out-of-distribution and retained tasks: before and after
        for kind in ("ood", "retain"):
            if config.extra_tasks(kind):
                record[kind] = _extra_evals(c, config, kind)
    return record


def _extra_evals(c: Components, config: TrainConfig, kind: str) -> dict[str, Any]:
    """The student's results on the config's ``ood`` or ``retain`` tasks."""
    out = {}
    for task in config.extra_tasks(kind):
        with c.parallel.gathered(c.policy.model):
            result = evaluate(
                c.policy,
                task.env,
                prompt_for(task.env, config.history),
                episodes=task.episodes,
                env_kwargs=dict(task.env_kwargs),
                split=task.split,
                max_turns=task.max_turns,
                max_new_tokens=task.max_new_tokens,
                seed_offset=SEED_OFFSET,
                parallel=c.parallel,
            )
        out[task.name] = result.to_dict()
    return out
